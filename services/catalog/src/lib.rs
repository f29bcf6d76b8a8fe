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

use emporium_chassis::grpc::ServerParts;
use emporium_chassis::lifecycle::{self, Stopped};
use emporium_chassis::net::{BindError, bind_named};
use emporium_chassis::{Health, Metrics};
use tokio::net::TcpListener;
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
    grpc: TcpListener,
    admin: TcpListener,
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
        let grpc = bind_named(
            "catalog gRPC port",
            "EMPORIUM_CATALOG__GRPC_ADDR",
            config.grpc_addr,
        )?;
        let admin = bind_named(
            "catalog admin port",
            "EMPORIUM_CATALOG__ADMIN_ADDR",
            config.admin_addr,
        )?;
        Ok(Self {
            config,
            store,
            grpc,
            admin,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or(self.config.grpc_addr)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_addr)
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
            grpc,
            admin,
        } = self;
        let health = Health::new();
        let metrics = Arc::new(Metrics::new("catalog"));
        let parts = ServerParts {
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            health: health.clone(),
            metrics: metrics.clone(),
            faults: config.faults.clone(),
        };
        let routes =
            tonic::service::Routes::new(grpc::CatalogApi::new(store.clone()).into_server());
        let service = lifecycle::Service {
            name: "catalog",
            health,
            metrics,
            admin,
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = lifecycle::run(service, shutdown, |stop| {
            emporium_chassis::grpc::serve(grpc, routes, parts, stop)
        })
        .await;
        store.close().await;
        stopped
    }
}
