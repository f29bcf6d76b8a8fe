//! `/api/v1/currencies`, and prices shown in a requested currency.

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use emporium_api::currency::v1 as pb;
use emporium_api::types::v1 as types;

use super::AppState;
use super::views::{Currency, CurrencyList, Money, ProblemDoc, Product};
use crate::error::ApiError;

/// The currencies prices can be shown and paid in.
#[utoipa::path(get, path = "/api/v1/currencies", tag = "catalog",
    responses(
        (status = 200, description = "Supported currencies", body = CurrencyList),
        (status = 503, description = "The currency service is unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<CurrencyList>, ApiError> {
    let response = state
        .currency
        .call_idempotent(
            &scope.context(None),
            pb::ListCurrenciesRequest {},
            |mut c, r| async move { c.list_currencies(r).await },
        )
        .await
        .map_err(ApiError::upstream("currency"))?;
    Ok(Json(CurrencyList {
        items: response
            .currencies
            .into_iter()
            .map(|c| Currency {
                code: c.code,
                name: c.name,
                minor_unit_digits: c.minor_unit_digits,
            })
            .collect(),
        rates_date: response.rates_date,
    }))
}

/// Fills `display_price` of every product with its price in `currency`,
/// converting concurrently.
pub async fn convert_prices(
    state: &AppState,
    scope: &super::extract::Scope,
    currency: &str,
    products: &mut [Product],
) -> Result<(), ApiError> {
    let ctx = scope.context(None);
    let conversions = products.iter().map(|p| {
        let request = pb::ConvertRequest {
            from: Some(types::Money {
                minor_units: p.price.amount_minor,
                currency_code: p.price.currency.clone(),
            }),
            to_currency_code: currency.to_owned(),
        };
        let ctx = &ctx;
        async move {
            state
                .currency
                .call_idempotent(ctx, request, |mut c, r| async move { c.convert(r).await })
                .await
        }
    });
    let converted = futures_util::future::try_join_all(conversions)
        .await
        .map_err(ApiError::upstream("currency"))?;
    for (product, response) in products.iter_mut().zip(converted) {
        let m = response.converted.unwrap_or_default();
        product.display_price = Some(Money {
            currency: m.currency_code,
            amount_minor: m.minor_units,
        });
    }
    Ok(())
}
