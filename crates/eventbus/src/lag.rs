//! Running a durable consumer: opening it whenever the bus lets us, and
//! exporting how far behind it is and how its deliveries end.
//!
//! Metrics:
//! - `emporium_consumer_lag_messages{consumer}` — events of the consumer's
//!   filter not yet acknowledged (those in flight included), as the bus
//!   itself counts them ([`crate::ConsumerInfo::pending`]). Every replica of
//!   a service reads the same durable consumer, so every replica reports the
//!   same figure; alerts take the `max`.
//! - `emporium_consumer_deliveries_total{consumer,outcome}` — this
//!   process's settled deliveries ([`Outcomes`]): `acked`, `retried` (a
//!   transient failure, retried without counting an attempt), `failed` (a
//!   counted failed attempt that will be retried) and `dead_lettered`. A
//!   growing `retried` with a flat `acked` is an outage the consumer is
//!   riding out; `dead_lettered` is events given up on.

use std::sync::Arc;
use std::time::Duration;

use emporium_chassis::Metrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use crate::{Consumer, ConsumerConfig, EventBus, Result};

/// The metric's name.
pub const LAG_METRIC: &str = "emporium_consumer_lag_messages";

/// The settled-deliveries counter's name (`_total` is added by the exporter).
pub const OUTCOMES_METRIC: &str = "emporium_consumer_deliveries";

/// How one delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// A transient failure: retried later, not counted as an attempt.
    Retried,
    /// A counted failed attempt, retried later.
    Failed,
    DeadLettered,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Self::Acked, Self::Retried, Self::Failed, Self::DeadLettered];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acked => "acked",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Counts one consumer's settled deliveries by [`Outcome`]
/// (`emporium_consumer_deliveries_total{consumer,outcome}`); attach it with
/// [`Consumer::counting`].
#[derive(Debug)]
pub struct Outcomes {
    counters: [Counter; 4],
}

impl Outcomes {
    /// Registers the counter family in `metrics`, every outcome at 0 so the
    /// series exist from the start.
    pub fn new(consumer: &str, metrics: &Metrics) -> Arc<Self> {
        let family = Family::<Vec<(String, String)>, Counter>::default();
        let counters = Outcome::ALL.map(|outcome| {
            family
                .get_or_create(&vec![
                    ("consumer".to_owned(), consumer.to_owned()),
                    ("outcome".to_owned(), outcome.as_str().to_owned()),
                ])
                .clone()
        });
        metrics.register(
            OUTCOMES_METRIC,
            "Deliveries the consumer settled, by outcome",
            family,
        );
        Arc::new(Self { counters })
    }

    pub(crate) fn count(&self, outcome: Outcome) {
        self.counters[outcome as usize].inc();
    }

    /// How many deliveries ended with `outcome` so far.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.counters[outcome as usize].get()
    }
}

/// How often [`ConsumerLag::run`] asks the bus (a Prometheus scrape interval
/// is 15–30 s; one small admin request per consumer per period).
pub const LAG_REFRESH: Duration = Duration::from_secs(10);

/// Opens the durable consumer `config` on `bus`, retrying every second
/// while the bus refuses; `None` once `stop` is cancelled.
pub async fn open_consumer_until(
    bus: &dyn EventBus,
    config: &ConsumerConfig,
    stop: &CancellationToken,
) -> Option<Consumer> {
    let mut attempt = 0u32;
    loop {
        match bus.consumer(config.clone()).await {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                attempt = attempt.saturating_add(1);
                if attempt == 1 || attempt.is_multiple_of(30) {
                    tracing::warn!(consumer = %config.name, error = %e, attempt, "cannot open the consumer; retrying");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Keeps `emporium_consumer_lag_messages{consumer}` current for one consumer.
#[derive(Debug)]
pub struct ConsumerLag {
    name: String,
    gauge: Gauge<i64>,
    interval: Duration,
}

impl ConsumerLag {
    /// Registers the gauge (at 0) in `metrics`, before the bus is reachable
    /// so the series exists from the start; [`Self::run`] refreshes it every
    /// [`LAG_REFRESH`].
    pub fn new(consumer: &str, metrics: &Metrics) -> Self {
        let family = Family::<Vec<(String, String)>, Gauge<i64>>::default();
        let gauge = family
            .get_or_create(&vec![("consumer".to_owned(), consumer.to_owned())])
            .clone();
        metrics.register(
            LAG_METRIC,
            "Events the durable consumer has not acknowledged yet",
            family,
        );
        Self {
            name: consumer.to_owned(),
            gauge,
            interval: LAG_REFRESH,
        }
    }

    /// Refreshes every `interval` instead.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Reads the consumer's lag from the bus into the gauge and returns it.
    /// A consumer the bus does not know (yet) has no lag.
    pub async fn refresh(&self, bus: &dyn EventBus) -> Result<u64> {
        let pending = bus
            .consumers()
            .await?
            .into_iter()
            .find(|c| c.name == self.name)
            .map_or(0, |c| c.pending);
        self.gauge.set(i64::try_from(pending).unwrap_or(i64::MAX));
        Ok(pending)
    }

    /// Refreshes the gauge until `stop`; a failed read keeps the last value
    /// (the bus being away shows in the consumer's own errors).
    pub async fn run(self, bus: Arc<dyn EventBus>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.refresh(&*bus).await {
                tracing::debug!(consumer = %self.name, error = %e, "cannot read the consumer's lag");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}
