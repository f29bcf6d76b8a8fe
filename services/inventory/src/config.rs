//! The inventory's settings (section `[inventory]`, variables `EMPORIUM_INVENTORY__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources,
};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "inventory";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    /// How long a reservation holds its units unless confirmed or released.
    pub reservation_ttl: Duration,
    /// How often the sweeper looks for reservations whose time is up.
    pub sweep_interval: Duration,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50054)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            reservation_ttl: Duration::from_secs(15 * 60),
            sweep_interval: Duration::from_secs(30),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The database an inventory uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://inventory.db";

impl InventoryConfig {
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
                "inventory.database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "inventory.database.max_connections",
                "must be at least 1",
            ));
        }
        if config.reservation_ttl.get().is_zero() {
            return Err(ConfigError::invalid(
                "inventory.reservation_ttl",
                "must be longer than 0s",
            ));
        }
        if config.sweep_interval.get().is_zero() {
            return Err(ConfigError::invalid(
                "inventory.sweep_interval",
                "must be longer than 0s",
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
    #![allow(clippy::unwrap_used)]

    use emporium_chassis::config::{MapEnv, Table};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<InventoryConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        InventoryConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_listen_dual_stack_and_hold_reservations_for_15_minutes() {
        let c = load(&[]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "[::]:50054");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.reservation_ttl.get().as_secs(), 900);
        assert_eq!(c.sweep_interval.get().as_secs(), 30);
    }

    #[test]
    fn reads_durations_from_the_environment() {
        let c = load(&[
            ("EMPORIUM_INVENTORY__RESERVATION_TTL", "2m"),
            ("EMPORIUM_INVENTORY__SWEEP_INTERVAL", "500ms"),
        ])
        .unwrap();
        assert_eq!(c.reservation_ttl.get().as_secs(), 120);
        assert_eq!(c.sweep_interval.get().as_millis(), 500);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = load(&[("EMPORIUM_INVENTORY__DATABASE__URL", "mysql://x")]).unwrap_err();
        assert!(err.to_string().contains("inventory.database.url"), "{err}");
        let err = load(&[("EMPORIUM_INVENTORY__SWEEP_INTERVAL", "0s")]).unwrap_err();
        assert!(
            err.to_string().contains("inventory.sweep_interval"),
            "{err}"
        );
        let err = load(&[("EMPORIUM_INVENTORY__RESERVATION_TTL", "soon")]).unwrap_err();
        assert!(
            err.to_string().contains("inventory.reservation_ttl"),
            "{err}"
        );
    }
}
