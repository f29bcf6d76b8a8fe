//! Where an upstream's endpoints are: name resolution for the balancer.
//!
//! An upstream is named by a URL (`http://catalog-grpc:50051`). The balancer
//! asks a [`Resolver`] for every address of its host — all A and AAAA
//! records, as a headless Kubernetes Service publishes one per ready pod —
//! again every `resolve_interval` and at once after a connection failure.
//! The default asks the system resolver; tests inject a [`StaticResolver`]
//! (no `/etc/hosts` needed), and an optional registry backend plugs in
//! through [`Resolve`]. An address literal in the URL resolves to itself.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;

/// Something that turns a host name into the addresses of its endpoints.
pub trait Resolve: Send + Sync + fmt::Debug + 'static {
    /// Every address `host` has now, with `port`. An empty list means the
    /// upstream has no endpoint at the moment (not an error).
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`: `/etc/hosts`, DNS).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?;
            Ok(addrs.collect())
        })
    }
}

/// A resolver answering from a table that can change while clients use it
/// (a test stands for DNS with it: add a replica, remove one).
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    hosts: Arc<RwLock<HashMap<String, Vec<IpAddr>>>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `host` resolve to exactly `ips` (replacing what it had).
    pub fn set(&self, host: &str, ips: impl IntoIterator<Item = IpAddr>) {
        let mut hosts = self
            .hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts.insert(host.to_owned(), ips.into_iter().collect());
    }

    /// Makes `host` unknown (resolving it fails, as a lost DNS record does).
    pub fn remove(&self, host: &str) {
        let mut hosts = self
            .hosts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts.remove(host);
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let hosts = self
            .hosts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = hosts.get(host).map(|ips| {
            ips.iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect::<Vec<_>>()
        });
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("unknown host `{host}`"))
            })
        })
    }
}

/// A fixed list of addresses, whatever the host (an upstream's `endpoints`).
#[derive(Debug, Clone)]
pub struct FixedAddresses(pub Vec<SocketAddr>);

impl Resolve for FixedAddresses {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// The resolver an upstream uses: the system's unless something else was
/// injected. Not configuration (it is skipped by serde): a test or a
/// launcher sets it on the [`super::Upstream`] before building a client.
#[derive(Clone, Default)]
pub struct Resolver(Option<Arc<dyn Resolve>>);

impl Resolver {
    pub fn new(resolve: impl Resolve) -> Self {
        Self(Some(Arc::new(resolve)))
    }

    pub fn is_system(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        // An address literal needs no lookup.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match &self.0 {
            Some(custom) => custom.resolve(host, port).await,
            None => SystemResolver.resolve(host, port).await,
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Resolver(system)"),
            Some(custom) => write!(f, "Resolver({custom:?})"),
        }
    }
}

/// Resolvers are not part of a configuration's identity: two upstreams with
/// the same settings are equal whichever resolver each was given.
impl PartialEq for Resolver {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Resolver {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_literal_resolves_to_itself_without_a_lookup() {
        let empty = Resolver::new(StaticResolver::new());
        let v4 = empty.resolve("127.0.0.7", 50051).await.unwrap();
        assert_eq!(v4, vec!["127.0.0.7:50051".parse().unwrap()]);
        let v6 = empty.resolve("[::1]", 50051).await.unwrap();
        assert_eq!(v6, vec!["[::1]:50051".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_static_table_answers_every_address_and_follows_changes() {
        let table = StaticResolver::new();
        let resolver = Resolver::new(table.clone());
        table.set("catalog", ["127.0.0.2".parse().unwrap()]);
        assert_eq!(resolver.resolve("catalog", 1).await.unwrap().len(), 1);
        table.set(
            "catalog",
            ["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()],
        );
        assert_eq!(resolver.resolve("catalog", 1).await.unwrap().len(), 2);
        let unknown = resolver.resolve("nowhere", 1).await.unwrap_err();
        assert_eq!(unknown.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_system_resolver_knows_localhost() {
        let addrs = Resolver::default().resolve("localhost", 9).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
        assert!(!addrs.is_empty());
    }
}
