//! Durable events between Emporium services: one [`EventBus`] API, two
//! backends that pass one conformance suite (`tests/conformance.rs`).
//!
//! - [`nats::NatsBus`]: NATS JetStream, for the cluster (stream `EMPORIUM`,
//!   subjects `emporium.<type>`, dead letters in `EMPORIUM_DLQ`).
//! - [`log::LogBus`]: an embedded log in a SQLite file (`events.db`), for
//!   `emporium up` on one machine without a broker.
//!
//! Services hold an `Arc<dyn EventBus>` made by [`connect`] from an
//! [`EventBusConfig`]; they never name a backend.
//!
//! # Layout
//! - [`envelope`]: the CloudEvents-shaped [`Envelope`] and [`EventType`];
//! - [`events`]: the catalogue of event types and their typed payloads;
//! - [`consumer`]: [`ConsumerConfig`], [`Consumer`], [`Delivery`];
//! - [`admin`]: what tooling lists (streams, consumers and lag, dead letters);
//! - [`config`]: the [`EventBusConfig`];
//! - [`nats`] and [`log`]: the backends.
//!
//! # Guarantees (both backends)
//!
//! **Durability.** [`EventBus::publish`] returns only once the event is
//! stored: acknowledged by the JetStream server (file storage, replicated to
//! `replicas` servers in a cluster — the server itself fsyncs periodically,
//! so a single server protects against process crashes and a cluster of 3
//! against the loss of a machine), or committed to the SQLite file with
//! `synchronous = FULL` (fsync'd WAL, so also across a power loss). An error means "maybe not stored":
//! publish again — the envelope id makes that safe (below). Consumer state
//! (positions, acks) survives process crashes on both; after a power loss
//! the log may have forgotten the latest acks, so those events come again.
//!
//! **De-duplication.** A publish carries the envelope id as its message id
//! (`Nats-Msg-Id`; a `UNIQUE` column in the log). Publishing the same
//! envelope twice stores it once — within the stream's duplicate window
//! (2 minutes by default) on NATS, for as long as the event is retained in
//! the log. An outbox relay that crashed after publishing but before
//! marking its row therefore does not create a second event.
//!
//! **At-least-once delivery.** Each durable consumer (a name) has a position
//! that survives restarts of the consumer, the service and the broker. An
//! event is delivered until it is acknowledged: a delivery that is not
//! settled within `ack_wait` — the handler is slow, it panicked, the process
//! was killed — is delivered again (with `attempt` one higher), to whichever
//! process holding that consumer name asks next. A consumer can therefore
//! see an event more than once and must be idempotent (record the envelope
//! id in the same transaction as the effect).
//!
//! **Retries and dead letters.** Two kinds of failure. A *transient* one
//! ([`Delivery::retry`]: the handler's database or an upstream is
//! unavailable) brings the event back after the consumer's backoff for its
//! retry count — the schedule's last entry is the cap — and never counts
//! toward `max_deliver`: it is retried for as long as it takes. A
//! *deterministic* (or unknown) one ([`Delivery::nack`]) counts: the
//! `max_deliver`-th failed attempt — a nack, or an `ack_wait` expiry —
//! moves the event to the dead letters (`EMPORIUM_DLQ` on NATS, subject
//! `emporium-dlq.<consumer>`; the `dead_letters` table in the log) with the
//! attempt count and the last error, and the consumer moves on.
//! [`Delivery::term`] does the same at once. The dead letter is written
//! (and acknowledged by the server) *before* the original is released, so a
//! crash in between leaves the event undelivered-but-retried, never lost.
//! Tooling lists, replays ([`EventBus::replay_dead_letter`]: republish with
//! the same envelope id, then remove) and deletes dead letters.
//!
//! **Ordering.** Events with the same `subject` (the ordering key, e.g. the
//! order id) reach a consumer in publish order, retries included: a
//! consumer has up to `max_in_flight` deliveries outstanding (handed out or
//! waiting for a retry), at most one per subject, so an event is handed out
//! only after the previous one of its subject is acknowledged or
//! dead-lettered, while events of other subjects pass a stuck one. With the
//! default `max_in_flight = 1` a consumer processes one event at a time and
//! a failing event holds up everything behind it. How each backend keeps
//! the per-subject gate: the log in its `deliveries` table (shared by every
//! process on the file); NATS with `max_ack_pending = max_in_flight` and a
//! gate in each process — with several processes sharing a consumer name
//! and `max_in_flight > 1`, an event whose predecessor is being retried in
//! *another* process is not held back (see [`nats`]). A replayed dead
//! letter is appended to the end of the stream, so it arrives after events
//! of its subject that were published later.
//!
//! **On a crash.** A publisher: the event is stored or not, never half; an
//! unanswered publish is retried with the same id. A consumer: its position
//! and in-flight state are in the broker or in SQLite transactions; an
//! unacknowledged delivery comes back after `ack_wait`; an acknowledged one
//! never does. The log's state changes (publish, hand-out, ack, nack, dead
//! letter, replay) are each a single SQLite transaction.
//!
//! **Trace context.** The envelope's `traceparent` (W3C) travels with the
//! event (also as a NATS header); [`Delivery::trace_context`] continues it.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod envelope;
mod error;
pub mod events;
pub mod lag;
pub mod log;
pub mod nats;
pub mod outbox;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use admin::{ConsumerInfo, DeadLetter, DeadLetterId, Published, StreamInfo, StreamRole};
pub use config::{BackendKind, EventBusConfig, LogConfig, NatsConfig};
pub use consumer::{Consumer, ConsumerConfig, Delivery, Filter, Nacked};
pub use envelope::{Envelope, EnvelopeError, EventType};
pub use error::{Error, Result};
pub use events::Event;

/// A boxed, sendable future: what [`EventBus`] methods return, so the trait
/// can be used as `Arc<dyn EventBus>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Publishing, consuming and administering events. See the crate docs for
/// the guarantees every implementation keeps.
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> BackendKind;

    /// Stores `envelope`; returns once it is durable. Publishing the same
    /// envelope (id) again is answered with `duplicate: true`.
    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Published>>;

    /// Opens (creating if new) the durable consumer `config.name`. A new
    /// consumer starts at the oldest retained event. Reopening an existing
    /// name continues from its stored position.
    fn consumer(&self, config: ConsumerConfig) -> BoxFuture<'_, Result<Consumer>>;

    /// The event stream and the dead-letter stream with their sizes.
    fn streams(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>>>;

    /// Every durable consumer with its lag, by name.
    fn consumers(&self) -> BoxFuture<'_, Result<Vec<ConsumerInfo>>>;

    /// Forgets a consumer and its position.
    fn delete_consumer<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Up to `limit` dead letters, oldest first, of one consumer or all.
    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>>>;

    /// Publishes a dead letter's envelope again (same envelope id, appended
    /// to the stream, so every consumer sees it; idempotent consumers that
    /// already handled it skip it) and then removes the dead letter.
    fn replay_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<Published>>;

    /// Removes a dead letter without replaying it.
    fn delete_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<()>>;

    /// Deletes every event, consumer and dead letter (tests, local resets).
    fn purge(&self) -> BoxFuture<'_, Result<()>>;
}

/// Opens the configured backend: connects to NATS and creates the streams,
/// or opens (creating and migrating) the SQLite log.
pub async fn connect(config: &EventBusConfig) -> Result<Arc<dyn EventBus>> {
    Ok(match config.backend {
        BackendKind::Log => Arc::new(log::LogBus::open(&config.log).await?),
        BackendKind::Nats => Arc::new(nats::NatsBus::connect(&config.nats).await?),
    })
}
