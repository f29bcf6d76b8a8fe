//! The public REST API: routes, request guards and the OpenAPI document.

mod extract;
pub mod products;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_chassis::{ErrorKind, Metrics, Problem};
use tonic::transport::Channel;
use utoipa::OpenApi;

use crate::error::ApiError;

/// What handlers share: upstream clients and their deadlines.
#[derive(Debug, Clone)]
pub struct AppState {
    pub catalog: CatalogServiceClient<Channel>,
    pub catalog_timeout: Duration,
}

/// Limits applied to every request before it reaches a handler.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_uri_bytes: usize,
    pub request_timeout: Duration,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Emporium API",
        description = "The public REST API of the Emporium store. Every error is an RFC 9457 problem document (`application/problem+json`) with a stable `type`.",
        license(name = "Apache-2.0")
    ),
    paths(products::list_products, products::get_product, products::list_categories),
    tags((name = "catalog", description = "Products and categories"))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of this API, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole public router, testable without a socket.
pub fn router(state: AppState, limits: Limits, metrics: Arc<Metrics>) -> Router {
    let doc = openapi().to_json().unwrap_or_else(|_| "{}".to_owned());
    Router::new()
        .route("/api/v1/products", get(products::list_products))
        .route("/api/v1/products/{id}", get(products::get_product))
        .route("/api/v1/categories", get(products::list_categories))
        .route(
            "/openapi.json",
            get(move || async move { ([(http::header::CONTENT_TYPE, "application/json")], doc) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(
            usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn_with_state(limits, guard))
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
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limits.request_timeout).into_response(),
    }
}
