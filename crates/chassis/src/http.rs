//! Observation of HTTP requests (axum): request ids, trace context, RED
//! metrics and one log line per request.
//!
//! Add it with `router.layer(axum::middleware::from_fn_with_state(metrics, observe))`
//! so that it runs after routing and sees the matched route template; the
//! route label is then `/api/v1/products/{id}`, never the raw path (which
//! would give every product its own series).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue};
use tracing::Instrument;

use crate::{Metrics, TraceContext};

/// The request id header, echoed on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being handled (from `x-request-id`, or generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The caller's id if it is safe to log and echo, else a new one.
    fn from_header(value: Option<&HeaderValue>) -> Self {
        let valid = value.and_then(|v| v.to_str().ok()).filter(|s| {
            (1..=128).contains(&s.len())
                && s.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'=')
                })
        });
        Self(valid.map_or_else(
            || {
                use crate::telemetry::trace::random_u64;
                format!("{:016x}{:016x}", random_u64(), random_u64())
            },
            str::to_owned,
        ))
    }
}

/// The middleware; see the module docs.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let request_id = RequestId::from_header(request.headers().get(&X_REQUEST_ID));
    let trace = TraceContext::for_incoming(request.headers());
    request.extensions_mut().insert(request_id.clone());
    request.extensions_mut().insert(trace);
    let span = tracing::info_span!(
        "http.request",
        http.method = %method,
        http.route = %route,
        request_id = %request_id.0,
        trace_id = %trace.trace_id(),
        span_id = %trace.span_id(),
    );
    let in_flight = metrics.http_started();
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics.record_http(&route, &method, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            http.status = status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_echoed_when_safe_and_replaced_otherwise() {
        let ok = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(RequestId::from_header(Some(&ok)).0, "abc-123_x.y");
        let bad = HeaderValue::from_static("has space<script>");
        assert_eq!(RequestId::from_header(Some(&bad)).0.len(), 32);
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert_eq!(RequestId::from_header(Some(&long)).0.len(), 32);
        assert_eq!(RequestId::from_header(None).0.len(), 32);
    }
}
