//! Spawning the cart service in tests, on either of its stores.
//!
//! Redis tests run when `EMPORIUM_TEST_REDIS_URL` is set (e.g.
//! `redis://127.0.0.1:6379`); otherwise [`test_redis_url`] returns `None` and
//! prints that the test is skipped. Every test gets its own key prefix
//! ([`unique_key_prefix`]), so tests running in parallel never share a cart
//! and nothing global is ever flushed.
//!
//! ```text
//! let cart = spawn_cart(&db, &catalog.base_url()).await?;              // SQLite
//! let cart = spawn_cart(CartBackend::redis().unwrap(), &catalog.base_url()).await?;
//! ```

use emporium_cart::{CartConfig, CartServer, StoreKind};
use emporium_chassis::config::{Secret, Table};

use crate::{Running, TestDb, test_config};

/// The variable naming the Redis server for tests.
pub const REDIS_URL_VAR: &str = "EMPORIUM_TEST_REDIS_URL";

/// Where a test cart keeps its carts.
#[derive(Debug, Clone)]
pub enum CartBackend<'a> {
    /// A SQLite file (from [`TestDb::new`] with [`crate::Backend::Sqlite`]).
    Sqlite(&'a TestDb),
    /// A Redis server, with keys under `key_prefix`; over TLS (`rediss://`)
    /// trusting `ca_cert` (PEM) when given.
    Redis {
        url: String,
        key_prefix: String,
        ca_cert: Option<String>,
    },
}

impl<'a> From<&'a TestDb> for CartBackend<'a> {
    fn from(db: &'a TestDb) -> Self {
        Self::Sqlite(db)
    }
}

impl CartBackend<'_> {
    /// Redis at [`REDIS_URL_VAR`] with a fresh key prefix, or `None` (with a
    /// message) when the variable is not set.
    pub fn redis() -> Option<Self> {
        Some(Self::Redis {
            url: test_redis_url()?,
            key_prefix: unique_key_prefix(),
            ca_cert: None,
        })
    }

    /// Redis over TLS at [`REDIS_TLS_URL_VAR`], trusting the CA in
    /// [`REDIS_TLS_CA_FILE_VAR`], or `None` (with a message) when not set.
    pub fn redis_tls() -> Option<Self> {
        let (url, ca_cert) = test_redis_tls()?;
        Some(Self::Redis {
            url,
            key_prefix: unique_key_prefix(),
            ca_cert: Some(ca_cert),
        })
    }
}

/// The Redis URL for tests, or `None` after printing that the test is skipped.
pub fn test_redis_url() -> Option<String> {
    let url = std::env::var(REDIS_URL_VAR).ok().filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED (Redis): set {REDIS_URL_VAR} to run this test against Redis");
    }
    url
}

/// The variables naming a Redis server that speaks TLS only, and the PEM file
/// of the CA that signed its certificate (`.ci/run` starts one on port 6380).
pub const REDIS_TLS_URL_VAR: &str = "EMPORIUM_TEST_REDIS_TLS_URL";
pub const REDIS_TLS_CA_FILE_VAR: &str = "EMPORIUM_TEST_REDIS_TLS_CA_FILE";

/// The `rediss://` URL and the CA certificate (PEM) for TLS tests, or `None`
/// after printing that the test is skipped.
pub fn test_redis_tls() -> Option<(String, String)> {
    let var = |name| std::env::var(name).ok().filter(|s: &String| !s.is_empty());
    let (Some(url), Some(ca_file)) = (var(REDIS_TLS_URL_VAR), var(REDIS_TLS_CA_FILE_VAR)) else {
        eprintln!(
            "SKIPPED (Redis over TLS): set {REDIS_TLS_URL_VAR} and {REDIS_TLS_CA_FILE_VAR} \
             to run this test against Redis over TLS"
        );
        return None;
    };
    let ca_cert = std::fs::read_to_string(&ca_file)
        .unwrap_or_else(|e| panic!("{REDIS_TLS_CA_FILE_VAR}={ca_file}: {e}"));
    Some((url, ca_cert))
}

/// A key prefix no other test uses: `test:cart:<uuid>:`.
pub fn unique_key_prefix() -> String {
    format!("test:cart:{}:", uuid::Uuid::new_v4().simple())
}

/// Starts the cart on `backend` (a SQLite [`TestDb`] or a
/// [`CartBackend`]), asking the catalog at `catalog_url`, on ephemeral
/// loopback ports.
pub async fn spawn_cart<'a>(
    backend: impl Into<CartBackend<'a>>,
    catalog_url: &str,
) -> anyhow::Result<Running> {
    spawn_cart_with(backend, catalog_url, Table::new()).await
}

/// Like [`spawn_cart`], with extra settings (e.g. a short `catalog.timeout`).
pub async fn spawn_cart_with<'a>(
    backend: impl Into<CartBackend<'a>>,
    catalog_url: &str,
    overrides: Table,
) -> anyhow::Result<Running> {
    let mut base = crate::table(&[("catalog.url", catalog_url)]);
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: CartConfig = test_config(CartConfig::load, base)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    match backend.into() {
        CartBackend::Sqlite(db) => {
            config.store = StoreKind::Sqlite;
            config.database.url = Some(Secret::new(db.url()));
        }
        CartBackend::Redis {
            url,
            key_prefix,
            ca_cert,
        } => {
            config.store = StoreKind::Redis;
            config.redis.url = Some(Secret::new(url));
            config.redis.key_prefix = key_prefix;
            config.redis.ca_cert = ca_cert;
            // Test carts outlive their test by ten minutes at most.
            config.redis.ttl = emporium_chassis::config::Duration::from_secs(600);
        }
    }
    let server = CartServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
