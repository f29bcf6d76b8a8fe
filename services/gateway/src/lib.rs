//! # API gateway
//!
//! The only public entry point: REST/JSON over HTTP/1.1 and HTTP/2, with an
//! OpenAPI 3.1 document at `/openapi.json`. Each request becomes gRPC calls
//! on the services that own the data, each with a deadline and the caller's
//! W3C trace context. Every error is `application/problem+json`.
//!
//! Calls: catalog, accounts, cart, currency, checkout. Owns no data; emits
//! no events. Verifies access tokens itself ([`auth`]) and forwards the
//! caller's identity in gRPC metadata.
//!
//! ## Layout
//! - [`config`] — settings (`[gateway]`, `EMPORIUM_GATEWAY__…`)
//! - [`api`] — routes, request guards, REST types, the OpenAPI document
//! - [`limit`] — rate limits per client and route class, failed sign-ins
//!   per account (memory or Redis)
//! - [`error`] — the gateway's error type, answered as problem documents

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod limit;
pub mod shed;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::config::ConfigError;
use emporium_chassis::lifecycle::{self, Stopped};
use emporium_chassis::net::{BindError, bind_named};
use emporium_chassis::{Health, Metrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::GatewayConfig;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A gateway with its ports bound, not yet serving.
#[derive(Debug)]
pub struct GatewayServer {
    config: GatewayConfig,
    http: TcpListener,
    admin: TcpListener,
}

impl GatewayServer {
    pub fn build(config: GatewayConfig) -> Result<Self, StartError> {
        // Validate the upstreams before binding anything.
        for (key, upstream) in config.upstreams() {
            emporium_chassis::grpc::validate(&format!("gateway.{key}"), upstream)?;
        }
        let http = bind_named(
            "gateway HTTP port",
            "EMPORIUM_GATEWAY__HTTP_ADDR",
            config.http_addr,
        )?;
        let admin = bind_named(
            "gateway admin port",
            "EMPORIUM_GATEWAY__ADMIN_ADDR",
            config.admin_addr,
        )?;
        Ok(Self {
            config,
            http,
            admin,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.config.http_addr)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_addr)
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Stopped, std::io::Error> {
        let Self {
            config,
            http,
            admin,
        } = self;
        let metrics = Arc::new(Metrics::new("gateway"));
        let state = api::AppState::new(&config, &metrics)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let limits = api::Limits {
            max_body_bytes: config.max_body_bytes,
            max_uri_bytes: config.max_uri_bytes,
            request_timeout: config.request_timeout.get(),
            budgets: config.budgets,
            overload: config.overload,
            cache: config.cache,
        };
        let health = Health::new();
        let app = api::router(state, limits, metrics.clone());
        let service = lifecycle::Service {
            name: "gateway",
            health,
            metrics,
            admin,
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        lifecycle::run(service, shutdown, |stop| async move {
            emporium_chassis::http_server::serve(http, app, config.connections, stop).await
        })
        .await
    }
}
