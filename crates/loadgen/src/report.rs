//! What a run measured: HDR histograms per route and per journey, failures
//! by status or kind, and the report built from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::slo::{Slo, Stat, Verdict};

/// Latencies are recorded in microseconds, 1 µs to 1 h, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid histogram bounds")
}

#[derive(Debug)]
struct Series {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            latency: histogram(),
            ok: 0,
            failed: 0,
        }
    }
}

impl Series {
    fn record(&mut self, took: Duration, ok: bool) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(micros);
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    routes: BTreeMap<String, Series>,
    journeys: BTreeMap<String, Series>,
    all: Series,
    failures: BTreeMap<String, u64>,
    outcomes: BTreeMap<String, u64>,
    dropped: u64,
}

/// Collects measurements from every journey task.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Inner>);

impl Recorder {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One request to `route` (e.g. `GET /api/v1/products/{id}`); `failure`
    /// names what went wrong (`503`, `timeout`, `connect`), if anything.
    pub fn request(&self, route: &str, took: Duration, failure: Option<String>) {
        let mut inner = self.inner();
        let ok = failure.is_none();
        inner
            .routes
            .entry(route.to_owned())
            .or_default()
            .record(took, ok);
        inner.all.record(took, ok);
        if let Some(failure) = failure {
            *inner.failures.entry(failure).or_default() += 1;
        }
    }

    /// One journey, from its intended start to its end.
    pub fn journey(&self, name: &str, took: Duration, ok: bool) {
        self.inner()
            .journeys
            .entry(name.to_owned())
            .or_default()
            .record(took, ok);
    }

    pub fn dropped(&self) {
        self.inner().dropped += 1;
    }

    /// A business outcome worth counting (e.g. `checkout: declined`).
    pub fn outcome(&self, name: &str) {
        *self.inner().outcomes.entry(name.to_owned()).or_default() += 1;
    }

    /// Requests recorded so far (for the progress line).
    pub fn requests(&self) -> (u64, u64) {
        let inner = self.inner();
        (inner.all.ok + inner.all.failed, inner.all.failed)
    }

    /// The report of a run whose journeys started during `window` and whose
    /// last one ended after `elapsed`, judged against `slos`. Rates are per
    /// second of the window. Journeys dropped because too many were in flight
    /// fail the run whatever the gates say: the target has fallen over.
    pub fn report(&self, window: Duration, elapsed: Duration, slos: &[Slo]) -> Report {
        let inner = self.inner();
        let stats = |s: &Series| Stats::of(s, window);
        let routes: BTreeMap<String, Stats> = inner
            .routes
            .iter()
            .map(|(k, v)| (k.clone(), stats(v)))
            .collect();
        let journeys: BTreeMap<String, Stats> = inner
            .journeys
            .iter()
            .map(|(k, v)| (k.clone(), stats(v)))
            .collect();
        let all = stats(&inner.all);
        let verdicts = slos
            .iter()
            .map(|slo| {
                let scope = match slo.scope.as_str() {
                    "all" => Some(&all),
                    name => journeys.get(name).or_else(|| routes.get(name)),
                };
                let value = scope.filter(|s| s.requests > 0).map(|s| match slo.stat {
                    Stat::Percentile(q) => s.percentile_ms(q),
                    Stat::ErrorRate => s.error_percent,
                    Stat::Throughput => s.per_second,
                });
                Verdict {
                    slo: slo.text.clone(),
                    value,
                    ok: value.is_some_and(|v| slo.holds(v)),
                }
            })
            .chain((inner.dropped > 0).then(|| Verdict {
                slo: "no journey dropped (max in flight)".into(),
                value: Some(inner.dropped as f64),
                ok: false,
            }))
            .collect();
        Report {
            seconds: elapsed.as_secs_f64(),
            window_seconds: window.as_secs_f64(),
            outcomes: inner.outcomes.clone(),
            all,
            routes,
            journeys,
            failures: inner.failures.clone(),
            dropped: inner.dropped,
            slos: verdicts,
        }
    }
}

/// Counts and latency percentiles (milliseconds) of one scope.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub failed: u64,
    pub error_percent: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    #[serde(skip)]
    histogram: Histogram<u64>,
}

impl Stats {
    fn of(series: &Series, elapsed: Duration) -> Self {
        let h = &series.latency;
        let requests = series.ok + series.failed;
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Self {
            requests,
            failed: series.failed,
            error_percent: if requests == 0 {
                0.0
            } else {
                series.failed as f64 * 100.0 / requests as f64
            },
            per_second: requests as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: h.max() as f64 / 1e3,
            histogram: h.clone(),
        }
    }

    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.histogram.value_at_quantile(percentile / 100.0) as f64 / 1e3
    }
}

/// The result of a run (`--json` writes it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// From the first journey's start to the last one's end.
    pub seconds: f64,
    /// How long journeys kept starting; `per_second` figures divide by it.
    pub window_seconds: f64,
    /// Business outcomes (checkouts placed, declined, out of stock).
    pub outcomes: BTreeMap<String, u64>,
    pub all: Stats,
    pub routes: BTreeMap<String, Stats>,
    pub journeys: BTreeMap<String, Stats>,
    /// Failed requests by HTTP status or transport failure.
    pub failures: BTreeMap<String, u64>,
    /// Journeys not started because too many were in flight.
    pub dropped: u64,
    pub slos: Vec<Verdict>,
}

impl Report {
    /// Whether every SLO gate held.
    pub fn passed(&self) -> bool {
        self.slos.iter().all(|v| v.ok)
    }

    /// The table people read at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, s: &Stats| {
            let _ = writeln!(
                out,
                "{name:<34} {:>8} {:>6} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>9.2}",
                s.requests,
                s.failed,
                s.per_second,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.p999_ms,
                s.max_ms
            );
        };
        let header = format!(
            "{:<34} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}\n",
            "", "requests", "failed", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        out.push_str(&header.replacen("  ", "route", 1));
        for (name, s) in &self.routes {
            row(&mut out, name, s);
        }
        row(&mut out, "all requests", &self.all);
        out.push_str(&header.replacen("       ", "journey", 1));
        for (name, s) in &self.journeys {
            row(&mut out, name, s);
        }
        if !self.outcomes.is_empty() {
            let list: Vec<String> = self
                .outcomes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(out, "outcomes: {}", list.join(", "));
        }
        if !self.failures.is_empty() {
            let list: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(out, "failures: {}", list.join(", "));
        }
        if self.dropped > 0 {
            let _ = writeln!(out, "dropped (too many in flight): {}", self.dropped);
        }
        for verdict in &self.slos {
            let _ = writeln!(out, "{verdict}");
        }
        out
    }
}
