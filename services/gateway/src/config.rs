//! The gateway's settings (section `[gateway]`, variables `EMPORIUM_GATEWAY__…`).

use std::net::SocketAddr;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{ConfigError, Duration, Secret, ShutdownConfig, Sources, Table};
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
    /// Request rates per client and route class, and failed sign-ins per account.
    pub rate_limit: RateLimitConfig,
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
        let budget = match RouteClass::of(method, path) {
            RouteClass::Checkout => self.checkout,
            RouteClass::Auth => self.auth,
            RouteClass::Read => self.read,
            RouteClass::Write => self.write,
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

/// The classes of routes that time budgets and rate limits are set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// `GET`/`HEAD`: browsing, cart and order reads.
    Read = 0,
    /// `/api/v1/auth/…`: sign-up and sign-in.
    Auth = 1,
    /// Every other write.
    Write = 2,
    /// `POST /api/v1/checkout`.
    Checkout = 3,
}

impl RouteClass {
    pub const ALL: [Self; 4] = [Self::Read, Self::Auth, Self::Write, Self::Checkout];

    /// The class of a request to `path` with `method`.
    pub fn of(method: &http::Method, path: &str) -> Self {
        if path == "/api/v1/checkout" {
            Self::Checkout
        } else if path.starts_with("/api/v1/auth/") {
            Self::Auth
        } else if method == http::Method::GET || method == http::Method::HEAD {
            Self::Read
        } else {
            Self::Write
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Auth => "auth",
            Self::Write => "write",
            Self::Checkout => "checkout",
        }
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
            rate_limit: RateLimitConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

/// Rate limits at the edge (`gateway.rate_limit`): a GCRA budget per client
/// and route class, and a lockout per account after repeated failed sign-ins.
/// See `crate::limit` for the algorithm and docs/architecture.md for where it
/// sits in the edge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `enforce` (429 over a limit), `shadow` (count only, for roll-outs) or `off`.
    pub mode: LimitMode,
    /// Where the counts live: `memory` (one replica) or `redis` (shared by
    /// every replica).
    pub backend: LimitBackend,
    /// The Redis backend (`backend = "redis"`).
    pub redis: LimitRedisConfig,
    /// What a request gets while the backend cannot be asked: `open` (served,
    /// unlimited, counted in a metric and logged) or `closed` (503).
    pub fail_mode: FailMode,
    /// Peers (CIDRs, e.g. `["10.0.0.0/8"]`) whose `Forwarded`/`X-Forwarded-For`
    /// headers name the client; anyone else's are ignored.
    pub trusted_proxies: Vec<String>,
    /// Budgets per route class, per client key (user id or address).
    pub read: Rate,
    pub auth: Rate,
    pub write: Rate,
    pub checkout: Rate,
    /// Failed sign-ins per account, whatever address they come from.
    pub login: LoginThrottle,
}

/// Whether limits are enforced.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LimitMode {
    /// Over a limit is a 429.
    #[default]
    Enforce,
    /// Counted and measured (`gateway_rate_limit_exceeded{mode="shadow"}`), never refused.
    Shadow,
    /// No counting at all.
    Off,
}

/// Where limit state is kept.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LimitBackend {
    /// In the process: right for one replica (`emporium up`).
    #[default]
    Memory,
    /// In Redis, shared by every replica.
    Redis,
}

/// What happens to a request while the limit backend is unreachable.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Served without a limit (a metric and a log line say so).
    #[default]
    Open,
    /// Refused with 503 and `Retry-After`.
    Closed,
}

/// The Redis that keeps limit state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRedisConfig {
    /// `redis://…` or `rediss://…` (TLS); a secret
    /// (`EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL[_FILE]`).
    pub url: Option<Secret>,
    /// With `rediss://`: the CA certificates (PEM) to trust instead of the
    /// system's roots (`…__REDIS__CA_CERT_FILE`).
    pub ca_cert: Option<String>,
    /// Prefix of every key the limiter writes.
    pub key_prefix: String,
    /// Longest wait for one decision; past it the fail mode applies.
    pub timeout: Duration,
}

impl Default for LimitRedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            ca_cert: None,
            key_prefix: "ratelimit:".into(),
            timeout: Duration::from_millis(250),
        }
    }
}

/// `requests` per `period`, all of which may come at once (a burst of
/// `requests`), refilled evenly over `period`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Rate {
    pub requests: u32,
    pub period: Duration,
}

impl Default for Rate {
    fn default() -> Self {
        Self {
            requests: 100,
            period: Duration::from_secs(10),
        }
    }
}

/// Failed sign-ins per account (the e-mail address as sent, case-folded).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginThrottle {
    /// Failures within `window` that start a lockout.
    pub max_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// How long sign-ins to the account are refused (429) after the last allowed failure.
    pub lockout: Duration,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        // OWASP's authentication cheat sheet: lock after a handful of
        // failures for minutes, not forever (a lockout is also a DoS lever).
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(5 * 60),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            mode: LimitMode::default(),
            backend: LimitBackend::default(),
            redis: LimitRedisConfig::default(),
            fail_mode: FailMode::default(),
            trusted_proxies: Vec::new(),
            // Generous for people, tight for scripts: a shopper browses at
            // a few requests a second; sign-in and sign-up hash passwords.
            read: Rate {
                requests: 300,
                period: Duration::from_secs(60),
            },
            auth: Rate {
                requests: 20,
                period: Duration::from_secs(60),
            },
            write: Rate {
                requests: 60,
                period: Duration::from_secs(60),
            },
            checkout: Rate {
                requests: 10,
                period: Duration::from_secs(60),
            },
            login: LoginThrottle::default(),
        }
    }
}

impl RateLimitConfig {
    /// The budget of each route class, by name.
    pub fn classes(&self) -> [(&'static str, Rate); 4] {
        [
            ("read", self.read),
            ("auth", self.auth),
            ("write", self.write),
            ("checkout", self.checkout),
        ]
    }

    /// The trusted proxy networks, parsed.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, cidr)| {
                parse_network(cidr).ok_or_else(|| {
                    ConfigError::invalid(
                        format!("gateway.rate_limit.trusted_proxies[{i}]"),
                        format!("`{cidr}` is not an address or a CIDR such as 10.0.0.0/8"),
                    )
                })
            })
            .collect()
    }

    fn validate(&self, request_timeout: Duration) -> Result<(), ConfigError> {
        const KEY: &str = "gateway.rate_limit";
        for (class, rate) in self.classes() {
            if rate.requests == 0 {
                return Err(ConfigError::invalid(
                    format!("{KEY}.{class}.requests"),
                    "must be at least 1 (use mode = \"off\" to switch limits off)",
                ));
            }
            let period = rate.period.get();
            if period < std::time::Duration::from_secs(1) || period > MAX_PERIOD {
                return Err(ConfigError::invalid(
                    format!("{KEY}.{class}.period"),
                    "must be between 1s and 24h",
                ));
            }
            if u128::from(rate.requests) > period.as_millis() {
                return Err(ConfigError::invalid(
                    format!("{KEY}.{class}.requests"),
                    format!(
                        "{} requests per {} is more than one a millisecond",
                        rate.requests, rate.period
                    ),
                ));
            }
        }
        let login = &self.login;
        if login.max_failures == 0 {
            return Err(ConfigError::invalid(
                format!("{KEY}.login.max_failures"),
                "must be at least 1",
            ));
        }
        for (name, value) in [("window", login.window), ("lockout", login.lockout)] {
            let value = value.get();
            if value < std::time::Duration::from_secs(1) || value > MAX_PERIOD {
                return Err(ConfigError::invalid(
                    format!("{KEY}.login.{name}"),
                    "must be between 1s and 24h",
                ));
            }
        }
        self.trusted_networks()?;
        let redis = &self.redis;
        let prefix = &redis.key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError::invalid(
                format!("{KEY}.redis.key_prefix"),
                "must be 1 to 64 characters without spaces",
            ));
        }
        if redis.timeout.get().is_zero() || redis.timeout >= request_timeout {
            return Err(ConfigError::invalid(
                format!("{KEY}.redis.timeout"),
                format!(
                    "must be above 0 and shorter than gateway.request_timeout ({request_timeout})"
                ),
            ));
        }
        if self.backend == LimitBackend::Redis && self.mode != LimitMode::Off {
            let Some(url) = &redis.url else {
                return Err(ConfigError::invalid(
                    format!("{KEY}.redis.url"),
                    "is required when gateway.rate_limit.backend is \"redis\" \
                     (EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL)",
                ));
            };
            let url = url.expose();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::invalid(
                    format!("{KEY}.redis.url"),
                    "must start with redis:// or rediss://",
                ));
            }
            if let Some(ca) = &redis.ca_cert
                && let Some(reason) = crate::limit::redis::ca_cert_problem(url, ca)
            {
                return Err(ConfigError::invalid(format!("{KEY}.redis.ca_cert"), reason));
            }
        }
        Ok(())
    }
}

/// The longest period, window or lockout a limit may have.
const MAX_PERIOD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (a /32 or /128).
fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .ok()
        .map(|net| net.trunc())
        .or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        })
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
        config.rate_limit.validate(config.request_timeout)?;
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

    fn load(vars: &[(&str, &str)]) -> Result<GatewayConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        GatewayConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn limits_that_make_no_sense_name_their_key() {
        for (var, value, key) in [
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__READ__REQUESTS",
                "0",
                "gateway.rate_limit.read.requests",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__AUTH__PERIOD",
                "0s",
                "gateway.rate_limit.auth.period",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__WRITE__REQUESTS",
                "100000",
                "gateway.rate_limit.write.requests",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__CHECKOUT__PERIOD",
                "48h",
                "gateway.rate_limit.checkout.period",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__LOGIN__MAX_FAILURES",
                "0",
                "gateway.rate_limit.login.max_failures",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__LOGIN__LOCKOUT",
                "0s",
                "gateway.rate_limit.login.lockout",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"not-a-net\"]",
                "gateway.rate_limit.trusted_proxies[1]",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__BACKEND",
                "redis",
                "gateway.rate_limit.redis.url",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__TIMEOUT",
                "30s",
                "gateway.rate_limit.redis.timeout",
            ),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__KEY_PREFIX",
                "a b",
                "gateway.rate_limit.redis.key_prefix",
            ),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
        let err = load(&[
            ("EMPORIUM_GATEWAY__RATE_LIMIT__BACKEND", "redis"),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL",
                "http://cache:6379",
            ),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("gateway.rate_limit.redis.url"),
            "{err}"
        );
        let err = load(&[("EMPORIUM_GATEWAY__RATE_LIMIT__MODE", "sometimes")]).unwrap_err();
        assert!(err.to_string().contains("rate_limit.mode"), "{err}");
    }

    #[test]
    fn a_redis_backend_with_trusted_proxies_loads() {
        let config = load(&[
            ("EMPORIUM_GATEWAY__RATE_LIMIT__BACKEND", "redis"),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__REDIS__URL",
                "rediss://cache:6380/1",
            ),
            ("EMPORIUM_GATEWAY__RATE_LIMIT__FAIL_MODE", "closed"),
            (
                "EMPORIUM_GATEWAY__RATE_LIMIT__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"fd00::1\"]",
            ),
        ])
        .unwrap();
        let rl = &config.rate_limit;
        assert_eq!(rl.fail_mode, FailMode::Closed);
        assert_eq!(rl.trusted_networks().unwrap().len(), 2);
        assert_eq!(load(&[]).unwrap().rate_limit, RateLimitConfig::default());
        // As the ConfigMaps write them: an empty list, durations in minutes.
        let config = load(&[
            ("EMPORIUM_GATEWAY__RATE_LIMIT__TRUSTED_PROXIES", "[]"),
            ("EMPORIUM_GATEWAY__RATE_LIMIT__LOGIN__WINDOW", "15m"),
        ])
        .unwrap();
        assert!(config.rate_limit.trusted_proxies.is_empty());
    }
}
