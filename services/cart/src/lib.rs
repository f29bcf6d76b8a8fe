//! # Cart service
//!
//! Owns carts: one per user, the user being the caller identity the gateway
//! forwards in gRPC metadata. Serves them over gRPC
//! (`emporium.cart.v1.CartService`): get, add, set quantity, remove, clear;
//! every call answers with the whole cart, lines ordered by product id.
//! Calls the catalog (`GetProduct`) before a product goes into a cart, and
//! keeps the name and price it answered (checkout prices again). Emits and
//! consumes no events.
//!
//! Rules: a line holds 1 to 99 units, a cart at most 50 lines; they hold
//! under concurrency (see [`store`]).
//!
//! Carts are kept in embedded SQLite (a local run; the default) or Redis (a
//! cluster), chosen by `store`.
//!
//! ## Layout
//! - [`config`] — settings (`[cart]`, `EMPORIUM_CART__…`)
//! - [`domain`] — types and rules, no I/O
//! - [`store`] — the SQLite and Redis stores
//! - [`catalog`] — asking the catalog about products
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::config::ConfigError;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::{CartConfig, StoreKind};
pub use error::CartError;
pub use store::CartStore;
/// The cart's SQL store under the name every service's store has, for
/// `emporium migrate` (the Redis store has no schema to migrate).
pub use store::SqliteCarts as Store;

use crate::catalog::Catalog;
use crate::store::{RedisCarts, SqliteCarts};

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.cart.v1.CartService";

/// Why the cart could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cart store: {0}")]
    Store(#[from] CartError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The store `config` names, connected (lazily) and, for SQLite, migrated
/// if configured to.
pub async fn open_store(config: &CartConfig) -> Result<CartStore, CartError> {
    let store = match config.store {
        StoreKind::Sqlite => CartStore::Sqlite(SqliteCarts::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?),
        StoreKind::Redis => {
            let url = config.redis.url.as_ref().ok_or_else(|| {
                domain::Invalid::new("redis.url", "is required when store is \"redis\"")
            })?;
            CartStore::Redis(RedisCarts::connect(
                store::redis_client(url.expose(), config.redis.ca_cert.as_deref())?,
                &config.redis.key_prefix,
                config.redis.ttl.get(),
            )?)
        }
    };
    if config.database.migrate_on_start {
        store.migrate().await?;
    }
    Ok(store)
}

/// A cart service with its ports bound and its store ready, not yet serving.
#[derive(Debug)]
pub struct CartServer {
    config: CartConfig,
    store: CartStore,
    catalog: Catalog,
    ports: Ports,
    metrics: Arc<Metrics>,
}

impl CartServer {
    /// Binds the ports (port 0 picks a free one), opens the store and
    /// prepares the catalog client (which connects on first use).
    pub async fn build(config: CartConfig) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new("cart"));
        let mut upstream = config.catalog.clone();
        config.registry.apply("cart", [&mut upstream])?;
        let catalog = Catalog::new(&upstream, &metrics)?;
        let store = open_store(&config).await?;
        let ports = Ports::bind("cart", config.grpc_addr, config.admin_addr)?;
        Ok(Self {
            config,
            store,
            catalog,
            ports,
            metrics,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.ports.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.ports.admin_addr()
    }

    pub fn store(&self) -> &CartStore {
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
            catalog,
            ports,
            metrics,
        } = self;
        let routes =
            tonic::service::Routes::new(grpc::CartApi::new(store.clone(), catalog).into_server());
        let service = GrpcService {
            name: "cart",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics,
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        store.close().await;
        stopped
    }
}
