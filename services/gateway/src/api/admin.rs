//! Product writes for admins: `POST /api/v1/products`,
//! `PATCH|DELETE /api/v1/products/{id}`, answered by the catalog (which
//! checks the admin role again on the identity it receives).

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use emporium_api::catalog::v1 as pb;
use emporium_api::types::v1 as types;

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use super::views::{NewProduct, ProblemDoc, Product, ProductChanges};
use crate::auth::Admin;
use crate::error::ApiError;

/// Creates a product.
#[utoipa::path(post, path = "/api/v1/products", tag = "admin", security(("bearer" = [])), request_body = NewProduct,
    responses(
        (status = 201, description = "The new product", body = Product),
        (status = 400, description = "Invalid field or unknown category", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The SKU is taken", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    scope: Scope,
    Admin(admin): Admin,
    ApiJson(body): ApiJson<NewProduct>,
) -> Result<(StatusCode, Json<Product>), ApiError> {
    let request = pb::CreateProductRequest {
        sku: body.sku,
        name: body.name,
        description: body.description,
        price: Some(types::Money {
            minor_units: body.price.amount_minor,
            currency_code: body.price.currency,
        }),
        categories: body.categories,
        image_path: body.image_url,
    };
    let ctx = scope.context(Some(admin));
    let product = state
        .catalog
        .call(&ctx, request, |mut c, r| async move {
            c.create_product(r).await
        })
        .await
        .map_err(ApiError::upstream("catalog"))?;
    Ok((StatusCode::CREATED, Json(product.into())))
}

/// Changes some fields of a product.
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")), request_body = ProductChanges,
    responses(
        (status = 200, description = "The product after the change", body = Product),
        (status = 403, description = "Not an admin", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn update(
    State(state): State<AppState>,
    scope: Scope,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ProductChanges>,
) -> Result<Json<Product>, ApiError> {
    let request = pb::UpdateProductRequest {
        id,
        name: body.name,
        description: body.description,
        price: body.price.map(|p| types::Money {
            minor_units: p.amount_minor,
            currency_code: p.currency,
        }),
        update_categories: body.categories.is_some(),
        categories: body.categories.unwrap_or_default(),
        image_path: body.image_url,
    };
    let ctx = scope.context(Some(admin));
    let product = state
        .catalog
        .call(&ctx, request, |mut c, r| async move {
            c.update_product(r).await
        })
        .await
        .map_err(ApiError::upstream("catalog"))?;
    Ok(Json(product.into()))
}

/// Deletes a product.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    scope: Scope,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = scope.context(Some(admin));
    state
        .catalog
        .call(
            &ctx,
            pb::DeleteProductRequest { id },
            |mut c, r| async move { c.delete_product(r).await },
        )
        .await
        .map_err(ApiError::upstream("catalog"))?;
    Ok(StatusCode::NO_CONTENT)
}
