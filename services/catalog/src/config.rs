//! The catalog's settings (section `[catalog]`, variables `EMPORIUM_CATALOG__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{ConfigError, DatabaseConfig, Secret, ShutdownConfig, Sources};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "catalog";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50051)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The database a catalog uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://catalog.db";

impl CatalogConfig {
    /// Loads and validates the configuration.
    pub fn load(
        base: emporium_chassis::config::Table,
        sources: Sources<'_>,
    ) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        if let Some(url) = &config.database.url
            && crate::store::Backend::of_url(url.expose()).is_none()
        {
            return Err(ConfigError::invalid(
                "catalog.database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "catalog.database.max_connections",
                "must be at least 1",
            ));
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
    use emporium_chassis::config::MapEnv;

    use super::*;

    #[test]
    fn defaults_listen_dual_stack_on_the_documented_ports() {
        let c = CatalogConfig::default();
        assert_eq!(c.grpc_addr.to_string(), "[::]:50051");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn rejects_unsupported_database_schemes_naming_the_key() {
        let env = MapEnv::new([("EMPORIUM_CATALOG__DATABASE__URL", "mysql://x")]);
        let err = CatalogConfig::load(
            emporium_chassis::config::Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("catalog.database.url"), "{err}");
    }

    #[test]
    fn reads_addresses_and_faults_from_the_environment() {
        let env = MapEnv::new([
            ("EMPORIUM_CATALOG__GRPC_ADDR", "127.0.0.1:7000"),
            ("EMPORIUM_CATALOG__FAULTS__LATENCY", "150ms"),
        ]);
        let c = CatalogConfig::load(
            emporium_chassis::config::Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:7000");
        assert_eq!(c.faults.latency.unwrap().get().as_millis(), 150);
    }
}
