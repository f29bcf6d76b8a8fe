//! Per-request load balancing over every endpoint of an upstream, with an
//! outlier-ejecting breaker per endpoint.
//!
//! A [`Balanced`] channel is what every generated gRPC client is built on.
//! Behind it a pool keeps one HTTP/2 channel per endpoint address; a
//! background task re-resolves the upstream's name every
//! `resolve_interval` (and at once after a connection failure), adding new
//! endpoints and dropping gone ones — calls in flight on a dropped endpoint
//! finish on it. Each call picks an endpoint by the power of two choices
//! over a peak-EWMA load estimate (round-trip time × calls in flight, the
//! estimate jumping up at once on a slow answer and decaying over
//! `EWMA_DECAY`), so a slow or busy endpoint gets less.
//!
//! Each endpoint has a breaker:
//! - a transport failure (refused, reset, connect timeout) ejects it at once
//!   as *unreachable*; it comes back when a TCP connect to it succeeds (the
//!   background task probes it, so no request is spent finding out);
//! - `failures` consecutive failed calls (UNAVAILABLE, INTERNAL, UNKNOWN,
//!   DATA_LOSS, or no answer within the call's deadline) eject it as
//!   *failing*, for a backoff growing from `ejection_min` to `ejection_max`,
//!   jittered; then one call probes it: success closes the breaker, failure
//!   ejects it again for longer. At most `max_ejected_percent` of the
//!   endpoints (never less than one) are ejected as failing at once.
//!
//! When no endpoint can take a call, the call fails at once with
//! UNAVAILABLE, never waiting for one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tower::{Service, ServiceExt};

use super::metrics::ClientMetrics;
use super::resolve::Resolver;
use super::{BreakerSettings, rand_unit};

/// Time constant of the peak-EWMA estimate (linkerd and tower's default
/// decay: 10 s).
const EWMA_DECAY: Duration = Duration::from_secs(10);
/// The estimate of an endpoint nothing has been measured on yet (linkerd's
/// default RTT: 30 ms).
const EWMA_DEFAULT_RTT: Duration = Duration::from_millis(30);

/// What the pool needs to know about an upstream.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Label in metrics and logs (`catalog`).
    pub name: String,
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// The URL as configured: sent as `:authority`, so a server (or a mesh)
    /// sees the name the caller used, not an address.
    pub origin: http::Uri,
    pub resolver: Resolver,
    pub resolve_interval: Duration,
    pub connect_timeout: Duration,
    pub breaker: BreakerSettings,
}

/// Shared between a call and the retry loop around it: which endpoint the
/// attempt went to and how it failed, so a retry can avoid that endpoint
/// and a call that never left can be retried whatever it is.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    pub avoid: Option<SocketAddr>,
    pub endpoint: Option<SocketAddr>,
    /// The request never reached the endpoint (connection refused or not
    /// established in time).
    pub not_sent: bool,
    /// No endpoint could take the call.
    pub fail_fast: bool,
    /// The channel gave up at the call's `grpc-timeout`.
    pub timed_out: bool,
    /// When this attempt's own deadline passes.
    pub deadline: Option<Instant>,
}

/// The handle a call carries in its request extensions.
#[derive(Debug, Clone, Default)]
pub(crate) struct AttemptSlot(pub Arc<Mutex<Attempt>>);

impl AttemptSlot {
    pub fn with<R>(&self, f: impl FnOnce(&mut Attempt) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// A gRPC channel that balances each call over the upstream's endpoints.
/// Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct Balanced {
    pool: Arc<Pool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    /// Not picked until `until`; an unreachable one returns only after a
    /// successful connect probe.
    Ejected {
        until: Instant,
        unreachable: bool,
    },
    /// Ejected for failing, its backoff over, and one call is testing it.
    Probing,
}

#[derive(Debug)]
struct Health {
    state: State,
    consecutive_failures: u32,
    /// Ejections since the endpoint last answered well (grows the backoff).
    ejections: u32,
}

#[derive(Debug)]
struct Ewma {
    rtt_ns: f64,
    stamp: Instant,
}

impl Ewma {
    fn decayed(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.stamp).as_nanos() as f64;
        self.rtt_ns * (-elapsed / EWMA_DECAY.as_nanos() as f64).exp()
    }

    fn update(&mut self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        if rtt > self.rtt_ns {
            // Peak: a slow answer counts in full at once.
            self.rtt_ns = rtt;
        } else {
            let elapsed = now.saturating_duration_since(self.stamp).as_nanos() as f64;
            let w = (-elapsed / EWMA_DECAY.as_nanos() as f64).exp();
            self.rtt_ns = self.rtt_ns * w + rtt * (1.0 - w);
        }
        self.stamp = now;
    }
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    label: String,
    channel: Channel,
    pending: AtomicU32,
    ewma: Mutex<Ewma>,
    health: Mutex<Health>,
}

impl Endpoint {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn estimate(&self, now: Instant) -> f64 {
        self.ewma
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .decayed(now)
    }

    fn cost(&self, now: Instant) -> f64 {
        let pending = f64::from(self.pending.load(Ordering::Relaxed));
        self.estimate(now).max(1.0) * (pending + 1.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    /// Answered with a status that says the endpoint is not well.
    Failure,
    /// No answer within the attempt's deadline.
    TimedOut,
    /// The connection failed or could not be made.
    Unreachable,
    /// The caller gave up before its deadline: says nothing about the endpoint.
    Abandoned,
}

#[derive(Debug)]
pub(crate) struct Pool {
    target: Target,
    endpoints: RwLock<Arc<[Arc<Endpoint>]>>,
    /// Number of resolutions done (0: none yet, calls wait for the first).
    resolved: watch::Sender<u64>,
    wake: Arc<Notify>,
    metrics: Arc<ClientMetrics>,
}

/// Why no endpoint could take a call.
#[derive(Debug)]
pub(crate) enum NoEndpoint {
    /// Every endpoint is ejected; the earliest may be tried again after this.
    AllEjected {
        endpoints: usize,
        retry_after: Duration,
    },
    /// The name resolved to nothing (or could not be resolved yet).
    Empty,
}

impl NoEndpoint {
    pub fn status(&self, upstream: &str) -> tonic::Status {
        let mut status = match self {
            Self::AllEjected { endpoints, .. } => tonic::Status::unavailable(format!(
                "every endpoint of {upstream} ({endpoints}) is failing; calls are not sent until one recovers"
            )),
            Self::Empty => {
                tonic::Status::unavailable(format!("{upstream} has no endpoint to call"))
            }
        };
        let retry_after = match self {
            Self::AllEjected { retry_after, .. } => *retry_after,
            Self::Empty => Duration::from_secs(1),
        };
        // Whole seconds, at least one: what `Retry-After` can say.
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        if let Ok(value) = secs.max(1).to_string().parse() {
            status.metadata_mut().insert(super::RETRY_AFTER_KEY, value);
        }
        status
    }
}

impl Pool {
    /// A pool for `target`, resolving in the background from now on (needs
    /// a Tokio runtime). The task stops when the last [`Balanced`] is dropped.
    pub fn start(target: Target, metrics: Arc<ClientMetrics>) -> Balanced {
        let (resolved, _) = watch::channel(0);
        let pool = Arc::new(Self {
            target,
            endpoints: RwLock::new(Arc::from(Vec::new())),
            resolved,
            wake: Arc::new(Notify::new()),
            metrics,
        });
        tokio::spawn(maintain(Arc::downgrade(&pool), Arc::clone(&pool.wake)));
        Balanced { pool }
    }

    fn snapshot(&self) -> Arc<[Arc<Endpoint>]> {
        Arc::clone(
            &self
                .endpoints
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// Picks an endpoint for one call (see the module docs), waiting only
    /// for the very first resolution.
    async fn pick(&self, avoid: Option<SocketAddr>) -> Result<Arc<Endpoint>, NoEndpoint> {
        let mut resolved = self.resolved.subscribe();
        if *resolved.borrow_and_update() == 0 {
            self.wake.notify_one();
            // Bounded by the caller's deadline, which wraps every call.
            let _ = resolved.wait_for(|n| *n > 0).await;
        }
        let endpoints = self.snapshot();
        let now = Instant::now();
        let mut usable: Vec<&Arc<Endpoint>> = Vec::with_capacity(endpoints.len());
        let mut earliest: Option<Instant> = None;
        for endpoint in endpoints.iter() {
            let mut health = endpoint.health();
            match health.state {
                State::Ready => usable.push(endpoint),
                State::Ejected {
                    until,
                    unreachable: false,
                } if until <= now => {
                    // Backoff over: this call is the probe.
                    health.state = State::Probing;
                    drop(health);
                    self.update_gauges();
                    return Ok(Arc::clone(endpoint));
                }
                State::Ejected { until, .. } => {
                    earliest = Some(earliest.map_or(until, |e| e.min(until)));
                }
                State::Probing => {}
            }
        }
        if usable.len() > 1
            && let Some(avoid) = avoid
        {
            usable.retain(|e| e.addr != avoid);
        }
        match usable.len() {
            0 if endpoints.is_empty() => Err(NoEndpoint::Empty),
            0 => Err(NoEndpoint::AllEjected {
                endpoints: endpoints.len(),
                retry_after: earliest.map_or(self.target.breaker.ejection_min.get(), |e| {
                    e.saturating_duration_since(now)
                }),
            }),
            1 => Ok(Arc::clone(usable[0])),
            n => {
                let a = random_index(n);
                let mut b = random_index(n - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (usable[a], usable[b]);
                let (ca, cb) = (a.cost(now), b.cost(now));
                let pick_a = if ca == cb { rand_unit() < 0.5 } else { ca < cb };
                Ok(Arc::clone(if pick_a { a } else { b }))
            }
        }
    }

    /// Records how a call to `endpoint` went and moves its breaker.
    fn record(&self, endpoint: &Endpoint, outcome: Outcome, rtt: Duration) {
        let now = Instant::now();
        endpoint
            .ewma
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update(rtt, now);
        let name = &self.target.name;
        if outcome == Outcome::Abandoned {
            return;
        }
        self.metrics.request(name, &endpoint.label);
        let settings = &self.target.breaker;
        let changed = self.advance_breaker(endpoint, outcome, settings, now);
        if changed {
            self.update_gauges();
        }
    }

    /// Moves `endpoint`'s breaker after a call; true when it left or
    /// re-entered rotation.
    fn advance_breaker(
        &self,
        endpoint: &Endpoint,
        outcome: Outcome,
        settings: &BreakerSettings,
        now: Instant,
    ) -> bool {
        let name = &self.target.name;
        let mut health = endpoint.health();
        match outcome {
            Outcome::Success => {
                health.consecutive_failures = 0;
                let was_probing = health.state == State::Probing;
                if was_probing {
                    health.state = State::Ready;
                    health.ejections = 0;
                    tracing::info!(upstream = %name, endpoint = %endpoint.addr, "endpoint answered its probe; back in rotation");
                }
                was_probing
            }
            Outcome::Unreachable => {
                self.metrics.failure(name, &endpoint.label);
                health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                if matches!(health.state, State::Ejected { .. }) {
                    false
                } else {
                    health.state = State::Ejected {
                        until: now + backoff(settings, health.ejections),
                        unreachable: true,
                    };
                    health.ejections = health.ejections.saturating_add(1);
                    self.metrics.ejection(name, &endpoint.label, "unreachable");
                    tracing::warn!(upstream = %name, endpoint = %endpoint.addr, "endpoint unreachable; ejected until a connection succeeds");
                    self.wake.notify_one();
                    true
                }
            }
            Outcome::Failure | Outcome::TimedOut | Outcome::Abandoned => {
                self.metrics.failure(name, &endpoint.label);
                health.consecutive_failures = health.consecutive_failures.saturating_add(1);
                let probing = health.state == State::Probing;
                let tripped = health.consecutive_failures >= settings.failures;
                if probing || (tripped && health.state == State::Ready) {
                    drop(health);
                    let allowed = probing || self.may_eject(endpoint);
                    let mut health = endpoint.health();
                    if allowed {
                        let ban = backoff(settings, health.ejections);
                        health.state = State::Ejected {
                            until: now + ban,
                            unreachable: false,
                        };
                        health.ejections = health.ejections.saturating_add(1);
                        self.metrics.ejection(name, &endpoint.label, "failing");
                        tracing::warn!(
                            upstream = %name,
                            endpoint = %endpoint.addr,
                            consecutive_failures = health.consecutive_failures,
                            ejected_ms = ban.as_millis() as u64,
                            "endpoint failing; ejected"
                        );
                    }
                    allowed
                } else {
                    false
                }
            }
        }
    }

    /// Whether one more endpoint may be ejected for failing: at most
    /// `max_ejected_percent` of them, and always at least one (Envoy's rule).
    fn may_eject(&self, candidate: &Endpoint) -> bool {
        let endpoints = self.snapshot();
        let failing = endpoints
            .iter()
            .filter(|e| e.addr != candidate.addr)
            .filter(|e| {
                matches!(
                    e.health().state,
                    State::Ejected {
                        unreachable: false,
                        ..
                    } | State::Probing
                )
            })
            .count();
        let share = endpoints.len() * usize::from(self.target.breaker.max_ejected_percent) / 100;
        failing < share.max(1)
    }

    fn update_gauges(&self) {
        let endpoints = self.snapshot();
        let ejected = endpoints
            .iter()
            .filter(|e| e.health().state != State::Ready)
            .count();
        self.metrics
            .endpoints(&self.target.name, endpoints.len(), ejected);
    }

    /// Resolves the name once and brings the endpoint list up to date.
    async fn refresh(&self) {
        let t = &self.target;
        match t.resolver.resolve(&t.host, t.port).await {
            Ok(mut addrs) => {
                addrs.sort_unstable();
                addrs.dedup();
                let current = self.snapshot();
                let same = current.len() == addrs.len()
                    && current.iter().zip(&addrs).all(|(e, a)| e.addr == *a);
                if !same {
                    // A newcomer is assumed as fast as the others are now, so
                    // it gets its share at once instead of waiting for its
                    // default estimate to decay.
                    let now = Instant::now();
                    let seed = (!current.is_empty()).then(|| {
                        current.iter().map(|e| e.estimate(now)).sum::<f64>() / current.len() as f64
                    });
                    let next: Vec<Arc<Endpoint>> = addrs
                        .iter()
                        .map(|addr| {
                            current
                                .iter()
                                .find(|e| e.addr == *addr)
                                .cloned()
                                .unwrap_or_else(|| Arc::new(self.endpoint(*addr, seed)))
                        })
                        .collect();
                    tracing::info!(
                        upstream = %t.name,
                        endpoints = ?addrs,
                        "upstream endpoints changed"
                    );
                    *self
                        .endpoints
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(next);
                    self.update_gauges();
                }
            }
            Err(e) => {
                self.metrics.resolve_error(&t.name);
                tracing::warn!(upstream = %t.name, host = %t.host, error = %e, "could not resolve the upstream; keeping its last endpoints");
            }
        }
        self.resolved.send_modify(|n| *n += 1);
    }

    fn endpoint(&self, addr: SocketAddr, seed_rtt_ns: Option<f64>) -> Endpoint {
        let t = &self.target;
        let uri = format!("{}://{addr}", t.scheme);
        // The address is a valid authority, so this cannot fail in practice;
        // should it, the origin URL (already validated) is the fallback.
        let endpoint = TonicEndpoint::from_shared(uri)
            .unwrap_or_else(|_| TonicEndpoint::from(t.origin.clone()))
            .origin(t.origin.clone())
            .connect_timeout(t.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(false);
        Endpoint {
            addr,
            label: addr.to_string(),
            channel: endpoint.connect_lazy(),
            pending: AtomicU32::new(0),
            ewma: Mutex::new(Ewma {
                rtt_ns: seed_rtt_ns.unwrap_or(EWMA_DEFAULT_RTT.as_nanos() as f64),
                stamp: Instant::now(),
            }),
            health: Mutex::new(Health {
                state: State::Ready,
                consecutive_failures: 0,
                ejections: 0,
            }),
        }
    }

    /// Connect probes for unreachable endpoints whose backoff is over;
    /// returns when the next one is due.
    async fn probe_unreachable(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for endpoint in self.snapshot().iter() {
            let state = endpoint.health().state;
            let State::Ejected {
                until,
                unreachable: true,
            } = state
            else {
                continue;
            };
            if until > now {
                next = Some(next.map_or(until, |n| n.min(until)));
                continue;
            }
            let connected = tokio::time::timeout(
                self.target.connect_timeout,
                tokio::net::TcpStream::connect(endpoint.addr),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            let mut health = endpoint.health();
            if connected {
                health.state = State::Ready;
                health.consecutive_failures = 0;
                health.ejections = 0;
                tracing::info!(upstream = %self.target.name, endpoint = %endpoint.addr, "endpoint reachable again; back in rotation");
            } else {
                let until = Instant::now() + backoff(&self.target.breaker, health.ejections);
                health.ejections = health.ejections.saturating_add(1);
                health.state = State::Ejected {
                    until,
                    unreachable: true,
                };
                next = Some(next.map_or(until, |n| n.min(until)));
            }
            drop(health);
            self.update_gauges();
        }
        next
    }
}

/// The background task of one pool: resolve, probe, sleep; ends when the
/// pool is dropped.
async fn maintain(pool: Weak<Pool>, wake: Arc<Notify>) {
    loop {
        let (interval, next_probe) = {
            let Some(pool) = pool.upgrade() else { return };
            pool.refresh().await;
            let next_probe = pool.probe_unreachable().await;
            (pool.target.resolve_interval, next_probe)
        };
        let mut wait = interval;
        if let Some(at) = next_probe {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        // Woken early after a connection failure; re-check at least every
        // 10 s so a dropped pool's task ends.
        let wait = wait.min(Duration::from_secs(10));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

/// The ejection time after `ejections` earlier ones: `min · 2^n`, capped at
/// `max`, minus up to half of it at random (jitter spreads the probes of
/// many clients).
fn backoff(settings: &BreakerSettings, ejections: u32) -> Duration {
    let min = settings.ejection_min.get();
    let max = settings.ejection_max.get().max(min);
    let exp = min.saturating_mul(1u32 << ejections.min(16)).min(max);
    exp.mul_f64(1.0 - 0.5 * rand_unit())
}

fn random_index(n: usize) -> usize {
    ((rand_unit() * n as f64) as usize).min(n.saturating_sub(1))
}

/// Releases an endpoint's in-flight count and records the outcome, also
/// when the call is dropped before it finishes.
struct InFlight {
    pool: Arc<Pool>,
    endpoint: Arc<Endpoint>,
    started: Instant,
    deadline: Option<Instant>,
    done: bool,
}

impl InFlight {
    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.pool
            .record(&self.endpoint, outcome, self.started.elapsed());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.pending.fetch_sub(1, Ordering::Relaxed);
        if !self.done {
            let now = Instant::now();
            let outcome = if self
                .deadline
                .is_some_and(|d| now + Duration::from_millis(1) >= d)
            {
                Outcome::TimedOut
            } else {
                Outcome::Abandoned
            };
            self.pool
                .record(&self.endpoint, outcome, self.started.elapsed());
        }
    }
}

/// gRPC codes that say an endpoint is unwell (as opposed to a caller's
/// mistake or a business answer such as NOT_FOUND).
fn is_endpoint_failure(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::Internal
            | tonic::Code::Unknown
            | tonic::Code::DataLoss
    )
}

/// Whether a transport error happened before the request could be sent.
fn never_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        if e.is::<tonic::ConnectError>() || e.to_string().contains("tcp connect error") {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether the channel gave up because the call's `grpc-timeout` passed
/// (the endpoint is slow, not gone).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is per endpoint and decided when the call is picked.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let pool = Arc::clone(&self.pool);
        let slot = request.extensions().get::<AttemptSlot>().cloned();
        Box::pin(async move {
            let (avoid, deadline) = slot
                .as_ref()
                .map_or((None, None), |s| s.with(|a| (a.avoid, a.deadline)));
            let endpoint = match pool.pick(avoid).await {
                Ok(endpoint) => endpoint,
                Err(none) => {
                    pool.metrics.fail_fast(pool.name());
                    if let Some(slot) = &slot {
                        slot.with(|a| {
                            a.fail_fast = true;
                            a.not_sent = true;
                        });
                    }
                    return Err(Box::new(none.status(pool.name())) as Self::Error);
                }
            };
            if let Some(slot) = &slot {
                slot.with(|a| a.endpoint = Some(endpoint.addr));
            }
            endpoint.pending.fetch_add(1, Ordering::Relaxed);
            let flight = InFlight {
                pool: Arc::clone(&pool),
                endpoint: Arc::clone(&endpoint),
                started: Instant::now(),
                deadline,
                done: false,
            };
            let mut channel = endpoint.channel.clone();
            let result = match channel.ready().await {
                Ok(ready) => ready.call(request).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(response) => {
                    let code = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from_i32);
                    flight.finish(if is_endpoint_failure(code) {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    Ok(response)
                }
                Err(e) => {
                    let not_sent = never_sent(&e);
                    let timed_out = timed_out(&e);
                    if let Some(slot) = &slot {
                        slot.with(|a| {
                            a.not_sent = not_sent;
                            a.timed_out = timed_out;
                        });
                    }
                    flight.finish(if timed_out {
                        Outcome::TimedOut
                    } else {
                        Outcome::Unreachable
                    });
                    Err(Box::new(e) as Self::Error)
                }
            }
        })
    }
}

impl Balanced {
    /// The endpoints the pool has now and whether each is in rotation (for
    /// tests and status output).
    pub fn endpoints(&self) -> Vec<(SocketAddr, bool)> {
        self.pool
            .snapshot()
            .iter()
            .map(|e| (e.addr, e.health().state == State::Ready))
            .collect()
    }

    /// Re-resolves now instead of at the next interval.
    pub fn refresh_now(&self) {
        self.pool.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as ConfigDuration;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failures: 7,
            ejection_min: ConfigDuration::from_secs(1),
            ejection_max: ConfigDuration::from_secs(60),
            max_ejected_percent: 10,
        }
    }

    #[test]
    fn backoff_grows_from_min_to_max_with_at_most_half_jitter() {
        let s = settings();
        for n in 0..20 {
            let d = backoff(&s, n);
            let full = Duration::from_secs(1)
                .saturating_mul(1 << n.min(16))
                .min(Duration::from_secs(60));
            assert!(d <= full && d >= full / 2, "{n}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn the_estimate_jumps_to_a_peak_and_decays_back() {
        let start = Instant::now();
        let mut ewma = Ewma {
            rtt_ns: 1e6,
            stamp: start,
        };
        ewma.update(Duration::from_millis(100), start);
        assert!(
            (ewma.rtt_ns - 1e8).abs() < 1.0,
            "a slow answer counts at once"
        );
        let later = start + Duration::from_secs(30);
        ewma.update(Duration::from_millis(1), later);
        assert!(
            ewma.rtt_ns < 1e7,
            "fast answers pull it back: {}",
            ewma.rtt_ns
        );
        assert!(ewma.decayed(later + Duration::from_secs(30)) < ewma.rtt_ns);
    }

    #[test]
    fn a_refused_connection_counts_as_never_sent() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(never_sent(&refused));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_sent(&reset));
    }
}
