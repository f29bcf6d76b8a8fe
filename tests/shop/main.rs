//! The store end to end: every service running, driven through the public
//! API over real sockets — sign-up, cart, checkout, orders — with the
//! internal gRPC APIs used only to look (stock levels, charges).

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod auth;
mod cache;
mod checkout;
mod crash;
mod events;
mod faults;
mod input;
mod prices;

use emporium_api::inventory::v1 as inventory;
use emporium_api::inventory::v1::inventory_service_client::InventoryServiceClient;
use emporium_api::payment::v1 as payment;
use emporium_api::payment::v1::payment_service_client::PaymentServiceClient;
use emporium_testkit::system::{System, SystemOptions};
use emporium_testkit::{admin, request_as};
use serde_json::{Value, json};

pub use emporium_testkit::Backend;

/// A card that the simulated processor accepts, and ones it declines.
pub const GOOD_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";

pub async fn start() -> System {
    start_with(SystemOptions::default()).await
}

pub async fn start_with(options: SystemOptions) -> System {
    emporium_testkit::system::spawn_system(options)
        .await
        .unwrap()
        .expect("sqlite is always available")
}

/// A signed-in customer talking to the gateway.
#[derive(Debug, Clone)]
pub struct Customer {
    pub base: String,
    pub token: String,
    pub user_id: String,
    pub http: reqwest::Client,
}

impl Customer {
    pub async fn sign_up(system: &System) -> Self {
        let http = reqwest::Client::new();
        let base = system.gateway.base_url();
        let email = format!("shopper-{}@example.com", uuid_like());
        let created = http
            .post(format!("{base}/api/v1/auth/signup"))
            .json(&json!({"email": email, "password": "correct horse battery", "name": "Test Shopper"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{:?}", created.text().await);
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            base,
            token: login["access_token"].as_str().unwrap().to_owned(),
            user_id: login["user"]["id"].as_str().unwrap().to_owned(),
            http,
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    pub async fn add_to_cart(&self, product_id: &str, quantity: u32) {
        let response = self
            .post("/api/v1/cart/items")
            .json(&json!({"product_id": product_id, "quantity": quantity}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    pub async fn checkout(&self, key: &str, currency: &str, card: &str) -> reqwest::Response {
        self.post("/api/v1/checkout")
            .header("Idempotency-Key", key)
            .json(&checkout_body(currency, card))
            .send()
            .await
            .unwrap()
    }
}

pub fn checkout_body(currency: &str, card: &str) -> Value {
    json!({
        "currency": currency,
        "shipping_address": {
            "name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
            "postal_code": "SW1Y 4JH", "country_code": "GB"
        },
        "card": {"number": card, "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    })
}

pub fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The first `n` products of the catalog (id, sku).
pub async fn products(system: &System, n: usize) -> Vec<(String, String)> {
    let page: Value = reqwest::get(system.gateway.url(&format!("/api/v1/products?limit={n}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["sku"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// (available, reserved) of a SKU, read from inventory.
pub async fn stock(system: &System, sku: &str) -> (i64, i64) {
    let mut client = InventoryServiceClient::connect(system.inventory.base_url())
        .await
        .unwrap();
    let levels = client
        .get_stock(inventory::GetStockRequest {
            skus: vec![sku.into()],
        })
        .await
        .unwrap()
        .into_inner();
    let level = &levels.levels[0];
    (level.available, level.reserved)
}

pub async fn set_stock(system: &System, sku: &str, available: i64) {
    let mut client = InventoryServiceClient::connect(system.inventory.base_url())
        .await
        .unwrap();
    let level = inventory::StockLevel {
        sku: sku.into(),
        available,
        reserved: 0,
    };
    client
        .set_stock(request_as(
            &admin(),
            inventory::SetStockRequest {
                levels: vec![level],
            },
        ))
        .await
        .unwrap();
}

/// Every charge payment holds for an order.
pub async fn charges(system: &System, order_id: &str) -> Vec<payment::Charge> {
    let mut client = PaymentServiceClient::connect(system.payment.base_url())
        .await
        .unwrap();
    let request = payment::ListChargesRequest {
        idempotency_key_prefix: order_id.into(),
    };
    client
        .list_charges(request)
        .await
        .unwrap()
        .into_inner()
        .charges
}

/// Every charge payment holds.
pub async fn all_charges(system: &System) -> Vec<payment::Charge> {
    charges(system, "").await
}

/// Asserts a problem+json answer with `status`; returns its body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.unwrap()
}
