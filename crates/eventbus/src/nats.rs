//! The cluster backend: NATS JetStream (written against server 2.9: one
//! filter subject per consumer, no 2.10+ features).
//!
//! Layout on the server (names from [`NatsConfig`]):
//! - stream `EMPORIUM`, subjects `emporium.>`, file storage, limits
//!   retention with `max_age`, `duplicate_window` for de-duplication; an
//!   event of type `order.placed.v1` is published to
//!   `emporium.order.placed.v1` with headers `Nats-Msg-Id` (the envelope
//!   id), `traceparent`, `ce-type` and `ce-subject`, and the whole envelope
//!   as JSON payload;
//! - stream `EMPORIUM_DLQ`, subjects `emporium-dlq.>`, no age limit: one
//!   message per dead letter on `emporium-dlq.<consumer>`, a JSON record
//!   with the envelope, the attempts and the last error;
//! - one durable pull consumer per consumer name on `EMPORIUM`: explicit
//!   ack, `ack_wait`, `max_ack_pending = max_in_flight`, deliver-all.
//!
//! How the guarantees are kept:
//! - *Durability*: publish waits for the stream's acknowledgement.
//! - *At-least-once*: the server redelivers what is not acknowledged within
//!   `ack_wait`; acknowledgements are confirmed by the server
//!   (`double_ack`) before `ack()` returns.
//! - *Retries*: a nack is `-NAK {"delay": …}` with the delay from the
//!   consumer's backoff. (The server's own `backoff` list is not used: it
//!   only applies to ack timeouts and replaces `ack_wait`.)
//! - *Dead letters*: the server's `max_deliver` is left unlimited, because
//!   the server silently drops a message after its last delivery — it would
//!   be lost if the process died during that attempt. The client counts
//!   instead: a failure on attempt `max_deliver`, or a delivery arriving
//!   with a higher count (the last attempt timed out), writes the dead
//!   letter, waits for the DLQ stream's acknowledgement (de-duplicated by
//!   `<stream>:<seq>:<consumer>`), and only then terminates the original.
//! - *Filters*: the server filters by one subject (2.9): the words all
//!   wanted types share (`emporium.order.>`); types outside the filter that
//!   still arrive are acknowledged and skipped by the client. Lag for such a
//!   consumer counts those too.
//! - *Ordering per key*: the server hands out up to `max_in_flight` events
//!   in stream order; the process keeps, per subject, the one event it has
//!   handed out or is retrying, and parks later events of that subject
//!   (extending their leases) until it is settled. With `max_in_flight = 1`
//!   the server itself keeps one event at a time, across every process.
//!   With more, the gate is per process: several processes sharing a
//!   consumer name each gate their own deliveries, so an event whose
//!   predecessor is being retried in another process is not held back by
//!   it. (A key reserved for an event nacked to the server is released if
//!   the event does not come back to this process within its delay plus
//!   `ack_wait`.)
//! - *Transient retries*: [`crate::Delivery::retry`] keeps the message in
//!   the process (not nacked, so the server's delivery count does not
//!   grow), extends its lease every third of `ack_wait` (`+WPI`), and hands
//!   it out again when its delay is over. If the process stops meanwhile,
//!   the lease ends and the event comes back as a failed attempt.
//! - *Pulling*: each [`Consumer::next`] sends one pull request for one
//!   message that expires with the wait, so nothing is pulled that the
//!   application did not ask for (a consumer closed between calls leaves no
//!   message stranded until `ack_wait`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, AckKind};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::admin::{
    ConsumerInfo, DeadLetter, DeadLetterId, Published, StreamInfo, StreamRole, replay_message_id,
};
use crate::config::{BackendKind, NatsConfig};
use crate::consumer::{Consumer, ConsumerConfig, Delivery, DeliverySource, Filter, Settle};
use crate::envelope::{Envelope, EventType, format_time, parse_time};
use crate::error::{Error, Result};
use crate::{BoxFuture, EventBus};

/// Shortest pull request: the server needs a positive expiry.
const MIN_PULL: Duration = Duration::from_millis(10);
/// Most dead letters one listing returns.
const MAX_LISTING: usize = 10_000;
/// Consumer descriptions start with this; the rest is the filter.
const DESCRIPTION_PREFIX: &str = "emporium consumer; filter: ";

/// The JetStream backend. Cheap to clone.
#[derive(Clone)]
pub struct NatsBus {
    shared: Arc<Shared>,
}

struct Shared {
    js: jetstream::Context,
    config: NatsConfig,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("stream", &self.shared.config.stream)
            .field("dlq_stream", &self.shared.config.dlq_stream)
            .field("subject_prefix", &self.shared.config.subject_prefix)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects and creates (or updates) both streams. Fails if the server
    /// cannot be reached within `connect_timeout`.
    pub async fn connect(config: &NatsConfig) -> Result<Self> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .name("emporium-eventbus")
            .connection_timeout(config.connect_timeout.get())
            .request_timeout(Some(config.request_timeout.get()))
            .connect(config.url.expose())
            .await
            .map_err(|e| Error::unavailable("connecting to NATS", e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout.get())
            .build(client);
        let bus = Self {
            shared: Arc::new(Shared {
                js,
                config: config.clone(),
            }),
        };
        bus.ensure_streams().await?;
        Ok(bus)
    }

    async fn ensure_streams(&self) -> Result<()> {
        let c = &self.shared.config;
        let events = StreamConfig {
            name: c.stream.clone(),
            description: Some("Emporium events".into()),
            subjects: vec![format!("{}.>", c.subject_prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: c.max_age.get(),
            duplicate_window: c.duplicate_window.get(),
            num_replicas: c.replicas,
            ..StreamConfig::default()
        };
        let dead_letters = StreamConfig {
            name: c.dlq_stream.clone(),
            description: Some("Emporium dead letters".into()),
            subjects: vec![format!("{}.>", self.shared.dlq_prefix())],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            duplicate_window: c.duplicate_window.get(),
            num_replicas: c.replicas,
            ..StreamConfig::default()
        };
        for config in [events, dead_letters] {
            self.shared
                .js
                .create_or_update_stream(config)
                .await
                .map_err(|e| Error::backend("creating the streams", e))?;
        }
        Ok(())
    }

    /// Deletes both streams with everything in them (test clean-up).
    pub async fn delete_streams(&self) -> Result<()> {
        let c = &self.shared.config;
        for name in [&c.stream, &c.dlq_stream] {
            match self.shared.js.delete_stream(name).await {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        jetstream::context::DeleteStreamErrorKind::JetStream(ref j)
                            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                    ) => {}
                Err(e) => return Err(Error::backend("deleting the streams", e)),
            }
        }
        Ok(())
    }
}

impl Shared {
    fn subject_of(&self, ty: &EventType) -> String {
        format!("{}.{}", self.config.subject_prefix, ty)
    }

    fn dlq_prefix(&self) -> String {
        format!("{}-dlq", self.config.subject_prefix)
    }

    fn dlq_subject(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.dlq_prefix())
    }

    /// The one server-side filter subject for `filter` (see module docs).
    fn filter_subject(&self, filter: &Filter) -> String {
        let mut subject = self.config.subject_prefix.clone();
        for word in filter.common_prefix() {
            subject.push('.');
            subject.push_str(word);
        }
        let single_type = matches!(filter, Filter::Types(set) if set.len() == 1);
        if !single_type {
            subject.push_str(".>");
        }
        subject
    }

    async fn publish_with_id(&self, envelope: &Envelope, msg_id: &str) -> Result<Published> {
        let mut headers = HeaderMap::new();
        if let Some(trace) = envelope.trace_context() {
            headers.insert("traceparent", trace.to_traceparent());
        }
        headers.insert("ce-type", envelope.event_type().as_str());
        headers.insert("ce-subject", envelope.subject());
        let message = PublishMessage::build()
            .payload(envelope.to_json().into())
            .headers(headers)
            .message_id(msg_id);
        let doing = "publishing an event";
        let ack = self
            .js
            .send_publish(self.subject_of(envelope.event_type()), message)
            .await
            .map_err(|e| Error::unavailable(doing, e))?
            .await
            .map_err(|e| Error::unavailable(doing, e))?;
        Ok(Published {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn stream(&self, name: &str) -> Result<jetstream::stream::Stream<()>> {
        self.js
            .get_stream_no_info(name)
            .await
            .map_err(|e| Error::backend("opening a stream", e))
    }

    /// The dead letter stored at `id`, if any.
    async fn get_dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>> {
        let dlq = self.stream(&self.config.dlq_stream).await?;
        match dlq.get_raw_message(id.0).await {
            Ok(message) => dead_letter_of(&message).map(Some),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(Error::backend("reading a dead letter", e)),
        }
    }

    /// Publishes the dead-letter record and waits for the DLQ stream to
    /// store it.
    async fn write_dead_letter(
        &self,
        consumer: &str,
        sequence: u64,
        envelope: &Envelope,
        attempts: u32,
        reason: &str,
    ) -> Result<()> {
        let record = DeadLetterRecord {
            consumer: consumer.to_owned(),
            sequence,
            attempts,
            error: reason.to_owned(),
            dead_at: format_time(OffsetDateTime::now_utc()),
            envelope: envelope.clone(),
        };
        let doing = "writing a dead letter";
        let payload = serde_json::to_vec(&record).map_err(|e| Error::backend(doing, e))?;
        let mut headers = HeaderMap::new();
        if let Some(trace) = envelope.trace_context() {
            headers.insert("traceparent", trace.to_traceparent());
        }
        headers.insert("ce-type", envelope.event_type().as_str());
        let message = PublishMessage::build()
            .payload(payload.into())
            .headers(headers)
            .message_id(format!("{}:{sequence}:{consumer}", self.config.stream));
        self.js
            .send_publish(self.dlq_subject(consumer), message)
            .await
            .map_err(|e| Error::unavailable(doing, e))?
            .await
            .map_err(|e| Error::unavailable(doing, e))?;
        Ok(())
    }
}

/// A dead letter as stored in the DLQ stream.
#[derive(Debug, Serialize, Deserialize)]
struct DeadLetterRecord {
    consumer: String,
    sequence: u64,
    attempts: u32,
    error: String,
    dead_at: String,
    envelope: Envelope,
}

fn dead_letter_of(message: &StreamMessage) -> Result<DeadLetter> {
    let doing = "reading a dead letter";
    let record: DeadLetterRecord =
        serde_json::from_slice(&message.payload).map_err(|e| Error::backend(doing, e))?;
    Ok(DeadLetter {
        id: DeadLetterId(message.sequence),
        consumer: record.consumer,
        sequence: record.sequence,
        attempts: record.attempts,
        error: record.error,
        dead_at: parse_time("dead_at", &record.dead_at)?,
        envelope: record.envelope,
    })
}

impl EventBus for NatsBus {
    fn backend(&self) -> BackendKind {
        BackendKind::Nats
    }

    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Published>> {
        Box::pin(async move {
            let published = self
                .shared
                .publish_with_id(envelope, &envelope.id().to_string())
                .await?;
            tracing::debug!(
                event_id = %envelope.id(),
                event_type = %envelope.event_type(),
                sequence = published.sequence,
                duplicate = published.duplicate,
                "An event was published to JetStream."
            );
            Ok(published)
        })
    }

    fn consumer(&self, config: ConsumerConfig) -> BoxFuture<'_, Result<Consumer>> {
        Box::pin(async move {
            config.validate()?;
            let server_config = pull::Config {
                durable_name: Some(config.name.clone()),
                description: Some(format!("{DESCRIPTION_PREFIX}{}", config.filter)),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: -1,
                filter_subject: self.shared.filter_subject(&config.filter),
                max_ack_pending: i64::from(config.max_in_flight),
                ..pull::Config::default()
            };
            let consumer: PullConsumer = self
                .shared
                .js
                .create_consumer_on_stream(server_config, &self.shared.config.stream)
                .await
                .map_err(|e| Error::backend("creating a durable consumer", e))?;
            let config = Arc::new(config);
            let local = Arc::new(Mutex::new(Local::default()));
            let keepalive = tokio::spawn(keep_leases(
                Arc::downgrade(&local),
                (config.ack_wait / 3).max(MIN_PULL),
            ));
            let source = NatsSource {
                shared: Arc::clone(&self.shared),
                consumer,
                config: Arc::clone(&config),
                local,
                keepalive,
            };
            Ok(Consumer::new(config, Box::new(source)))
        })
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>>> {
        Box::pin(async move {
            let c = &self.shared.config;
            let mut out = Vec::with_capacity(2);
            for (name, role) in [
                (&c.stream, StreamRole::Events),
                (&c.dlq_stream, StreamRole::DeadLetters),
            ] {
                let info = self
                    .shared
                    .stream(name)
                    .await?
                    .get_info()
                    .await
                    .map_err(|e| Error::backend("reading stream sizes", e))?;
                out.push(StreamInfo {
                    name: name.clone(),
                    role,
                    messages: info.state.messages,
                    bytes: info.state.bytes,
                    first_sequence: if info.state.messages == 0 {
                        0
                    } else {
                        info.state.first_sequence
                    },
                    last_sequence: info.state.last_sequence,
                });
            }
            Ok(out)
        })
    }

    fn consumers(&self) -> BoxFuture<'_, Result<Vec<ConsumerInfo>>> {
        Box::pin(async move {
            let stream = self.shared.stream(&self.shared.config.stream).await?;
            let infos: Vec<_> = stream
                .consumers()
                .try_collect()
                .await
                .map_err(|e| Error::backend("listing consumers", e))?;
            let mut out: Vec<ConsumerInfo> = infos
                .into_iter()
                .map(|info| {
                    let filter = info
                        .config
                        .description
                        .as_deref()
                        .and_then(|d| d.strip_prefix(DESCRIPTION_PREFIX))
                        .map_or_else(|| info.config.filter_subject.clone(), str::to_owned);
                    let in_flight = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
                    ConsumerInfo {
                        name: info.name,
                        filter,
                        pending: info.num_pending.saturating_add(in_flight),
                        in_flight,
                        acked_sequence: info.ack_floor.stream_sequence,
                    }
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn delete_consumer<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self
                .shared
                .js
                .delete_consumer_from_stream(name, &self.shared.config.stream)
                .await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        jetstream::stream::ConsumerErrorKind::JetStream(ref j)
                            if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND
                    ) =>
                {
                    Err(Error::ConsumerNotFound(name.to_owned()))
                }
                Err(e) => Err(Error::backend("deleting a consumer", e)),
            }
        })
    }

    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>>> {
        Box::pin(async move {
            let dlq = self.shared.stream(&self.shared.config.dlq_stream).await?;
            let subject = match consumer {
                Some(name) => self.shared.dlq_subject(name),
                None => format!("{}.>", self.shared.dlq_prefix()),
            };
            let limit = limit.min(MAX_LISTING);
            let mut out = Vec::new();
            let mut from = 1;
            while out.len() < limit {
                let found = dlq
                    .raw_message_builder()
                    .sequence(from)
                    .next_by_subject(subject.clone())
                    .send()
                    .await;
                match found {
                    Ok(message) => {
                        from = message.sequence.saturating_add(1);
                        out.push(dead_letter_of(&message)?);
                    }
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                    Err(e) => return Err(Error::backend("listing dead letters", e)),
                }
            }
            Ok(out)
        })
    }

    fn replay_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<Published>> {
        Box::pin(async move {
            let letter = self
                .shared
                .get_dead_letter(id)
                .await?
                .ok_or(Error::DeadLetterNotFound(id))?;
            // Republish first: a crash before the delete leaves the dead
            // letter in place, and replaying it again is de-duplicated.
            let published = self
                .shared
                .publish_with_id(&letter.envelope, &replay_message_id(&letter.envelope, id))
                .await?;
            self.shared
                .stream(&self.shared.config.dlq_stream)
                .await?
                .delete_message(id.0)
                .await
                .map_err(|e| Error::backend("removing a replayed dead letter", e))?;
            tracing::info!(
                dead_letter = id.0,
                event_id = %letter.envelope.id(),
                consumer = %letter.consumer,
                "A dead letter was replayed."
            );
            Ok(published)
        })
    }

    fn delete_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.shared.get_dead_letter(id).await?.is_none() {
                return Err(Error::DeadLetterNotFound(id));
            }
            self.shared
                .stream(&self.shared.config.dlq_stream)
                .await?
                .delete_message(id.0)
                .await
                .map_err(|e| Error::backend("deleting a dead letter", e))?;
            Ok(())
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let c = &self.shared.config;
            let events = self.shared.stream(&c.stream).await?;
            let names: Vec<String> = events
                .consumer_names()
                .try_collect()
                .await
                .map_err(|e| Error::backend("listing consumers", e))?;
            for name in names {
                events
                    .delete_consumer(&name)
                    .await
                    .map_err(|e| Error::backend("deleting a consumer", e))?;
            }
            for stream in [&events, &self.shared.stream(&c.dlq_stream).await?] {
                stream
                    .purge()
                    .await
                    .map_err(|e| Error::backend("purging a stream", e))?;
            }
            Ok(())
        })
    }
}

/// One durable consumer's pulls.
struct NatsSource {
    shared: Arc<Shared>,
    consumer: PullConsumer,
    config: Arc<ConsumerConfig>,
    /// The per-key gate and the deliveries waiting in this process.
    local: Arc<Mutex<Local>>,
    /// Extends the leases of waiting deliveries; stopped on drop.
    keepalive: tokio::task::JoinHandle<()>,
}

impl Drop for NatsSource {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// What one process knows about its consumer's keys.
#[derive(Default)]
struct Local {
    /// Per subject, the event of that key this process has handed out or is
    /// retrying (stream sequence), and — for an event nacked to the server
    /// — when to stop waiting for it to come back here.
    keys: HashMap<String, KeyHold>,
    /// Events pulled but not handed out right now, by stream sequence:
    /// waiting for a transient retry's delay, or for their key.
    waiting: BTreeMap<u64, Waiting>,
}

#[derive(Debug, Clone, Copy)]
struct KeyHold {
    sequence: u64,
    until: Option<tokio::time::Instant>,
}

struct Waiting {
    message: Arc<jetstream::Message>,
    envelope: Envelope,
    attempt: u32,
    retries: u32,
    /// `Some`: a transient retry due then (its key is held by it); `None`:
    /// parked until its key is free.
    due: Option<tokio::time::Instant>,
}

impl Local {
    fn key_free_for(&mut self, subject: &str, sequence: u64) -> bool {
        match self.keys.get(subject) {
            None => true,
            Some(hold) if hold.sequence == sequence => true,
            Some(hold) => hold
                .until
                .is_some_and(|until| until <= tokio::time::Instant::now()),
        }
    }

    fn hold(&mut self, subject: &str, sequence: u64) {
        self.keys.insert(
            subject.to_owned(),
            KeyHold {
                sequence,
                until: None,
            },
        );
    }

    fn release(&mut self, subject: &str, sequence: u64) {
        if self
            .keys
            .get(subject)
            .is_some_and(|h| h.sequence == sequence)
        {
            self.keys.remove(subject);
        }
    }

    /// The lowest-sequence waiting event that may go out now (its retry is
    /// due, or its key became free), taking its key.
    fn take_ready(&mut self) -> Option<(u64, Waiting)> {
        let now = tokio::time::Instant::now();
        let sequence = self
            .waiting
            .iter()
            .find(|(seq, w)| match w.due {
                Some(due) => due <= now,
                None => {
                    let subject = w.envelope.subject();
                    match self.keys.get(subject) {
                        None => true,
                        Some(hold) => {
                            hold.sequence == **seq || hold.until.is_some_and(|until| until <= now)
                        }
                    }
                }
            })
            .map(|(seq, _)| *seq)?;
        let waiting = self.waiting.remove(&sequence)?;
        let subject = waiting.envelope.subject().to_owned();
        self.hold(&subject, sequence);
        Some((sequence, waiting))
    }

    /// When the next transient retry is due, if any.
    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.waiting.values().filter_map(|w| w.due).min()
    }
}

fn lock(local: &Mutex<Local>) -> std::sync::MutexGuard<'_, Local> {
    local
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every `every`, extends the lease of each event waiting in the process
/// (`+WPI`), until the source is dropped.
async fn keep_leases(local: Weak<Mutex<Local>>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(local) = local.upgrade() else {
            return;
        };
        let messages: Vec<Arc<jetstream::Message>> = lock(&local)
            .waiting
            .values()
            .map(|w| Arc::clone(&w.message))
            .collect();
        drop(local);
        for message in messages {
            if let Err(error) = message.ack_with(AckKind::Progress).await {
                tracing::debug!(%error, "cannot extend a waiting delivery's lease");
            }
        }
    }
}

/// Longest pull while events are parked, so a key freed by a settle from
/// another task is noticed soon.
const PARKED_PULL: Duration = Duration::from_millis(100);

impl fmt::Debug for NatsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSource")
            .field("consumer", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl NatsSource {
    async fn next_delivery(&mut self, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (ready, next_due, parked) = {
                let mut local = lock(&self.local);
                let ready = local.take_ready();
                let parked = local.waiting.values().any(|w| w.due.is_none());
                (ready, local.next_due(), parked)
            };
            if let Some((sequence, waiting)) = ready {
                return Ok(Some(self.delivery(sequence, waiting)));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let mut pull = deadline - now;
            if let Some(due) = next_due {
                pull = pull.min(due.saturating_duration_since(now));
            }
            if parked {
                pull = pull.min(PARKED_PULL);
            }
            if let Some(message) = self.pull_one(pull).await?
                && let Some(delivery) = self.admit(message).await?
            {
                return Ok(Some(delivery));
            }
        }
    }

    fn delivery(&self, sequence: u64, waiting: Waiting) -> Delivery {
        let settle = NatsSettle {
            shared: Arc::clone(&self.shared),
            message: waiting.message,
            consumer: self.config.name.clone(),
            sequence,
            local: Arc::clone(&self.local),
            ack_wait: self.config.ack_wait,
            retry_state: (waiting.envelope.clone(), waiting.attempt, waiting.retries),
        };
        Delivery::new(
            waiting.envelope,
            waiting.attempt,
            sequence,
            Arc::clone(&self.config),
            Box::new(settle),
        )
        .with_retries(waiting.retries)
    }

    /// One pull request for one message, expiring after `wait`.
    async fn pull_one(&self, wait: Duration) -> Result<Option<jetstream::Message>> {
        let doing = "pulling a delivery";
        let expires = wait.max(MIN_PULL);
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(expires)
            .messages()
            .await
            .map_err(|e| Error::unavailable(doing, e))?;
        // The server ends the pull at `expires`; the extra time only guards
        // against a lost expiry notice.
        let guard = expires + self.shared.config.request_timeout.get();
        match tokio::time::timeout(guard, batch.next()).await {
            Err(_) | Ok(None) => Ok(None),
            Ok(Some(Ok(message))) => Ok(Some(message)),
            Ok(Some(Err(e))) => Err(Error::unavailable(doing, e)),
        }
    }

    /// Turns a pulled message into a delivery, or settles it on the spot:
    /// unreadable, outside the filter, or past its last attempt.
    async fn admit(&self, message: jetstream::Message) -> Result<Option<Delivery>> {
        let (sequence, delivered) = {
            let info = message
                .info()
                .map_err(|e| Error::backend("reading delivery metadata", e))?;
            (info.stream_sequence, info.delivered)
        };
        let attempt = u32::try_from(delivered).unwrap_or(u32::MAX).max(1);
        let name = self.config.name.as_str();
        let envelope = match Envelope::from_json(&message.payload) {
            Ok(envelope) => envelope,
            Err(problem) => {
                tracing::error!(
                    consumer = name,
                    sequence,
                    %problem,
                    "A message in the event stream is not an event; it is terminated."
                );
                message
                    .double_ack_with(AckKind::Term)
                    .await
                    .map_err(|e| Error::unavailable("terminating a malformed message", e))?;
                return Ok(None);
            }
        };
        if !self.config.filter.matches(envelope.event_type()) {
            message
                .double_ack()
                .await
                .map_err(|e| Error::unavailable("skipping a filtered event", e))?;
            return Ok(None);
        }
        let message = Arc::new(message);
        let settle = NatsSettle {
            shared: Arc::clone(&self.shared),
            message: Arc::clone(&message),
            consumer: self.config.name.clone(),
            sequence,
            local: Arc::clone(&self.local),
            ack_wait: self.config.ack_wait,
            retry_state: (envelope.clone(), attempt, 0),
        };
        if attempt > self.config.max_deliver {
            lock(&self.local).waiting.remove(&sequence);
            let attempts = attempt - 1;
            let reason = format!(
                "not acknowledged within ack_wait ({:?}) on attempt {attempts}",
                self.config.ack_wait
            );
            settle.dead_letter(&envelope, attempts, &reason).await?;
            tracing::warn!(
                consumer = name,
                event_id = %envelope.id(),
                attempts,
                "An event's last attempt was never acknowledged; it was moved to the dead letters."
            );
            return Ok(None);
        }
        let mut local = lock(&self.local);
        if let Some(waiting) = local.waiting.get_mut(&sequence) {
            // Its lease lapsed while it waited here and the server sent it
            // again: keep waiting, with the new message (and count).
            waiting.message = message;
            waiting.attempt = attempt;
            return Ok(None);
        }
        let subject = envelope.subject().to_owned();
        if !local.key_free_for(&subject, sequence) {
            // An earlier event of its key is out or retrying: park it.
            local.waiting.insert(
                sequence,
                Waiting {
                    message,
                    envelope,
                    attempt,
                    retries: 0,
                    due: None,
                },
            );
            return Ok(None);
        }
        local.hold(&subject, sequence);
        drop(local);
        Ok(Some(Delivery::new(
            envelope,
            attempt,
            sequence,
            Arc::clone(&self.config),
            Box::new(settle),
        )))
    }
}

impl DeliverySource for NatsSource {
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Option<Delivery>>> {
        Box::pin(self.next_delivery(wait))
    }
}

/// Settles one delivery through its JetStream message.
struct NatsSettle {
    shared: Arc<Shared>,
    message: Arc<jetstream::Message>,
    consumer: String,
    sequence: u64,
    local: Arc<Mutex<Local>>,
    ack_wait: Duration,
    /// The envelope, attempt and transient retries, for a retry to wait with.
    retry_state: (Envelope, u32, u32),
}

impl NatsSettle {
    fn subject(&self) -> &str {
        self.retry_state.0.subject()
    }

    /// The event is finished in this process: its key is free.
    fn release(&self) {
        lock(&self.local).release(self.subject(), self.sequence);
    }
}

impl fmt::Debug for NatsSettle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSettle")
            .field("consumer", &self.consumer)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl Settle for NatsSettle {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let acked = self
                .message
                .double_ack()
                .await
                .map_err(|e| Error::unavailable("acknowledging a delivery", e));
            // Released even when the answer was lost: the ack may well have
            // been stored, and then the event never comes back to free it.
            self.release();
            acked
        })
    }

    fn nack<'a>(&'a self, delay: Duration, _reason: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let kind = if delay.is_zero() {
                AckKind::Nak(None)
            } else {
                AckKind::Nak(Some(delay))
            };
            self.message
                .double_ack_with(kind)
                .await
                .map_err(|e| Error::unavailable("scheduling a retry", e))?;
            // The key stays reserved for the event's return, but not forever:
            // the server may hand it to another process.
            if let Some(hold) = lock(&self.local).keys.get_mut(self.subject())
                && hold.sequence == self.sequence
            {
                hold.until = Some(tokio::time::Instant::now() + delay + self.ack_wait);
            }
            Ok(())
        })
    }

    fn retry<'a>(&'a self, delay: Duration, _reason: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Not nacked: the server's delivery count stays as it is. The
            // lease is extended now and by the keep-alive task while it waits.
            self.message
                .ack_with(AckKind::Progress)
                .await
                .map_err(|e| Error::unavailable("extending a delivery's lease", e))?;
            let (envelope, attempt, retries) = self.retry_state.clone();
            let mut local = lock(&self.local);
            local.hold(envelope.subject(), self.sequence);
            local.waiting.insert(
                self.sequence,
                Waiting {
                    message: Arc::clone(&self.message),
                    envelope,
                    attempt,
                    retries: retries.saturating_add(1),
                    due: Some(tokio::time::Instant::now() + delay),
                },
            );
            Ok(())
        })
    }

    fn dead_letter<'a>(
        &'a self,
        envelope: &'a Envelope,
        attempts: u32,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Stored first; if this fails the original stays unsettled and
            // comes back after ack_wait, to be dead-lettered then.
            self.shared
                .write_dead_letter(&self.consumer, self.sequence, envelope, attempts, reason)
                .await?;
            let terminated = self
                .message
                .double_ack_with(AckKind::Term)
                .await
                .map_err(|e| Error::unavailable("terminating a dead-lettered delivery", e));
            self.release();
            terminated
        })
    }

    fn in_progress(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.message
                .double_ack_with(AckKind::Progress)
                .await
                .map_err(|e| Error::unavailable("extending a delivery's lease", e))
        })
    }
}
