//! The public REST API: routes, request guards and the OpenAPI document.

pub mod account;
pub mod admin;
pub mod cart;
pub mod currency;
mod extract;
pub mod orders;
pub mod products;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use emporium_api::accounts::v1::accounts_service_client::AccountsServiceClient;
use emporium_api::cart::v1::cart_service_client::CartServiceClient;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_api::checkout::v1::checkout_service_client::CheckoutServiceClient;
use emporium_api::currency::v1::currency_service_client::CurrencyServiceClient;
use emporium_chassis::config::ConfigError;
use emporium_chassis::grpc::{Channel, Client};
use emporium_chassis::{ErrorKind, Metrics, Problem};
use utoipa::OpenApi;

use crate::auth::{Keys, authenticate};
use crate::config::GatewayConfig;
use crate::error::ApiError;
use crate::limit::Limiter;

/// What handlers share: upstream clients (each with its deadline) and the
/// token verifier.
#[derive(Debug, Clone)]
pub struct AppState {
    pub catalog: Client<CatalogServiceClient<Channel>>,
    pub accounts: Client<AccountsServiceClient<Channel>>,
    pub cart: Client<CartServiceClient<Channel>>,
    pub currency: Client<CurrencyServiceClient<Channel>>,
    pub checkout: Client<CheckoutServiceClient<Channel>>,
    pub keys: Arc<Keys>,
    /// Rate limits and failed sign-ins (also the middleware's state).
    pub limiter: Arc<Limiter>,
}

impl AppState {
    /// Lazily-connecting clients for every upstream (needs a Tokio runtime).
    pub fn new(config: &GatewayConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        let mut config = config.clone();
        let GatewayConfig {
            catalog,
            accounts,
            cart,
            currency,
            checkout,
            registry,
            ..
        } = &mut config;
        registry.apply("gateway", [catalog, accounts, cart, currency, checkout])?;
        let config = &config;
        let accounts = Client::new(
            "gateway.accounts",
            &config.accounts,
            metrics,
            AccountsServiceClient::new,
        )?;
        let keys = Arc::new(Keys::new(accounts.clone(), config.auth.clone()));
        let limiter = Arc::new(Limiter::new(&config.rate_limit, metrics)?);
        Ok(Self {
            catalog: Client::new(
                "gateway.catalog",
                &config.catalog,
                metrics,
                CatalogServiceClient::new,
            )?,
            cart: Client::new(
                "gateway.cart",
                &config.cart,
                metrics,
                CartServiceClient::new,
            )?,
            currency: Client::new(
                "gateway.currency",
                &config.currency,
                metrics,
                CurrencyServiceClient::new,
            )?,
            checkout: Client::new(
                "gateway.checkout",
                &config.checkout,
                metrics,
                CheckoutServiceClient::new,
            )?,
            accounts,
            keys,
            limiter,
        })
    }
}

/// Limits applied to every request before it reaches a handler.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_uri_bytes: usize,
    pub request_timeout: Duration,
    /// Time budget of each route class; every upstream call of a request
    /// inherits what is left of it.
    pub budgets: crate::config::Budgets,
    /// The bound on requests in flight.
    pub overload: crate::shed::OverloadConfig,
    /// The response cache of public reads.
    pub cache: crate::cache::CacheConfig,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Emporium API",
        description = "The public REST API of the Emporium store. Every error is an RFC 9457 problem document (`application/problem+json`) with a stable `type`.",
        license(name = "Apache-2.0")
    ),
    paths(
        products::list_products, products::get_product, products::list_categories, currency::list,
        account::signup, account::login, account::me, account::jwks,
        cart::get, cart::add, cart::set_quantity, cart::remove, cart::clear,
        orders::checkout, orders::list, orders::get,
        admin::create, admin::update, admin::delete,
    ),
    modifiers(&BearerAuth, &RateLimited),
    tags(
        (name = "catalog", description = "Products, categories and currencies"),
        (name = "accounts", description = "Sign-up, sign-in, token keys"),
        (name = "cart", description = "The signed-in customer's cart"),
        (name = "orders", description = "Checkout and order history"),
        (name = "admin", description = "Product management (admin role)"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected operations name.
#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every operation is rate-limited: each answer carries `RateLimit-Policy`
/// and `RateLimit`, and any may be a 429 with `Retry-After` (the shared
/// `TooManyRequests` response).
#[derive(Debug)]
struct RateLimited;

impl utoipa::Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::{Header, HeaderBuilder};
        use utoipa::openapi::schema::{Object, Type};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        let string_header = |description: &str| -> Header {
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::String)))
                .description(Some(description))
                .build()
        };
        let limit_headers = [
            (
                "RateLimit-Policy",
                string_header(
                    "The limit of this route class (IETF draft-ietf-httpapi-ratelimit-headers): \
                     `\"read\";q=300;w=60` is 300 requests per 60 s, per signed-in user or \
                     client address. Sent when limits are enforced.",
                ),
            ),
            (
                "RateLimit",
                string_header(
                    "What is left of it: `\"read\";r=299;t=1` is 299 requests now, the whole \
                     quota back in 1 s.",
                ),
            ),
        ];
        let too_many = ResponseBuilder::new()
            .description(
                "Too many requests from this client for this route class, or too many failed \
                 sign-ins for this account",
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(Object::with_type(Type::Integer)))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            )
            .header(limit_headers[0].0, limit_headers[0].1.clone())
            .header(limit_headers[1].0, limit_headers[1].1.clone())
            .content(
                emporium_chassis::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemDoc")))
                    .build(),
            )
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .responses
            .insert("TooManyRequests".into(), too_many.into());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        for (name, header) in &limit_headers {
                            response
                                .headers
                                .insert((*name).into(), header.clone().into());
                        }
                    }
                }
                operation.responses.responses.insert(
                    "429".into(),
                    RefOr::Ref(Ref::from_response_name("TooManyRequests")),
                );
            }
        }
    }
}

/// The OpenAPI 3.1 document of this API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole public router, testable without a socket.
pub fn router(state: AppState, limits: Limits, metrics: Arc<Metrics>) -> Router {
    let doc = openapi().to_json().unwrap_or_else(|_| "{}".to_owned());
    Router::new()
        .route(
            "/api/v1/products",
            get(products::list_products).post(admin::create),
        )
        .route(
            "/api/v1/products/{id}",
            get(products::get_product)
                .patch(admin::update)
                .delete(admin::delete),
        )
        .route("/api/v1/categories", get(products::list_categories))
        .route("/api/v1/currencies", get(currency::list))
        .route("/api/v1/auth/signup", post(account::signup))
        .route("/api/v1/auth/login", post(account::login))
        .route("/api/v1/me", get(account::me))
        .route("/.well-known/jwks.json", get(account::jwks))
        .route("/api/v1/cart", get(cart::get).delete(cart::clear))
        .route("/api/v1/cart/items", post(cart::add))
        .route(
            "/api/v1/cart/items/{product_id}",
            patch(cart::set_quantity).delete(cart::remove),
        )
        .route("/api/v1/checkout", post(orders::checkout))
        .route("/api/v1/orders", get(orders::list))
        .route("/api/v1/orders/{id}", get(orders::get))
        .route(
            "/openapi.json",
            get(move || async move { ([(http::header::CONTENT_TYPE, "application/json")], doc) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The edge, innermost first (a request passes them bottom-up):
        // JSON answers compressed as the client accepts (gzip, br), with
        // `Vary: Accept-Encoding`; tiny bodies are sent as they are.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .br(true),
        )
        // Public reads from memory (encoded bodies, keyed by Accept-Encoding),
        // behind the rate limit: a cached answer is charged like any other.
        .layer(middleware::from_fn_with_state(
            crate::cache::Cache::new(limits.cache, &metrics),
            crate::cache::cache,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.limiter),
            crate::limit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.keys),
            authenticate,
        ))
        .with_state(state)
        .layer(DefaultBodyLimit::max(
            usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn_with_state(limits, guard))
        .layer(middleware::from_fn_with_state(
            crate::shed::Shedder::new(&limits.overload, &metrics),
            crate::shed::shed,
        ))
        .layer(middleware::from_fn_with_state(
            metrics,
            emporium_chassis::http::observe,
        ))
}

async fn not_found(uri: http::Uri) -> Problem {
    Problem::new(ErrorKind::NotFound, format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Problem {
    Problem::new(
        ErrorKind::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Rejects oversized requests before any work, and bounds the time a request
/// may take so a stuck one cannot hold up a drain.
async fn guard(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > limits.max_uri_bytes {
        let detail = format!(
            "the URI is {uri_len} bytes; the limit is {}",
            limits.max_uri_bytes
        );
        return Problem::new(ErrorKind::UriTooLong, detail).into_response();
    }
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > limits.max_body_bytes) {
        let detail = format!(
            "the body is {len} bytes; the limit is {}",
            limits.max_body_bytes
        );
        return Problem::new(ErrorKind::PayloadTooLarge, detail).into_response();
    }
    let budget = limits
        .budgets
        .for_route(request.method(), request.uri().path());
    let mut request = request;
    request
        .extensions_mut()
        .insert(emporium_chassis::grpc::Deadline::after(budget));
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limits.request_timeout).into_response(),
    }
}
