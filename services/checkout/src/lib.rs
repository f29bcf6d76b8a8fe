//! # Checkout service
//!
//! Owns orders, their saga state, idempotency keys and the outbox. Places
//! orders by orchestrating the saga in [`saga`] over cart, catalog, currency,
//! inventory, shipping and payment (all gRPC, each call with a deadline), and
//! serves order history to each order's owner. Emits `order.placed.v1`
//! through its transactional outbox (published once the event bus exists).
//!
//! ## Layout
//! - [`config`] — settings (`[checkout]`, `EMPORIUM_CHECKOUT__…`)
//! - [`domain`] — orders, money, the saga's step machine; no I/O
//! - [`store`] — orders and outbox in SQLite or PostgreSQL
//! - [`saga`] — the orchestrator and crash recovery
//! - [`upstream`] — clients of the services the saga calls
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod report;
pub mod saga;
pub mod store;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::config::ConfigError;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::CheckoutConfig;
pub use error::CheckoutError;
pub use store::Store;

pub const SERVICE_NAME: &str = "emporium.checkout.v1.CheckoutService";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("checkout database: {0}")]
    Database(#[from] CheckoutError),
}

/// A checkout with its ports bound and its database ready, not yet serving.
#[derive(Debug)]
pub struct CheckoutServer {
    config: CheckoutConfig,
    store: Store,
    ports: Ports,
}

impl CheckoutServer {
    pub async fn build(config: CheckoutConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("checkout", config.grpc_addr, config.admin_addr)?;
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

    /// Serves until `shutdown`, recovering abandoned sagas in the background.
    pub async fn run(
        self,
        shutdown: CancellationToken,
    ) -> Result<Stopped, tonic::transport::Error> {
        let Self {
            config,
            store,
            ports,
        } = self;
        let metrics = Arc::new(Metrics::new("checkout"));
        let upstreams = match upstream::Upstreams::new(&config, &metrics) {
            Ok(u) => u,
            Err(e) => {
                // Validated at load time; reaching here means a bug, not bad input.
                tracing::error!(error = %e, "checkout upstreams");
                return Ok(Stopped::Drained);
            }
        };
        let saga = Arc::new(saga::Saga::new(
            store.clone(),
            upstreams,
            config.saga.clone(),
        ));
        let recovery = tokio::spawn(Arc::clone(&saga).recover_until(shutdown.clone()));
        // The outbox relay publishes `order.placed.v1`; while the bus is
        // unreachable orders are still placed and their events wait.
        let relay = {
            let (config, store, metrics, stop) = (
                config.clone(),
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            let relay = emporium_eventbus::outbox::Relay::new(
                Arc::new(OrderOutbox(store)),
                config.relay_interval.get(),
                &metrics,
            );
            tokio::spawn(async move {
                if let Some(bus) = relay.connect(&config.events, &stop).await {
                    relay.run(bus, stop).await;
                }
            })
        };
        let routes =
            tonic::service::Routes::new(grpc::CheckoutApi::new(saga, store.clone()).into_server());
        let service = GrpcService {
            name: "checkout",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics,
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        let _ = recovery.await;
        let _ = relay.await;
        store.close().await;
        stopped
    }
}

/// Checkout's outbox, for the relay.
#[derive(Debug, Clone)]
struct OrderOutbox(Store);

impl emporium_eventbus::outbox::OutboxSource for OrderOutbox {
    fn pending(
        &self,
        limit: u32,
    ) -> emporium_eventbus::BoxFuture<'_, Result<Vec<emporium_eventbus::outbox::Pending>, String>>
    {
        Box::pin(async move {
            let rows = self
                .0
                .pending_outbox(limit)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(
                    |(id, payload, created_at)| emporium_eventbus::outbox::Pending {
                        id,
                        envelope: payload.into_bytes(),
                        created_at,
                    },
                )
                .collect())
        })
    }

    fn mark_published<'a>(
        &'a self,
        ids: &'a [String],
    ) -> emporium_eventbus::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.mark_published(ids).await.map_err(|e| e.to_string()) })
    }
}
