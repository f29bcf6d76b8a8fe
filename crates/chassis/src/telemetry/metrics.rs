//! Prometheus metrics: one registry per service.
//!
//! Each service owns a [`Metrics`] (so in `emporium up`, where every service
//! shares a process, each admin port still shows only its own service). The
//! chassis records RED metrics for every HTTP and gRPC request:
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `http_server_requests_total` | route, method, status | requests answered |
//! | `http_server_errors_total` | route, method | answered with a 5xx |
//! | `http_server_request_duration_seconds` | route, method | latency histogram |
//! | `http_server_requests_in_flight` | | requests being handled |
//! | `grpc_server_requests_total` | method, code | calls answered |
//! | `grpc_server_errors_total` | method | answered with a server-side error code |
//! | `grpc_server_request_duration_seconds` | method | latency histogram |
//!
//! Every series also carries `service`. Services add their own metrics with
//! [`Metrics::register`].

use std::sync::Mutex;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcMethod {
    method: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A service's metrics registry and its request metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_errors: Family<RouteLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    http_in_flight: Gauge<i64, AtomicI64>,
    grpc_requests: Family<GrpcLabels, Counter>,
    grpc_errors: Family<GrpcMethod, Counter>,
    grpc_duration: Histograms<GrpcMethod>,
    /// The families of every gRPC client, registered by the first client.
    grpc_client: std::sync::OnceLock<std::sync::Arc<crate::client::metrics::ClientMetrics>>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry =
            Registry::with_labels([("service".into(), service.to_owned().into())].into_iter());
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_errors = Family::<RouteLabels, Counter>::default();
        let http_duration: Histograms<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let http_in_flight = Gauge::<i64, AtomicI64>::default();
        let grpc_requests = Family::<GrpcLabels, Counter>::default();
        let grpc_errors = Family::<GrpcMethod, Counter>::default();
        let grpc_duration: Histograms<GrpcMethod> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_server_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_server_errors",
            "HTTP requests answered with a 5xx status",
            http_errors.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "http_server_requests_in_flight",
            "HTTP requests being handled",
            http_in_flight.clone(),
        );
        registry.register(
            "grpc_server_requests",
            "gRPC calls answered",
            grpc_requests.clone(),
        );
        registry.register(
            "grpc_server_errors",
            "gRPC calls answered with a server-side error",
            grpc_errors.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "gRPC call latency",
            grpc_duration.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_errors,
            http_duration,
            http_in_flight,
            grpc_requests,
            grpc_errors,
            grpc_duration,
            grpc_client: std::sync::OnceLock::new(),
        }
    }

    /// The gRPC client metrics of this service (see [`crate::client::metrics`]).
    pub fn grpc_client(&self) -> std::sync::Arc<crate::client::metrics::ClientMetrics> {
        std::sync::Arc::clone(self.grpc_client.get_or_init(|| {
            std::sync::Arc::new(crate::client::metrics::ClientMetrics::register(self))
        }))
    }

    /// Adds a service-specific metric (e.g. outbox lag).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        registry.register(name, help, metric);
    }

    pub fn http_started(&self) -> InFlight<'_> {
        self.http_in_flight.inc();
        InFlight(&self.http_in_flight)
    }

    pub fn record_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RouteLabels {
            route: route.to_owned(),
            method: method.to_owned(),
        };
        self.http_requests
            .get_or_create(&HttpLabels {
                route: labels.route.clone(),
                method: labels.method.clone(),
                status,
            })
            .inc();
        if status >= 500 {
            self.http_errors.get_or_create(&labels).inc();
        }
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_grpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let method = GrpcMethod {
            method: method.to_owned(),
        };
        self.grpc_requests
            .get_or_create(&GrpcLabels {
                method: method.method.clone(),
                code: code_name(code).to_owned(),
            })
            .inc();
        if is_server_error(code) {
            self.grpc_errors.get_or_create(&method).inc();
        }
        self.grpc_duration
            .get_or_create(&method)
            .observe(elapsed.as_secs_f64());
    }

    /// The registry in OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// Decrements the in-flight gauge when the request is done (or dropped).
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Codes that mean the server failed, as opposed to a caller's mistake.
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_request_metrics_with_service_label() {
        let m = Metrics::new("catalog");
        m.record_http("/api/v1/products", "GET", 200, Duration::from_millis(3));
        m.record_http("/api/v1/products", "GET", 503, Duration::from_millis(3));
        m.record_grpc(
            "/emporium.catalog.v1.CatalogService/GetProduct",
            tonic::Code::NotFound,
            Duration::from_millis(1),
        );
        let text = m.render();
        assert!(text.contains(r#"http_server_requests_total{service="catalog",route="/api/v1/products",method="GET",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"http_server_errors_total{service="catalog",route="/api/v1/products",method="GET"} 1"#), "{text}");
        assert!(text.contains(r#"grpc_server_requests_total{service="catalog",method="/emporium.catalog.v1.CatalogService/GetProduct",code="NOT_FOUND"} 1"#), "{text}");
        assert!(
            !text.contains("grpc_server_errors_total{"),
            "NOT_FOUND is a caller's error: {text}"
        );
        assert!(
            text.contains("http_server_request_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn in_flight_gauge_follows_guards() {
        let m = Metrics::new("x");
        let a = m.http_started();
        let b = m.http_started();
        assert!(
            m.render()
                .contains("http_server_requests_in_flight{service=\"x\"} 2")
        );
        drop(a);
        drop(b);
        assert!(
            m.render()
                .contains("http_server_requests_in_flight{service=\"x\"} 0")
        );
    }
}
