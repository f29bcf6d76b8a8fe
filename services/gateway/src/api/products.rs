//! `/api/v1/products` and `/api/v1/categories`, answered by the catalog.

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use emporium_api::catalog::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::currency::convert_prices;
use super::extract::{ApiPath, ApiQuery};
use super::views::{CategoryList, Product, ProductPage};
use crate::error::ApiError;

pub const MAX_LIMIT: u32 = 100;
const MAX_QUERY_CHARS: usize = 200;

/// Query parameters of the product list. Unknown parameters are rejected, so
/// a typo (`?catgory=`) is a 400, not a silently unfiltered list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only products in this category (slug).
    pub category: Option<String>,
    /// Case-insensitive text to search for in name, description and SKU (1 to 200 characters).
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Also show each price in this currency (`display_price`), e.g. `EUR`.
    pub currency: Option<String>,
}

/// Query parameters of one product.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductParams {
    /// Also show the price in this currency (`display_price`), e.g. `EUR`.
    pub currency: Option<String>,
}

/// Lists products, optionally filtered by category and/or text.
#[utoipa::path(
    get,
    path = "/api/v1/products",
    tag = "catalog",
    params(ListParams),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "A parameter is invalid", body = super::views::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The catalog is unavailable", body = super::views::ProblemDoc, content_type = "application/problem+json"),
        (status = 504, description = "The catalog did not answer in time", body = super::views::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ProductPage>, ApiError> {
    let ctx = scope.context(None);
    let page_size = match params.limit {
        None => 0,
        Some(n @ 1..=MAX_LIMIT) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT} (got {n})"
            )));
        }
    };
    let category = params.category.unwrap_or_default();
    let page_token = params.cursor.unwrap_or_default();
    let catalog = &state.catalog;
    let page = match params.q {
        Some(q) => {
            let chars = q.trim().chars().count();
            if !(1..=MAX_QUERY_CHARS).contains(&chars) {
                return Err(ApiError::BadRequest(format!(
                    "q must be 1 to {MAX_QUERY_CHARS} characters"
                )));
            }
            let request = pb::SearchProductsRequest {
                query: q,
                page_size,
                page_token,
                category,
            };
            catalog
                .call_idempotent(&ctx, request, |mut c, r| async move {
                    c.search_products(r).await
                })
                .await
        }
        None => {
            let request = pb::ListProductsRequest {
                page_size,
                page_token,
                category,
            };
            catalog
                .call_idempotent(
                    &ctx,
                    request,
                    |mut c, r| async move { c.list_products(r).await },
                )
                .await
        }
    }
    .map_err(ApiError::upstream("catalog"))?;
    let mut page = ProductPage::from(page);
    if let Some(currency) = params.currency {
        convert_prices(&state, &scope, &currency, &mut page.items).await?;
    }
    Ok(Json(page))
}

/// One product by id.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}",
    tag = "catalog",
    params(("id" = String, Path, description = "Product id"), ProductParams),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 400, description = "The id is malformed", body = super::views::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = super::views::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The catalog is unavailable", body = super::views::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ProductParams>,
) -> Result<Json<Product>, ApiError> {
    let ctx = scope.context(None);
    let product = state
        .catalog
        .call_idempotent(&ctx, pb::GetProductRequest { id }, |mut c, r| async move {
            c.get_product(r).await
        })
        .await
        .map_err(ApiError::upstream("catalog"))?;
    let mut products = [Product::from(product)];
    if let Some(currency) = params.currency {
        convert_prices(&state, &scope, &currency, &mut products).await?;
    }
    let [product] = products;
    Ok(Json(product))
}

/// Every category with its number of products.
#[utoipa::path(
    get,
    path = "/api/v1/categories",
    tag = "catalog",
    responses(
        (status = 200, description = "All categories", body = CategoryList),
        (status = 503, description = "The catalog is unavailable", body = super::views::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn list_categories(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<CategoryList>, ApiError> {
    let ctx = scope.context(None);
    let response = state
        .catalog
        .call_idempotent(&ctx, pb::ListCategoriesRequest {}, |mut c, r| async move {
            c.list_categories(r).await
        })
        .await
        .map_err(ApiError::upstream("catalog"))?;
    Ok(Json(CategoryList {
        items: response.categories.into_iter().map(Into::into).collect(),
    }))
}
