//! What the operator tooling (`emporium events`) sees: streams, consumers
//! with their lag, and dead letters. The types are the same for both
//! backends; the `Display` forms are what the CLI prints.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::Envelope;

/// The result of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The event's position in the stream. For a duplicate, the position of
    /// the copy stored first (NATS) or already stored (log).
    pub sequence: u64,
    /// The same envelope id was already stored: nothing new was written.
    pub duplicate: bool,
}

/// What a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRole {
    Events,
    DeadLetters,
}

/// One stream (NATS) or table (log) and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub name: String,
    pub role: StreamRole,
    /// Messages stored now.
    pub messages: u64,
    /// Bytes of stored payloads.
    pub bytes: u64,
    /// The first stored sequence (0 when empty).
    pub first_sequence: u64,
    /// The last sequence ever assigned.
    pub last_sequence: u64,
}

/// One durable consumer and how far behind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    pub name: String,
    /// The filter, as [`crate::Filter`] prints it.
    pub filter: String,
    /// Events not yet acknowledged, the one in flight included: the lag.
    pub pending: u64,
    /// Deliveries handed out and not yet settled (0 or 1).
    pub in_flight: u64,
    /// Every event up to this stream sequence is settled.
    pub acked_sequence: u64,
}

/// The id of a dead letter: its sequence in the dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeadLetterId(pub u64);

impl fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event a consumer gave up on, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: DeadLetterId,
    /// The consumer that failed it.
    pub consumer: String,
    /// The event's sequence in the event stream.
    pub sequence: u64,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last failure reason.
    pub error: String,
    pub dead_at: OffsetDateTime,
    pub envelope: Envelope,
}

/// The message-id under which a replayed dead letter is republished: the
/// envelope keeps its id (so idempotent consumers recognise it), while the
/// stream's de-duplication sees a new message — but only once per dead letter.
pub(crate) fn replay_message_id(envelope: &Envelope, id: DeadLetterId) -> String {
    format!("{}:replay:{}", envelope.id(), id.0)
}
