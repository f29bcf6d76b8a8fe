//! The transactional outbox relay.
//!
//! A producer writes each event into an outbox table of its own database in
//! the same transaction as the state change it reports (so an event exists
//! if and only if the change committed). [`Relay`] then publishes the
//! pending rows in order and marks them published. A crash between the
//! publish and the mark publishes the row again on restart; the envelope id
//! travels as the message id, so the bus drops the duplicate. The relay
//! publishes strictly in order and stops a batch at the first failure, so a
//! broker outage delays events but neither loses nor reorders them.
//!
//! Metrics: `emporium_outbox_pending` (rows waiting) and
//! `emporium_outbox_lag_seconds` (age of the oldest waiting row).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use emporium_chassis::Metrics;
use prometheus_client::metrics::gauge::Gauge;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::{BoxFuture, Envelope, EventBus};

/// One outbox row waiting to be published.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    /// The envelope as JSON ([`Envelope::to_json`]).
    pub envelope: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// A producer's outbox table.
pub trait OutboxSource: Send + Sync + std::fmt::Debug {
    /// Up to `limit` unpublished rows, oldest first.
    fn pending(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Pending>, String>>;
    /// Marks rows published.
    fn mark_published<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), String>>;
}

/// Publishes a producer's outbox.
#[derive(Debug)]
pub struct Relay {
    source: Arc<dyn OutboxSource>,
    interval: Duration,
    batch: u32,
    pending: Gauge<i64>,
    lag: Gauge<f64, AtomicU64>,
}

impl Relay {
    /// A relay polling every `interval`, registering its gauges in `metrics`
    /// (before any bus is reachable, so an outage at start-up shows).
    pub fn new(source: Arc<dyn OutboxSource>, interval: Duration, metrics: &Metrics) -> Self {
        let pending = Gauge::<i64>::default();
        let lag = Gauge::<f64, AtomicU64>::default();
        metrics.register(
            "emporium_outbox_pending",
            "Outbox rows waiting to be published",
            pending.clone(),
        );
        metrics.register(
            "emporium_outbox_lag_seconds",
            "Age of the oldest unpublished outbox row",
            lag.clone(),
        );
        Self {
            source,
            interval,
            batch: 100,
            pending,
            lag,
        }
    }

    /// Reads the next batch of pending rows and sets the gauges from it.
    async fn observe(&self) -> Result<Vec<Pending>, String> {
        let rows = self.source.pending(self.batch).await?;
        self.pending
            .set(i64::try_from(rows.len()).unwrap_or(i64::MAX));
        let lag = rows.first().map_or(0.0, |r| {
            (OffsetDateTime::now_utc() - r.created_at)
                .as_seconds_f64()
                .max(0.0)
        });
        self.lag.set(lag);
        Ok(rows)
    }

    /// Connects to the configured bus like [`connect_until`], keeping the
    /// gauges current meanwhile (events pile up in the outbox while the bus
    /// is away, and the lag alert must see that).
    pub async fn connect(
        &self,
        config: &crate::EventBusConfig,
        stop: &CancellationToken,
    ) -> Option<Arc<dyn EventBus>> {
        let connecting = connect_until(config, stop);
        tokio::pin!(connecting);
        loop {
            tokio::select! {
                bus = &mut connecting => return bus,
                _ = tokio::time::sleep(self.interval) => {
                    if let Err(e) = self.observe().await {
                        tracing::debug!(error = %e, "cannot read the outbox");
                    }
                }
            }
        }
    }

    /// Publishes what is pending now; returns how many rows were published.
    /// Stops at the first failure (the rest waits for the next pass).
    pub async fn publish_pending(&self, bus: &dyn EventBus) -> Result<usize, String> {
        let rows = self.observe().await?;
        let mut done = Vec::new();
        let mut failure = None;
        for row in &rows {
            let envelope = match Envelope::from_json(&row.envelope) {
                Ok(envelope) => envelope,
                Err(e) => {
                    // It can never be published; keeping it would stop every later event.
                    tracing::error!(outbox_id = %row.id, error = %e, "unreadable outbox row skipped");
                    done.push(row.id.clone());
                    continue;
                }
            };
            match bus.publish(&envelope).await {
                Ok(_) => done.push(row.id.clone()),
                Err(e) => {
                    failure = Some(format!("publishing {}: {e}", row.id));
                    break;
                }
            }
        }
        if !done.is_empty() {
            self.source.mark_published(&done).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(done.len()),
        }
    }

    /// Runs until `stop`, publishing to `bus` as rows appear.
    pub async fn run(self, bus: Arc<dyn EventBus>, stop: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let wait = match self.publish_pending(&*bus).await {
                Ok(n) if n as u32 >= self.batch => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    self.interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_multiple_of(50) {
                        tracing::warn!(error = %e, failures, "outbox relay cannot publish; will retry");
                    }
                    (self.interval * failures.min(20)).min(Duration::from_secs(5))
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Connects to the configured bus, retrying every second while it is down,
/// until `stop`. Services call this from a background task so that a broker
/// outage at start-up delays events (the outboxes keep them) instead of
/// stopping the service.
pub async fn connect_until(
    config: &crate::EventBusConfig,
    stop: &CancellationToken,
) -> Option<Arc<dyn EventBus>> {
    let mut attempt = 0u32;
    loop {
        match crate::connect(config).await {
            Ok(bus) => return Some(bus),
            Err(e) => {
                attempt = attempt.saturating_add(1);
                if attempt == 1 || attempt.is_multiple_of(30) {
                    tracing::warn!(error = %e, attempt, "event bus unreachable; retrying");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
