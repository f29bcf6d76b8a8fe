//! The gateway's settings (section `[gateway]`, variables `EMPORIUM_GATEWAY__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{ConfigError, Duration, ShutdownConfig, Sources, Table};
use emporium_chassis::grpc::Upstream;
use emporium_chassis::http_server::ConnectionLimits;
use serde::{Deserialize, Serialize};

pub const SECTION: &str = "gateway";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public REST API.
    pub http_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    /// The services behind the API (gRPC); `timeout` is each call's deadline.
    pub catalog: Upstream,
    pub accounts: Upstream,
    pub cart: Upstream,
    pub currency: Upstream,
    pub checkout: Upstream,
    /// How access tokens are checked.
    pub auth: AuthConfig,
    /// Bound on a whole request, whatever it waits for.
    pub request_timeout: Duration,
    /// Time budget per route class, passed down every call as its deadline.
    pub budgets: Budgets,
    /// The optional service registry (etcd) the upstreams are found in;
    /// DNS only when unset. The gateway serves HTTP and does not register.
    pub registry: RegistrySettings,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: u64,
    /// Longest request URI accepted, path and query (414 above).
    pub max_uri_bytes: usize,
    /// Timeouts and caps of the public port's connections.
    pub connections: ConnectionLimits,
    /// The bound on requests in flight; more are answered 503 at once.
    pub overload: crate::shed::OverloadConfig,
    /// The response cache of public reads.
    pub cache: crate::cache::CacheConfig,
    pub shutdown: ShutdownConfig,
}

/// Access-token verification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Expected `iss` and `aud` claims (as accounts issues them).
    pub issuer: String,
    pub audience: String,
    /// How long fetched signing keys are trusted before a refresh.
    pub jwks_ttl: Duration,
    /// Least time between two fetches caused by unknown key ids, so forged
    /// tokens cannot make the gateway hammer accounts.
    pub jwks_min_refresh: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "emporium".into(),
            audience: "emporium-api".into(),
            jwks_ttl: Duration::from_secs(600),
            jwks_min_refresh: Duration::from_secs(10),
        }
    }
}

/// How long a request of each class may take, from its arrival to its
/// answer: the deadline every upstream call of it inherits (sent on as
/// `grpc-timeout`). Past it the answer is 504.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    /// `GET`/`HEAD`: browsing, cart and order reads.
    pub read: Duration,
    /// Sign-up and sign-in (password hashing queues in accounts).
    pub auth: Duration,
    /// Cart and product writes.
    pub write: Duration,
    /// `POST /api/v1/checkout`: the whole saga. Well under a slow upstream's
    /// delay, so a shopper is answered rather than left waiting.
    pub checkout: Duration,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            read: Duration::from_secs(2),
            auth: Duration::from_secs(5),
            write: Duration::from_secs(2),
            checkout: Duration::from_millis(1500),
        }
    }
}

impl Budgets {
    /// The budget of a request to `path` with `method`.
    pub fn for_route(&self, method: &http::Method, path: &str) -> std::time::Duration {
        let budget = if path == "/api/v1/checkout" {
            self.checkout
        } else if path.starts_with("/api/v1/auth/") {
            self.auth
        } else if method == http::Method::GET || method == http::Method::HEAD {
            self.read
        } else {
            self.write
        };
        budget.get()
    }

    fn iter(&self) -> [(&'static str, Duration); 4] {
        [
            ("read", self.read),
            ("auth", self.auth),
            ("write", self.write),
            ("checkout", self.checkout),
        ]
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0u16; 8], 8080)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            catalog: Upstream::new("http://localhost:50051"),
            cart: Upstream::new("http://localhost:50052"),
            currency: Upstream::new("http://localhost:50053"),
            accounts: Upstream::new("http://localhost:50057"),
            checkout: Upstream {
                // A checkout runs a whole saga: several calls, a card charge.
                timeout: Duration::from_secs(8),
                ..Upstream::new("http://localhost:50058")
            },
            auth: AuthConfig::default(),
            request_timeout: Duration::from_secs(10),
            budgets: Budgets::default(),
            registry: RegistrySettings::default(),
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 4096,
            connections: ConnectionLimits::default(),
            overload: crate::shed::OverloadConfig::default(),
            cache: crate::cache::CacheConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl GatewayConfig {
    pub fn load(base: Table, sources: Sources<'_>) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        config.connections.validate("gateway.connections")?;
        config.overload.validate()?;
        config.cache.validate()?;
        for (key, upstream) in config.upstreams() {
            emporium_chassis::grpc::validate(&format!("gateway.{key}"), upstream)?;
            if upstream.timeout >= config.request_timeout {
                return Err(ConfigError::invalid(
                    format!("gateway.{key}.timeout"),
                    format!(
                        "must be shorter than gateway.request_timeout ({})",
                        config.request_timeout
                    ),
                ));
            }
        }
        for (class, budget) in config.budgets.iter() {
            if budget.get().is_zero() || budget > config.request_timeout {
                return Err(ConfigError::invalid(
                    format!("gateway.budgets.{class}"),
                    format!(
                        "must be above 0 and at most gateway.request_timeout ({})",
                        config.request_timeout
                    ),
                ));
            }
        }
        Ok(config)
    }
}

impl GatewayConfig {
    pub fn upstreams(&self) -> impl Iterator<Item = (&'static str, &Upstream)> {
        [
            ("catalog", &self.catalog),
            ("accounts", &self.accounts),
            ("cart", &self.cart),
            ("currency", &self.currency),
            ("checkout", &self.checkout),
        ]
        .into_iter()
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
