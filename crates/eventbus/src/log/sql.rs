//! Every statement the embedded log runs, in one place. The schema is in
//! `schema.sql`; times are Unix milliseconds.

/// Creates the tables (version 1); run inside `BEGIN IMMEDIATE` when
/// `user_version` is 0.
pub(super) const SCHEMA: &str = include_str!("schema.sql");
/// From version 1 to 2; run inside `BEGIN IMMEDIATE` when `user_version` is 1.
pub(super) const SCHEMA_V2: &str = include_str!("schema_v2.sql");
pub(super) const SCHEMA_VERSION: i64 = 2;

pub(super) const USER_VERSION: &str = "PRAGMA user_version";

/// Returns the new sequence, or no row for a duplicate `msg_id`.
pub(super) const PUBLISH: &str =
    "INSERT INTO events (msg_id, event_id, type, subject, envelope, published_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (msg_id) DO NOTHING
     RETURNING seq";

pub(super) const SEQ_OF_MSG_ID: &str = "SELECT seq FROM events WHERE msg_id = $1";

pub(super) const PRUNE: &str = "DELETE FROM events WHERE published_at < $1";

/// Registers a consumer or updates its filter; the position is kept.
pub(super) const UPSERT_CONSUMER: &str = "INSERT INTO consumers
         (name, filter, filter_types, filter_prefix, position, created_at, updated_at)
     VALUES ($1, $2, $3, $4, 0, $5, $5)
     ON CONFLICT (name) DO UPDATE SET
         filter = excluded.filter,
         filter_types = excluded.filter_types,
         filter_prefix = excluded.filter_prefix,
         updated_at = excluded.updated_at";

pub(super) const POSITION: &str = "SELECT position FROM consumers WHERE name = $1";

/// The consumer's first unsettled delivery that is due (its lease ended or
/// its retry delay passed), with its event (NULL if retention removed it).
pub(super) const DUE_DELIVERY: &str =
    "SELECT d.seq, d.attempts, d.held, d.retries, d.last_error, e.envelope
     FROM deliveries d LEFT JOIN events e ON e.seq = d.seq
     WHERE d.consumer = $1 AND d.done = 0 AND d.visible_after <= $2
     ORDER BY d.seq
     LIMIT 1";

/// Unsettled deliveries and when the next of them is due.
pub(super) const UNSETTLED: &str =
    "SELECT count(*), min(visible_after) FROM deliveries WHERE consumer = $1 AND done = 0";

/// The first event after `position` that passes the filter, has not been
/// handed out, and whose subject has no unsettled delivery (so an event
/// never overtakes an earlier one of its subject).
pub(super) const NEXT_EVENT: &str = "SELECT e.seq, e.subject, e.envelope FROM events e
     WHERE e.seq > $2
       AND ($3 IS NULL OR e.type IN (SELECT value FROM json_each($3)))
       AND ($4 IS NULL OR substr(e.type, 1, length($4)) = $4)
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.consumer = $1 AND d.seq = e.seq)
       AND e.subject NOT IN
           (SELECT d.subject FROM deliveries d WHERE d.consumer = $1 AND d.done = 0)
     ORDER BY e.seq
     LIMIT 1";

/// Moves the position to just before the first event of the consumer's
/// filter that is not settled yet (or to the end of the log when all are),
/// never back; then forgets settled rows the position has passed. Safe
/// because SQLite has one writer at a time and this runs under the write
/// lock, so no event with a lower sequence can still appear.
pub(super) const COMPACT: &str = "UPDATE consumers SET position = max(position, coalesce(
         (SELECT min(e.seq) - 1 FROM events e
           WHERE e.seq > consumers.position
             AND (consumers.filter_types IS NULL
                  OR e.type IN (SELECT value FROM json_each(consumers.filter_types)))
             AND (consumers.filter_prefix IS NULL
                  OR substr(e.type, 1, length(consumers.filter_prefix)) = consumers.filter_prefix)
             AND NOT EXISTS (SELECT 1 FROM deliveries d
                              WHERE d.consumer = consumers.name AND d.seq = e.seq AND d.done = 1)),
         (SELECT coalesce(max(seq), 0) FROM events)))
     WHERE name = $1";

pub(super) const FORGET_SETTLED: &str = "DELETE FROM deliveries
     WHERE consumer = $1 AND done = 1
       AND seq <= (SELECT position FROM consumers WHERE name = $1)";

pub(super) const START_DELIVERY: &str =
    "INSERT INTO deliveries (consumer, seq, subject, attempts, visible_after)
     VALUES ($1, $2, $3, 1, $4)";

/// Hands a due delivery out again: a failed attempt (lease ended or nack)
/// counts, a transient retry (`held`) does not.
pub(super) const REDELIVER: &str =
    "UPDATE deliveries SET attempts = attempts + 1 - held, held = 0, visible_after = $3
     WHERE consumer = $1 AND seq = $2";

/// Settles a delivery whatever its attempt (a late ack of an earlier attempt
/// still means the event was handled).
pub(super) const FINISH_DELIVERY: &str =
    "UPDATE deliveries SET done = 1 WHERE consumer = $1 AND seq = $2 AND done = 0";

/// Settles the delivery only if it is still at this attempt.
pub(super) const TAKE_DELIVERY: &str = "UPDATE deliveries SET done = 1
     WHERE consumer = $1 AND seq = $2 AND attempts = $3 AND done = 0";

/// Settles an unreadable event that was never handed out.
pub(super) const SKIP_EVENT: &str =
    "INSERT INTO deliveries (consumer, seq, subject, attempts, visible_after, done)
     VALUES ($1, $2, $3, 0, 0, 1)";

pub(super) const NACK: &str = "UPDATE deliveries SET visible_after = $4, last_error = $5
     WHERE consumer = $1 AND seq = $2 AND attempts = $3 AND done = 0";

/// A transient failure: due again later, not counted as an attempt.
pub(super) const RETRY: &str = "UPDATE deliveries
     SET visible_after = $4, last_error = $5, held = 1, retries = retries + 1
     WHERE consumer = $1 AND seq = $2 AND attempts = $3 AND done = 0";

pub(super) const EXTEND: &str = "UPDATE deliveries SET visible_after = $4
     WHERE consumer = $1 AND seq = $2 AND attempts = $3 AND done = 0";

pub(super) const INSERT_DEAD_LETTER: &str =
    "INSERT INTO dead_letters (consumer, seq, envelope, attempts, error, dead_at)
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(super) const LIST_DEAD_LETTERS: &str =
    "SELECT id, consumer, seq, envelope, attempts, error, dead_at FROM dead_letters
     WHERE ($1 IS NULL OR consumer = $1)
     ORDER BY id
     LIMIT $2";

pub(super) const GET_DEAD_LETTER: &str =
    "SELECT id, consumer, seq, envelope, attempts, error, dead_at FROM dead_letters WHERE id = $1";

pub(super) const DELETE_DEAD_LETTER: &str = "DELETE FROM dead_letters WHERE id = $1";

pub(super) const DELETE_CONSUMER: &str = "DELETE FROM consumers WHERE name = $1";

/// Lag per consumer: events after its position that pass its filter and
/// are not settled yet (those in flight included).
pub(super) const LIST_CONSUMERS: &str = "SELECT c.name, c.filter, c.position,
       (SELECT count(*) FROM events e
         WHERE e.seq > c.position
           AND (c.filter_types IS NULL OR e.type IN (SELECT value FROM json_each(c.filter_types)))
           AND (c.filter_prefix IS NULL OR substr(e.type, 1, length(c.filter_prefix)) = c.filter_prefix)
       ) - (SELECT count(*) FROM deliveries d WHERE d.consumer = c.name AND d.done = 1)
         AS pending,
       (SELECT count(*) FROM deliveries d WHERE d.consumer = c.name AND d.done = 0) AS in_flight
     FROM consumers c
     ORDER BY c.name";

pub(super) const EVENT_STATS: &str =
    "SELECT count(*), coalesce(sum(length(envelope)), 0), coalesce(min(seq), 0),
       coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)
     FROM events";

pub(super) const DEAD_LETTER_STATS: &str =
    "SELECT count(*), coalesce(sum(length(envelope)), 0), coalesce(min(id), 0),
       coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'dead_letters'), 0)
     FROM dead_letters";

pub(super) const PURGE: &str = "DELETE FROM deliveries;
     DELETE FROM consumers;
     DELETE FROM dead_letters;
     DELETE FROM events;";
