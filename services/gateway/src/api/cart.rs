//! `/api/v1/cart`: the signed-in caller's cart, answered by the cart service.

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use emporium_api::cart::v1 as pb;

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use super::views::{AddItem, Cart, ProblemDoc, SetQuantity};
use crate::auth::Caller;
use crate::error::ApiError;

/// The caller's cart.
#[utoipa::path(get, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses(
        (status = 200, description = "The cart", body = Cart),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
) -> Result<Json<Cart>, ApiError> {
    let ctx = scope.context(Some(caller));
    let cart = state
        .cart
        .call_idempotent(&ctx, pb::GetCartRequest {}, |mut c, r| async move {
            c.get_cart(r).await
        })
        .await
        .map_err(ApiError::upstream("cart"))?;
    Ok(Json(cart.into()))
}

/// Adds units of a product (the line holds at most 99).
#[utoipa::path(post, path = "/api/v1/cart/items", tag = "cart", security(("bearer" = [])), request_body = AddItem,
    responses(
        (status = 200, description = "The cart after the change", body = Cart),
        (status = 400, description = "Unknown product or bad quantity", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn add(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<AddItem>,
) -> Result<Json<Cart>, ApiError> {
    let ctx = scope.context(Some(caller));
    let request = pb::AddItemRequest {
        product_id: body.product_id,
        quantity: body.quantity,
    };
    let cart = state
        .cart
        .call(&ctx, request, |mut c, r| async move { c.add_item(r).await })
        .await
        .map_err(ApiError::upstream("cart"))?;
    Ok(Json(cart.into()))
}

/// Sets a line's quantity; 0 removes it.
#[utoipa::path(patch, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = String, Path, description = "Product id")), request_body = SetQuantity,
    responses(
        (status = 200, description = "The cart after the change", body = Cart),
        (status = 400, description = "Bad quantity", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn set_quantity(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ApiPath(product_id): ApiPath<String>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> Result<Json<Cart>, ApiError> {
    let ctx = scope.context(Some(caller));
    let request = pb::SetQuantityRequest {
        product_id,
        quantity: body.quantity,
    };
    let cart = state
        .cart
        .call_idempotent(
            &ctx,
            request,
            |mut c, r| async move { c.set_quantity(r).await },
        )
        .await
        .map_err(ApiError::upstream("cart"))?;
    Ok(Json(cart.into()))
}

/// Removes a line (no error if it is not there).
#[utoipa::path(delete, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = String, Path, description = "Product id")),
    responses((status = 200, description = "The cart after the change", body = Cart)))]
pub async fn remove(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
    ApiPath(product_id): ApiPath<String>,
) -> Result<Json<Cart>, ApiError> {
    let ctx = scope.context(Some(caller));
    let cart = state
        .cart
        .call_idempotent(
            &ctx,
            pb::RemoveItemRequest { product_id },
            |mut c, r| async move { c.remove_item(r).await },
        )
        .await
        .map_err(ApiError::upstream("cart"))?;
    Ok(Json(cart.into()))
}

/// Empties the cart.
#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 200, description = "The empty cart", body = Cart)))]
pub async fn clear(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
) -> Result<Json<Cart>, ApiError> {
    let ctx = scope.context(Some(caller));
    let cart = state
        .cart
        .call_idempotent(&ctx, pb::ClearCartRequest {}, |mut c, r| async move {
            c.clear_cart(r).await
        })
        .await
        .map_err(ApiError::upstream("cart"))?;
    Ok(Json(cart.into()))
}
