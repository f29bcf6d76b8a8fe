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
        let from = amount(&from).map_err(|e| invalid(e.within("from")))?;
        let to = target(&r.to_currency_code)?;
        let conversion = self
            .rates
            .current()
            .convert(from, to)
            .map_err(CurrencyError::from)?;
        Ok(Response::new(pb::ConvertResponse {
            converted: Some(money(conversion.converted)),
            rate: conversion.rate.to_string(),
            rates_date: conversion.date.to_string(),
        }))
    }

    #[tracing::instrument(skip_all, fields(to = %request.get_ref().to_currency_code, n = request.get_ref().amounts.len()))]
    async fn convert_many(
        &self,
        request: Request<pb::ConvertManyRequest>,
    ) -> Result<Response<pb::ConvertManyResponse>, Status> {
        let r = request.into_inner();
        if r.amounts.len() > MAX_AMOUNTS {
            return Err(invalid(Invalid::new(
                "amounts",
                format!("at most {MAX_AMOUNTS} per call (got {})", r.amounts.len()),
            )));
        }
        let amounts = r
            .amounts
            .iter()
            .enumerate()
            .map(|(i, m)| amount(m).map_err(|e| invalid(e.within(format!("amounts[{i}]")))))
            .collect::<Result<Vec<_>, _>>()?;
        let to = target(&r.to_currency_code)?;
        // One snapshot of the rates for every amount.
        let rates = self.rates.current();
        let mut converted = Vec::with_capacity(amounts.len());
        let mut date = None;
        for from in amounts {
            let conversion = rates.convert(from, to).map_err(CurrencyError::from)?;
            date = Some(conversion.date);
            converted.push(money(conversion.converted));
        }
        Ok(Response::new(pb::ConvertManyResponse {
            converted,
            rates_date: date.map(|d| d.to_string()).unwrap_or_default(),
        }))
    }
}

/// Most amounts one `ConvertMany` takes (a page of products).
const MAX_AMOUNTS: usize = 100;

fn amount(m: &types::Money) -> Result<Money, Invalid> {
    let currency = CurrencyCode::parse(&m.currency_code).map_err(|e| e.at("currency_code"))?;
    Ok(Money::new(m.minor_units, currency))
}

fn target(code: &str) -> Result<CurrencyCode, Status> {
    CurrencyCode::parse(code).map_err(|_| {
        invalid(Invalid::new(
            "to_currency_code",
            format!("`{}` is not an ISO 4217 code like USD", code.escape_debug()),
        ))
    })
}

fn money(m: Money) -> types::Money {
    types::Money {
        minor_units: m.minor(),
        currency_code: m.currency().to_string(),
    }
}
