//! The gateway's settings (section `[gateway]`, variables `EMPORIUM_GATEWAY__…`).

use std::net::SocketAddr;

use emporium_chassis::config::{ConfigError, Duration, ShutdownConfig, Sources, Table};
use emporium_chassis::grpc::Upstream;
use serde::{Deserialize, Serialize};

pub const SECTION: &str = "gateway";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public REST API.
    pub http_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    /// The catalog's gRPC port; `timeout` is the deadline of each call.
    pub catalog: Upstream,
    /// Bound on a whole request, whatever it waits for.
    pub request_timeout: Duration,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: u64,
    /// Longest request URI accepted, path and query (414 above).
    pub max_uri_bytes: usize,
    pub shutdown: ShutdownConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0u16; 8], 8080)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            catalog: Upstream::new("http://localhost:50051"),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 4096,
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl GatewayConfig {
    pub fn load(base: Table, sources: Sources<'_>) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        emporium_chassis::grpc::validate("gateway.catalog", &config.catalog)?;
        if config.catalog.timeout >= config.request_timeout {
            return Err(ConfigError::invalid(
                "gateway.catalog.timeout",
                format!(
                    "must be shorter than gateway.request_timeout ({})",
                    config.request_timeout
                ),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use emporium_chassis::config::MapEnv;

    use super::*;

    #[test]
    fn a_bad_upstream_url_names_its_key() {
        let env = MapEnv::new([("EMPORIUM_GATEWAY__CATALOG__URL", "not a url")]);
        let err = GatewayConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("gateway.catalog.url"), "{err}");
    }

    #[test]
    fn upstream_deadline_must_fit_in_the_request_timeout() {
        let env = MapEnv::new([("EMPORIUM_GATEWAY__CATALOG__TIMEOUT", "30s")]);
        let err = GatewayConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("gateway.catalog.timeout"), "{err}");
    }
}
