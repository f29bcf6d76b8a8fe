//! # Inventory service
//!
//! Owns stock per SKU and the reservations that hold it for orders; no other
//! service reads its tables. Serves them over gRPC
//! (`emporium.inventory.v1.InventoryService`): stock levels (read by anyone,
//! set by admins), and reserve / confirm / release keyed by order id, which
//! checkout calls during its saga. Calls no other service; emits and consumes
//! no events (yet).
//!
//! Guarantees: stock is never oversold, also under concurrency and on both
//! databases; a reserve holds every item or none; every call is idempotent
//! per order id; a reservation not confirmed within `reservation_ttl` expires
//! and its units go back on sale (a background sweeper, plus a check on
//! confirm and release). See [`store`] for how.
//!
//! Storage is SQLite (embedded default, one file) or PostgreSQL, chosen by
//! the database URL; migrations are embedded in the binary.
//!
//! ## Layout
//! - [`config`] — settings (`[inventory]`, `EMPORIUM_INVENTORY__…`)
//! - [`domain`] — types, rules and the reservation state machine, no I/O
//! - [`store`] — the database, all SQL in one place
//! - [`sweeper`] — expiring reservations in the background
//! - [`grpc`] — the tonic service
//! - [`import`] — loading a stock data file
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod import;
pub mod store;
pub mod sweeper;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::InventoryConfig;
pub use error::InventoryError;
pub use import::import_stock;
pub use store::Store;

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.inventory.v1.InventoryService";

/// Why the inventory could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("inventory database: {0}")]
    Database(#[from] InventoryError),
}

/// An inventory with its ports bound and its database ready, not yet serving.
#[derive(Debug)]
pub struct InventoryServer {
    config: InventoryConfig,
    store: Store,
    ports: Ports,
}

impl InventoryServer {
    /// Binds the ports (port 0 picks a free one), connects to the database and
    /// runs migrations if configured to.
    pub async fn build(config: InventoryConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("inventory", config.grpc_addr, config.admin_addr)?;
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

    /// Serves (and sweeps expired reservations) until `shutdown` is
    /// cancelled, then drains (see [`emporium_chassis::lifecycle::run`]).
    pub async fn run(
        self,
        shutdown: CancellationToken,
    ) -> Result<Stopped, tonic::transport::Error> {
        let Self {
            config,
            store,
            ports,
        } = self;
        let api = grpc::InventoryApi::new(store.clone(), config.reservation_ttl.get());
        let routes = tonic::service::Routes::new(api.into_server());
        let sweep_stop = shutdown.child_token();
        let sweeper = tokio::spawn(sweeper::run(
            store.clone(),
            config.sweep_interval.get(),
            sweep_stop.clone(),
        ));
        let service = GrpcService {
            name: "inventory",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics: Arc::new(Metrics::new("inventory")),
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        sweep_stop.cancel();
        if let Err(e) = sweeper.await {
            tracing::error!(error = %e, "the reservation sweeper panicked");
        }
        store.close().await;
        stopped
    }
}
