//! The metrics of every gRPC client of a service (one set per registry).
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `grpc_client_requests_total` | upstream, endpoint | calls answered by an endpoint (or failed on it) |
//! | `grpc_client_failures_total` | upstream, endpoint | of those, failures that count toward its breaker |
//! | `grpc_client_ejections_total` | upstream, endpoint, reason | breaker trips: `failing` or `unreachable` |
//! | `grpc_client_endpoints` | upstream | endpoints the name resolves to now |
//! | `grpc_client_endpoints_ejected` | upstream | of those, out of rotation now |
//! | `grpc_client_breaker_state` | upstream | 0 every endpoint in rotation, 1 some ejected, 2 all ejected |
//! | `grpc_client_fail_fast_total` | upstream | calls refused at once: no endpoint could take them |
//! | `grpc_client_retries_total` | upstream | attempts after the first |
//! | `grpc_client_retry_budget_exhausted_total` | upstream | retries not made because the budget was spent |
//! | `grpc_client_deadline_exceeded_total` | upstream | calls that ran out of time (or had none left) |
//! | `grpc_client_resolve_errors_total` | upstream | failed resolutions of the upstream's name |

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    upstream: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EjectionLabels {
    upstream: String,
    endpoint: String,
    reason: &'static str,
}

type Gauges = Family<UpstreamLabel, Gauge<i64, AtomicI64>>;

/// Client metric families, registered once in a service's [`Metrics`].
#[derive(Debug, Default)]
pub struct ClientMetrics {
    requests: Family<EndpointLabels, Counter>,
    failures: Family<EndpointLabels, Counter>,
    ejections: Family<EjectionLabels, Counter>,
    endpoints: Gauges,
    ejected: Gauges,
    breaker: Gauges,
    fail_fast: Family<UpstreamLabel, Counter>,
    retries: Family<UpstreamLabel, Counter>,
    budget_exhausted: Family<UpstreamLabel, Counter>,
    deadline_exceeded: Family<UpstreamLabel, Counter>,
    resolve_errors: Family<UpstreamLabel, Counter>,
}

fn upstream(name: &str) -> UpstreamLabel {
    UpstreamLabel {
        upstream: name.to_owned(),
    }
}

fn endpoint(name: &str, endpoint: &str) -> EndpointLabels {
    EndpointLabels {
        upstream: name.to_owned(),
        endpoint: endpoint.to_owned(),
    }
}

impl ClientMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "grpc_client_requests",
            "Calls made to each upstream endpoint",
            m.requests.clone(),
        );
        metrics.register(
            "grpc_client_failures",
            "Calls to an endpoint that count toward its breaker",
            m.failures.clone(),
        );
        metrics.register(
            "grpc_client_ejections",
            "Endpoints taken out of rotation, by reason",
            m.ejections.clone(),
        );
        metrics.register(
            "grpc_client_endpoints",
            "Endpoints each upstream resolves to",
            m.endpoints.clone(),
        );
        metrics.register(
            "grpc_client_endpoints_ejected",
            "Endpoints of each upstream out of rotation",
            m.ejected.clone(),
        );
        metrics.register(
            "grpc_client_breaker_state",
            "0: every endpoint in rotation, 1: some ejected, 2: all ejected",
            m.breaker.clone(),
        );
        metrics.register(
            "grpc_client_fail_fast",
            "Calls refused at once because no endpoint could take them",
            m.fail_fast.clone(),
        );
        metrics.register(
            "grpc_client_retries",
            "Attempts after the first",
            m.retries.clone(),
        );
        metrics.register(
            "grpc_client_retry_budget_exhausted",
            "Retries not made because the retry budget was spent",
            m.budget_exhausted.clone(),
        );
        metrics.register(
            "grpc_client_deadline_exceeded",
            "Calls that ran out of time",
            m.deadline_exceeded.clone(),
        );
        metrics.register(
            "grpc_client_resolve_errors",
            "Failed resolutions of an upstream's name",
            m.resolve_errors.clone(),
        );
        m
    }

    pub(crate) fn request(&self, name: &str, at: &str) {
        self.requests.get_or_create(&endpoint(name, at)).inc();
    }

    pub(crate) fn failure(&self, name: &str, at: &str) {
        self.failures.get_or_create(&endpoint(name, at)).inc();
    }

    pub(crate) fn ejection(&self, name: &str, at: &str, reason: &'static str) {
        self.ejections
            .get_or_create(&EjectionLabels {
                upstream: name.to_owned(),
                endpoint: at.to_owned(),
                reason,
            })
            .inc();
    }

    pub(crate) fn endpoints(&self, name: &str, total: usize, ejected: usize) {
        let label = upstream(name);
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.endpoints.get_or_create(&label).set(as_i64(total));
        self.ejected.get_or_create(&label).set(as_i64(ejected));
        let state = match ejected {
            0 => 0,
            n if n < total => 1,
            _ => 2,
        };
        self.breaker.get_or_create(&label).set(state);
    }

    pub(crate) fn fail_fast(&self, name: &str) {
        self.fail_fast.get_or_create(&upstream(name)).inc();
    }

    pub(crate) fn retry(&self, name: &str) {
        self.retries.get_or_create(&upstream(name)).inc();
    }

    pub(crate) fn budget_exhausted(&self, name: &str) {
        self.budget_exhausted.get_or_create(&upstream(name)).inc();
    }

    pub(crate) fn deadline_exceeded(&self, name: &str) {
        self.deadline_exceeded.get_or_create(&upstream(name)).inc();
    }

    pub(crate) fn resolve_error(&self, name: &str) {
        self.resolve_errors.get_or_create(&upstream(name)).inc();
    }
}
