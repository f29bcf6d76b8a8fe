//! # Catalog service
//!
//! Owns products and categories, and nothing else: no other service reads its
//! tables. Serves them over gRPC (`emporium.catalog.v1.CatalogService`):
//! list with cursor pagination and category filter, case-insensitive search,
//! get, and create/update/delete for callers with the `admin` role (the
//! identity the gateway forwards in metadata). Calls no other service; emits
//! and consumes no events (yet).
//!
//! Storage is SQLite (embedded default, one file) or PostgreSQL, chosen by
//! the database URL; migrations are embedded in the binary.
//!
//! ## Layout
//! - [`config`] — settings (`[catalog]`, `EMPORIUM_CATALOG__…`)
//! - [`domain`] — types and rules, no I/O
//! - [`store`] — the database, all SQL in one place
//! - [`grpc`] — the tonic service
//! - [`import`] — loading a catalog data file
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod import;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::CatalogConfig;
pub use error::CatalogError;
pub use store::Store;

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.catalog.v1.CatalogService";

/// Why the catalog could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("catalog database: {0}")]
    Database(#[from] CatalogError),
}

/// A catalog with its ports bound and its database ready, not yet serving.
#[derive(Debug)]
pub struct CatalogServer {
    config: CatalogConfig,
    store: Store,
    ports: Ports,
}

impl CatalogServer {
    /// Binds the ports (port 0 picks a free one), connects to the database and
    /// runs migrations if configured to.
    pub async fn build(config: CatalogConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("catalog", config.grpc_addr, config.admin_addr)?;
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
        let routes =
            tonic::service::Routes::new(grpc::CatalogApi::new(store.clone()).into_server());
        let service = GrpcService {
            name: "catalog",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics: Arc::new(Metrics::new("catalog")),
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        store.close().await;
        stopped
    }
}
