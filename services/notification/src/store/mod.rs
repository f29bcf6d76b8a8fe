//! Notification's database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in `sql.rs`, written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Three tables: `processed_events` (which events a consumer has handled),
//! `order_contacts` (whom to write to about an order) and `messages` (every
//! e-mail, pending or sent).
//!
//! Guarantees:
//! - **Idempotent handling.** [`Store::record`] writes an event's id and
//!   all of its effects (contact, message) in ONE transaction, and writes
//!   nothing when the id is already recorded: the same event handled any
//!   number of times, also concurrently, has its effects once. The id is
//!   the first write, so on SQLite the transaction takes the write lock
//!   there and on PostgreSQL a concurrent duplicate waits on the key and
//!   then finds it taken.
//! - **One sender per message.** [`Store::claim`] moves a due message's
//!   `next_attempt_at` past a lease in one conditional update; only the
//!   caller whose update matched sends it. A sender that dies mid-send
//!   leaves the message to be claimed again once the lease has passed
//!   (at-least-once delivery; the `Message-ID` shows it is a resend).
//! - Status changes ([`Store::mark_sent`], [`Store::mark_failed`]) apply
//!   to pending messages only, each in its own transaction: a sent message
//!   never goes back to pending.

mod sql;

pub use emporium_storage::Backend;

use emporium_storage::{Db, dispatch};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Email, Invalid, Message, MessageId, MessageKind, MessageStatus, NewMessage, OrderContact,
    OrderId, Text,
};
use crate::error::NotificationError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Longest failure reason kept with a message; longer ones are cut.
pub const MAX_ERROR_LEN: usize = 1000;

/// A handle on the notification database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// An event handled by a consumer, with everything it causes; written by
/// [`Store::record`] in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Handled<'a> {
    /// The durable consumer name that handled it.
    pub consumer: &'a str,
    pub event_id: Uuid,
    pub event_type: &'a str,
    /// Inserted, or replacing the order's earlier contact.
    pub contact: Option<&'a OrderContact>,
    /// Stored as pending, for the sender.
    pub message: Option<&'a NewMessage>,
    pub at: OffsetDateTime,
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The event was new: it and its effects are now stored.
    Applied,
    /// The event had been handled before: nothing was written.
    AlreadyProcessed,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, NotificationError> {
        let db = Db::connect(url, max_connections, "emporium-notification")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), NotificationError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), NotificationError> {
        self.db.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Records a handled event and its effects, unless the event was
    /// recorded before (then nothing is written). One transaction.
    pub async fn record(&self, handled: &Handled<'_>) -> Result<Recorded, NotificationError> {
        dispatch!(self.db, sql::record(handled))
    }

    /// Whether `consumer` has handled event `event_id`.
    pub async fn is_processed(
        &self,
        consumer: &str,
        event_id: Uuid,
    ) -> Result<bool, NotificationError> {
        dispatch!(self.db, sql::is_processed(consumer, event_id))
    }

    /// The contact of an order, if its `order.placed.v1` has been handled.
    pub async fn contact(
        &self,
        order: &OrderId,
    ) -> Result<Option<OrderContact>, NotificationError> {
        dispatch!(self.db, sql::contact(order))
    }

    /// Up to `limit` pending messages due at `now`, the longest-due first.
    pub async fn due_messages(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Message>, NotificationError> {
        dispatch!(self.db, sql::due_messages(millis(now), i64::from(limit)))
    }

    /// Takes a due message for sending until `until`: true when this caller
    /// got it, false when it is no longer pending and due (sent, or claimed
    /// by another sender meanwhile).
    pub async fn claim(
        &self,
        id: MessageId,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, NotificationError> {
        dispatch!(self.db, sql::claim(id, millis(now), millis(until)))
    }

    /// A pending message was delivered: `sent` at `at`, one more attempt.
    /// False when it was not pending.
    pub async fn mark_sent(
        &self,
        id: MessageId,
        at: OffsetDateTime,
    ) -> Result<bool, NotificationError> {
        dispatch!(self.db, sql::mark_sent(id, at))
    }

    /// A delivery attempt failed: one more attempt, the reason kept, and the
    /// message due again at `retry_at`. False when it was not pending.
    pub async fn mark_failed(
        &self,
        id: MessageId,
        error: &str,
        retry_at: OffsetDateTime,
    ) -> Result<bool, NotificationError> {
        let error = bounded(error);
        dispatch!(self.db, sql::mark_failed(id, &error, millis(retry_at)))
    }

    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, NotificationError> {
        dispatch!(self.db, sql::message(id))
    }

    /// Every message, oldest first (for tests and tooling; unbounded).
    pub async fn messages(&self) -> Result<Vec<Message>, NotificationError> {
        dispatch!(self.db, sql::messages())
    }
}

/// Unix milliseconds, the unit of `next_attempt_at`.
fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_LEN {
        return text.to_owned();
    }
    let mut cut = MAX_ERROR_LEN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[derive(Debug, sqlx::FromRow)]
struct MessageRow {
    id: String,
    event_id: String,
    kind: String,
    to_address: String,
    subject: String,
    body: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    next_attempt_at: i64,
    sent_at: Option<OffsetDateTime>,
}

#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    order_id: String,
    user_id: String,
    email: Option<String>,
    name: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> NotificationError {
    NotificationError::Corrupt(format!("{what}: {e}"))
}

/// Rebuilds a message from its row, checking every value.
fn message_from_row(row: MessageRow) -> Result<Message, NotificationError> {
    let at = format!("message {}", row.id);
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| corrupt(&at, e));
    Ok(Message {
        id: MessageId::from_uuid(uuid(&row.id)?),
        event_id: uuid(&row.event_id)?,
        kind: MessageKind::parse(&row.kind)
            .ok_or_else(|| corrupt(&at, format!("unknown kind `{}`", row.kind)))?,
        to: Email::parse(&row.to_address).map_err(|e| corrupt(&at, e))?,
        subject: row.subject,
        body: row.body,
        status: MessageStatus::parse(&row.status)
            .ok_or_else(|| corrupt(&at, format!("unknown status `{}`", row.status)))?,
        attempts: u32::try_from(row.attempts).map_err(|e| corrupt(&at, e))?,
        last_error: row.last_error,
        created_at: row.created_at,
        next_attempt_at: from_millis(row.next_attempt_at)
            .ok_or_else(|| corrupt(&at, "next_attempt_at is out of range"))?,
        sent_at: row.sent_at,
    })
}

fn contact_from_row(row: ContactRow) -> Result<OrderContact, NotificationError> {
    let at = format!("contact of order {}", row.order_id);
    let bad = |e: Invalid| corrupt(&at, e);
    Ok(OrderContact {
        order_id: OrderId::parse(&row.order_id).map_err(bad)?,
        user_id: Text::required("user_id", &row.user_id, crate::domain::order::MAX_ID_LEN)
            .map_err(bad)?,
        email: row
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(bad)?,
        name: Text::required("name", &row.name, crate::domain::order::MAX_NAME_LEN).map_err(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip() {
        let t = crate::domain::now();
        let back = from_millis(millis(t)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(millis(back), millis(t));
        assert!((t - back).whole_milliseconds().abs() < 1);
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short"), "short");
    }
}
