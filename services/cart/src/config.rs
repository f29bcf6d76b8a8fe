//! The cart's settings (section `[cart]`, variables `EMPORIUM_CART__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources,
};
use emporium_chassis::grpc::{Faults, Upstream};
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "cart";

/// Where carts are kept.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Embedded SQLite file (`database.url`): a local run.
    #[default]
    Sqlite,
    /// Redis (`redis.url`): a cluster.
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CartConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    /// `sqlite` or `redis`.
    pub store: StoreKind,
    /// The SQLite store (`store = "sqlite"`); only `sqlite://` URLs.
    pub database: DatabaseConfig,
    /// The Redis store (`store = "redis"`).
    pub redis: RedisConfig,
    /// The catalog, asked whether a product exists and what it costs.
    pub catalog: Upstream,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`, or `rediss://…` for TLS; a
    /// secret (`EMPORIUM_CART__REDIS__URL[_FILE]`).
    pub url: Option<Secret>,
    /// With a `rediss://` URL: the CA certificates (PEM) to verify the server
    /// with instead of the system's roots, for a private CA; usually read from
    /// a mounted file (`EMPORIUM_CART__REDIS__CA_CERT_FILE`).
    pub ca_cert: Option<String>,
    /// Prefix of every cart key (`cart:<user_id>`).
    pub key_prefix: String,
    /// A cart untouched for this long disappears.
    pub ttl: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            ca_cert: None,
            key_prefix: "cart:".into(),
            ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Default for CartConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50052)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            store: StoreKind::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            catalog: Upstream::new("http://localhost:50051"),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The database the SQLite store uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cart.db";

impl CartConfig {
    /// Loads and validates the configuration.
    pub fn load(
        base: emporium_chassis::config::Table,
        sources: Sources<'_>,
    ) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        emporium_chassis::grpc::validate("cart.catalog", &config.catalog)?;
        if let Some(url) = &config.database.url
            && !url.expose().starts_with("sqlite:")
        {
            return Err(ConfigError::invalid(
                "cart.database.url",
                "must start with sqlite:// (use store = \"redis\" for a shared store)",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "cart.database.max_connections",
                "must be at least 1",
            ));
        }
        let prefix = &config.redis.key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "cart.redis.key_prefix",
                "must be 1 to 64 characters without spaces",
            ));
        }
        if config.redis.ttl.get() < std::time::Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "cart.redis.ttl",
                "must be at least 1s",
            ));
        }
        if config.store == StoreKind::Redis {
            match &config.redis.url {
                None => {
                    return Err(ConfigError::invalid(
                        "cart.redis.url",
                        "is required when cart.store is \"redis\" (EMPORIUM_CART__REDIS__URL)",
                    ));
                }
                Some(url)
                    if !(url.expose().starts_with("redis://")
                        || url.expose().starts_with("rediss://")) =>
                {
                    return Err(ConfigError::invalid(
                        "cart.redis.url",
                        "must start with redis:// or rediss://",
                    ));
                }
                Some(url) => {
                    if let Some(ca) = &config.redis.ca_cert
                        && let Some(reason) = crate::store::ca_cert_problem(url.expose(), ca)
                    {
                        return Err(ConfigError::invalid("cart.redis.ca_cert", reason));
                    }
                }
            }
        }
        Ok(config)
    }

    pub fn database_url(&self) -> Secret {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use emporium_chassis::config::{MapEnv, Table};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<CartConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        CartConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_keep_carts_in_sqlite_and_ask_the_local_catalog() {
        let c = load(&[]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "[::]:50052");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.store, StoreKind::Sqlite);
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.catalog.url, "http://localhost:50051");
        assert_eq!(c.redis.key_prefix, "cart:");
        assert_eq!(c.redis.ttl.get().as_secs(), 30 * 24 * 3600);
    }

    #[test]
    fn redis_needs_a_url_which_is_never_printed() {
        let err = load(&[("EMPORIUM_CART__STORE", "redis")]).unwrap_err();
        assert!(err.to_string().contains("cart.redis.url"), "{err}");
        let c = load(&[
            ("EMPORIUM_CART__STORE", "redis"),
            ("EMPORIUM_CART__REDIS__URL", "redis://:hunter2@cache:6379/0"),
            ("EMPORIUM_CART__REDIS__TTL", "48h"),
        ])
        .unwrap();
        assert_eq!(c.store, StoreKind::Redis);
        assert_eq!(c.redis.ttl.get().as_secs(), 48 * 3600);
        assert!(!format!("{c:?}").contains("hunter2"));
        let err = load(&[
            ("EMPORIUM_CART__STORE", "redis"),
            ("EMPORIUM_CART__REDIS__URL", "http://cache"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cart.redis.url"), "{err}");
    }

    #[test]
    fn a_ca_certificate_goes_with_a_tls_url_only_and_is_read_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, pem).unwrap();
        let path = path.to_str().unwrap();
        let c = load(&[
            ("EMPORIUM_CART__STORE", "redis"),
            ("EMPORIUM_CART__REDIS__URL", "rediss://cache:6380/0"),
            ("EMPORIUM_CART__REDIS__CA_CERT_FILE", path),
        ])
        .unwrap();
        assert_eq!(c.redis.ca_cert.as_deref(), Some(pem.trim_end()));
        for (url, ca, why) in [
            ("redis://cache:6379/0", pem, "rediss://"),
            ("rediss://cache:6380/0", "not a certificate", "PEM"),
        ] {
            let err = load(&[
                ("EMPORIUM_CART__STORE", "redis"),
                ("EMPORIUM_CART__REDIS__URL", url),
                ("EMPORIUM_CART__REDIS__CA_CERT", ca),
            ])
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("cart.redis.ca_cert") && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = load(&[("EMPORIUM_CART__STORE", "memcached")]).unwrap_err();
        assert!(err.to_string().contains("cart.store"), "{err}");
        let err = load(&[("EMPORIUM_CART__DATABASE__URL", "postgres://db/cart")]).unwrap_err();
        assert!(err.to_string().contains("cart.database.url"), "{err}");
        let err = load(&[("EMPORIUM_CART__CATALOG__URL", "catalog:50051")]).unwrap_err();
        assert!(err.to_string().contains("cart.catalog.url"), "{err}");
        let c = load(&[("EMPORIUM_CART__CATALOG__TIMEOUT", "500ms")]).unwrap();
        assert_eq!(c.catalog.timeout.get().as_millis(), 500);
    }
}
