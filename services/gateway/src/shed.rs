//! Overload protection: a bound on requests in flight, in front of every
//! route. A request over the bound is answered at once with 503
//! problem+json and `Retry-After`, instead of queueing behind the others
//! until every one of them misses its deadline.
//!
//! The bound is fixed (`overload.mode = "fixed"`, `max_in_flight`) or
//! adaptive (the default): additive increase, multiplicative decrease on
//! measured latency. Every request that finishes within `latency_target`
//! while at least half the bound is in use raises the bound by one (up to
//! `max_in_flight`); a request slower than the target, or one the gateway
//! answered 503/504, lowers it to 90 % (down to `min_in_flight`), at most
//! once per `latency_target` so one burst of slow answers is one cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use emporium_chassis::config::{ConfigError, Duration as ConfigDuration};
use emporium_chassis::{ErrorKind, Metrics, Problem};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};

/// How the in-flight bound is set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Follows measured latency between `min_in_flight` and `max_in_flight`.
    Adaptive,
    /// Always `max_in_flight`.
    Fixed,
}

/// `[gateway.overload]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OverloadConfig {
    pub mode: Mode,
    /// The bound (fixed), or its ceiling and starting point (adaptive).
    pub max_in_flight: usize,
    /// Adaptive only: the bound never falls below this.
    pub min_in_flight: usize,
    /// Adaptive only: a request slower than this is a sign of congestion.
    pub latency_target: ConfigDuration,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Adaptive,
            max_in_flight: 1024,
            min_in_flight: 32,
            latency_target: ConfigDuration::from_millis(500),
        }
    }
}

impl OverloadConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.max_in_flight) {
            return Err(ConfigError::invalid(
                "gateway.overload.max_in_flight",
                "must be 1 to 1000000",
            ));
        }
        if self.mode == Mode::Adaptive && !(1..=self.max_in_flight).contains(&self.min_in_flight) {
            return Err(ConfigError::invalid(
                "gateway.overload.min_in_flight",
                format!(
                    "must be 1 to gateway.overload.max_in_flight ({})",
                    self.max_in_flight
                ),
            ));
        }
        if self.latency_target.get().is_zero() {
            return Err(ConfigError::invalid(
                "gateway.overload.latency_target",
                "must be above 0",
            ));
        }
        Ok(())
    }
}

/// The AIMD controller: the current bound, moved by each finished request.
#[derive(Debug)]
pub struct Aimd {
    min: f64,
    max: f64,
    target: Duration,
    state: std::sync::Mutex<(f64, Option<Instant>)>,
}

impl Aimd {
    pub fn new(min: usize, max: usize, target: Duration) -> Self {
        Self {
            min: min as f64,
            max: max as f64,
            target,
            state: std::sync::Mutex::new((max as f64, None)),
        }
    }

    pub fn limit(&self) -> usize {
        self.lock().0 as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (f64, Option<Instant>)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One finished request: how long it took, whether it was a sign of
    /// overload, how many were in flight when it finished and when (`now`).
    pub fn sample(&self, took: Duration, overloaded: bool, in_flight: usize, now: Instant) {
        let mut state = self.lock();
        let (limit, last_cut) = &mut *state;
        if overloaded || took > self.target {
            let recent = last_cut.is_some_and(|at| now.saturating_duration_since(at) < self.target);
            if !recent {
                *limit = (*limit * 0.9).max(self.min);
                *last_cut = Some(now);
            }
        } else if in_flight as f64 * 2.0 >= *limit {
            *limit = (*limit + 1.0).min(self.max);
        }
    }
}

/// The middleware's state.
#[derive(Debug)]
pub struct Shedder {
    mode: Mode,
    fixed: usize,
    aimd: Aimd,
    in_flight: AtomicUsize,
    shed: Counter,
    limit_gauge: Gauge,
}

impl Shedder {
    pub fn new(config: &OverloadConfig, metrics: &Metrics) -> Arc<Self> {
        let shedder = Arc::new(Self {
            mode: config.mode,
            fixed: config.max_in_flight,
            aimd: Aimd::new(
                config.min_in_flight,
                config.max_in_flight,
                config.latency_target.get(),
            ),
            in_flight: AtomicUsize::new(0),
            shed: Counter::default(),
            limit_gauge: Gauge::default(),
        });
        metrics.register(
            "http_server_shed_requests",
            "Requests answered 503 at once because too many were in flight",
            shedder.shed.clone(),
        );
        metrics.register(
            "http_server_in_flight_limit",
            "The current bound on requests in flight (overload protection)",
            shedder.limit_gauge.clone(),
        );
        shedder
            .limit_gauge
            .set(i64::try_from(shedder.limit()).unwrap_or(i64::MAX));
        shedder
    }

    pub fn limit(&self) -> usize {
        match self.mode {
            Mode::Fixed => self.fixed,
            Mode::Adaptive => self.aimd.limit(),
        }
    }
}

/// Decrements the in-flight count however the request ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub async fn shed(State(shedder): State<Arc<Shedder>>, request: Request, next: Next) -> Response {
    let limit = shedder.limit();
    let now_in_flight = shedder.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let slot = Slot(&shedder.in_flight);
    if now_in_flight > limit {
        drop(slot);
        shedder.shed.inc();
        let mut response = Problem::new(
            ErrorKind::Unavailable,
            "The store is busy; try again shortly.",
        )
        .into_response();
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return response;
    }
    let started = Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    if shedder.mode == Mode::Adaptive {
        let status = response.status().as_u16();
        let overloaded = status == 503 || status == 504;
        let in_flight = shedder.in_flight.load(Ordering::SeqCst);
        shedder
            .aimd
            .sample(took, overloaded, in_flight, Instant::now());
        shedder
            .limit_gauge
            .set(i64::try_from(shedder.aimd.limit()).unwrap_or(i64::MAX));
    }
    drop(slot);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_answers_cut_the_bound_once_per_target_and_fast_busy_ones_grow_it_back() {
        let target = Duration::from_millis(100);
        let aimd = Aimd::new(10, 200, target);
        let t0 = Instant::now();
        assert_eq!(aimd.limit(), 200);
        // A burst of slow answers within one target window: one cut.
        for i in 0..5 {
            aimd.sample(
                Duration::from_millis(300),
                false,
                50,
                t0 + Duration::from_millis(i),
            );
        }
        assert_eq!(aimd.limit(), 180);
        // Sustained slowness cuts down to the floor, never below.
        for i in 1..100 {
            aimd.sample(Duration::from_millis(300), false, 50, t0 + target * i);
        }
        assert_eq!(aimd.limit(), 10);
        // Fast answers while the bound is not in use leave it alone ...
        aimd.sample(Duration::from_millis(5), false, 1, t0 + target * 200);
        assert_eq!(aimd.limit(), 10);
        // ... fast answers while it is busy raise it by one each, to the ceiling.
        for _ in 0..500 {
            aimd.sample(Duration::from_millis(5), false, 200, t0 + target * 200);
        }
        assert_eq!(aimd.limit(), 200);
        // An answer the gateway gave up on (503/504) counts as overload.
        aimd.sample(Duration::from_millis(1), true, 200, t0 + target * 300);
        assert_eq!(aimd.limit(), 180);
    }

    #[test]
    fn nonsense_settings_are_refused_naming_the_key() {
        let bad = |c: OverloadConfig| c.validate().unwrap_err().to_string();
        let base = OverloadConfig::default();
        assert!(
            bad(OverloadConfig {
                max_in_flight: 0,
                ..base
            })
            .contains("gateway.overload.max_in_flight")
        );
        assert!(
            bad(OverloadConfig {
                min_in_flight: 2000,
                ..base
            })
            .contains("gateway.overload.min_in_flight")
        );
        assert!(
            bad(OverloadConfig {
                latency_target: ConfigDuration::from_millis(0),
                ..base
            })
            .contains("gateway.overload.latency_target")
        );
        assert!(
            OverloadConfig {
                mode: Mode::Fixed,
                min_in_flight: 0,
                ..base
            }
            .validate()
            .is_ok()
        );
    }
}
