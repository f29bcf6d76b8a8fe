//! Payment's settings (section `[payment]`, variables `EMPORIUM_PAYMENT__…`).
//!
//! `faults` extends the chassis' fault settings with payment's own
//! `error_rate`; `faults.latency` is handed to the chassis unchanged, which
//! delays every API call by it.

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources,
};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

use crate::faults::ErrorRate;

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "payment";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub shutdown: ShutdownConfig,
    pub faults: PaymentFaults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

/// Deliberate failures, for resilience demos. Off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentFaults {
    /// Added to every API call (not health, not reflection).
    pub latency: Option<Duration>,
    /// Share of API calls (0.0 to 1.0) that fail with `UNAVAILABLE` before
    /// anything is stored.
    pub error_rate: ErrorRate,
}

impl PaymentFaults {
    /// The part the chassis applies (latency).
    // Any fault the chassis adds later stays at its default (off).
    #[allow(clippy::needless_update)]
    pub fn chassis(&self) -> Faults {
        Faults {
            latency: self.latency,
            ..Faults::default()
        }
    }
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50055)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            shutdown: ShutdownConfig::default(),
            faults: PaymentFaults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The database payment uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://payment.db";

impl PaymentConfig {
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
                "payment.database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "payment.database.max_connections",
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

    fn load(vars: &[(&str, &str)]) -> Result<PaymentConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        PaymentConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_listen_dual_stack_on_the_documented_ports_without_faults() {
        let c = load(&[]).unwrap();
        assert_eq!(c, PaymentConfig::default());
        assert_eq!(c.grpc_addr.to_string(), "[::]:50055");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.faults.error_rate.get(), 0.0);
        assert_eq!(c.faults.chassis(), Faults::default());
    }

    #[test]
    fn reads_faults_from_the_environment() {
        let c = load(&[
            ("EMPORIUM_PAYMENT__FAULTS__ERROR_RATE", "0.25"),
            ("EMPORIUM_PAYMENT__FAULTS__LATENCY", "150ms"),
            ("EMPORIUM_PAYMENT__DATABASE__URL", "postgres://db/payment"),
        ])
        .unwrap();
        assert_eq!(c.faults.error_rate.get(), 0.25);
        assert_eq!(c.faults.chassis().latency.unwrap().get().as_millis(), 150);
        assert_eq!(c.database_url().expose(), "postgres://db/payment");
        // An integer-looking variable is typed as one: 1 means always.
        let always = load(&[("EMPORIUM_PAYMENT__FAULTS__ERROR_RATE", "1")]).unwrap();
        assert_eq!(always.faults.error_rate.get(), 1.0);
    }

    #[test]
    fn reads_faults_from_a_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "[payment.faults]\nerror_rate = 0.5\n").unwrap();
        let env = MapEnv::default();
        let c = PaymentConfig::load(
            Table::new(),
            Sources {
                file: Some(file.path()),
                env: &env,
            },
        )
        .unwrap();
        assert_eq!(c.faults.error_rate.get(), 0.5);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        for (var, value, key) in [
            (
                "EMPORIUM_PAYMENT__FAULTS__ERROR_RATE",
                "1.5",
                "payment.faults.error_rate",
            ),
            (
                "EMPORIUM_PAYMENT__FAULTS__ERROR_RATE",
                "often",
                "payment.faults.error_rate",
            ),
            (
                "EMPORIUM_PAYMENT__FAULTS__ERROR_RATE",
                "2",
                "payment.faults.error_rate",
            ),
            (
                "EMPORIUM_PAYMENT__DATABASE__URL",
                "mysql://x",
                "payment.database.url",
            ),
            ("EMPORIUM_PAYMENT__FAULTS__JITTER", "1s", "payment.faults"),
        ] {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }
}
