//! Everything this service reports about its work, in one place: the
//! metrics (registered on the service's chassis [`Metrics`] registry, so
//! they appear on the admin port's `/metrics`) and the log events that go
//! with them. Names are stable; dashboards and alerts use them.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `notification_messages_sent_total` | `kind` (`order_confirmation`, `order_shipped`) | e-mails delivered (file written or SMTP server accepted) |
//! | `notification_send_failures_total` | | failed delivery attempts (each is retried later) |
//! | `notification_events_total` | `type`, `outcome` | consumed events by what became of them |
//!
//! Event outcomes: `applied` (handled now), `duplicate` (handled before,
//! skipped), `ignored` (a type this service does not act on), `retried`
//! (nacked, comes again), `rejected` (dead-lettered).

use emporium_chassis::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::domain::{MessageId, MessageKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    r#type: String,
    outcome: &'static str,
}

/// What became of a consumed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Duplicate,
    Ignored,
    /// A counted failed attempt, retried later.
    Retried,
    /// A transient failure (the database unavailable): retried later
    /// without counting an attempt.
    Deferred,
    Rejected,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Retried => "retried",
            Self::Deferred => "deferred",
            Self::Rejected => "rejected",
        }
    }

    pub const ALL: [Self; 6] = [
        Self::Applied,
        Self::Duplicate,
        Self::Ignored,
        Self::Retried,
        Self::Deferred,
        Self::Rejected,
    ];
}

/// The service's own metrics; cheap to clone (counters are shared).
#[derive(Debug, Clone)]
pub struct Telemetry {
    sent: Family<KindLabel, Counter>,
    send_failures: Counter,
    events: Family<EventLabels, Counter>,
}

impl Telemetry {
    /// Creates the metrics and registers them on `metrics`. Every message
    /// kind starts at 0, so the series exist before the first e-mail.
    pub fn register(metrics: &Metrics) -> Self {
        let sent = Family::<KindLabel, Counter>::default();
        for kind in MessageKind::ALL {
            let _ = sent.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }
        let send_failures = Counter::default();
        let events = Family::<EventLabels, Counter>::default();
        // Likewise every outcome of every consumed type, so `increase()`
        // sees a pod's first rejection.
        for ty in crate::events::CONSUMED_TYPES {
            for outcome in EventOutcome::ALL {
                let _ = events.get_or_create(&EventLabels {
                    r#type: ty.to_owned(),
                    outcome: outcome.as_str(),
                });
            }
        }
        metrics.register(
            "notification_messages_sent",
            "E-mails delivered, by kind",
            sent.clone(),
        );
        metrics.register(
            "notification_send_failures",
            "Failed e-mail delivery attempts (retried later)",
            send_failures.clone(),
        );
        metrics.register(
            "notification_events",
            "Consumed events, by type and outcome",
            events.clone(),
        );
        Self {
            sent,
            send_failures,
            events,
        }
    }

    /// A message was delivered.
    pub fn message_sent(&self, id: MessageId, kind: MessageKind, attempt: u32) {
        self.sent
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc();
        tracing::info!(message_id = %id, kind = %kind, attempt, "An e-mail was delivered.");
    }

    /// A delivery attempt failed; the message is due again after `retry_in`.
    pub fn send_failed(
        &self,
        id: MessageId,
        kind: MessageKind,
        attempt: u32,
        retry_in: std::time::Duration,
        error: &dyn std::fmt::Display,
    ) {
        self.send_failures.inc();
        tracing::warn!(
            message_id = %id,
            kind = %kind,
            attempt,
            retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "An e-mail could not be delivered; it stays pending and is retried later."
        );
    }

    /// A consumed event was settled with `outcome`.
    pub fn event_settled(&self, event_type: &str, outcome: EventOutcome) {
        self.events
            .get_or_create(&EventLabels {
                r#type: event_type.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_their_documented_names() {
        let metrics = Metrics::new("notification");
        let t = Telemetry::register(&metrics);
        let before = metrics.render();
        assert!(
            before.contains(
                r#"notification_events_total{service="notification",type="shipment.created.v1",outcome="rejected"} 0"#
            ),
            "{before}"
        );
        assert!(
            before.contains(
                r#"notification_messages_sent_total{service="notification",kind="order_shipped"} 0"#
            ),
            "{before}"
        );
        t.message_sent(MessageId::generate(), MessageKind::OrderConfirmation, 1);
        t.send_failed(
            MessageId::generate(),
            MessageKind::OrderShipped,
            1,
            std::time::Duration::from_secs(10),
            &"connection refused",
        );
        t.event_settled("order.placed.v1", EventOutcome::Duplicate);
        let text = metrics.render();
        for line in [
            r#"notification_messages_sent_total{service="notification",kind="order_confirmation"} 1"#,
            r#"notification_send_failures_total{service="notification"} 1"#,
            r#"notification_events_total{service="notification",type="order.placed.v1",outcome="duplicate"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
