//! The currency service's settings (section `[currency]`, variables
//! `EMPORIUM_CURRENCY__…`).
//!
//! The rates file's key is `rates_path`, not `rates_file`: the configuration
//! loader reads any variable ending in `_FILE` as "the value is in this
//! file" (that is how secrets arrive), so `EMPORIUM_CURRENCY__RATES_FILE`
//! could never name the file itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{ConfigError, Duration, ShutdownConfig, Sources};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "currency";

/// Shortest accepted `reload_interval`.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CurrencyConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    /// A rates document to read and watch; unset means the rates built into
    /// the binary (`data/currency-rates.json` at build time).
    pub rates_path: Option<PathBuf>,
    /// How often the rates file is checked for changes.
    pub reload_interval: Duration,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

impl Default for CurrencyConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50053)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            rates_path: None,
            reload_interval: Duration::from_secs(30),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

impl CurrencyConfig {
    /// Loads and validates the configuration.
    pub fn load(
        base: emporium_chassis::config::Table,
        sources: Sources<'_>,
    ) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        if config.reload_interval < MIN_RELOAD_INTERVAL {
            return Err(ConfigError::invalid(
                "currency.reload_interval",
                format!("must be at least {MIN_RELOAD_INTERVAL}"),
            ));
        }
        if config
            .rates_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "currency.rates_path",
                "must not be empty; leave it unset to use the built-in rates",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use emporium_chassis::config::{MapEnv, Table};

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<CurrencyConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        CurrencyConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_listen_dual_stack_on_the_documented_ports_with_built_in_rates() {
        let c = load(&[]).unwrap();
        assert_eq!(c, CurrencyConfig::default());
        assert_eq!(c.grpc_addr.to_string(), "[::]:50053");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.rates_path, None);
        assert_eq!(c.reload_interval.to_string(), "30s");
    }

    #[test]
    fn reads_the_rates_path_and_interval_from_the_environment() {
        let c = load(&[
            ("EMPORIUM_CURRENCY__RATES_PATH", "/etc/emporium/rates.json"),
            ("EMPORIUM_CURRENCY__RELOAD_INTERVAL", "5m"),
            ("EMPORIUM_CURRENCY__GRPC_ADDR", "127.0.0.1:7003"),
        ])
        .unwrap();
        assert_eq!(
            c.rates_path.unwrap().to_str(),
            Some("/etc/emporium/rates.json")
        );
        assert_eq!(c.reload_interval.get().as_secs(), 300);
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:7003");
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        for (var, value, key) in [
            (
                "EMPORIUM_CURRENCY__RELOAD_INTERVAL",
                "0ms",
                "currency.reload_interval",
            ),
            (
                "EMPORIUM_CURRENCY__RELOAD_INTERVAL",
                "30",
                "currency.reload_interval",
            ),
            ("EMPORIUM_CURRENCY__RATES_PATH", "", "currency.rates_path"),
            ("EMPORIUM_CURRENCY__RATE_PATH", "/x", "currency"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }
}
