//! The optional service registry (etcd): self-registration and discovery.
//!
//! DNS is the default everywhere (in Kubernetes a headless Service lists
//! every ready pod). With `registry.url` set, a service also:
//! - **registers** its gRPC address under a lease once it is ready (the
//!   lease is kept alive; see `emporium_registry`), and **deregisters** when
//!   its drain begins, so callers stop picking it before it stops answering;
//!   a crashed instance disappears when its lease expires (`registry.ttl`);
//! - **resolves** its upstreams by watching the registry instead of asking
//!   DNS: the upstream URL's host names the service (`http://catalog:50051`
//!   → `catalog`; a `-grpc` suffix, the headless Service's name, is dropped),
//!   and the registered addresses (with their own ports) are its endpoints.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use emporium_registry::{Registration, Registry, RegistryConfig};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Resolve, Resolver, Upstream};
use crate::config::{ConfigError, Duration as ConfigDuration};
use crate::health::{Health, State};

/// Settings of the registry (section `registry` of a service).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// etcd's client URL (`http://etcd:2379`); unset (the default): DNS only.
    pub url: Option<String>,
    /// The address other services reach this one at, when the gRPC port is
    /// bound to every interface (`[::]`): in Kubernetes the pod's IP.
    pub advertise_ip: Option<IpAddr>,
    /// Lease time: how long a crashed instance stays listed.
    pub ttl: ConfigDuration,
    /// Key prefix: `<prefix><service>/<address>`.
    pub prefix: String,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            url: None,
            advertise_ip: None,
            ttl: ConfigDuration::from_secs(10),
            prefix: emporium_registry::DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl RegistrySettings {
    /// Checks the settings at start-up; `section` is the service's (`catalog`).
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            let uri: Option<http::Uri> = url.parse().ok();
            let usable = uri.as_ref().is_some_and(|u| {
                u.scheme_str() == Some("http") && u.host().is_some_and(|h| !h.is_empty())
            });
            if !usable {
                return Err(ConfigError::invalid(
                    format!("{section}.registry.url"),
                    format!("`{url}` must be etcd's client URL, http://host:port"),
                ));
            }
            if self.ttl.get() < std::time::Duration::from_secs(1) {
                return Err(ConfigError::invalid(
                    format!("{section}.registry.ttl"),
                    "must be at least 1s (etcd leases are whole seconds)",
                ));
            }
        }
        Ok(())
    }

    fn registry(&self, section: &str) -> Result<Option<Registry>, ConfigError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut config = RegistryConfig::new(url.clone());
        config.prefix = self.prefix.clone();
        Registry::connect_lazy_with(&config)
            .map(Some)
            .map_err(|e| ConfigError::invalid(format!("{section}.registry.url"), e.to_string()))
    }

    /// Makes every upstream resolve through the registry, when one is
    /// configured (needs a Tokio runtime).
    pub fn apply<'a>(
        &self,
        section: &str,
        upstreams: impl IntoIterator<Item = &'a mut Upstream>,
    ) -> Result<(), ConfigError> {
        if let Some(registry) = self.registry(section)? {
            let resolver = Resolver::new(RegistryResolver::new(registry));
            for upstream in upstreams {
                upstream.resolver = resolver.clone();
            }
        }
        Ok(())
    }

    /// Registers `service` at `bound` (or the advertised IP with its port)
    /// while `health` is ready, and deregisters it when the drain begins or
    /// `stop` is cancelled. Does nothing without a registry.
    pub(crate) fn spawn_registration(
        &self,
        service: &'static str,
        bound: SocketAddr,
        health: Health,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let registry = match self.registry(service) {
            Ok(Some(registry)) => registry,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "registry settings; not registering");
                return None;
            }
        };
        let ip = match (bound.ip().is_unspecified(), self.advertise_ip) {
            (_, Some(ip)) => ip,
            (false, None) => bound.ip(),
            (true, None) => {
                tracing::error!(
                    service,
                    "the gRPC port listens on every interface; set registry.advertise_ip to register it"
                );
                return None;
            }
        };
        let addr = SocketAddr::new(ip, bound.port());
        let ttl = self.ttl.get();
        Some(tokio::spawn(keep_registered(
            registry, service, addr, ttl, health, stop,
        )))
    }
}

/// Registers once ready (retrying every second while etcd is away), holds
/// the registration while ready, revokes it when readiness ends.
async fn keep_registered(
    registry: Registry,
    service: &'static str,
    addr: SocketAddr,
    ttl: std::time::Duration,
    health: Health,
    stop: CancellationToken,
) {
    let mut states = health.subscribe();
    loop {
        if states.wait_for(|s| *s == State::Ready).await.is_err() {
            return;
        }
        let registration: Registration = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                result = registry.register(service, addr, ttl) => match result {
                    Ok(registration) => break registration,
                    Err(e) => {
                        tracing::warn!(service, %addr, error = %e, "could not register; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                },
            }
        };
        tracing::info!(service, %addr, "registered in the service registry");
        tokio::select! {
            () = stop.cancelled() => {}
            _ = states.wait_for(|s| *s != State::Ready) => {}
        }
        match registration.deregister().await {
            Ok(()) => tracing::info!(service, %addr, "deregistered from the service registry"),
            Err(e) => {
                tracing::warn!(service, %addr, error = %e, "could not deregister; the lease will expire")
            }
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Resolves upstreams by watching their registrations.
#[derive(Debug)]
pub struct RegistryResolver {
    registry: Registry,
    watches: tokio::sync::Mutex<HashMap<String, watch::Receiver<Vec<SocketAddr>>>>,
}

impl RegistryResolver {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            watches: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

/// The registered name a host stands for: its first label, less a
/// `-grpc` suffix (`catalog-grpc.emporium.svc` → `catalog`).
pub fn service_name(host: &str) -> &str {
    let label = host.split('.').next().unwrap_or(host);
    label.strip_suffix("-grpc").unwrap_or(label)
}

impl Resolve for RegistryResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            let service = service_name(host);
            let mut watches = self.watches.lock().await;
            if let Some(current) = watches.get(service) {
                return Ok(current.borrow().clone());
            }
            let receiver = self
                .registry
                .watch(service)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let current = receiver.borrow().clone();
            watches.insert(service.to_owned(), receiver);
            Ok(current)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_names_its_service() {
        assert_eq!(service_name("catalog"), "catalog");
        assert_eq!(service_name("catalog-grpc"), "catalog");
        assert_eq!(
            service_name("catalog-grpc.emporium.svc.cluster.local"),
            "catalog"
        );
    }

    #[test]
    fn bad_registry_settings_name_their_key() {
        let settings = RegistrySettings {
            url: Some("etcd:2379".into()),
            ..RegistrySettings::default()
        };
        let e = settings.validate("catalog").unwrap_err();
        assert!(e.to_string().contains("catalog.registry.url"), "{e}");
        let settings = RegistrySettings {
            url: Some("http://127.0.0.1:2379".into()),
            ttl: ConfigDuration::from_millis(200),
            ..RegistrySettings::default()
        };
        let e = settings.validate("catalog").unwrap_err();
        assert!(e.to_string().contains("catalog.registry.ttl"), "{e}");
        assert!(RegistrySettings::default().validate("catalog").is_ok());
    }
}
