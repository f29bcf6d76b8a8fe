//! # Accounts service
//!
//! Owns users and their credentials; no other service reads its tables.
//! Serves them over gRPC (`emporium.accounts.v1.AccountsService`): sign-up,
//! sign-in (which issues an access token), the JWK Set that verifies those
//! tokens, and the calling user's own record. Calls no other service; emits
//! and consumes no events (yet).
//!
//! Passwords are hashed with argon2id (random salt, PHC string) off the async
//! runtime. Access tokens are JWTs signed with an Ed25519 key
//! ([`emporium_chassis::jwt`]); the gateway verifies them from the JWKS and
//! forwards the caller's identity to services in gRPC metadata. Everyone
//! signs up as a customer; an operator grants and revokes the admin role
//! ([`store::Store::set_role`], `emporium accounts grant-admin EMAIL`), and
//! tokens carry it from the next sign-in.
//!
//! Storage is SQLite (embedded default, one file) or PostgreSQL, chosen by
//! the database URL; migrations are embedded in the binary.
//!
//! ## Layout
//! - [`config`] — settings (`[accounts]`, `EMPORIUM_ACCOUNTS__…`)
//! - [`domain`] — types and rules, no I/O
//! - [`password`] — argon2id hashing on blocking threads
//! - [`token`] — the signing key and the access tokens it signs
//! - [`store`] — the database, all SQL in one place
//! - [`grpc`] — the tonic service
//! - [`error`] — the service's error type and its gRPC mapping

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod password;
pub mod store;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::Metrics;
use emporium_chassis::grpc::{GrpcService, Ports, run_service};
use emporium_chassis::jwt::SigningKey;
use emporium_chassis::lifecycle::Stopped;
use emporium_chassis::net::BindError;
use tokio_util::sync::CancellationToken;

pub use config::AccountsConfig;
pub use error::AccountsError;
pub use store::Store;

use crate::password::Passwords;
use crate::token::{Issuer, KeyError};

/// The gRPC service name, as the health protocol and reflection report it.
pub const SERVICE_NAME: &str = "emporium.accounts.v1.AccountsService";

/// Why accounts could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("accounts database: {0}")]
    Database(#[from] AccountsError),
    #[error(transparent)]
    SigningKey(#[from] KeyError),
    #[error("accounts.signing_key is not set and accounts.signing_key_path names no file")]
    NoSigningKey,
}

/// Accounts with its ports bound, database ready and signing key loaded,
/// not yet serving.
#[derive(Debug)]
pub struct AccountsServer {
    config: AccountsConfig,
    store: Store,
    passwords: Passwords,
    issuer: Arc<Issuer>,
    ports: Ports,
}

/// The configured key, or the one kept at `signing_key_path` (generated
/// there on first start).
async fn signing_key(config: &AccountsConfig) -> Result<SigningKey, StartError> {
    if let Some(pem) = &config.signing_key {
        return SigningKey::from_pem(pem.expose())
            .map_err(|e| KeyError::InvalidKey(e.to_string()).into());
    }
    let path = config
        .signing_key_path
        .clone()
        .ok_or(StartError::NoSigningKey)?;
    tokio::task::spawn_blocking(move || token::load_or_generate(&path))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .map_err(StartError::from)
}

impl AccountsServer {
    /// Loads the signing key, binds the ports (port 0 picks a free one),
    /// connects to the database and runs migrations if configured to.
    pub async fn build(config: AccountsConfig) -> Result<Self, StartError> {
        let key = signing_key(&config).await?;
        tracing::info!(kid = key.kid(), "token signing key loaded");
        let issuer = Arc::new(Issuer::new(
            key,
            config.token.issuer.clone(),
            config.token.audience.clone(),
            config.token.ttl.get(),
        ));
        let passwords = Passwords::new(&config.password_hashing).await?;
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let ports = Ports::bind("accounts", config.grpc_addr, config.admin_addr)?;
        Ok(Self {
            config,
            store,
            passwords,
            issuer,
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

    /// The id (`kid`) of the key tokens are signed with.
    pub fn key_id(&self) -> &str {
        self.issuer.kid()
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
            passwords,
            issuer,
            ports,
        } = self;
        let api = grpc::AccountsApi::new(store.clone(), passwords, issuer);
        let routes = tonic::service::Routes::new(api.into_server());
        let service = GrpcService {
            name: "accounts",
            service_names: &[SERVICE_NAME],
            descriptor_set: emporium_api::FILE_DESCRIPTOR_SET,
            ports,
            metrics: Arc::new(Metrics::new("accounts")),
            faults: config.faults.clone(),
            registry: config.registry.clone(),
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let stopped = run_service(service, routes, shutdown).await;
        store.close().await;
        stopped
    }
}
