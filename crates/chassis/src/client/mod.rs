//! Calls between services: the one client stack every gRPC client uses.
//!
//! In order, outermost first:
//! 1. **deadline** — a call gets the caller's remaining budget (the
//!    [`CallContext`]'s deadline, less [`DEADLINE_MARGIN`]) or the
//!    upstream's `timeout`, whichever ends first; it travels to the server
//!    as `grpc-timeout`, and the call is abandoned when it passes;
//! 2. **retry** — only calls marked idempotent ([`Client::call_idempotent`]:
//!    reads, and writes keyed by an idempotency key or order id) are retried,
//!    only on UNAVAILABLE, with jittered exponential backoff, never past the
//!    deadline, never more than `retry.max_attempts` times, and only while a
//!    retry budget allows (retries may add `budget_percent` % to the calls
//!    plus `budget_min_per_second` per second, over `budget_window` —
//!    linkerd's defaults: 20 %, 10/s, 10 s). A call that provably never left
//!    (connection refused) is retried whatever it is: it cannot have done
//!    anything;
//! 3. **balance** — power of two choices over every endpoint the upstream's
//!    name resolves to, by peak-EWMA load ([`balance`]);
//! 4. **breaker** — per-endpoint outlier ejection ([`balance`]);
//! 5. **connection** — one lazily-connected HTTP/2 channel per endpoint.
//!
//! Retries and timeouts live here only; a mesh in front must not add its
//! own (see `docs/architecture.md`).

pub mod balance;
pub mod discovery;
pub mod metrics;
pub mod resolve;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};

use crate::config::{ConfigError, Duration as ConfigDuration};
use crate::identity::Identity;
use crate::{Metrics, TraceContext};
pub use balance::Balanced;
use balance::{AttemptSlot, Pool, Target};
pub use discovery::RegistrySettings;
use metrics::ClientMetrics;
pub use resolve::{Resolve, Resolver, StaticResolver, SystemResolver};

/// The channel type generated clients are built on.
pub type Channel = Balanced;

/// Taken off the caller's remaining time before it is passed on, so the
/// answer (or the failure) can still travel back in time.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// gRPC metadata key on an UNAVAILABLE status saying when to try again
/// (whole seconds), which the gateway turns into `Retry-After`.
pub const RETRY_AFTER_KEY: &str = "retry-after";

/// How a client reaches an upstream service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// `http://host:port` of the service's gRPC port. The host is resolved
    /// to all its addresses (a headless Service in Kubernetes) and calls are
    /// balanced over them.
    pub url: String,
    /// Bound on a whole call, retries included (a caller's shorter remaining
    /// budget wins).
    #[serde(default = "default_call_timeout")]
    pub timeout: ConfigDuration,
    /// Bound on establishing a connection; a stopped service fails fast.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// How often the host name is resolved again (also at once after a
    /// connection failure).
    #[serde(default = "default_resolve_interval")]
    pub resolve_interval: ConfigDuration,
    /// A fixed list of endpoint addresses to use instead of resolving the
    /// URL's host (which still names the upstream as `:authority`), e.g.
    /// `["10.0.0.5:50051", "10.0.0.6:50051"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<std::net::SocketAddr>,
    #[serde(default)]
    pub retry: RetrySettings,
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// Where endpoint addresses come from; the system resolver unless a test
    /// or the registry backend injects another. Not configuration.
    #[serde(skip)]
    pub resolver: Resolver,
}

/// Retries of idempotent calls.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts of one call, the first included (1 turns retries off).
    pub max_attempts: u32,
    /// Retries may add this share of the calls made (linkerd: 20 %)…
    pub budget_percent: u32,
    /// …plus this many per second regardless (linkerd: 10)…
    pub budget_min_per_second: u32,
    /// …counted over this window (linkerd: 10 s; 1 s to 60 s).
    pub budget_window: ConfigDuration,
    /// First backoff; each further one doubles, up to `backoff_max`, with
    /// full jitter.
    pub backoff_base: ConfigDuration,
    pub backoff_max: ConfigDuration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget_percent: 20,
            budget_min_per_second: 10,
            budget_window: ConfigDuration::from_secs(10),
            backoff_base: ConfigDuration::from_millis(25),
            backoff_max: ConfigDuration::from_millis(250),
        }
    }
}

/// Per-endpoint outlier ejection.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failures that eject an endpoint (linkerd's failure
    /// accrual: 7).
    pub failures: u32,
    /// First ejection; each further one doubles, up to `ejection_max`, less
    /// up to half at random (linkerd: 1 s to 60 s, jittered).
    pub ejection_min: ConfigDuration,
    pub ejection_max: ConfigDuration,
    /// Most endpoints ejected for failing at once, in percent; one may
    /// always be (Envoy's outlier detection: 10 %, at least one).
    pub max_ejected_percent: u8,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 7,
            ejection_min: ConfigDuration::from_secs(1),
            ejection_max: ConfigDuration::from_secs(60),
            max_ejected_percent: 10,
        }
    }
}

fn default_call_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(2)
}

fn default_connect_timeout() -> ConfigDuration {
    ConfigDuration::from_millis(500)
}

fn default_resolve_interval() -> ConfigDuration {
    ConfigDuration::from_secs(5)
}

impl Upstream {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: default_call_timeout(),
            connect_timeout: default_connect_timeout(),
            resolve_interval: default_resolve_interval(),
            endpoints: Vec::new(),
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            resolver: Resolver::default(),
        }
    }

    /// The same upstream, its endpoints resolved by `resolver`.
    #[must_use]
    pub fn resolved_by(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }
}

/// Checks an upstream's settings at configuration time (no runtime needed);
/// `key` is where it sits (`gateway.catalog`).
pub fn validate(key: &str, upstream: &Upstream) -> Result<(), ConfigError> {
    target(key, upstream, String::new()).map(drop)
}

fn target(key: &str, upstream: &Upstream, name: String) -> Result<Target, ConfigError> {
    let invalid = |field: &str, why: String| ConfigError::invalid(format!("{key}.{field}"), why);
    let bad_url = |why: &str| invalid("url", format!("`{}`: {why}", upstream.url));
    let origin: http::Uri = upstream
        .url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad_url(&e.to_string()))?;
    let scheme = match origin.scheme_str() {
        Some(s @ ("http" | "https")) => s.to_owned(),
        _ => return Err(bad_url("must start with http:// or https://")),
    };
    let host = origin
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad_url("names no host"))?
        .to_owned();
    let port = origin
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let r = &upstream.retry;
    if !(1..=10).contains(&r.max_attempts) {
        return Err(invalid("retry.max_attempts", "must be 1 to 10".into()));
    }
    if r.budget_percent > 1000 {
        return Err(invalid("retry.budget_percent", "must be 0 to 1000".into()));
    }
    let window = r.budget_window.get();
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
        return Err(invalid("retry.budget_window", "must be 1s to 60s".into()));
    }
    if r.backoff_base.get() > r.backoff_max.get() {
        return Err(invalid(
            "retry.backoff_base",
            format!("must not exceed retry.backoff_max ({})", r.backoff_max),
        ));
    }
    let b = &upstream.breaker;
    if b.failures == 0 {
        return Err(invalid("breaker.failures", "must be at least 1".into()));
    }
    if b.max_ejected_percent > 100 {
        return Err(invalid(
            "breaker.max_ejected_percent",
            "must be 0 to 100".into(),
        ));
    }
    if b.ejection_min.get().is_zero() || b.ejection_min.get() > b.ejection_max.get() {
        return Err(invalid(
            "breaker.ejection_min",
            format!(
                "must be above 0 and not exceed breaker.ejection_max ({})",
                b.ejection_max
            ),
        ));
    }
    if upstream.resolve_interval.get() < Duration::from_millis(100) {
        return Err(invalid("resolve_interval", "must be at least 100ms".into()));
    }
    if upstream.timeout.get().is_zero() {
        return Err(invalid("timeout", "must be above 0".into()));
    }
    Ok(Target {
        name,
        scheme,
        host,
        port,
        origin,
        resolver: if upstream.endpoints.is_empty() {
            upstream.resolver.clone()
        } else {
            Resolver::new(resolve::FixedAddresses(upstream.endpoints.clone()))
        },
        resolve_interval: upstream.resolve_interval.get(),
        connect_timeout: upstream.connect_timeout.get(),
        breaker: upstream.breaker,
    })
}

/// An upstream call that failed.
#[derive(Debug)]
pub enum CallError {
    /// The deadline passed before an answer came (or no time was left to ask).
    DeadlineExceeded,
    /// The upstream answered with an error status (or could not be reached).
    Status(tonic::Status),
}

/// When the work of a request must be done by: carried in the extensions of
/// incoming gRPC requests (from `grpc-timeout`) and in [`CallContext`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// Time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// The deadline a request's `grpc-timeout` header sets, if it has one.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Self> {
        let value = headers.get("grpc-timeout")?.to_str().ok()?;
        parse_grpc_timeout(value).map(Self::after)
    }
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`), as the gRPC over HTTP/2 spec writes it.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// What an outgoing call carries from the request that causes it: the trace
/// to continue, the caller (when a user is behind it) and the deadline.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub trace: TraceContext,
    pub identity: Option<Identity>,
    pub deadline: Option<Deadline>,
}

impl CallContext {
    /// A context with no deadline of its own (each call gets its upstream's
    /// `timeout`): for work a service does on its own behalf.
    pub fn new(trace: TraceContext, identity: Option<Identity>) -> Self {
        Self {
            trace,
            identity,
            deadline: None,
        }
    }

    /// The same context with `deadline` (the earlier one wins if it has one).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// The same context without a deadline: for work that must finish even
    /// though the request that started it gave up (compensations).
    #[must_use]
    pub fn detached(&self) -> Self {
        Self {
            deadline: None,
            ..self.clone()
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| d.remaining().is_zero())
    }

    /// For calls made while handling `request`: its trace context and
    /// deadline (put there by the server's observation layer) and its caller.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        let trace = request
            .extensions()
            .get::<TraceContext>()
            .copied()
            .unwrap_or_else(TraceContext::new_root);
        Self {
            trace,
            identity: Identity::from_metadata(request.metadata()),
            deadline: request.extensions().get::<Deadline>().copied(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    name: String,
    retry: RetrySettings,
    budget: TpsBudget,
    metrics: Arc<ClientMetrics>,
    channel: Balanced,
}

/// A client of one upstream service: a generated gRPC client on a
/// [`Balanced`] channel, and the policies of the module docs.
#[derive(Debug, Clone)]
pub struct Client<C> {
    pub client: C,
    /// Bound on each call (see [`Upstream::timeout`]).
    pub deadline: Duration,
    shared: Arc<Shared>,
}

impl<C: Clone> Client<C> {
    /// A client of `upstream` (needs a Tokio runtime: name resolution starts
    /// in the background at once). `key` names its configuration for errors
    /// (`gateway.catalog`); its last part names the upstream in metrics.
    pub fn new(
        key: &str,
        upstream: &Upstream,
        metrics: &Metrics,
        make: fn(Channel) -> C,
    ) -> Result<Self, ConfigError> {
        let name = key.rsplit('.').next().unwrap_or(key).to_owned();
        let target = target(key, upstream, name.clone())?;
        let client_metrics = metrics.grpc_client();
        let channel = Pool::start(target, Arc::clone(&client_metrics));
        let retry = upstream.retry;
        let budget = TpsBudget::new(
            retry.budget_window.get(),
            retry.budget_min_per_second,
            retry.budget_percent as f32 / 100.0,
        );
        Ok(Self {
            client: make(channel.clone()),
            deadline: upstream.timeout.get(),
            shared: Arc::new(Shared {
                name,
                retry,
                budget,
                metrics: client_metrics,
                channel,
            }),
        })
    }

    /// The balanced channel under this client (endpoint list, refresh).
    pub fn channel(&self) -> &Balanced {
        &self.shared.channel
    }

    /// One call that is not safe to repeat (it is retried only when it
    /// provably never reached the upstream), e.g.
    /// `cart.call(&ctx, request, |mut c, r| async move { c.add_item(r).await })`.
    pub async fn call<Req, Resp, F, Fut>(
        &self,
        ctx: &CallContext,
        message: Req,
        f: F,
    ) -> Result<Resp, CallError>
    where
        Req: Clone,
        F: Fn(C, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.run(ctx, message, f, false).await
    }

    /// One call that is safe to repeat — a read, or a write keyed by an
    /// idempotency key or order id — retried on UNAVAILABLE (module docs).
    pub async fn call_idempotent<Req, Resp, F, Fut>(
        &self,
        ctx: &CallContext,
        message: Req,
        f: F,
    ) -> Result<Resp, CallError>
    where
        Req: Clone,
        F: Fn(C, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.run(ctx, message, f, true).await
    }

    async fn run<Req, Resp, F, Fut>(
        &self,
        ctx: &CallContext,
        message: Req,
        f: F,
        idempotent: bool,
    ) -> Result<Resp, CallError>
    where
        Req: Clone,
        F: Fn(C, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let shared = &*self.shared;
        let mut end = Instant::now() + self.deadline;
        if let Some(Deadline(caller)) = ctx.deadline {
            end = end.min(caller.checked_sub(DEADLINE_MARGIN).unwrap_or(caller));
        }
        shared.budget.deposit();
        let mut avoid = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = end.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                shared.metrics.deadline_exceeded(&shared.name);
                return Err(CallError::DeadlineExceeded);
            }
            let slot = AttemptSlot::default();
            slot.with(|a| {
                a.avoid = avoid;
                a.deadline = Some(end);
            });
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(remaining);
            request.extensions_mut().insert(slot.clone());
            ctx.trace.child().inject(&mut request);
            if let Some(identity) = &ctx.identity {
                identity.inject(&mut request);
            }
            let status =
                match tokio::time::timeout(remaining, f(self.client.clone(), request)).await {
                    Err(_) => {
                        shared.metrics.deadline_exceeded(&shared.name);
                        return Err(CallError::DeadlineExceeded);
                    }
                    Ok(Ok(response)) => return Ok(response.into_inner()),
                    // tonic's own timer for `grpc-timeout` (the channel's or
                    // the server's) reports CANCELLED; the header's coarser
                    // units can make it end a hair before ours.
                    Ok(Err(status))
                        if slot.with(|a| a.timed_out)
                            || matches!(
                                status.code(),
                                tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                            ) && Instant::now() + DEADLINE_MARGIN >= end =>
                    {
                        shared.metrics.deadline_exceeded(&shared.name);
                        return Err(CallError::DeadlineExceeded);
                    }
                    Ok(Err(status)) => status,
                };
            let (not_sent, fail_fast, endpoint) =
                slot.with(|a| (a.not_sent, a.fail_fast, a.endpoint));
            let retryable = !fail_fast
                && attempt < shared.retry.max_attempts
                && (not_sent || (idempotent && status.code() == tonic::Code::Unavailable));
            if !retryable {
                return Err(CallError::Status(status));
            }
            if !shared.budget.withdraw() {
                shared.metrics.budget_exhausted(&shared.name);
                return Err(CallError::Status(status));
            }
            let pause = retry_backoff(&shared.retry, attempt);
            if Instant::now() + pause >= end {
                return Err(CallError::Status(status));
            }
            tokio::time::sleep(pause).await;
            shared.metrics.retry(&shared.name);
            tracing::debug!(upstream = %shared.name, attempt = attempt + 1, error = %status.message(), "retrying");
            avoid = endpoint;
        }
    }
}

/// Full-jitter exponential backoff before retry `attempt` (1-based).
fn retry_backoff(settings: &RetrySettings, attempt: u32) -> Duration {
    let cap = settings
        .backoff_base
        .get()
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(settings.backoff_max.get());
    cap.mul_f64(rand_unit())
}

/// A uniformly random number in `[0, 1)` (xorshift per thread, seeded from
/// the OS): good enough for picking endpoints and jitter, never for secrets.
pub(crate) fn rand_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_parse_by_the_spec() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "12", "1x", "-1m", "123456789m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn settings_that_make_no_sense_name_their_key() {
        let mut u = Upstream::new("http://catalog:50051");
        assert!(validate("gateway.catalog", &u).is_ok());
        u.retry.max_attempts = 0;
        let e = validate("gateway.catalog", &u).unwrap_err();
        assert!(
            e.to_string().contains("gateway.catalog.retry.max_attempts"),
            "{e}"
        );
        let mut u = Upstream::new("http://catalog:50051");
        u.breaker.ejection_min = ConfigDuration::from_secs(90);
        let e = validate("gateway.catalog", &u).unwrap_err();
        assert!(e.to_string().contains("breaker.ejection_min"), "{e}");
        let mut u = Upstream::new("http://catalog:50051");
        u.retry.budget_window = ConfigDuration::from_secs(600);
        assert!(
            validate("k", &u).is_err(),
            "the budget window panics tower beyond 60 s"
        );
        for url in ["catalog:50051", "ftp://catalog", "http://"] {
            let e = validate("k", &Upstream::new(url)).unwrap_err();
            assert!(e.to_string().contains("k.url"), "{url}: {e}");
        }
    }

    #[test]
    fn retry_backoff_is_jittered_under_a_doubling_cap() {
        let s = RetrySettings::default();
        for attempt in 1..8 {
            let cap = Duration::from_millis(25)
                .saturating_mul(1 << (attempt - 1))
                .min(Duration::from_millis(250));
            assert!(retry_backoff(&s, attempt) <= cap);
        }
    }

    #[test]
    fn a_context_keeps_the_earlier_deadline_and_detaching_drops_it() {
        let ctx = CallContext::new(TraceContext::new_root(), None)
            .with_deadline(Deadline::after(Duration::from_secs(1)))
            .with_deadline(Deadline::after(Duration::from_secs(60)));
        assert!(ctx.deadline.unwrap().remaining() <= Duration::from_secs(1));
        assert!(ctx.detached().deadline.is_none());
        assert!(!ctx.expired());
    }
}
