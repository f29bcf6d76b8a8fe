//! The embedded backend: a durable event log in a SQLite file, for running
//! Emporium on one machine without a broker.
//!
//! Tables (see `schema.sql` and `schema_v2.sql`): `events` (the log, `seq`
//! in publish order), `consumers` (durable positions), `deliveries` (what a
//! consumer has handed out: attempt count, lease, transient-retry state, and
//! settled rows not yet passed by the position), `dead_letters`.
//!
//! How the guarantees are kept:
//! - *Durability*: WAL journal; a publish (and a replay) commits with
//!   `synchronous = FULL` and returns after the commit is fsync'd.
//!   Consumer state (hand-outs, acks, retries, dead letters) commits with
//!   `synchronous = NORMAL`: durable across a process crash, while a power
//!   loss may forget the last few of those commits — which makes events
//!   come again (at-least-once), never disappear. That halves the fsyncs
//!   on the consuming path. De-duplication is the `UNIQUE msg_id`.
//! - *No lost or double-applied state*: every transition — hand out,
//!   redeliver, ack, nack, dead-letter, replay — is one transaction, and
//!   those that read before writing start with `BEGIN IMMEDIATE` (the write
//!   lock), so two processes sharing the file cannot hand out the same
//!   event twice or skip one.
//! - *At-least-once*: a hand-out writes a lease (`visible_after = now +
//!   ack_wait`); a later fetch after the lease hands the same event out
//!   again with `attempts + 1` — in this process or after a restart.
//! - *Ordering*: an event is handed out only while no unsettled
//!   `deliveries` row of the consumer has its subject, and events are
//!   chosen in `seq` order, so an event never overtakes an earlier one of
//!   its subject; events of other subjects pass it (up to `max_in_flight`
//!   unsettled rows). The position only moves past settled events.
//! - *Transient retries*: `retry` marks the row `held` with a due time;
//!   handing it out again does not count an attempt (also after a restart,
//!   as the state is in the file).
//! - *Writers take turns*: the writes of one process queue on an async
//!   mutex instead of meeting SQLite's busy handler, which sleeps and
//!   retries; other processes sharing the file still meet it
//!   (`busy_timeout` 10 s). Publishes that queue meanwhile are stored
//!   together by the next writer in one transaction — one fsync for all
//!   (group commit) — each publisher still getting its own answer.
//! - *Waiting*: a consumer sleeps until a publish through the same
//!   [`LogBus`] wakes it (an in-process `Notify`), its retry is due, or
//!   `poll_interval` passes (events written by other processes).
//!
//! Lease and retry times are wall-clock milliseconds; a clock jump moves
//! redeliveries earlier or later, never loses them.

mod sql;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;
use tokio::sync::{Notify, oneshot};

use crate::admin::{
    ConsumerInfo, DeadLetter, DeadLetterId, Published, StreamInfo, StreamRole, replay_message_id,
};
use crate::config::{BackendKind, LogConfig};
use crate::consumer::{Consumer, ConsumerConfig, Delivery, DeliverySource, Filter, Settle};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::{BoxFuture, EventBus};

/// How often publishes prune events older than `max_age`.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The embedded log. Cheap to clone; share one per process so that
/// consumers wake as soon as something is published.
#[derive(Debug, Clone)]
pub struct LogBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Connections that wait for fsync on commit (`synchronous = FULL`):
    /// publishing, replaying, and operator actions.
    pool: SqlitePool,
    /// Connections for consumer state (hand-outs, acks, retries, dead
    /// letters) that commit without waiting for fsync (`synchronous =
    /// NORMAL`): safe against a crash of the process; a power loss may
    /// forget the latest of these commits, which at-least-once delivery
    /// turns into redeliveries, never into lost events.
    state: SqlitePool,
    /// Woken on publish and on every settle, so waiting consumers look again.
    changed: Notify,
    /// Every write in this process queues here, so writers take turns
    /// instead of meeting SQLite's busy handler (which sleeps and retries);
    /// other processes sharing the file still meet it (`busy_timeout`).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Publishes waiting for the next group commit.
    queue: Mutex<Vec<Queued>>,
    poll_interval: Duration,
    max_age: Duration,
    last_prune: Mutex<Instant>,
}

impl LogBus {
    /// Opens the log at `config.path`, creating the file, its directory and
    /// the tables if needed, and prunes expired events.
    pub async fn open(config: &LogConfig) -> Result<Self> {
        config.validate()?;
        if let Some(dir) = config.path.parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::unavailable("creating the log's directory", e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&config.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = open_pool(2, options.clone())
            .await
            .map_err(|e| Error::sqlx("opening the event log", e))?;
        create_schema(&pool).await?;
        let state = open_pool(3, options.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(|e| Error::sqlx("opening the event log", e))?;
        let bus = Self {
            inner: Arc::new(Inner {
                pool,
                state,
                changed: Notify::new(),
                writer: Arc::new(tokio::sync::Mutex::new(())),
                queue: Mutex::new(Vec::new()),
                poll_interval: config.poll_interval.get(),
                max_age: config.max_age.get(),
                last_prune: Mutex::new(Instant::now()),
            }),
        };
        bus.inner.prune().await?;
        Ok(bus)
    }

    /// Closes the connections (waiting for running statements).
    pub async fn close(&self) {
        self.inner.state.close().await;
        self.inner.pool.close().await;
    }
}

/// How often opening the file is tried while another handle holds it.
const OPEN_ATTEMPTS: u32 = 50;

/// A pool on the log file. The first connection switches the file to WAL,
/// which needs a lock SQLite's busy timeout does not wait for: handles
/// opening a new file at the same moment (the services of `emporium up`)
/// are refused with SQLITE_BUSY, so that refusal is retried, briefly and a
/// bounded number of times (at most about 4.5 s).
async fn open_pool(
    max_connections: u32,
    options: SqliteConnectOptions,
) -> std::result::Result<SqlitePool, sqlx::Error> {
    let mut attempt = 0u32;
    loop {
        let opened = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await;
        match opened {
            Err(e) if emporium_storage::is_busy(&e) && attempt < OPEN_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
            }
            other => return other,
        }
    }
}

/// Creates the tables once, under the write lock, so processes opening a
/// new file at the same moment do not race.
async fn create_schema(pool: &SqlitePool) -> Result<()> {
    let doing = "creating the event log's tables";
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| Error::sqlx(doing, e))?;
    let version: i64 = sqlx::query_scalar(sql::USER_VERSION)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| Error::sqlx(doing, e))?;
    if version == 0 {
        sqlx::raw_sql(sql::SCHEMA)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::sqlx(doing, e))?;
    }
    if version <= 1 {
        sqlx::raw_sql(sql::SCHEMA_V2)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::sqlx(doing, e))?;
    } else if version > sql::SCHEMA_VERSION {
        return Err(Error::backend(
            doing,
            format!(
                "the file has schema version {version}; this build knows {}",
                sql::SCHEMA_VERSION
            ),
        ));
    }
    tx.commit().await.map_err(|e| Error::sqlx(doing, e))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds, rounded up, so "after `d`" is never early.
fn ceil_ms(d: Duration) -> i64 {
    i64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
}

/// The first moment (in ms) at or after `now + d`: one more millisecond
/// covers the truncation of `now` itself.
fn after(d: Duration) -> i64 {
    now_ms().saturating_add(ceil_ms(d)).saturating_add(1)
}

fn time_of_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn seq_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The filter as the SQL columns store it.
fn filter_columns(filter: &Filter) -> (Option<String>, Option<String>) {
    match filter {
        Filter::All => (None, None),
        Filter::Types(set) => {
            let list: Vec<&str> = set.iter().map(|t| t.as_str()).collect();
            (serde_json::to_string(&list).ok(), None)
        }
        Filter::Prefix(p) => (None, Some(format!("{p}."))),
    }
}

/// What one look at the log found for a consumer.
enum Fetch {
    Delivery {
        seq: i64,
        attempt: u32,
        retries: u32,
        envelope: Envelope,
    },
    /// The unsettled delivery becomes available again at this time (ms).
    WaitUntil(i64),
    Idle,
}

/// Most publishes stored by one group commit.
const MAX_BATCH: usize = 256;

/// An event as the `events` table stores it.
#[derive(Debug)]
struct EventRow {
    msg_id: String,
    event_id: String,
    event_type: String,
    subject: String,
    envelope: String,
}

impl EventRow {
    fn new(envelope: &Envelope, msg_id: String) -> Self {
        Self {
            msg_id,
            event_id: envelope.id().to_string(),
            event_type: envelope.event_type().as_str().to_owned(),
            subject: envelope.subject().to_owned(),
            envelope: String::from_utf8_lossy(&envelope.to_json()).into_owned(),
        }
    }
}

/// A publish waiting for a group commit, and where its answer goes.
#[derive(Debug)]
struct Queued {
    row: EventRow,
    reply: oneshot::Sender<Result<Published>>,
}

fn interrupted() -> Error {
    Error::unavailable(
        "publishing an event",
        "the commit was interrupted; the event may or may not be stored",
    )
}

/// Inserts one event (or finds the stored one with the same `msg_id`).
async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    row: &EventRow,
) -> Result<Published, sqlx::Error> {
    let inserted: Option<i64> = sqlx::query_scalar(sql::PUBLISH)
        .bind(&row.msg_id)
        .bind(&row.event_id)
        .bind(&row.event_type)
        .bind(&row.subject)
        .bind(&row.envelope)
        .bind(now_ms())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match inserted {
        Some(seq) => Published {
            sequence: to_u64(seq),
            duplicate: false,
        },
        None => {
            let seq: Option<i64> = sqlx::query_scalar(sql::SEQ_OF_MSG_ID)
                .bind(&row.msg_id)
                .fetch_optional(&mut **tx)
                .await?;
            Published {
                sequence: seq.map_or(0, to_u64),
                duplicate: true,
            }
        }
    })
}

/// id, consumer, seq, envelope, attempts, error, dead_at.
type DeadLetterRow = (i64, String, i64, String, i64, String, i64);
/// seq, attempts, held, retries, last_error, envelope (NULL when pruned).
type DueRow = (i64, i64, i64, i64, Option<String>, Option<String>);

impl Inner {
    /// Publishes with group commit: the publisher that gets the write lock
    /// stores every queued publish in one transaction (one fsync), and each
    /// waiting publisher gets its own answer. The commit runs in its own
    /// task holding the lock, so a publisher that gives up (its future is
    /// dropped) never cuts short a commit other publishers wait for.
    async fn publish(self: &Arc<Self>, envelope: &Envelope) -> Result<Published> {
        let row = EventRow::new(envelope, envelope.id().to_string());
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Queued { row, reply });
        let writer = Arc::clone(&self.writer).lock_owned().await;
        let published = match answer.try_recv() {
            // An earlier writer's batch carried this publish.
            Ok(result) => result?,
            Err(oneshot::error::TryRecvError::Closed) => return Err(interrupted()),
            Err(oneshot::error::TryRecvError::Empty) => {
                // Still queued (answers are sent before the lock is released).
                let batch: Vec<Queued> = {
                    let mut queue = self
                        .queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let take = queue.len().min(MAX_BATCH);
                    queue.drain(..take).collect()
                };
                let inner = Arc::clone(self);
                tokio::spawn(async move {
                    let stored = inner.commit_batch(batch).await;
                    drop(writer);
                    if stored {
                        inner.changed.notify_waiters();
                    }
                });
                answer.await.unwrap_or_else(|_| Err(interrupted()))?
            }
        };
        self.prune_if_due().await;
        Ok(published)
    }

    /// Stores `batch` in one transaction and answers every publisher;
    /// true if anything new was stored.
    async fn commit_batch(&self, batch: Vec<Queued>) -> bool {
        let doing = "publishing an event";
        let stored = async {
            let mut tx = Self::begin(&self.pool, doing).await?;
            let mut results = Vec::with_capacity(batch.len());
            for queued in &batch {
                results.push(
                    insert_event(&mut tx, &queued.row)
                        .await
                        .map_err(|e| Error::sqlx(doing, e))?,
                );
            }
            tx.commit().await.map_err(|e| Error::sqlx(doing, e))?;
            Ok::<_, Error>(results)
        }
        .await;
        match stored {
            Ok(results) => {
                let any_new = results.iter().any(|p| !p.duplicate);
                for (queued, published) in batch.into_iter().zip(results) {
                    let _ = queued.reply.send(Ok(published));
                }
                any_new
            }
            Err(error) => {
                for queued in batch {
                    let _ = queued.reply.send(Err(error.clone()));
                }
                false
            }
        }
    }

    async fn prune_if_due(&self) {
        let due = {
            let mut last = self
                .last_prune
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() >= PRUNE_EVERY {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due && let Err(error) = self.prune().await {
            tracing::warn!(%error, "Pruning expired events from the log failed; will retry.");
        }
    }

    async fn prune(&self) -> Result<()> {
        if self.max_age.is_zero() {
            return Ok(());
        }
        let cutoff = now_ms().saturating_sub(ceil_ms(self.max_age));
        let _writer = self.writer.lock().await;
        let removed = sqlx::query(sql::PRUNE)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(|e| Error::sqlx("pruning expired events", e))?
            .rows_affected();
        if removed > 0 {
            tracing::info!(removed, "Expired events were pruned from the log.");
        }
        Ok(())
    }

    /// A write transaction on `pool` (`self.pool` or `self.state`).
    async fn begin(pool: &SqlitePool, doing: &'static str) -> Result<Transaction<'static, Sqlite>> {
        pool.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| Error::sqlx(doing, e))
    }

    /// One look for the consumer's next delivery, in one write transaction:
    /// first a due unsettled delivery (lease ended, retry delay over), then
    /// — with room under `max_in_flight` — the next event whose subject has
    /// nothing unsettled.
    async fn fetch(&self, config: &ConsumerConfig) -> Result<Fetch> {
        let doing = "fetching the next delivery";
        let err = |e| Error::sqlx(doing, e);
        let name = config.name.as_str();
        let (types, prefix) = filter_columns(&config.filter);
        let _writer = self.writer.lock().await;
        let mut tx = Self::begin(&self.state, doing).await?;
        let now = now_ms();
        // Each pass either returns or settles one unusable row, so a few
        // passes always make progress; the next call continues.
        for _ in 0..8 {
            let due: Option<DueRow> = sqlx::query_as(sql::DUE_DELIVERY)
                .bind(name)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
            if let Some((seq, attempts, held, retries, last_error, envelope)) = due {
                let envelope = match envelope
                    .as_deref()
                    .map(|j| Envelope::from_json(j.as_bytes()))
                {
                    Some(Ok(envelope)) => envelope,
                    unusable => {
                        tracing::error!(
                            consumer = name,
                            seq,
                            problem = ?unusable.map(|r| r.err()),
                            "An in-flight event is gone (retention) or unreadable; skipping it."
                        );
                        settle_in_tx(&mut tx, name, seq).await.map_err(err)?;
                        continue;
                    }
                };
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                let held = held != 0;
                if !held && attempts >= config.max_deliver {
                    let mut reason = format!(
                        "not acknowledged within ack_wait ({:?}) on attempt {attempts}",
                        config.ack_wait
                    );
                    if let Some(last) = last_error {
                        reason.push_str("; earlier error: ");
                        reason.push_str(&last);
                    }
                    dead_letter_in_tx(&mut tx, name, seq, &envelope, attempts, &reason)
                        .await
                        .map_err(err)?;
                    settle_in_tx(&mut tx, name, seq).await.map_err(err)?;
                    tracing::warn!(
                        consumer = name,
                        event_id = %envelope.id(),
                        attempts,
                        "An event's last attempt was never acknowledged; it was moved to the dead letters."
                    );
                    continue;
                }
                sqlx::query(sql::REDELIVER)
                    .bind(name)
                    .bind(seq)
                    .bind(after(config.ack_wait))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                return Ok(Fetch::Delivery {
                    seq,
                    attempt: if held {
                        attempts
                    } else {
                        attempts.saturating_add(1)
                    },
                    retries: u32::try_from(retries).unwrap_or(u32::MAX),
                    envelope,
                });
            }

            let (unsettled, next_due): (i64, Option<i64>) = sqlx::query_as(sql::UNSETTLED)
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            let room = unsettled < i64::from(config.max_in_flight);
            let position: i64 = sqlx::query_scalar(sql::POSITION)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?
                .ok_or_else(|| Error::ConsumerNotFound(name.to_owned()))?;
            let next: Option<(i64, String, String)> = if room {
                sqlx::query_as(sql::NEXT_EVENT)
                    .bind(name)
                    .bind(position)
                    .bind(types.as_deref())
                    .bind(prefix.as_deref())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?
            } else {
                None
            };
            let Some((seq, subject, json)) = next else {
                compact_in_tx(&mut tx, name).await.map_err(err)?;
                tx.commit().await.map_err(err)?;
                return Ok(next_due.map_or(Fetch::Idle, Fetch::WaitUntil));
            };
            let envelope = match Envelope::from_json(json.as_bytes()) {
                Ok(envelope) => envelope,
                Err(problem) => {
                    tracing::error!(consumer = name, seq, %problem, "A stored event is unreadable; skipping it.");
                    sqlx::query(sql::SKIP_EVENT)
                        .bind(name)
                        .bind(seq)
                        .bind(&subject)
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                    compact_in_tx(&mut tx, name).await.map_err(err)?;
                    continue;
                }
            };
            sqlx::query(sql::START_DELIVERY)
                .bind(name)
                .bind(seq)
                .bind(&subject)
                .bind(after(config.ack_wait))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)?;
            return Ok(Fetch::Delivery {
                seq,
                attempt: 1,
                retries: 0,
                envelope,
            });
        }
        tx.commit().await.map_err(err)?;
        Ok(Fetch::WaitUntil(now))
    }

    fn dead_letter_of(row: DeadLetterRow) -> Result<DeadLetter> {
        let (id, consumer, seq, envelope, attempts, error, dead_at) = row;
        Ok(DeadLetter {
            id: DeadLetterId(to_u64(id)),
            consumer,
            sequence: to_u64(seq),
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            error,
            dead_at: time_of_ms(dead_at),
            envelope: Envelope::from_json(envelope.as_bytes())?,
        })
    }
}

/// Ends the delivery of `seq` and moves the position past every settled
/// event.
async fn settle_in_tx(
    tx: &mut Transaction<'static, Sqlite>,
    consumer: &str,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql::FINISH_DELIVERY)
        .bind(consumer)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
    compact_in_tx(tx, consumer).await
}

/// Moves the position past every settled event and forgets their rows.
async fn compact_in_tx(
    tx: &mut Transaction<'static, Sqlite>,
    consumer: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql::COMPACT)
        .bind(consumer)
        .execute(&mut **tx)
        .await?;
    sqlx::query(sql::FORGET_SETTLED)
        .bind(consumer)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn dead_letter_in_tx(
    tx: &mut Transaction<'static, Sqlite>,
    consumer: &str,
    seq: i64,
    envelope: &Envelope,
    attempts: u32,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let json = String::from_utf8_lossy(&envelope.to_json()).into_owned();
    sqlx::query(sql::INSERT_DEAD_LETTER)
        .bind(consumer)
        .bind(seq)
        .bind(json)
        .bind(i64::from(attempts))
        .bind(reason)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl EventBus for LogBus {
    fn backend(&self) -> BackendKind {
        BackendKind::Log
    }

    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<Published>> {
        Box::pin(async move {
            let published = self.inner.publish(envelope).await?;
            tracing::debug!(
                event_id = %envelope.id(),
                event_type = %envelope.event_type(),
                sequence = published.sequence,
                duplicate = published.duplicate,
                "An event was published to the log."
            );
            Ok(published)
        })
    }

    fn consumer(&self, config: ConsumerConfig) -> BoxFuture<'_, Result<Consumer>> {
        Box::pin(async move {
            config.validate()?;
            let (types, prefix) = filter_columns(&config.filter);
            let writer = self.inner.writer.lock().await;
            sqlx::query(sql::UPSERT_CONSUMER)
                .bind(&config.name)
                .bind(config.filter.to_string())
                .bind(types)
                .bind(prefix)
                .bind(now_ms())
                .execute(&self.inner.state)
                .await
                .map_err(|e| Error::sqlx("registering a consumer", e))?;
            drop(writer);
            let config = Arc::new(config);
            let source = LogSource {
                inner: Arc::clone(&self.inner),
                config: Arc::clone(&config),
            };
            Ok(Consumer::new(config, Box::new(source)))
        })
    }

    fn streams(&self) -> BoxFuture<'_, Result<Vec<StreamInfo>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(2);
            for (name, role, query) in [
                ("events", StreamRole::Events, sql::EVENT_STATS),
                (
                    "dead_letters",
                    StreamRole::DeadLetters,
                    sql::DEAD_LETTER_STATS,
                ),
            ] {
                let (messages, bytes, first, last): (i64, i64, i64, i64) = sqlx::query_as(query)
                    .fetch_one(&self.inner.pool)
                    .await
                    .map_err(|e| Error::sqlx("reading stream sizes", e))?;
                out.push(StreamInfo {
                    name: name.to_owned(),
                    role,
                    messages: to_u64(messages),
                    bytes: to_u64(bytes),
                    first_sequence: to_u64(first),
                    last_sequence: to_u64(last),
                });
            }
            Ok(out)
        })
    }

    fn consumers(&self) -> BoxFuture<'_, Result<Vec<ConsumerInfo>>> {
        Box::pin(async move {
            let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(sql::LIST_CONSUMERS)
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|e| Error::sqlx("listing consumers", e))?;
            Ok(rows
                .into_iter()
                .map(
                    |(name, filter, position, pending, in_flight)| ConsumerInfo {
                        name,
                        filter,
                        pending: to_u64(pending),
                        in_flight: to_u64(in_flight),
                        acked_sequence: to_u64(position),
                    },
                )
                .collect())
        })
    }

    fn delete_consumer<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _writer = self.inner.writer.lock().await;
            let deleted = sqlx::query(sql::DELETE_CONSUMER)
                .bind(name)
                .execute(&self.inner.pool)
                .await
                .map_err(|e| Error::sqlx("deleting a consumer", e))?
                .rows_affected();
            if deleted == 0 {
                return Err(Error::ConsumerNotFound(name.to_owned()));
            }
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>>> {
        Box::pin(async move {
            let rows: Vec<DeadLetterRow> = sqlx::query_as(sql::LIST_DEAD_LETTERS)
                .bind(consumer)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(|e| Error::sqlx("listing dead letters", e))?;
            rows.into_iter().map(Inner::dead_letter_of).collect()
        })
    }

    fn replay_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<Published>> {
        Box::pin(async move {
            let doing = "replaying a dead letter";
            let err = |e| Error::sqlx(doing, e);
            let _writer = self.inner.writer.lock().await;
            let mut tx = Inner::begin(&self.inner.pool, doing).await?;
            let row: Option<DeadLetterRow> = sqlx::query_as(sql::GET_DEAD_LETTER)
                .bind(seq_of(id.0))
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
            let letter = Inner::dead_letter_of(row.ok_or(Error::DeadLetterNotFound(id))?)?;
            let envelope = &letter.envelope;
            let row = EventRow::new(envelope, replay_message_id(envelope, id));
            let published = insert_event(&mut tx, &row).await.map_err(err)?;
            sqlx::query(sql::DELETE_DEAD_LETTER)
                .bind(seq_of(id.0))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)?;
            self.inner.changed.notify_waiters();
            tracing::info!(
                dead_letter = id.0,
                event_id = %envelope.id(),
                consumer = %letter.consumer,
                "A dead letter was replayed."
            );
            Ok(published)
        })
    }

    fn delete_dead_letter(&self, id: DeadLetterId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _writer = self.inner.writer.lock().await;
            let deleted = sqlx::query(sql::DELETE_DEAD_LETTER)
                .bind(seq_of(id.0))
                .execute(&self.inner.pool)
                .await
                .map_err(|e| Error::sqlx("deleting a dead letter", e))?
                .rows_affected();
            if deleted == 0 {
                return Err(Error::DeadLetterNotFound(id));
            }
            Ok(())
        })
    }

    fn purge(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let doing = "purging the log";
            let _writer = self.inner.writer.lock().await;
            let mut tx = Inner::begin(&self.inner.pool, doing).await?;
            sqlx::raw_sql(sql::PURGE)
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::sqlx(doing, e))?;
            tx.commit().await.map_err(|e| Error::sqlx(doing, e))?;
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }
}

/// A consumer's view of the log.
#[derive(Debug)]
struct LogSource {
    inner: Arc<Inner>,
    config: Arc<ConsumerConfig>,
}

impl LogSource {
    async fn next_delivery(&mut self, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a publish between the look and
            // the sleep still wakes us.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let retry_in = match self.inner.fetch(&self.config).await? {
                Fetch::Delivery {
                    seq,
                    attempt,
                    retries,
                    envelope,
                } => {
                    let settle = LogSettle {
                        inner: Arc::clone(&self.inner),
                        consumer: self.config.name.clone(),
                        seq,
                        attempt,
                        ack_wait: self.config.ack_wait,
                    };
                    return Ok(Some(
                        Delivery::new(
                            envelope,
                            attempt,
                            to_u64(seq),
                            Arc::clone(&self.config),
                            Box::new(settle),
                        )
                        .with_retries(retries),
                    ));
                }
                Fetch::WaitUntil(at) => {
                    Some(Duration::from_millis(to_u64(at.saturating_sub(now_ms()))))
                }
                Fetch::Idle => None,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let mut nap = (deadline - now).min(self.inner.poll_interval);
            if let Some(retry_in) = retry_in {
                nap = nap.min(retry_in);
            }
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }
}

impl DeliverySource for LogSource {
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Option<Delivery>>> {
        Box::pin(self.next_delivery(wait))
    }
}

/// Settles one delivery in the log.
#[derive(Debug)]
struct LogSettle {
    inner: Arc<Inner>,
    consumer: String,
    seq: i64,
    attempt: u32,
    ack_wait: Duration,
}

impl Settle for LogSettle {
    fn ack(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let doing = "acknowledging a delivery";
            let _writer = self.inner.writer.lock().await;
            let mut tx = Inner::begin(&self.inner.state, doing).await?;
            let finished = sqlx::query(sql::FINISH_DELIVERY)
                .bind(&self.consumer)
                .bind(self.seq)
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::sqlx(doing, e))?
                .rows_affected();
            // No row: already settled (a late ack of an earlier attempt, or
            // dead-lettered meanwhile); acknowledging twice changes nothing.
            if finished > 0 {
                compact_in_tx(&mut tx, &self.consumer)
                    .await
                    .map_err(|e| Error::sqlx(doing, e))?;
            }
            tx.commit().await.map_err(|e| Error::sqlx(doing, e))?;
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn nack<'a>(&'a self, delay: Duration, reason: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _writer = self.inner.writer.lock().await;
            sqlx::query(sql::NACK)
                .bind(&self.consumer)
                .bind(self.seq)
                .bind(i64::from(self.attempt))
                .bind(after(delay))
                .bind(reason)
                .execute(&self.inner.state)
                .await
                .map_err(|e| Error::sqlx("scheduling a retry", e))?;
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn retry<'a>(&'a self, delay: Duration, reason: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _writer = self.inner.writer.lock().await;
            sqlx::query(sql::RETRY)
                .bind(&self.consumer)
                .bind(self.seq)
                .bind(i64::from(self.attempt))
                .bind(after(delay))
                .bind(reason)
                .execute(&self.inner.state)
                .await
                .map_err(|e| Error::sqlx("scheduling a transient retry", e))?;
            self.inner.changed.notify_waiters();
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
            let doing = "moving an event to the dead letters";
            let err = |e| Error::sqlx(doing, e);
            let _writer = self.inner.writer.lock().await;
            let mut tx = Inner::begin(&self.inner.state, doing).await?;
            let taken = sqlx::query(sql::TAKE_DELIVERY)
                .bind(&self.consumer)
                .bind(self.seq)
                .bind(i64::from(self.attempt))
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
            // Nothing taken: this attempt's lease had expired and the event
            // went to another delivery, which now decides its fate.
            if taken > 0 {
                dead_letter_in_tx(
                    &mut tx,
                    &self.consumer,
                    self.seq,
                    envelope,
                    attempts,
                    reason,
                )
                .await
                .map_err(err)?;
                compact_in_tx(&mut tx, &self.consumer).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn in_progress(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _writer = self.inner.writer.lock().await;
            sqlx::query(sql::EXTEND)
                .bind(&self.consumer)
                .bind(self.seq)
                .bind(i64::from(self.attempt))
                .bind(after(self.ack_wait))
                .execute(&self.inner.state)
                .await
                .map_err(|e| Error::sqlx("extending a delivery's lease", e))?;
            Ok(())
        })
    }
}
