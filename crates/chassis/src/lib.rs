//! The chassis every Emporium service stands on.
//!
//! A service built on it gets, with a few lines of its own:
//! - [`config`]: typed configuration, layered defaults < file < `EMPORIUM_…`
//!   environment, secrets from `…_FILE` paths, and a start-up error naming the bad key;
//! - [`telemetry`]: structured logs (JSON, or pretty on a terminal) carrying W3C
//!   trace ids, and Prometheus RED metrics per route/method;
//! - [`admin`]: the admin HTTP port with `/livez`, `/readyz` and `/metrics`;
//! - [`grpc`]: a gRPC server with the standard health protocol, reflection,
//!   trace propagation and metrics, and a client channel factory;
//! - [`client`]: the one stack every gRPC client goes through: deadline,
//!   budgeted retries, per-request balancing over every endpoint, breakers;
//! - [`http`]: the same request observation for HTTP (axum) servers;
//! - [`identity`] and [`jwt`]: who is calling (verified at the gateway,
//!   forwarded in gRPC metadata) and the Ed25519 access tokens that say so;
//! - [`error`]: one error model mapped to problem+json (RFC 9457) at the edge
//!   and to gRPC status codes inside;
//! - [`net`]: dual-stack (`[::]`) listeners;
//! - [`lifecycle`]: graceful shutdown on SIGTERM/SIGINT with a drain deadline.
//!
//! Every piece takes what it needs as values (listeners, tokens, registries):
//! there is no global state apart from the process-wide log subscriber.

pub mod admin;
pub mod client;
pub mod config;
pub mod currency;
pub mod error;
pub mod grpc;
pub mod health;
pub mod http;
pub mod http_server;
pub mod identity;
pub mod jwt;
pub mod lifecycle;
pub mod net;
pub mod telemetry;

pub use error::{ErrorKind, Problem};
pub use health::Health;
pub use telemetry::metrics::Metrics;
pub use telemetry::trace::TraceContext;
