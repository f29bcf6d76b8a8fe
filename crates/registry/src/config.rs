//! [`RegistryConfig`]: where etcd is, the key prefix, and how long to wait.

use std::time::Duration;

/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "/emporium/services/";

/// How to reach the registry. Built with [`RegistryConfig::new`] (defaults
/// for everything but the URL), then adjusted field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// etcd's client URL, `http://host:port`.
    pub url: String,
    /// Every key lives under this prefix: `<prefix><service>/<address>`.
    /// A missing trailing `/` is added.
    pub prefix: String,
    /// Deadline of every call to etcd, of connecting, and of an HTTP/2 ping.
    /// Default 2 s (etcd's own client dials with a 2 s timeout by habit; a
    /// healthy etcd answers in milliseconds).
    pub deadline: Duration,
    /// Cap of the jittered exponential backoff (from 100 ms) between the
    /// background tasks' attempts to reach etcd again. Default 5 s.
    pub max_backoff: Duration,
    /// Interval of HTTP/2 pings while a keep-alive or watch stream is open;
    /// an unanswered ping (within `deadline`) breaks the connection, so a
    /// partition is noticed and the streams are re-opened. Default 10 s: etcd
    /// refuses pings more frequent than its `--grpc-keepalive-min-time`
    /// (5 s by default) by closing the connection.
    pub keepalive_interval: Duration,
}

impl RegistryConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            deadline: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
        }
    }
}
