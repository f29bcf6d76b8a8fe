//! `POST /api/v1/checkout` and the caller's order history, answered by checkout.

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use emporium_api::checkout::v1 as pb;
use emporium_api::types::v1 as types;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::views::{CheckoutRequest, Order, OrderPage, ProblemDoc};
use crate::auth::Caller;
use crate::error::ApiError;

/// The header that makes a checkout safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Places an order for everything in the caller's cart. Send a fresh
/// `Idempotency-Key` per checkout and the same one on retries: a retry
/// returns the same order and never charges twice.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "1 to 100 visible ASCII characters, unique per checkout")),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "The order was placed", body = Order),
        (status = 400, description = "Invalid request, card or currency; missing Idempotency-Key", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 402, description = "The card was declined; nothing was charged and the stock was released", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Empty cart, not enough stock, or the same key is still in progress", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "A service was unavailable; nothing was charged", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn checkout(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::BadRequest("the Idempotency-Key header is required".into()))?
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
        .to_owned();
    let a = body.shipping_address;
    let request = pb::PlaceOrderRequest {
        idempotency_key: key,
        currency_code: body.currency,
        shipping_address: Some(types::Address {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country_code: a.country_code,
        }),
        card: Some(types::Card {
            number: body.card.number,
            exp_month: body.card.exp_month,
            exp_year: body.card.exp_year,
            cvc: body.card.cvc,
        }),
    };
    let ctx = scope.context(Some(caller));
    let order = state
        .checkout
        .call(
            &ctx,
            request,
            |mut c, r| async move { c.place_order(r).await },
        )
        .await
        .map_err(ApiError::upstream("checkout"))?;
    let location = format!("/api/v1/orders/{}", order.id);
    Ok((
        StatusCode::CREATED,
        [(http::header::LOCATION, location)],
        Json(Order::from(order)),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 50 (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(OrderParams),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<OrderParams>,
) -> Result<Json<OrderPage>, ApiError> {
    let page_size = match params.limit {
        None => 0,
        Some(n @ 1..=50) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and 50 (got {n})"
            )));
        }
    };
    let request = pb::ListOrdersRequest {
        page_size,
        page_token: params.cursor.unwrap_or_default(),
    };
    let ctx = scope.context(Some(caller));
    let page = state
        .checkout
        .call_idempotent(
            &ctx,
            request,
            |mut c, r| async move { c.list_orders(r).await },
        )
        .await
        .map_err(ApiError::upstream("checkout"))?;
    Ok(Json(OrderPage {
        items: page.orders.into_iter().map(Order::from).collect(),
        next_cursor: Some(page.next_page_token).filter(|t| !t.is_empty()),
    }))
}

/// One of the caller's orders (404 for anyone else's).
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order of yours", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Order>, ApiError> {
    let ctx = scope.context(Some(caller));
    let order = state
        .checkout
        .call_idempotent(&ctx, pb::GetOrderRequest { id }, |mut c, r| async move {
            c.get_order(r).await
        })
        .await
        .map_err(ApiError::upstream("checkout"))?;
    Ok(Json(order.into()))
}
