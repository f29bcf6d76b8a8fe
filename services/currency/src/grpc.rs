//! The gRPC API (`emporium.currency.v1.CurrencyService`): maps requests to
//! domain values, asks the rates in force, maps results and errors back.
//!
//! Each call reads ONE snapshot of the rates, so a reload in the middle of a
//! call never mixes two tables in one answer.

use emporium_api::currency::v1 as pb;
use emporium_api::currency::v1::currency_service_server::CurrencyService;
use emporium_api::types::v1 as types;
use tonic::{Request, Response, Status};

use crate::domain::{CurrencyCode, Invalid, Money};
use crate::error::CurrencyError;
use crate::rates::Rates;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct CurrencyApi {
    rates: Rates,
}

impl CurrencyApi {
    pub fn new(rates: Rates) -> Self {
        Self { rates }
    }

    pub fn into_server(self) -> pb::currency_service_server::CurrencyServiceServer<Self> {
        pb::currency_service_server::CurrencyServiceServer::new(self)
            // Requests here are tiny; anything bigger is a mistake or an attack.
            .max_decoding_message_size(64 * 1024)
    }
}

fn invalid(e: Invalid) -> Status {
    CurrencyError::from(e).into()
}

#[tonic::async_trait]
impl CurrencyService for CurrencyApi {
    #[tracing::instrument(skip_all)]
    async fn list_currencies(
        &self,
        _request: Request<pb::ListCurrenciesRequest>,
    ) -> Result<Response<pb::ListCurrenciesResponse>, Status> {
        let table = self.rates.current();
        let currencies = table
            .currencies()
            .map(|c| pb::Currency {
                code: c.code.to_string(),
                name: c.name.as_str().to_owned(),
                minor_unit_digits: c.minor_digits,
            })
            .collect();
        Ok(Response::new(pb::ListCurrenciesResponse {
            currencies,
            rates_date: table.date().to_string(),
        }))
    }

    #[tracing::instrument(skip_all, fields(to = %request.get_ref().to_currency_code))]
    async fn convert(
        &self,
        request: Request<pb::ConvertRequest>,
    ) -> Result<Response<pb::ConvertResponse>, Status> {
        let r = request.into_inner();
        let from = r
            .from
            .ok_or_else(|| invalid(Invalid::new("from", "is required")))?;
        let currency = CurrencyCode::parse(&from.currency_code)
            .map_err(|e| invalid(e.at("currency_code").within("from")))?;
        let to = CurrencyCode::parse(&r.to_currency_code)
            .map_err(|_| {
                Invalid::new(
                    "to_currency_code",
                    format!(
                        "`{}` is not an ISO 4217 code like USD",
                        r.to_currency_code.escape_debug()
                    ),
                )
            })
            .map_err(invalid)?;
        let conversion = self
            .rates
            .current()
            .convert(Money::new(from.minor_units, currency), to)
            .map_err(CurrencyError::from)?;
        Ok(Response::new(pb::ConvertResponse {
            converted: Some(types::Money {
                minor_units: conversion.converted.minor(),
                currency_code: conversion.converted.currency().to_string(),
            }),
            rate: conversion.rate.to_string(),
            rates_date: conversion.date.to_string(),
        }))
    }
}
