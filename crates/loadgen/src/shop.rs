//! The shopper's side of the public API: what each journey requests.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Error;
use crate::plan::{Journey, Plan};
use crate::report::Recorder;

/// A card payment accepts, and one it declines (402).
const GOOD_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";
/// The route labels requests are recorded under (SLO gates may name them).
pub const ROUTES: [&str; 7] = [
    "GET /api/v1/products",
    "GET /api/v1/products/{id}",
    "GET /api/v1/products/{id}?currency",
    "GET /api/v1/cart",
    "POST /api/v1/cart/items",
    "POST /api/v1/checkout",
    "DELETE /api/v1/cart",
];
/// One checkout in this many uses the declined card.
const DECLINE_EVERY: u64 = 10;

/// The target, the products to visit and the signed-in shoppers.
#[derive(Debug)]
pub struct Shop {
    http: reqwest::Client,
    base: String,
    products: Vec<String>,
    /// A currency other than the catalog's, for the currency journey.
    currency: String,
    tokens: Vec<String>,
}

fn transport_failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

impl Shop {
    /// Reads the catalog and signs up the plan's shoppers.
    pub async fn prepare(plan: &Plan) -> Result<Self, Error> {
        let base = plan.target.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(plan.request_timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| Error::Plan(e.to_string()))?;
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            target: base.clone(),
            reason: e.to_string(),
        };
        let setup = |reason: String| Error::Setup {
            target: base.clone(),
            reason,
        };
        let page: Value = http
            .get(format!("{base}/api/v1/products?limit=100"))
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(|e| setup(e.to_string()))?
            .json()
            .await
            .map_err(|e| setup(format!("the product list is not JSON: {e}")))?;
        let products: Vec<String> = page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| p["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if products.is_empty() {
            return Err(setup("the catalog lists no product".into()));
        }
        let currencies: Value = http
            .get(format!("{base}/api/v1/currencies"))
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(|e| setup(format!("the currency list is not JSON: {e}")))?;
        let currency = currencies["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str().or_else(|| c.as_str()))
            .find(|c| *c != "USD")
            .unwrap_or("EUR")
            .to_owned();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut tokens = Vec::new();
        for i in 0..plan.shoppers {
            let email = format!("loadgen-{stamp:x}-{i}@example.com");
            let password = "loadgen shopper password";
            let signup =
                json!({"email": email, "password": password, "name": format!("Shopper {i}")});
            let answer = http
                .post(format!("{base}/api/v1/auth/signup"))
                .json(&signup)
                .send()
                .await
                .map_err(unreachable)?;
            if !answer.status().is_success() {
                return Err(setup(format!("sign-up answered {}", answer.status())));
            }
            let login: Value = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .map_err(unreachable)?
                .error_for_status()
                .map_err(|e| setup(e.to_string()))?
                .json()
                .await
                .map_err(|e| setup(e.to_string()))?;
            let token = login["access_token"]
                .as_str()
                .ok_or_else(|| setup("sign-in gave no access_token".into()))?;
            tokens.push(token.to_owned());
        }
        Ok(Self {
            http,
            base,
            products,
            currency,
            tokens,
        })
    }

    /// One request; records it and returns its status when it succeeded.
    /// `business` lists statuses that are answers, not failures (a declined
    /// card).
    async fn request(
        &self,
        recorder: &Recorder,
        route: &str,
        request: reqwest::RequestBuilder,
        since: Instant,
        business: &[u16],
    ) -> Option<u16> {
        let (status, failure) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the body: the request is over when its answer is.
                let body = response.bytes().await;
                match body {
                    Err(e) => (None, Some(transport_failure(&e))),
                    Ok(_) if status < 400 || business.contains(&status) => (Some(status), None),
                    Ok(_) => (None, Some(status.to_string())),
                }
            }
            Err(e) => (None, Some(transport_failure(&e))),
        };
        recorder.request(route, since.elapsed(), failure);
        status
    }

    /// Runs `journey`, meant to start at `intended` (its first request's
    /// latency counts from then); `unit` drives its random choices.
    pub async fn journey(
        &self,
        journey: Journey,
        intended: Instant,
        unit: f64,
        recorder: &Recorder,
    ) {
        let pick =
            |n: usize, salt: f64| ((unit * 7919.0 + salt).fract() * n as f64) as usize % n.max(1);
        let product = &self.products[pick(self.products.len(), 0.0)];
        let token = self
            .tokens
            .get(pick(self.tokens.len(), 0.5))
            .map(String::as_str)
            .unwrap_or_default();
        let base = &self.base;
        let http = &self.http;
        let ok = match journey {
            Journey::Browse => self
                .request(
                    recorder,
                    "GET /api/v1/products",
                    http.get(format!("{base}/api/v1/products?limit=20")),
                    intended,
                    &[],
                )
                .await
                .is_some(),
            Journey::Product => self
                .request(
                    recorder,
                    "GET /api/v1/products/{id}",
                    http.get(format!("{base}/api/v1/products/{product}")),
                    intended,
                    &[],
                )
                .await
                .is_some(),
            Journey::Currency => {
                let url = format!(
                    "{base}/api/v1/products/{product}?currency={}",
                    self.currency
                );
                self.request(
                    recorder,
                    "GET /api/v1/products/{id}?currency",
                    http.get(url),
                    intended,
                    &[],
                )
                .await
                .is_some()
            }
            Journey::Cart => self
                .request(
                    recorder,
                    "GET /api/v1/cart",
                    http.get(format!("{base}/api/v1/cart")).bearer_auth(token),
                    intended,
                    &[],
                )
                .await
                .is_some(),
            Journey::Add => self.add(recorder, token, product, intended).await,
            Journey::Checkout => {
                let added = self.add(recorder, token, product, intended).await;
                let n = (unit * 1e9) as u64;
                let card = if n.is_multiple_of(DECLINE_EVERY) {
                    DECLINED_CARD
                } else {
                    GOOD_CARD
                };
                let body = json!({
                    "currency": "USD",
                    "shipping_address": {"name": "Load Test", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country_code": "DE"},
                    "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
                });
                let key = format!("loadgen-{n:x}-{:x}", intended.elapsed().as_nanos());
                let checkout = http
                    .post(format!("{base}/api/v1/checkout"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&body);
                // 402: declined card; 409: out of stock, or a cart another
                // journey of the same shopper emptied first. This request
                // depends on the one before, so it is timed from its own
                // start; the journey's time counts from the intended start.
                let answer = self
                    .request(
                        recorder,
                        "POST /api/v1/checkout",
                        checkout,
                        Instant::now(),
                        &[402, 409],
                    )
                    .await;
                match answer {
                    Some(201 | 202) => recorder.outcome("checkout: placed"),
                    Some(402) => recorder.outcome("checkout: declined"),
                    Some(409) => {
                        recorder.outcome("checkout: out of stock");
                        // Start over, or every later checkout of this
                        // shopper would meet the same sold-out line.
                        let clear = http
                            .delete(format!("{base}/api/v1/cart"))
                            .bearer_auth(token);
                        self.request(recorder, "DELETE /api/v1/cart", clear, Instant::now(), &[])
                            .await;
                    }
                    _ => {}
                }
                added && answer.is_some()
            }
        };
        recorder.journey(journey.name(), intended.elapsed(), ok);
    }

    async fn add(&self, recorder: &Recorder, token: &str, product: &str, since: Instant) -> bool {
        let request = self
            .http
            .post(format!("{}/api/v1/cart/items", self.base))
            .bearer_auth(token)
            .json(&json!({"product_id": product, "quantity": 1}));
        self.request(recorder, "POST /api/v1/cart/items", request, since, &[])
            .await
            .is_some()
    }
}
