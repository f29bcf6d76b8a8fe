//! Every statement payment runs, written once and instantiated for SQLite
//! and PostgreSQL by [`backend!`]. Only portable SQL appears here: numbered
//! parameters (`$1`) and `ON CONFLICT (…) DO NOTHING`.

use super::ChargeRow;

/// The columns of [`ChargeRow`] (statements must be static strings, so they
/// are put together with `concat!`).
macro_rules! charge_columns {
    () => {
        "id, idempotency_key, amount_minor, currency, status, decline_code, card_last4, \
         card_brand, description, created_at, refunded_at"
    };
}

/// The first write of its transaction (see the store's guarantees).
const INSERT_CHARGE: &str = "INSERT INTO charges
     (id, idempotency_key, amount_minor, currency, status, decline_code, card_last4, card_brand, description, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (idempotency_key) DO NOTHING";

const SELECT_BY_KEY: &str = concat!(
    "SELECT ",
    charge_columns!(),
    " FROM charges WHERE idempotency_key = $1"
);

const SELECT_BY_ID: &str = concat!("SELECT ", charge_columns!(), " FROM charges WHERE id = $1");

/// Keys in `[$1, $2)`: with `$2` the prefix's upper bound, exactly the keys
/// starting with the prefix, found through the unique index. Ids are UUIDv7,
/// so id order is creation order.
const LIST_BY_PREFIX: &str = concat!(
    "SELECT ",
    charge_columns!(),
    " FROM charges WHERE idempotency_key >= $1 AND idempotency_key < $2
      ORDER BY id LIMIT $3"
);

/// The only state change: `succeeded → refunded`.
const REFUND: &str = "UPDATE charges SET status = 'refunded', refunded_at = $2
     WHERE id = $1 AND status = 'succeeded'";

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::{Pool, Row};
            use time::OffsetDateTime;

            use super::*;
            use crate::domain::{Charge, ChargeId, ChargeState, KeyPrefix, MAX_LIST, NewCharge};
            use crate::error::PaymentError;
            use crate::store::charge_of;

            /// The charge stored under `new`'s key: `new` itself (as `id`)
            /// if the key was free, else the earlier one.
            pub async fn charge(
                pool: &Pool<$db>,
                id: ChargeId,
                new: &NewCharge,
                now: OffsetDateTime,
            ) -> Result<Charge, PaymentError> {
                let state = ChargeState::of(new.outcome);
                let mut tx = pool.begin().await?;
                sqlx::query(INSERT_CHARGE)
                    .bind(id.to_string())
                    .bind(new.idempotency_key.as_str())
                    .bind(new.amount.minor())
                    .bind(new.amount.currency().as_str())
                    .bind(state.as_str())
                    .bind(state.decline_code().map(|c| c.as_str()))
                    .bind(new.card_last4.as_str())
                    .bind(new.card_brand.as_str())
                    .bind(new.description.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let row: ChargeRow = sqlx::query_as(SELECT_BY_KEY)
                    .bind(new.idempotency_key.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                charge_of(row)
            }

            /// The charge after a refund attempt; `None` when it does not exist.
            pub async fn refund(
                pool: &Pool<$db>,
                id: ChargeId,
                now: OffsetDateTime,
            ) -> Result<Option<Charge>, PaymentError> {
                let mut tx = pool.begin().await?;
                sqlx::query(REFUND)
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let row: Option<ChargeRow> = sqlx::query_as(SELECT_BY_ID)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.map(charge_of).transpose()
            }

            pub async fn get_charge(
                pool: &Pool<$db>,
                id: ChargeId,
            ) -> Result<Option<Charge>, PaymentError> {
                let row: Option<ChargeRow> = sqlx::query_as(SELECT_BY_ID)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?;
                row.map(charge_of).transpose()
            }

            pub async fn list_charges(
                pool: &Pool<$db>,
                prefix: &KeyPrefix,
            ) -> Result<Vec<Charge>, PaymentError> {
                let rows: Vec<ChargeRow> = sqlx::query_as(LIST_BY_PREFIX)
                    .bind(prefix.as_str())
                    .bind(prefix.upper_bound())
                    .bind(i64::from(MAX_LIST))
                    .fetch_all(pool)
                    .await?;
                rows.into_iter().map(charge_of).collect()
            }

            pub async fn count_charges(pool: &Pool<$db>) -> Result<u64, PaymentError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM charges")
                    .fetch_one(pool)
                    .await?
                    .try_get(0)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);
