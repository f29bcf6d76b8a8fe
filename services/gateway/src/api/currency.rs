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

/// Fills `display_price` of every product with its price in `currency`, in
/// one `ConvertMany` call for the whole page.
pub async fn convert_prices(
    state: &AppState,
    scope: &super::extract::Scope,
    currency: &str,
    products: &mut [Product],
) -> Result<(), ApiError> {
    if products.is_empty() {
        return Ok(());
    }
    let ctx = scope.context(None);
    // One call for the whole page, with one set of rates.
    let request = pb::ConvertManyRequest {
        amounts: products
            .iter()
            .map(|p| types::Money {
                minor_units: p.price.amount_minor,
                currency_code: p.price.currency.clone(),
            })
            .collect(),
        to_currency_code: currency.to_owned(),
    };
    let converted = state
        .currency
        .call_idempotent(
            &ctx,
            request,
            |mut c, r| async move { c.convert_many(r).await },
        )
        .await
        .map_err(ApiError::upstream("currency"))?
        .converted;
    if converted.len() != products.len() {
        return Err(ApiError::Upstream {
            service: "currency",
            status: tonic::Status::internal(format!(
                "{} amounts converted for {} asked",
                converted.len(),
                products.len()
            )),
        });
    }
    for (product, m) in products.iter_mut().zip(converted) {
        product.display_price = Some(Money {
            currency: m.currency_code,
            amount_minor: m.minor_units,
        });
    }
    Ok(())
}
