//! gRPC servers and clients.
//!
//! [`serve`] runs a tonic server that always carries the standard health
//! protocol (`grpc.health.v1`, following the service's [`Health`]) and server
//! reflection, and wraps every call in [`ObserveLayer`]: trace context from
//! `traceparent` metadata, a `grpc.request` span, RED metrics, and the
//! configured fault injection. [`run_service`] is the whole life of a gRPC
//! service on the [`Ports`] it bound: admin port, readiness, serving and
//! drain. Clients ([`Client`], [`CallContext`], [`Upstream`]) are in
//! [`crate::client`] and re-exported here.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower::{Layer, Service};
use tracing::Instrument;

pub use crate::client::{CallContext, CallError, Channel, Client, Deadline, Upstream, validate};
use crate::config::Duration as ConfigDuration;
use crate::health::State as Life;
use crate::lifecycle::{self, Stopped};
use crate::net::{BindError, bind_named};
use crate::{Health, Metrics, TraceContext};

/// Deliberate faults, for resilience demos and drain tests. Off by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every call of the service's own API (not health, not reflection).
    pub latency: Option<ConfigDuration>,
}

/// What a gRPC server is made of besides its routes.
#[derive(Debug, Clone)]
pub struct ServerParts {
    /// Fully-qualified service names reported by the health protocol, e.g.
    /// `emporium.catalog.v1.CatalogService`; `""` (the whole server) is implied.
    pub service_names: &'static [&'static str],
    /// Encoded `FileDescriptorSet` for reflection.
    pub descriptor_set: &'static [u8],
    pub health: Health,
    pub metrics: Arc<Metrics>,
    pub faults: Faults,
}

/// Serves `routes` on `listener` until `stop` is cancelled, then lets calls
/// in flight finish (the caller bounds that with its drain deadline).
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    parts: ServerParts,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(mirror_health(
        parts.health.clone(),
        reporter,
        parts.service_names,
    ));
    let (reflection, reflection_alpha) = reflection(&parts);
    let layer = ObserveLayer {
        metrics: parts.metrics,
        latency: parts.faults.latency.map(ConfigDuration::get),
    };
    let mut server = Server::builder().layer(layer);
    let router = server.add_routes(routes).add_service(health_service);
    let router = match (reflection, reflection_alpha) {
        (Ok(v1), Ok(v1alpha)) => router.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "gRPC reflection disabled: bad descriptor set");
            router
        }
    };
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
        .await
}

/// The health service's name, listed by reflection beside the service's own.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

type Reflection<T> = Result<T, tonic_reflection::server::Error>;

/// Reflection in both versions tools speak (v1, and v1alpha for older
/// grpcurl, Evans and the Python client), listing exactly the services this
/// port serves: its own, health and reflection.
fn reflection(
    parts: &ServerParts,
) -> (
    Reflection<
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
    >,
    Reflection<
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    >,
) {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(parts.descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(HEALTH_SERVICE);
        for name in parts.service_names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    (
        builder()
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .build_v1(),
        builder()
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
            .build_v1alpha(),
    )
}

/// The two listeners of a gRPC service, bound but not yet serving: the
/// service's own port and its admin port.
#[derive(Debug)]
pub struct Ports {
    grpc: TcpListener,
    admin: TcpListener,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl Ports {
    /// Binds `grpc_addr` and `admin_addr` for `service` (e.g. `"catalog"`;
    /// port 0 picks a free port). A failure names the setting that chooses
    /// the address, `EMPORIUM_<SERVICE>__GRPC_ADDR` or `…__ADMIN_ADDR`.
    pub fn bind(
        service: &str,
        grpc_addr: SocketAddr,
        admin_addr: SocketAddr,
    ) -> Result<Self, BindError> {
        let prefix = format!("EMPORIUM_{}", service.to_ascii_uppercase());
        let grpc = bind_named(
            &format!("{service} gRPC port"),
            &format!("{prefix}__GRPC_ADDR"),
            grpc_addr,
        )?;
        let admin = bind_named(
            &format!("{service} admin port"),
            &format!("{prefix}__ADMIN_ADDR"),
            admin_addr,
        )?;
        Ok(Self {
            grpc_addr: grpc.local_addr().unwrap_or(grpc_addr),
            admin_addr: admin.local_addr().unwrap_or(admin_addr),
            grpc,
            admin,
        })
    }

    /// The address the gRPC port is bound to (the chosen port when 0 was asked).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address the admin port is bound to.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

/// Everything [`run_service`] needs besides the routes.
#[derive(Debug)]
pub struct GrpcService {
    /// The service's short name (`"catalog"`), for logs.
    pub name: &'static str,
    /// See [`ServerParts::service_names`].
    pub service_names: &'static [&'static str],
    /// See [`ServerParts::descriptor_set`].
    pub descriptor_set: &'static [u8],
    pub ports: Ports,
    /// The service's registry; a service that registers metrics of its own
    /// (outbox, consumer lag, reloads) creates it first and passes it here.
    pub metrics: Arc<Metrics>,
    pub faults: Faults,
    pub drain_timeout: Duration,
    /// Where the service registers itself while ready (nowhere by default).
    pub registry: crate::client::RegistrySettings,
}

/// Runs a gRPC service until `shutdown` is cancelled, then drains it: the
/// admin port and readiness come from [`lifecycle::run`], the server from
/// [`serve`], both following one new [`Health`].
pub async fn run_service(
    service: GrpcService,
    routes: Routes,
    shutdown: CancellationToken,
) -> Result<Stopped, tonic::transport::Error> {
    let GrpcService {
        name,
        service_names,
        descriptor_set,
        ports:
            Ports {
                grpc,
                admin,
                grpc_addr,
                ..
            },
        metrics,
        faults,
        drain_timeout,
        registry,
    } = service;
    let health = Health::new();
    let registration =
        registry.spawn_registration(name, grpc_addr, health.clone(), shutdown.child_token());
    let parts = ServerParts {
        service_names,
        descriptor_set,
        health: health.clone(),
        metrics: metrics.clone(),
        faults,
    };
    let service = lifecycle::Service {
        name,
        health,
        metrics,
        admin,
        drain_timeout,
    };
    let stopped = lifecycle::run(service, shutdown, |stop| serve(grpc, routes, parts, stop)).await;
    if let Some(registration) = registration {
        // Deregistration began with the drain; give it its deadline.
        let _ = tokio::time::timeout(Duration::from_secs(3), registration).await;
    }
    stopped
}

/// Keeps the gRPC health status equal to the service's readiness.
async fn mirror_health(
    health: Health,
    reporter: tonic_health::server::HealthReporter,
    names: &'static [&'static str],
) {
    let mut states = health.subscribe();
    loop {
        let status = match *states.borrow_and_update() {
            Life::Ready => ServingStatus::Serving,
            Life::Starting | Life::Draining => ServingStatus::NotServing,
        };
        reporter.set_service_status("", status).await;
        for name in names {
            reporter.set_service_status(*name, status).await;
        }
        if states.changed().await.is_err() {
            return;
        }
    }
}

/// Trace context, span, metrics and fault injection around every gRPC call.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    latency: Option<Duration>,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
            latency: self.latency,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
    latency: Option<Duration>,
}

impl<S, B, RB> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path().to_owned();
        let trace = TraceContext::for_incoming(request.headers());
        request.extensions_mut().insert(trace);
        if let Some(deadline) = Deadline::from_headers(request.headers()) {
            request.extensions_mut().insert(deadline);
        }
        let infrastructure = method.starts_with("/grpc.");
        let latency = if infrastructure { None } else { self.latency };
        let metrics = self.metrics.clone();
        let span = tracing::info_span!(
            "grpc.request",
            rpc.method = %method,
            trace_id = %trace.trace_id(),
            span_id = %trace.span_id(),
        );
        let call = async move {
            let started = Instant::now();
            if let Some(latency) = latency {
                tokio::time::sleep(latency).await;
            }
            let result = inner.call(request).await;
            let code = match &result {
                Ok(response) => response_code(response.headers()),
                Err(_) => tonic::Code::Unknown,
            };
            let elapsed = started.elapsed();
            metrics.record_grpc(&method, code, elapsed);
            if !infrastructure {
                tracing::info!(grpc.code = ?code, elapsed_ms = elapsed.as_secs_f64() * 1e3, "call finished");
            }
            result
        };
        Box::pin(call.instrument(span)) as Pin<Box<_>>
    }
}

/// A unary call that failed answers with `grpc-status` in the headers
/// (trailers-only); a successful one sends headers without it and the status
/// `0` in the trailers. Streams that fail after their first message are
/// counted as OK here.
fn response_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_port() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[tokio::test]
    async fn ports_on_port_zero_are_two_distinct_free_ports() {
        let ports = Ports::bind("catalog", any_port(), any_port()).unwrap();
        assert_ne!(ports.grpc_addr().port(), 0);
        assert_ne!(ports.admin_addr().port(), 0);
        assert_ne!(ports.grpc_addr(), ports.admin_addr());
        assert_eq!(ports.grpc_addr(), ports.grpc.local_addr().unwrap());
        assert_eq!(ports.admin_addr(), ports.admin.local_addr().unwrap());
    }

    #[tokio::test]
    async fn a_port_in_use_fails_naming_its_setting() {
        let taken = crate::net::bind(any_port()).unwrap();
        let addr = taken.local_addr().unwrap();

        let err = Ports::bind("catalog", addr, any_port()).unwrap_err();
        assert_eq!(err.key, "EMPORIUM_CATALOG__GRPC_ADDR");
        assert_eq!(err.what, "catalog gRPC port");
        assert_eq!(err.addr, addr);
        assert!(err.to_string().contains("EMPORIUM_CATALOG__GRPC_ADDR"));

        let err = Ports::bind("catalog", any_port(), addr).unwrap_err();
        assert_eq!(err.key, "EMPORIUM_CATALOG__ADMIN_ADDR");
        assert_eq!(err.what, "catalog admin port");
    }
}
