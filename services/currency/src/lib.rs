//! # Currency service
//!
//! Owns the exchange rates (configuration data, no database) and answers two
//! questions over gRPC (`emporium.currency.v1.CurrencyService`): which
//! currencies are supported, with their names and minor units; and what an
//! amount is worth in another currency. Checkout converts prices with it and
//! the gateway lists currencies and shows converted prices. Calls no other
//! service; emits and consumes no events.
//!
//! ## Money and rounding
//!
//! Amounts are integer minor units with an ISO 4217 code. A conversion goes
//! minor units → decimal amount → EUR (the base of the rates) → target
//! currency, evaluated as one exact fraction of integers (decimal rates,
//! `rust_decimal` for parsing and display, checked `i128` arithmetic; never
//! floating point), and is rounded ONCE, **half to even**, to the target's
//! minor unit: 0.125 USD becomes 0.12, 0.135 becomes 0.14. An amount too
//! large to convert is `INVALID_ARGUMENT`, never a wrapped number; so is an
//! unsupported currency, named in the message. See
//! [`domain::RateTable::convert`].
//!
//! ## Rates
//!
//! From `data/currency-rates.json` (built in), or from `rates_path`, which is
//! re-read without a restart when it changes; a bad new file is logged and
//! the previous rates are kept. See [`rates`].
//!
//! ## Layout
//! - [`config`] — settings (`[currency]`, `EMPORIUM_CURRENCY__…`)
//! - [`domain`] — codes, rates, the rate table and the conversion rule, no I/O
//! - [`rates`] — reading the rates document and reloading it
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod rates;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::CurrencyConfig;
pub use error::CurrencyError;
pub use rates::Rates;

use crate::rates::RatesFile;

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.currency.v1.CurrencyService";

/// Why the currency service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Rates(#[from] CurrencyError),
}

/// A currency service with its ports bound and its rates loaded, not yet
/// serving.
#[derive(Debug)]
pub struct CurrencyServer {
    config: CurrencyConfig,
    rates: Rates,
    /// Present when the rates come from a file that is watched for changes.
    file: Option<RatesFile>,
    ports: Ports,
}

impl CurrencyServer {
    /// Loads the rates (a missing or invalid `rates_path` is an error) and
    /// binds the ports (port 0 picks a free one).
    pub async fn build(config: CurrencyConfig) -> Result<Self, StartError> {
        let (rates, file) = match &config.rates_path {
            None => (Rates::embedded()?, None),
            Some(path) => {
                let (file, rates) = RatesFile::open(path).await?;
                (rates, Some(file))
            }
        };
        let ports = Ports::bind("currency", config.grpc_addr, config.admin_addr)?;
        Ok(Self {
            config,
            rates,
            file,
            ports,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.ports.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.ports.admin_addr()
    }

    /// The rates in force (they follow reloads once the server runs).
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// Serves until `shutdown` is cancelled, then drains (see
    /// [`emporium_chassis::lifecycle::run`]). The rates file, if any, is
    /// watched for as long as the server runs.
    pub async fn run(
        self,
        shutdown: CancellationToken,
    ) -> Result<Stopped, tonic::transport::Error> {
        let Self {
            config,
            rates,
            file,
            ports,
        } = self;
        let metrics = Arc::new(Metrics::new("currency"));
        let stop_watching = CancellationToken::new();
        let watcher = file.map(|file| {
            file.counters().register(&metrics);
            tokio::spawn(file.watch(config.reload_interval.get(), stop_watching.clone()))
        });
        let routes = tonic::service::Routes::new(grpc::CurrencyApi::new(rates).into_server());
        let service = GrpcService {
            name: "currency",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics,
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        stop_watching.cancel();
        if let Some(watcher) = watcher {
            let _ = watcher.await;
        }
        stopped
    }
}
