//! Rate limits at the edge.
//!
//! Two limits, both kept in a [`Backend`] (in memory for one replica, Redis
//! when every replica must share the counts):
//!
//! - **Requests per client and route class.** Each request is classified
//!   (read, auth, write, checkout — the classes of the time budgets) and
//!   charged to its client: the user id of a verified access token, else the
//!   client's address (the peer, or what a trusted proxy says it forwarded
//!   for, see [`client`]). The algorithm is GCRA ([`gcra`]): one timestamp per
//!   key, a burst of `requests`, refilled evenly over `period`. Every answer
//!   carries `RateLimit-Policy` and `RateLimit` (IETF
//!   draft-ietf-httpapi-ratelimit-headers); over the limit the answer is a 429
//!   problem document with `Retry-After`.
//! - **Failed sign-ins per account** ([`login_attempt`]), keyed by a hash of
//!   the e-mail address as sent, so the answer is the same whether or not the
//!   account exists and whatever address the attempts come from. Attempts are
//!   counted before accounts is asked (so parallel guesses cannot overtake the
//!   count); a success clears the count, an answer that says nothing about the
//!   password (accounts down, bad input) gives the attempt back.
//!
//! Time is an argument of every decision (milliseconds since the Unix epoch),
//! so tests drive the clock; in Redis every replica's clock is used as is
//! (NTP-synchronised clocks skew by milliseconds, far below any period here).
//!
//! `mode = "shadow"` counts and measures but refuses nothing and sends no
//! headers: a roll-out sees what enforcing would do. When the backend cannot
//! answer (within `redis.timeout`), `fail_mode` decides: `open` serves the
//! request unlimited, `closed` answers 503; either way a metric counts it and
//! a log line (at most one every 10 s) says so.

pub mod client;
pub mod memory;
pub mod redis;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use emporium_chassis::Metrics;
use emporium_chassis::config::ConfigError;
use emporium_chassis::identity::Identity;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sha2::Digest;

use crate::config::{FailMode, LimitBackend, LimitMode, RateLimitConfig, RouteClass};
use crate::error::ApiError;

pub use memory::MemoryBackend;
pub use redis::RedisBackend;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The current time as the limiter counts it.
pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A rate in GCRA's terms: one request every `interval` ms, up to
/// `requests` at once (the tolerance, `interval * requests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests: u32,
    /// The configured period, for the `RateLimit-Policy` header.
    pub period: Duration,
    pub interval: Millis,
}

impl Quota {
    /// `requests` per `period`; at least one millisecond apart (the config
    /// check refuses faster rates).
    pub fn new(requests: u32, period: Duration) -> Self {
        let requests = requests.max(1);
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        Self {
            requests,
            period,
            interval: (period_ms / u64::from(requests)).max(1),
        }
    }

    /// How far ahead of now a key's TAT may run: the burst, in time.
    pub fn tolerance(&self) -> Millis {
        self.interval.saturating_mul(u64::from(self.requests))
    }
}

impl From<crate::config::Rate> for Quota {
    fn from(rate: crate::config::Rate) -> Self {
        Self::new(rate.requests, rate.period.get())
    }
}

/// One request's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that could still be made right now.
    pub remaining: u32,
    /// Until the whole burst is available again.
    pub reset: Millis,
    /// Until this request would have been allowed (0 when it was).
    pub retry_after: Millis,
}

/// GCRA: `tat` is the key's theoretical arrival time (absent for a new or
/// fully rested key). Returns the decision and the new TAT to store (`None`:
/// leave the key as it is). A stored TAT at or before `now` is the same as
/// none, so a key may expire at its TAT.
pub fn gcra(tat: Option<Millis>, now: Millis, quota: Quota) -> (Decision, Option<Millis>) {
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(quota.interval);
    let allow_at = new_tat.saturating_sub(quota.tolerance());
    if now < allow_at {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset: tat - now,
            retry_after: allow_at - now,
        };
        return (decision, None);
    }
    let used = new_tat - now;
    let remaining = (quota.tolerance() - used) / quota.interval;
    let decision = Decision {
        allowed: true,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset: used,
        retry_after: 0,
    };
    (decision, Some(new_tat))
}

/// The failed-sign-in policy in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub window: Millis,
    pub lockout: Millis,
}

impl From<crate::config::LoginThrottle> for LoginPolicy {
    fn from(t: crate::config::LoginThrottle) -> Self {
        let ms = |d: emporium_chassis::config::Duration| {
            u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX)
        };
        Self {
            max_failures: t.max_failures.max(1),
            window: ms(t.window),
            lockout: ms(t.lockout),
        }
    }
}

/// What happens to an account's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOp {
    /// A sign-in is about to be tried: refused while locked, else counted
    /// as a failure until it proves otherwise.
    Attempt,
    /// The password was right: the count is cleared.
    Succeeded,
    /// The attempt said nothing about the password: it is given back.
    Refund,
}

/// An account's failed sign-ins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    pub failures: u32,
    /// When the current window opened.
    pub window_start: Millis,
    /// Sign-ins are refused until then.
    pub locked_until: Millis,
}

impl LoginState {
    /// When the state is worth nothing any more.
    pub fn expires_at(&self, policy: LoginPolicy) -> Millis {
        self.window_start
            .saturating_add(policy.window)
            .max(self.locked_until)
    }
}

/// The verdict of a [`LoginOp::Attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerdict {
    Allowed,
    Locked { retry_after: Millis },
}

/// The failed-sign-in rule: `max_failures` attempts not proven right within
/// `window` lock the account for `lockout`, counted from the last of them;
/// after a lockout, while the window lasts, each attempt locks it again (one
/// guess per lockout). Returns the verdict and the new state (`None`: delete).
pub fn login_step(
    state: Option<LoginState>,
    op: LoginOp,
    now: Millis,
    policy: LoginPolicy,
) -> (LoginVerdict, Option<LoginState>) {
    let mut s = state
        .filter(|s| s.expires_at(policy) > now)
        .unwrap_or_default();
    match op {
        LoginOp::Succeeded => return (LoginVerdict::Allowed, None),
        LoginOp::Attempt => {
            if now < s.locked_until {
                let verdict = LoginVerdict::Locked {
                    retry_after: s.locked_until - now,
                };
                return (verdict, Some(s));
            }
            if s.failures == 0 || now >= s.window_start.saturating_add(policy.window) {
                s.failures = 0;
                s.window_start = now;
            }
            s.failures += 1;
            if s.failures >= policy.max_failures {
                s.locked_until = now.saturating_add(policy.lockout);
            }
        }
        LoginOp::Refund => {
            if s.failures == 0 {
                return (LoginVerdict::Allowed, None);
            }
            s.failures -= 1;
            if s.failures < policy.max_failures {
                s.locked_until = 0;
            }
        }
    }
    (LoginVerdict::Allowed, Some(s))
}

/// Why the backend could not decide.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the rate-limit store failed: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("the rate-limit store answered something unexpected: {0}")]
    Protocol(String),
    #[error("the rate-limit store did not answer within {0:?}")]
    Timeout(Duration),
}

/// Where limit state lives. Every decision is atomic per key: two
/// concurrent requests never both take the last unit.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Charges one request to `key` under `quota` at `now`.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: Millis,
    ) -> BoxFuture<'a, Result<Decision, BackendError>>;

    /// Applies `op` to the failed-sign-in count of `key`.
    fn login<'a>(
        &'a self,
        key: &'a str,
        op: LoginOp,
        policy: LoginPolicy,
        now: Millis,
    ) -> BoxFuture<'a, Result<LoginVerdict, BackendError>>;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExceededLabels {
    class: &'static str,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailModeLabel {
    fail_mode: &'static str,
}

/// The limiter's metrics. Names are stable: dashboards and alerts use them.
#[derive(Debug, Clone)]
struct Telemetry {
    /// Requests over their class's limit: refused (`enforce`) or would have
    /// been (`shadow`).
    exceeded: Family<ExceededLabels, Counter>,
    /// Sign-ins refused (or, in shadow mode, that would have been) because
    /// the account is locked.
    login_locked: Family<ModeLabel, Counter>,
    /// Decisions the backend could not make; the fail mode answered instead.
    backend_errors: Family<FailModeLabel, Counter>,
    /// When the last backend error was logged (ms), so an outage logs one
    /// line every 10 s rather than one per request.
    last_logged: Arc<AtomicU64>,
}

impl Telemetry {
    fn register(metrics: &Metrics, mode: LimitMode, fail_mode: FailMode) -> Self {
        let exceeded = Family::<ExceededLabels, Counter>::default();
        let login_locked = Family::<ModeLabel, Counter>::default();
        let backend_errors = Family::<FailModeLabel, Counter>::default();
        // The series exist at 0 before the first event, so `increase()` sees it.
        for class in RouteClass::ALL {
            let _ = exceeded.get_or_create(&ExceededLabels {
                class: class.as_str(),
                mode: mode_name(mode),
            });
        }
        let _ = login_locked.get_or_create(&ModeLabel {
            mode: mode_name(mode),
        });
        let _ = backend_errors.get_or_create(&FailModeLabel {
            fail_mode: fail_mode_name(fail_mode),
        });
        metrics.register(
            "gateway_rate_limit_exceeded",
            "Requests over their route class's rate limit, by class and mode (enforce: refused with 429; shadow: served)",
            exceeded.clone(),
        );
        metrics.register(
            "gateway_login_locked",
            "Sign-ins to a locked account (too many failures), by mode",
            login_locked.clone(),
        );
        metrics.register(
            "gateway_rate_limit_backend_errors",
            "Rate-limit decisions the store could not make, answered by the fail mode",
            backend_errors.clone(),
        );
        Self {
            exceeded,
            login_locked,
            backend_errors,
            last_logged: Arc::new(AtomicU64::new(0)),
        }
    }

    fn backend_failed(&self, error: &BackendError, fail_mode: FailMode) {
        self.backend_errors
            .get_or_create(&FailModeLabel {
                fail_mode: fail_mode_name(fail_mode),
            })
            .inc();
        let now = now();
        let last = self.last_logged.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %emporium_chassis::error::describe(error),
                fail_mode = fail_mode_name(fail_mode),
                "The rate-limit store cannot be asked; requests are answered by the fail mode."
            );
        }
    }
}

fn mode_name(mode: LimitMode) -> &'static str {
    match mode {
        LimitMode::Enforce => "enforce",
        LimitMode::Shadow => "shadow",
        LimitMode::Off => "off",
    }
}

fn fail_mode_name(mode: FailMode) -> &'static str {
    match mode {
        FailMode::Open => "open",
        FailMode::Closed => "closed",
    }
}

/// The edge's limiter: policies, the backend and the metrics.
#[derive(Debug)]
pub struct Limiter {
    mode: LimitMode,
    fail_mode: FailMode,
    backend: Arc<dyn Backend>,
    quotas: [Quota; 4],
    login: LoginPolicy,
    trusted: Vec<ipnet::IpNet>,
    timeout: Duration,
    telemetry: Telemetry,
}

impl Limiter {
    /// The limiter `config` describes, with its backend (a Redis connection
    /// is prepared, not yet opened).
    pub fn new(config: &RateLimitConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        let backend: Arc<dyn Backend> = match config.backend {
            LimitBackend::Redis if config.mode != LimitMode::Off => {
                let redis = &config.redis;
                let url = redis.url.as_ref().ok_or_else(|| {
                    ConfigError::invalid("gateway.rate_limit.redis.url", "is required")
                })?;
                let client = redis::redis_client(url.expose(), redis.ca_cert.as_deref())?;
                let backend = RedisBackend::connect(client, &redis.key_prefix, redis.timeout.get())
                    .map_err(|e| {
                        ConfigError::invalid("gateway.rate_limit.redis.url", e.to_string())
                    })?;
                Arc::new(backend)
            }
            _ => Arc::new(MemoryBackend::new()),
        };
        Self::with_backend(config, backend, metrics)
    }

    /// Like [`Limiter::new`], on a given backend.
    pub fn with_backend(
        config: &RateLimitConfig,
        backend: Arc<dyn Backend>,
        metrics: &Metrics,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            mode: config.mode,
            fail_mode: config.fail_mode,
            backend,
            quotas: [
                config.read.into(),
                config.auth.into(),
                config.write.into(),
                config.checkout.into(),
            ],
            login: config.login.into(),
            trusted: config.trusted_networks()?,
            timeout: config.redis.timeout.get(),
            telemetry: Telemetry::register(metrics, config.mode, config.fail_mode),
        })
    }

    fn quota(&self, class: RouteClass) -> Quota {
        self.quotas[class as usize]
    }

    async fn bounded<T>(
        &self,
        call: BoxFuture<'_, Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(BackendError::Timeout(self.timeout)),
        }
    }

    /// The client a request is charged to: `u:<user id>` for a verified
    /// token, else `a:<address>` (an IPv6 client's /64, which one subscriber
    /// usually holds whole).
    pub fn client_key(&self, request: &Request) -> String {
        if let Some(identity) = request.extensions().get::<Identity>() {
            return format!("u:{}", identity.user_id);
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        match client::client_address(peer, request.headers(), &self.trusted) {
            Some(ip) => format!("a:{}", client::address_key(ip)),
            None => "a:unknown".to_owned(),
        }
    }

    /// Starts a sign-in to the account `email`: refused (429) while the
    /// account is locked, unless in shadow mode or off. The answer does not
    /// depend on whether the account exists.
    pub async fn login_attempt(self: &Arc<Self>, email: &str) -> Result<LoginAttempt, ApiError> {
        if self.mode == LimitMode::Off {
            return Ok(LoginAttempt { key: None });
        }
        let key = login_key(email);
        let outcome = self
            .bounded(
                self.backend
                    .login(&key, LoginOp::Attempt, self.login, now()),
            )
            .await;
        match outcome {
            Ok(LoginVerdict::Allowed) => Ok(LoginAttempt {
                key: Some((Arc::clone(self), key)),
            }),
            Ok(LoginVerdict::Locked { retry_after }) => {
                self.telemetry
                    .login_locked
                    .get_or_create(&ModeLabel {
                        mode: mode_name(self.mode),
                    })
                    .inc();
                if self.mode == LimitMode::Shadow {
                    return Ok(LoginAttempt { key: None });
                }
                let retry_after = Duration::from_millis(retry_after);
                Err(ApiError::RateLimited {
                    detail: format!(
                        "Too many failed sign-ins for this account; try again in {} s.",
                        seconds(retry_after)
                    ),
                    retry_after,
                })
            }
            Err(e) => {
                self.telemetry.backend_failed(&e, self.fail_mode);
                match self.fail_mode {
                    FailMode::Open => Ok(LoginAttempt { key: None }),
                    FailMode::Closed => Err(ApiError::LimiterUnavailable),
                }
            }
        }
    }
}

/// A counted sign-in attempt, to be settled with its outcome.
#[derive(Debug)]
pub struct LoginAttempt {
    key: Option<(Arc<Limiter>, String)>,
}

/// What a sign-in attempt turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Signed in: the account's count is cleared.
    Succeeded,
    /// Wrong e-mail or password: stays counted.
    Failed,
    /// Nothing learnt about the password (accounts unavailable, bad input).
    Inconclusive,
}

impl LoginAttempt {
    /// Records how the attempt ended. A store failure here only loses
    /// bookkeeping: it is counted and logged, never answered.
    pub async fn settle(self, outcome: LoginOutcome) {
        let Some((limiter, key)) = self.key else {
            return;
        };
        let op = match outcome {
            LoginOutcome::Succeeded => LoginOp::Succeeded,
            LoginOutcome::Inconclusive => LoginOp::Refund,
            LoginOutcome::Failed => return,
        };
        let result = limiter
            .bounded(limiter.backend.login(&key, op, limiter.login, now()))
            .await;
        if let Err(e) = result {
            limiter.telemetry.backend_failed(&e, limiter.fail_mode);
        }
    }
}

/// The key of an account's failed sign-ins: a hash of the e-mail address as
/// sent (trimmed, case-folded), so no address is stored in clear.
pub fn login_key(email: &str) -> String {
    let digest = sha2::Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("login:{hex}")
}

/// Whole seconds, rounded up, at least 1: what `Retry-After` and `t=` say.
fn seconds(d: Duration) -> u64 {
    d.as_millis()
        .div_ceil(1000)
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// The `RateLimit-Policy` and `RateLimit` header values of `class`.
fn headers(class: RouteClass, quota: Quota, decision: &Decision) -> [(&'static str, String); 2] {
    let name = class.as_str();
    let reset = Duration::from_millis(decision.reset)
        .as_millis()
        .div_ceil(1000);
    [
        (
            "ratelimit-policy",
            format!(
                "\"{name}\";q={};w={}",
                quota.requests,
                quota.period.as_secs().max(1)
            ),
        ),
        (
            "ratelimit",
            format!("\"{name}\";r={};t={reset}", decision.remaining),
        ),
    ]
}

fn insert_headers(response: &mut Response, values: [(&'static str, String); 2]) {
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Middleware: charges the request to its client and class; sits after
/// token verification (the key is the verified user id) and before the
/// routes.
pub async fn limit(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    if limiter.mode == LimitMode::Off {
        return next.run(request).await;
    }
    let class = RouteClass::of(request.method(), request.uri().path());
    let quota = limiter.quota(class);
    let key = format!("{}:{}", class.as_str(), limiter.client_key(&request));
    let decision = limiter
        .bounded(limiter.backend.acquire(&key, quota, now()))
        .await;
    let decision = match decision {
        Ok(decision) => decision,
        Err(e) => {
            limiter.telemetry.backend_failed(&e, limiter.fail_mode);
            return match limiter.fail_mode {
                FailMode::Open => next.run(request).await,
                FailMode::Closed => ApiError::LimiterUnavailable.into_response(),
            };
        }
    };
    if !decision.allowed {
        limiter
            .telemetry
            .exceeded
            .get_or_create(&ExceededLabels {
                class: class.as_str(),
                mode: mode_name(limiter.mode),
            })
            .inc();
        if limiter.mode == LimitMode::Enforce {
            let retry_after = Duration::from_millis(decision.retry_after);
            let mut response = ApiError::RateLimited {
                detail: format!(
                    "Too many {} requests; try again in {} s.",
                    class.as_str(),
                    seconds(retry_after)
                ),
                retry_after,
            }
            .into_response();
            insert_headers(&mut response, headers(class, quota, &decision));
            return response;
        }
    }
    let mut response = next.run(request).await;
    if limiter.mode == LimitMode::Enforce {
        insert_headers(&mut response, headers(class, quota, &decision));
    }
    response
}

/// `Retry-After` for a wait: whole seconds, rounded up.
pub fn retry_after_value(wait: Duration) -> HeaderValue {
    HeaderValue::from(seconds(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        requests: 3,
        period: Duration::from_secs(3),
        interval: 1000,
    };

    /// Runs `gcra` over `times`, keeping the state, and returns the decisions.
    fn run(times: &[Millis]) -> Vec<Decision> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (d, new) = gcra(tat, now, Q);
                tat = new.or(tat);
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_of_requests_is_allowed_then_the_next_waits_one_interval() {
        let d = run(&[10_000, 10_000, 10_000, 10_000]);
        assert_eq!(
            d.iter().map(|d| d.allowed).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            [2, 1, 0, 0]
        );
        assert_eq!(d[2].reset, 3000);
        assert_eq!(d[3].retry_after, 1000);
    }

    #[test]
    fn units_come_back_evenly_over_the_period() {
        let d = run(&[0, 0, 0, 999, 1000, 1000, 4000]);
        assert!(!d[3].allowed, "{:?}", d[3]);
        assert_eq!(d[3].retry_after, 1);
        assert!(d[4].allowed);
        assert!(!d[5].allowed);
        // Rested for a whole period: the full burst again.
        assert_eq!(d[6].remaining, 2);
    }

    #[test]
    fn a_quota_rounds_its_interval_down_to_whole_milliseconds() {
        let q = Quota::new(7, Duration::from_secs(60));
        assert_eq!(q.interval, 8571);
        assert_eq!(q.tolerance(), 59_997);
    }

    const P: LoginPolicy = LoginPolicy {
        max_failures: 3,
        window: 60_000,
        lockout: 10_000,
    };

    #[test]
    fn the_last_allowed_failure_locks_the_account() {
        let mut s = None;
        for _ in 0..3 {
            let (v, next) = login_step(s, LoginOp::Attempt, 1000, P);
            assert_eq!(v, LoginVerdict::Allowed);
            s = next;
        }
        let (v, _) = login_step(s, LoginOp::Attempt, 1500, P);
        assert_eq!(v, LoginVerdict::Locked { retry_after: 9_500 });
        // After the lockout, within the window: one more try, which locks again.
        let (v, s) = login_step(s, LoginOp::Attempt, 11_000, P);
        assert_eq!(v, LoginVerdict::Allowed);
        let (v, _) = login_step(s, LoginOp::Attempt, 11_001, P);
        assert_eq!(v, LoginVerdict::Locked { retry_after: 9_999 });
    }

    #[test]
    fn a_refund_unlocks_and_a_success_clears() {
        let mut s = None;
        for _ in 0..3 {
            s = login_step(s, LoginOp::Attempt, 0, P).1;
        }
        let (_, refunded) = login_step(s, LoginOp::Refund, 1, P);
        assert_eq!(
            login_step(refunded, LoginOp::Attempt, 2, P).0,
            LoginVerdict::Allowed
        );
        assert_eq!(login_step(s, LoginOp::Succeeded, 1, P).1, None);
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut s = None;
        for _ in 0..2 {
            s = login_step(s, LoginOp::Attempt, 0, P).1;
        }
        let (v, s) = login_step(s, LoginOp::Attempt, 60_000, P);
        assert_eq!(v, LoginVerdict::Allowed);
        assert_eq!(s.map(|s| s.failures), Some(1));
    }

    #[test]
    fn login_keys_fold_case_and_hide_the_address() {
        assert_eq!(login_key(" Ann@Example.com"), login_key("ann@example.com"));
        assert!(!login_key("ann@example.com").contains("ann"));
        assert_ne!(login_key("ann@example.com"), login_key("bob@example.com"));
    }

    #[test]
    fn headers_say_the_policy_and_what_is_left() {
        let decision = gcra(None, 0, Q).0;
        let [policy, state] = headers(RouteClass::Read, Q, &decision);
        assert_eq!(policy.1, "\"read\";q=3;w=3");
        assert_eq!(state.1, "\"read\";r=2;t=1");
    }
}
