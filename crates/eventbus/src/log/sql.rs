//! Every statement the embedded log runs, in one place. The schema is in
//! `schema.sql`; times are Unix milliseconds.

/// Creates the tables; run inside `BEGIN IMMEDIATE` when `user_version` is 0.
pub(super) const SCHEMA: &str = include_str!("schema.sql");
pub(super) const SCHEMA_VERSION: i64 = 1;

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

/// The consumer's unsettled delivery with its event (NULL if retention
/// removed the event meanwhile).
pub(super) const IN_FLIGHT: &str =
    "SELECT d.seq, d.attempts, d.visible_after, d.last_error, e.envelope
     FROM deliveries d LEFT JOIN events e ON e.seq = d.seq
     WHERE d.consumer = $1
     ORDER BY d.seq
     LIMIT 1";

/// The first event after `position` that passes the filter.
pub(super) const NEXT_EVENT: &str = "SELECT seq, envelope FROM events
     WHERE seq > $1
       AND ($2 IS NULL OR type IN (SELECT value FROM json_each($2)))
       AND ($3 IS NULL OR substr(type, 1, length($3)) = $3)
     ORDER BY seq
     LIMIT 1";

/// Moves the position forward (never back).
pub(super) const ADVANCE: &str =
    "UPDATE consumers SET position = $2 WHERE name = $1 AND position < $2";

/// Nothing after the position passes the filter: skip to the last event.
/// Safe because SQLite has one writer at a time and this runs under the
/// write lock, so no event with a lower sequence can still appear.
pub(super) const ADVANCE_TO_END: &str = "UPDATE consumers
     SET position = (SELECT coalesce(max(seq), 0) FROM events)
     WHERE name = $1 AND position < (SELECT coalesce(max(seq), 0) FROM events)";

pub(super) const START_DELIVERY: &str =
    "INSERT INTO deliveries (consumer, seq, attempts, visible_after) VALUES ($1, $2, 1, $3)";

pub(super) const REDELIVER: &str =
    "UPDATE deliveries SET attempts = attempts + 1, visible_after = $3
     WHERE consumer = $1 AND seq = $2";

/// Settles a delivery whatever its attempt (a late ack of an earlier attempt
/// still means the event was handled).
pub(super) const FINISH_DELIVERY: &str = "DELETE FROM deliveries WHERE consumer = $1 AND seq = $2";

/// Settles the delivery only if it is still at this attempt.
pub(super) const TAKE_DELIVERY: &str =
    "DELETE FROM deliveries WHERE consumer = $1 AND seq = $2 AND attempts = $3";

pub(super) const NACK: &str = "UPDATE deliveries SET visible_after = $4, last_error = $5
     WHERE consumer = $1 AND seq = $2 AND attempts = $3";

pub(super) const EXTEND: &str = "UPDATE deliveries SET visible_after = $4
     WHERE consumer = $1 AND seq = $2 AND attempts = $3";

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

/// Lag per consumer: events after its position that pass its filter (the
/// one in flight included).
pub(super) const LIST_CONSUMERS: &str = "SELECT c.name, c.filter, c.position,
       (SELECT count(*) FROM events e
         WHERE e.seq > c.position
           AND (c.filter_types IS NULL OR e.type IN (SELECT value FROM json_each(c.filter_types)))
           AND (c.filter_prefix IS NULL OR substr(e.type, 1, length(c.filter_prefix)) = c.filter_prefix)
       ) AS pending,
       (SELECT count(*) FROM deliveries d WHERE d.consumer = c.name) AS in_flight
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
