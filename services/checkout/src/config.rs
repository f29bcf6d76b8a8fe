//! Checkout's settings (section `[checkout]`, variables `EMPORIUM_CHECKOUT__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources, Table,
};
use emporium_chassis::grpc::{Faults, Upstream};
use serde::{Deserialize, Serialize};

use crate::domain::Step;

pub const SECTION: &str = "checkout";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CheckoutConfig {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
    pub saga: SagaConfig,
    pub cart: Upstream,
    pub catalog: Upstream,
    pub currency: Upstream,
    pub inventory: Upstream,
    pub payment: Upstream,
    pub shipping: Upstream,
    /// The event bus `order.placed.v1` is published to (from the outbox).
    pub events: emporium_eventbus::EventBusConfig,
    /// How often the outbox relay looks for unpublished events.
    pub relay_interval: Duration,
}

/// How sagas are driven and recovered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SagaConfig {
    /// How long an instance owns a saga after its last step; after that,
    /// any instance may recover it. Longer than the slowest single step.
    pub lease: Duration,
    /// How often to look for sagas whose owner went away.
    pub recovery_interval: Duration,
    /// How long a repeated request waits for the first one to finish.
    pub replay_wait: Duration,
    /// Fault point for crash tests: stop driving a saga right after this
    /// step is persisted, as if the process had died (`charged`, …).
    pub halt_after: Option<String>,
    /// Fault point for crash tests: exit the whole process (status 70)
    /// right after this step is persisted.
    pub exit_after: Option<String>,
}

impl Default for SagaConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            recovery_interval: Duration::from_secs(5),
            replay_wait: Duration::from_secs(10),
            halt_after: None,
            exit_after: None,
        }
    }
}

fn upstream(port: u16, timeout: Duration) -> Upstream {
    Upstream {
        timeout,
        ..Upstream::new(format!("http://localhost:{port}"))
    }
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50058)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
            saga: SagaConfig::default(),
            catalog: upstream(50051, Duration::from_secs(2)),
            cart: upstream(50052, Duration::from_secs(2)),
            currency: upstream(50053, Duration::from_secs(2)),
            inventory: upstream(50054, Duration::from_secs(3)),
            payment: upstream(50055, Duration::from_secs(5)),
            shipping: upstream(50056, Duration::from_secs(2)),
            events: emporium_eventbus::EventBusConfig::default(),
            relay_interval: Duration::from_millis(200),
        }
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://checkout.db";

impl CheckoutConfig {
    pub fn load(base: Table, sources: Sources<'_>) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        for (key, upstream) in config.upstreams() {
            emporium_chassis::grpc::validate(&format!("checkout.{key}"), upstream)?;
        }
        for (key, step) in [
            ("halt_after", &config.saga.halt_after),
            ("exit_after", &config.saga.exit_after),
        ] {
            if let Some(step) = step
                && Step::parse(step).is_none()
            {
                return Err(ConfigError::invalid(
                    format!("checkout.saga.{key}"),
                    format!("`{step}` is not a saga step"),
                ));
            }
        }
        let slowest = config
            .upstreams()
            .map(|(_, u)| u.timeout)
            .max()
            .unwrap_or(Duration::from_secs(0));
        if config.saga.lease <= slowest {
            return Err(ConfigError::invalid(
                "checkout.saga.lease",
                format!("must be longer than the slowest upstream timeout ({slowest})"),
            ));
        }
        Ok(config)
    }

    pub fn upstreams(&self) -> impl Iterator<Item = (&'static str, &Upstream)> {
        [
            ("cart", &self.cart),
            ("catalog", &self.catalog),
            ("currency", &self.currency),
            ("inventory", &self.inventory),
            ("payment", &self.payment),
            ("shipping", &self.shipping),
        ]
        .into_iter()
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

    fn load(vars: &[(&str, &str)]) -> Result<CheckoutConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        CheckoutConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_point_at_every_upstream() {
        let c = load(&[]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "[::]:50058");
        assert_eq!(c.upstreams().count(), 6);
        assert_eq!(c.payment.url, "http://localhost:50055");
    }

    #[test]
    fn bad_fault_steps_and_short_leases_are_named() {
        let err = load(&[("EMPORIUM_CHECKOUT__SAGA__HALT_AFTER", "lunch")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkout.saga.halt_after"), "{err}");
        let err = load(&[("EMPORIUM_CHECKOUT__SAGA__LEASE", "1s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkout.saga.lease"), "{err}");
        let err = load(&[("EMPORIUM_CHECKOUT__PAYMENT__URL", "payment:50055")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkout.payment.url"), "{err}");
    }
}
