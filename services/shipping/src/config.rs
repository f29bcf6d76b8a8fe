//! Shipping's settings (section `[shipping]`, variables `EMPORIUM_SHIPPING__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{ConfigError, DatabaseConfig, Secret, ShutdownConfig, Sources};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "shipping";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ShippingConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
    /// The event bus: `order.placed.v1` in, `shipment.created.v1` out.
    pub events: emporium_eventbus::EventBusConfig,
    /// How often the outbox relay looks for unpublished events.
    pub relay_interval: emporium_chassis::config::Duration,
}

impl Default for ShippingConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50056)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
            events: emporium_eventbus::EventBusConfig::default(),
            relay_interval: emporium_chassis::config::Duration::from_millis(200),
        }
    }
}

/// The database shipping uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://shipping.db";

impl ShippingConfig {
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
                "shipping.database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "shipping.database.max_connections",
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
    use emporium_chassis::config::{MapEnv, Table};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<ShippingConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        ShippingConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_listen_dual_stack_on_the_documented_ports() {
        let c = load(&[]).unwrap();
        assert_eq!(c, ShippingConfig::default());
        assert_eq!(c.grpc_addr.to_string(), "[::]:50056");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert!(c.database.migrate_on_start);
    }

    #[test]
    fn reads_the_database_and_faults_from_the_environment() {
        let c = load(&[
            ("EMPORIUM_SHIPPING__DATABASE__URL", "postgres://db/shipping"),
            ("EMPORIUM_SHIPPING__DATABASE__MAX_CONNECTIONS", "3"),
            ("EMPORIUM_SHIPPING__FAULTS__LATENCY", "40ms"),
        ])
        .unwrap();
        assert_eq!(c.database_url().expose(), "postgres://db/shipping");
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.faults.latency.unwrap().get().as_millis(), 40);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        for (var, value, key) in [
            (
                "EMPORIUM_SHIPPING__DATABASE__URL",
                "mysql://x",
                "shipping.database.url",
            ),
            (
                "EMPORIUM_SHIPPING__DATABASE__MAX_CONNECTIONS",
                "0",
                "shipping.database.max_connections",
            ),
            (
                "EMPORIUM_SHIPPING__GRPC_ADDR",
                "nowhere",
                "shipping.grpc_addr",
            ),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }
}
