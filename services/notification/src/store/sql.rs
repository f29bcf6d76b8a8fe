//! Every statement notification runs, written once and instantiated for
//! SQLite and PostgreSQL by [`backend!`]. Only portable SQL appears here:
//! numbered parameters (`$1`), `ON CONFLICT … DO NOTHING / DO UPDATE`.

use super::{ContactRow, MessageRow};

/// The columns of [`MessageRow`] (statements must be static strings, so
/// they are put together with `concat!`).
macro_rules! message_columns {
    () => {
        "id, event_id, kind, to_address, subject, body, status, attempts, last_error, \
         created_at, next_attempt_at, sent_at"
    };
}

/// The first write of [`backend!`]'s `record`: whether it inserted a row
/// decides whether anything else is written.
const INSERT_PROCESSED: &str =
    "INSERT INTO processed_events (consumer, event_id, event_type, processed_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING";

const SELECT_PROCESSED: &str =
    "SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2";

/// A later `order.placed.v1` for the same order (which checkout does not
/// send) would replace the contact.
const UPSERT_CONTACT: &str =
    "INSERT INTO order_contacts (order_id, user_id, email, name, updated_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (order_id) DO UPDATE SET
         user_id = excluded.user_id, email = excluded.email,
         name = excluded.name, updated_at = excluded.updated_at";

const SELECT_CONTACT: &str =
    "SELECT order_id, user_id, email, name FROM order_contacts WHERE order_id = $1";

/// A new message is due at once (`next_attempt_at` = its creation).
const INSERT_MESSAGE: &str = "INSERT INTO messages
     (id, event_id, kind, to_address, subject, body, status, attempts, created_at, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8)";

const SELECT_DUE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE status = 'pending' AND next_attempt_at <= $1
     ORDER BY next_attempt_at, id LIMIT $2"
);

const CLAIM: &str = "UPDATE messages SET next_attempt_at = $1
     WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3";

const MARK_SENT: &str = "UPDATE messages SET status = 'sent', sent_at = $1, attempts = attempts + 1
     WHERE id = $2 AND status = 'pending'";

const MARK_FAILED: &str =
    "UPDATE messages SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2
     WHERE id = $3 AND status = 'pending'";

const SELECT_MESSAGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE id = $1"
);

const SELECT_ALL: &str = concat!("SELECT ", message_columns!(), " FROM messages ORDER BY id");

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::Pool;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use super::*;
            use crate::domain::{Message, MessageId, OrderContact, OrderId};
            use crate::error::NotificationError;
            use crate::store::{Handled, Recorded, contact_from_row, message_from_row, millis};

            pub async fn record(
                pool: &Pool<$db>,
                h: &Handled<'_>,
            ) -> Result<Recorded, NotificationError> {
                let mut tx = pool.begin().await?;
                let inserted = sqlx::query(INSERT_PROCESSED)
                    .bind(h.consumer)
                    .bind(h.event_id.to_string())
                    .bind(h.event_type)
                    .bind(h.at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(Recorded::AlreadyProcessed);
                }
                if let Some(c) = h.contact {
                    sqlx::query(UPSERT_CONTACT)
                        .bind(c.order_id.as_str())
                        .bind(c.user_id.as_str())
                        .bind(c.email.as_ref().map(|e| e.as_str()))
                        .bind(c.name.as_str())
                        .bind(h.at)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some(m) = h.message {
                    sqlx::query(INSERT_MESSAGE)
                        .bind(m.id.to_string())
                        .bind(m.event_id.to_string())
                        .bind(m.kind.as_str())
                        .bind(m.to.as_str())
                        .bind(m.subject.as_str())
                        .bind(m.body.as_str())
                        .bind(m.created_at)
                        .bind(millis(m.created_at))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Recorded::Applied)
            }

            pub async fn is_processed(
                pool: &Pool<$db>,
                consumer: &str,
                event_id: Uuid,
            ) -> Result<bool, NotificationError> {
                let row = sqlx::query(SELECT_PROCESSED)
                    .bind(consumer)
                    .bind(event_id.to_string())
                    .fetch_optional(pool)
                    .await?;
                Ok(row.is_some())
            }

            pub async fn contact(
                pool: &Pool<$db>,
                order: &OrderId,
            ) -> Result<Option<OrderContact>, NotificationError> {
                let row: Option<ContactRow> = sqlx::query_as(SELECT_CONTACT)
                    .bind(order.as_str())
                    .fetch_optional(pool)
                    .await?;
                row.map(contact_from_row).transpose()
            }

            pub async fn due_messages(
                pool: &Pool<$db>,
                now: i64,
                limit: i64,
            ) -> Result<Vec<Message>, NotificationError> {
                let rows: Vec<MessageRow> = sqlx::query_as(SELECT_DUE)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.into_iter().map(message_from_row).collect()
            }

            pub async fn claim(
                pool: &Pool<$db>,
                id: MessageId,
                now: i64,
                until: i64,
            ) -> Result<bool, NotificationError> {
                let claimed = sqlx::query(CLAIM)
                    .bind(until)
                    .bind(id.to_string())
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected();
                Ok(claimed == 1)
            }

            pub async fn mark_sent(
                pool: &Pool<$db>,
                id: MessageId,
                at: OffsetDateTime,
            ) -> Result<bool, NotificationError> {
                let mut tx = pool.begin().await?;
                let changed = sqlx::query(MARK_SENT)
                    .bind(at)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(changed == 1)
            }

            pub async fn mark_failed(
                pool: &Pool<$db>,
                id: MessageId,
                error: &str,
                retry_at: i64,
            ) -> Result<bool, NotificationError> {
                let mut tx = pool.begin().await?;
                let changed = sqlx::query(MARK_FAILED)
                    .bind(error)
                    .bind(retry_at)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(changed == 1)
            }

            pub async fn message(
                pool: &Pool<$db>,
                id: MessageId,
            ) -> Result<Option<Message>, NotificationError> {
                let row: Option<MessageRow> = sqlx::query_as(SELECT_MESSAGE)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?;
                row.map(message_from_row).transpose()
            }

            pub async fn messages(pool: &Pool<$db>) -> Result<Vec<Message>, NotificationError> {
                let rows: Vec<MessageRow> = sqlx::query_as(SELECT_ALL).fetch_all(pool).await?;
                rows.into_iter().map(message_from_row).collect()
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);
