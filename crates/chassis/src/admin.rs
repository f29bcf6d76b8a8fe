//! The admin HTTP port: `/livez`, `/readyz`, `/metrics`.
//!
//! Kept apart from the service's own port so probes and scrapes never queue
//! behind user traffic, and so it can keep answering (`/readyz` = 503) while
//! the service drains.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{StatusCode, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::State as Life;
use crate::telemetry::metrics::CONTENT_TYPE;
use crate::{Health, Metrics};

#[derive(Clone)]
struct AdminState {
    health: Health,
    metrics: Arc<Metrics>,
}

/// The admin router, for tests that call it without a socket.
pub fn router(health: Health, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { health, metrics })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    match state.health.state() {
        Life::Ready => (StatusCode::OK, "ready\n"),
        Life::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        Life::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Serves the admin port until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let app = router(health, metrics);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "admin server failed");
    }
}
