//! # Shipping service
//!
//! Owns shipments, and nothing else: no other service reads its tables.
//! Serves over gRPC (`emporium.shipping.v1.ShippingService`):
//!
//! - **GetQuote** — a deterministic price in USD for a parcel to an address:
//!   a base fee plus total weight × the destination zone's rate per kg,
//!   rounded up to a whole cent (the price list and zones are in
//!   [`domain::parcel`] and [`domain::address`]). Checkout asks for it
//!   during its saga and converts it to the order's currency.
//! - **CreateShipment** — the shipment of an order, with a random tracking
//!   id (`EMP` + 12 of `0-9A-Z`). Idempotent per order id: any number of
//!   calls, also concurrent ones, make exactly one shipment, and every
//!   call returns it.
//! - **GetShipment** — by shipment id or by order id.
//!
//! Addresses must have a name, first line, city and postal code of bounded
//! length and a two-letter uppercase country code; a parcel has 1 to 100
//! items with quantities 1 to 999. Anything else is `INVALID_ARGUMENT`,
//! naming the field. Calls no other service. Consumes `order.placed.v1`
//! (creating the order's shipment) and emits `shipment.created.v1` through
//! its outbox; see [`events`] for how failures are retried.
//!
//! Storage is SQLite (embedded default, one file) or PostgreSQL, chosen by
//! the database URL; migrations are embedded in the binary.
//!
//! ## Layout
//! - [`config`] — settings (`[shipping]`, `EMPORIUM_SHIPPING__…`)
//! - [`domain`] — addresses, zones, parcels, the price list, ids; no I/O
//! - [`store`] — the database, all SQL in one place
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::ShippingConfig;
pub use error::ShippingError;
pub use store::Store;

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.shipping.v1.ShippingService";

/// Why shipping could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("shipping database: {0}")]
    Database(#[from] ShippingError),
}

/// A shipping service with its ports bound and its database ready, not yet
/// serving.
#[derive(Debug)]
pub struct ShippingServer {
    config: ShippingConfig,
    store: Store,
    ports: Ports,
}

impl ShippingServer {
    /// Binds the ports (port 0 picks a free one), connects to the database and
    /// runs migrations if configured to.
    pub async fn build(config: ShippingConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("shipping", config.grpc_addr, config.admin_addr)?;
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
        let metrics = Arc::new(Metrics::new("shipping"));
        // Events: the consumer and the outbox relay run beside the gRPC server
        // and stop with it. While the bus is unreachable the API still serves
        // and the outbox keeps every announcement.
        let background = CancellationToken::new();
        let events_task = {
            let (config, store, metrics, stop) = (
                config.clone(),
                store.clone(),
                metrics.clone(),
                background.clone(),
            );
            let lag = emporium_eventbus::lag::ConsumerLag::new(events::CONSUMER, &metrics);
            let outcomes = emporium_eventbus::lag::Outcomes::new(events::CONSUMER, &metrics);
            let relay = emporium_eventbus::outbox::Relay::new(
                Arc::new(events::Outbox(store.clone())),
                config.relay_interval.get(),
                &metrics,
            );
            tokio::spawn(async move {
                let Some(bus) = relay.connect(&config.events, &stop).await else {
                    return;
                };
                tokio::join!(
                    events::consume_orders(bus.clone(), store, outcomes, stop.clone()),
                    relay.run(bus.clone(), stop.clone()),
                    lag.run(bus, stop)
                );
            })
        };
        let routes =
            tonic::service::Routes::new(grpc::ShippingApi::new(store.clone()).into_server());
        let service = GrpcService {
            name: "shipping",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics,
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        background.cancel();
        let _ = events_task.await;
        store.close().await;
        stopped
    }
}
