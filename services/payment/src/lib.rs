//! # Payment service
//!
//! A simulated card processor. Owns charges, and nothing else: no other
//! service reads its tables. Serves over gRPC
//! (`emporium.payment.v1.PaymentService`); checkout charges with the order
//! id as idempotency key, looks charges up by that key after a crash, and
//! refunds when its saga compensates. Calls no other service; emits and
//! consumes no events.
//!
//! ## Charging
//!
//! A card must be well-formed or the call is `INVALID_ARGUMENT` and nothing
//! is stored: 12 to 19 digits (spaces are allowed and ignored) passing the
//! Luhn check, expiry month 1–12 and a four-digit year (or two digits, read
//! as 20YY), CVC of 3 or 4 digits. The amount must be above zero, with a
//! three-letter currency code. A well-formed card gets an answer, recorded
//! as a charge: `SUCCEEDED`, or `DECLINED` with a `decline_code`.
//!
//! ## Test cards
//!
//! | number | result |
//! |---|---|
//! | `4242 4242 4242 4242` | succeeds |
//! | `4000 0000 0000 0002` | declined, `card_declined` |
//! | `4000 0000 0000 9995` | declined, `insufficient_funds` |
//! | any card whose expiry month has passed | declined, `expired_card` (checked first) |
//! | any other Luhn-valid number | succeeds |
//!
//! The brand comes from the prefix: 4 → `visa`; 51–55 or 2221–2720 →
//! `mastercard`; 34, 37 → `amex`; anything else `unknown`. Only the last four
//! digits and the brand are stored; the number and CVC never are.
//!
//! ## Idempotency and refunds
//!
//! The same idempotency key always returns the same charge, unchanged, a
//! decline included, and never charges twice, also for concurrent calls.
//! The same key with another amount or currency is `INVALID_ARGUMENT`
//! ("idempotency key reused with different parameters"). A refund turns a
//! `SUCCEEDED` charge into `REFUNDED` (again: returns it unchanged); a
//! `DECLINED` one is `FAILED_PRECONDITION`; an unknown id `NOT_FOUND`.
//! `ListCharges` returns at most 100 charges whose key starts with a prefix.
//!
//! ## Faults
//!
//! `faults.latency` delays every call; `faults.error_rate` fails that share
//! of calls with `UNAVAILABLE` before anything is stored (see [`faults`]).
//!
//! Storage is SQLite (embedded default, one file) or PostgreSQL, chosen by
//! the database URL; migrations are embedded in the binary. `docs/payment.md`
//! has the same facts for people calling the service.
//!
//! ## Layout
//! - [`config`] — settings (`[payment]`, `EMPORIUM_PAYMENT__…`)
//! - [`domain`] — cards, amounts, keys, the charge state machine; no I/O
//! - [`store`] — the database, all SQL in one place
//! - [`faults`] — the injected error rate
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod faults;
pub mod grpc;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::PaymentConfig;
pub use error::PaymentError;
pub use store::Store;

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.payment.v1.PaymentService";

/// Why payment could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("payment database: {0}")]
    Database(#[from] PaymentError),
}

/// A payment service with its ports bound and its database ready, not yet
/// serving.
#[derive(Debug)]
pub struct PaymentServer {
    config: PaymentConfig,
    store: Store,
    ports: Ports,
}

impl PaymentServer {
    /// Binds the ports (port 0 picks a free one), connects to the database and
    /// runs migrations if configured to.
    pub async fn build(config: PaymentConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("payment", config.grpc_addr, config.admin_addr)?;
        Ok(Self {
            config,
            store,
            ports,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.ports.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.ports.admin_addr()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` is cancelled, then drains (see
    /// [`emporium_chassis::lifecycle::run`]).
    pub async fn run(
        self,
        shutdown: CancellationToken,
    ) -> Result<Stopped, tonic::transport::Error> {
        let Self {
            config,
            store,
            ports,
        } = self;
        if config.faults.error_rate.get() > 0.0 {
            tracing::warn!(
                error_rate = config.faults.error_rate.get(),
                "fault injection is on: some payment calls will fail on purpose"
            );
        }
        let api = grpc::PaymentApi::new(store.clone(), config.faults.error_rate);
        let routes = tonic::service::Routes::new(api.into_server());
        let service = GrpcService {
            name: "payment",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics: Arc::new(Metrics::new("payment")),
            faults: config.faults.chassis(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        store.close().await;
        stopped
    }
}
