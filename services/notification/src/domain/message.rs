//! E-mails as this service keeps them: written once, when an event is
//! handled, as `pending`; delivered later by the sender, then `sent`.
//!
//! A message is *the* record of what was (or will be) sent: its subject and
//! body are rendered when the event is handled and never re-rendered, so a
//! retry sends exactly the same text, with the same `Message-ID`.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::Email;

/// A message id: a UUIDv7, also the `.eml` file name and (with
/// `@emporium.local`) the `Message-ID` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(Uuid);

impl MessageId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The RFC 5322 `Message-ID` of this message: `<id@emporium.local>`.
    /// The same on every send attempt and with every mailer, so a message
    /// resent after a crash is recognisable as the same one.
    pub fn header_value(&self) -> String {
        format!("<{}@emporium.local>", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which e-mail a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// "Your order is confirmed", from `order.placed.v1`.
    OrderConfirmation,
    /// "Your order has shipped", from `shipment.created.v1`.
    OrderShipped,
}

impl MessageKind {
    pub const ALL: [Self; 2] = [Self::OrderConfirmation, Self::OrderShipped];

    /// The stored name, also the `kind` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderConfirmation => "order_confirmation",
            Self::OrderShipped => "order_shipped",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message is. `Pending` → `Sent` is the only transition; a failed
/// attempt leaves it `Pending` (with one more attempt and a later retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Pending,
    Sent,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            _ => None,
        }
    }
}

/// A message about to be stored, together with the event that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: MessageId,
    /// The envelope id of the event this message answers.
    pub event_id: Uuid,
    pub kind: MessageKind,
    pub to: Email,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub event_id: Uuid,
    pub kind: MessageKind,
    pub to: Email,
    pub subject: String,
    pub body: String,
    pub status: MessageStatus,
    /// Delivery attempts made so far, the successful one included.
    pub attempts: u32,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    /// When the sender may try (again); a claimed message is pushed ahead
    /// by the claim's lease.
    pub next_attempt_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

/// How long a failed message waits before its next attempt: `first` after
/// the first failure, doubling with each further failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1-based).
    pub fn delay_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let policy = RetryPolicy {
            first: Duration::from_secs(10),
            max: Duration::from_secs(3600),
        };
        let delays: Vec<u64> = (1..=10).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
        assert_eq!(policy.delay_after(0).as_secs(), 10);
        assert_eq!(policy.delay_after(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn kinds_and_states_round_trip_through_their_names() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MessageKind::parse("newsletter"), None);
        for status in [MessageStatus::Pending, MessageStatus::Sent] {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn message_ids_make_a_stable_header() {
        let id = MessageId::generate();
        assert_eq!(id.header_value(), format!("<{id}@emporium.local>"));
        assert_eq!(id.header_value(), id.header_value());
    }
}
