//! Service discovery on etcd v3. Each instance of a service registers its
//! address under a lease that it keeps alive; clients list the addresses of
//! a service or watch them change. The chassis uses it as an optional
//! discovery backend for client-side load balancing.
//!
//! # Layout
//! - [`Registry`]: connect, [`Registry::register`], [`Registry::watch`],
//!   [`Registry::list`]; [`RegistryConfig`] holds the settings;
//! - [`Registration`]: the keep-alive task of one registered address;
//! - `watcher`: the task that keeps a watch receiver current;
//! - `etcd`: the etcd calls, each under the deadline, over tonic clients
//!   generated at build time from our subset of etcd's API (`proto/`);
//! - [`Error`]: the one error type.
//!
//! # Keys
//! `<prefix><service>/<address>` = `<address>`, e.g.
//! `/emporium/services/catalog/127.0.0.2:50051` = `127.0.0.2:50051` (IPv6:
//! `[::1]:50051`). The value is what counts: a value under the prefix that
//! is not a socket address is skipped with a warning, never an error.
//! Service names are 1 to 63 characters of `a-z`, `0-9` and `-`.
//!
//! # Guarantees
//!
//! **Registered while alive.** [`Registry::register`] returns once the key
//! is stored under a fresh lease of the given TTL (whole seconds). A task
//! then sends a keep-alive every TTL/3 and waits at most the deadline for
//! each answer.
//!
//! **Graceful shutdown.** [`Registration::deregister`] stops the task and
//! revokes the lease: etcd deletes the key at once and watchers see it go
//! within a round trip. If etcd cannot be reached at that moment, the key
//! goes when the lease expires, as after a crash.
//!
//! **Crash of the registered process** (or a [`Registration`] dropped
//! without deregistering): no more keep-alives, so etcd deletes the key when
//! the lease expires, at most one TTL after the last keep-alive (plus etcd's
//! expiry check, about half a second). Until then watchers still list the
//! dead address: callers must tolerate one for up to a TTL (the chassis's
//! per-endpoint breaker does).
//!
//! **etcd restart.** With its data kept, leases survive (etcd gives each a
//! full TTL again when it starts) and the keep-alive resumes on the same
//! lease; the key never disappears. With its data lost, the keep-alive learns
//! that the lease is gone and the task grants a new lease and puts the key
//! again. Either way the task retries with jittered exponential backoff
//! (100 ms up to `max_backoff`) for as long as the registration lives.
//!
//! **Partition between a registered process and etcd.** The keep-alive
//! fails and is retried with backoff. If the partition outlasts the TTL,
//! etcd deletes the key (an instance etcd cannot see is out of discovery);
//! when it heals, the keep-alive finds the lease gone and registers again.
//!
//! **Watching.** [`Registry::watch`] lists the service (one Range), then
//! watches from the listed revision + 1, so no change between the two is
//! missed. The receiver always holds the current addresses, sorted and
//! deduplicated; changes that follow each other quickly may reach it as one.
//! When the watch stream breaks (etcd restarted, connection lost) or its
//! revision was compacted, the task lists again and watches from there,
//! with backoff; meanwhile the receiver keeps the last known addresses
//! (stale, never emptied because etcd is unreachable). A dead connection is
//! noticed by HTTP/2 pings (every `keepalive_interval`, answer within the
//! deadline). The task ends when every receiver is dropped.
//!
//! **Deadlines and bounds.** Every call to etcd, opening a stream and each
//! keep-alive answer has the configured deadline (default 2 s); only the
//! wait for the next change on an open watch has none. One task per
//! registration and per watch, and every channel has capacity 1.
//!
//! **Not covered.** A key deleted by someone else while its lease lives is
//! not put back until the lease is next lost. The registry talks to one
//! etcd URL: for a cluster, point it at an address that reaches a healthy
//! member (a load balancer or a DNS name).

mod backoff;
mod config;
mod error;
mod etcd;
mod registration;
mod service;
mod watcher;

/// Generated from `proto/` (our subset of etcd's v3 API).
#[allow(
    dead_code,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
mod proto {
    pub(crate) mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub(crate) mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Endpoint;

pub use config::{DEFAULT_PREFIX, RegistryConfig};
pub use error::Error;
pub use registration::Registration;

use etcd::Etcd;
use service::ServiceName;

/// A handle on the registry: cheap to clone, all clones share one
/// connection to etcd.
#[derive(Debug, Clone)]
pub struct Registry {
    etcd: Etcd,
    prefix: Arc<str>,
    max_backoff: Duration,
}

impl Registry {
    /// A registry at `url` (`http://host:port`) under `prefix` (default
    /// [`DEFAULT_PREFIX`]), with the other settings at their defaults. Does
    /// not connect: the first call does. Needs a Tokio runtime.
    pub fn connect_lazy(url: &str, prefix: Option<&str>) -> Result<Self, Error> {
        let mut config = RegistryConfig::new(url);
        if let Some(prefix) = prefix {
            prefix.clone_into(&mut config.prefix);
        }
        Self::connect_lazy_with(&config)
    }

    /// A registry with every setting from `config`. Does not connect: the
    /// first call does. Needs a Tokio runtime.
    pub fn connect_lazy_with(config: &RegistryConfig) -> Result<Self, Error> {
        let bad_url = |reason| Error::BadUrl {
            url: config.url.clone(),
            reason,
        };
        if !config.url.starts_with("http://") {
            return Err(bad_url("it must start with http://"));
        }
        let endpoint = Endpoint::from_shared(config.url.clone())
            .map_err(|_| bad_url("it is not a URI"))?
            .connect_timeout(config.deadline)
            .http2_keep_alive_interval(config.keepalive_interval)
            .keep_alive_timeout(config.deadline)
            // etcd refuses pings on a connection without streams.
            .keep_alive_while_idle(false)
            .tcp_nodelay(true);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        let mut prefix = config.prefix.clone();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Self {
            etcd: Etcd::new(endpoint.connect_lazy(), config.deadline),
            prefix: prefix.into(),
            max_backoff: config.max_backoff,
        })
    }

    /// The key prefix, ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Registers `addr` as an instance of `service` under a lease of `ttl`
    /// (rounded up to whole seconds, at least one), and keeps it registered
    /// until the returned [`Registration`] is deregistered or dropped. See
    /// the crate docs for what happens when etcd or the process fails.
    pub async fn register(
        &self,
        service: &str,
        addr: SocketAddr,
        ttl: Duration,
    ) -> Result<Registration, Error> {
        let service = ServiceName::parse(service)?;
        let ttl_secs = ttl_secs(ttl)?;
        let key = format!("{}{addr}", self.service_prefix(&service));
        let value = addr.to_string();
        let lease = self.etcd.grant(ttl_secs).await?;
        if let Err(error) = self.etcd.put(&key, &value, lease.id).await {
            // Best effort: an unused lease expires on its own anyway.
            let _ = self.etcd.revoke(lease.id).await;
            return Err(error);
        }
        tracing::info!(key = %key, lease_id = lease.id, ttl_secs = lease.ttl_secs, "registered");
        Ok(Registration::start(
            self.etcd.clone(),
            key,
            value,
            lease,
            ttl_secs,
            self.max_backoff,
        ))
    }

    /// The addresses of `service` now, and then every change: the receiver
    /// is kept current by a task that ends when every receiver is dropped.
    /// Fails only if the first listing fails; after that, etcd outages are
    /// retried in the background (see the crate docs).
    pub async fn watch(
        &self,
        service: &str,
    ) -> Result<tokio::sync::watch::Receiver<Vec<SocketAddr>>, Error> {
        let prefix = self.service_prefix(&ServiceName::parse(service)?);
        let (kvs, revision) = self.etcd.range_prefix(prefix.as_bytes()).await?;
        Ok(watcher::spawn(
            self.etcd.clone(),
            prefix.into_bytes(),
            kvs,
            revision,
            self.max_backoff,
        ))
    }

    /// The addresses of `service` now, sorted and deduplicated.
    pub async fn list(&self, service: &str) -> Result<Vec<SocketAddr>, Error> {
        let prefix = self.service_prefix(&ServiceName::parse(service)?);
        let (kvs, _revision) = self.etcd.range_prefix(prefix.as_bytes()).await?;
        Ok(watcher::addresses(&watcher::members(kvs)))
    }

    fn service_prefix(&self, service: &ServiceName) -> String {
        format!("{}{}/", self.prefix, service.as_str())
    }
}

/// etcd's lease TTL: whole seconds, rounded up, at least one.
fn ttl_secs(ttl: Duration) -> Result<i64, Error> {
    if ttl < Duration::from_secs(1) {
        return Err(Error::BadTtl { ttl });
    }
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs).map_err(|_| Error::BadTtl { ttl })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ttls_are_whole_seconds_rounded_up() {
        assert_eq!(ttl_secs(Duration::from_secs(2)).ok(), Some(2));
        assert_eq!(ttl_secs(Duration::from_millis(1500)).ok(), Some(2));
        assert!(matches!(
            ttl_secs(Duration::from_millis(999)),
            Err(Error::BadTtl { .. })
        ));
    }

    #[tokio::test]
    async fn a_url_without_http_is_refused_before_any_connection() {
        for url in [
            "127.0.0.1:2379",
            "https://127.0.0.1:2379",
            "http://bad host",
        ] {
            assert!(
                matches!(Registry::connect_lazy(url, None), Err(Error::BadUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(matches!(
            Registry::connect_lazy("http://127.0.0.1:2379", None),
            Err(Error::NoRuntime)
        ));
    }

    #[tokio::test]
    async fn the_prefix_always_ends_with_a_slash() -> Result<(), Error> {
        let registry = Registry::connect_lazy("http://127.0.0.1:2379", Some("/x"))?;
        assert_eq!(registry.prefix(), "/x/");
        let registry = Registry::connect_lazy("http://127.0.0.1:2379", None)?;
        assert_eq!(registry.prefix(), DEFAULT_PREFIX);
        Ok(())
    }
}
