//! Payment's database: SQLite (embedded, the default) or PostgreSQL, chosen
//! by the URL's scheme. All SQL lives in `sql.rs`, written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees:
//! - one charge per idempotency key, also when callers race: a unique key,
//!   `INSERT … ON CONFLICT DO NOTHING`, then the row read back in the same
//!   transaction, so every caller gets the one row that won, unchanged (a
//!   decline included); a key reused for another amount or currency is an
//!   error, and writes nothing;
//! - refunds move `succeeded → refunded` only, in one conditional `UPDATE`;
//! - every write starts its transaction with the write itself, so SQLite
//!   takes its write lock first and concurrent writers queue (with a busy
//!   timeout) instead of failing on a stale read snapshot;
//! - no card number or CVC is ever written: the rows hold only the last four
//!   digits and the brand.

mod sql;

pub use emporium_storage::Backend;

use emporium_storage::{Db, dispatch};
use time::OffsetDateTime;

use crate::domain::{
    Amount, Brand, Charge, ChargeId, ChargeState, Currency, Description, IdempotencyKey, Invalid,
    KeyPrefix, Last4, NewCharge,
};
use crate::error::PaymentError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the payment database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, PaymentError> {
        let db = Db::connect(url, max_connections, "emporium-payment")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), PaymentError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), PaymentError> {
        self.db.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Records `new`, or returns the charge already recorded under its
    /// idempotency key, unchanged. The same key with another amount or
    /// currency is [`PaymentError::KeyReused`].
    pub async fn charge(&self, new: &NewCharge) -> Result<Charge, PaymentError> {
        let id = ChargeId::generate();
        let stored = dispatch!(self.db, sql::charge(id, new, crate::domain::now()))?;
        if stored.amount != new.amount {
            return Err(PaymentError::KeyReused(new.idempotency_key.clone()));
        }
        Ok(stored)
    }

    /// Refunds a succeeded charge in full; refunding a refunded charge
    /// returns it as it is. A declined charge is
    /// [`PaymentError::NotRefundable`].
    pub async fn refund(&self, id: ChargeId) -> Result<Charge, PaymentError> {
        let charge = dispatch!(self.db, sql::refund(id, crate::domain::now()))?
            .ok_or(PaymentError::ChargeNotFound(id))?;
        match charge.state.refund() {
            Err(nothing) => Err(PaymentError::NotRefundable {
                id,
                decline: nothing.0,
            }),
            Ok(_) if charge.state == ChargeState::Refunded => Ok(charge),
            Ok(_) => Err(PaymentError::Corrupt(format!(
                "charge {id} is still {} after its refund",
                charge.state.as_str()
            ))),
        }
    }

    pub async fn get_charge(&self, id: ChargeId) -> Result<Charge, PaymentError> {
        dispatch!(self.db, sql::get_charge(id))?.ok_or(PaymentError::ChargeNotFound(id))
    }

    /// Charges whose idempotency key starts with `prefix`, oldest first, at
    /// most [`crate::domain::MAX_LIST`].
    pub async fn list_charges(&self, prefix: &KeyPrefix) -> Result<Vec<Charge>, PaymentError> {
        dispatch!(self.db, sql::list_charges(prefix))
    }

    pub async fn count_charges(&self) -> Result<u64, PaymentError> {
        dispatch!(self.db, sql::count_charges())
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ChargeRow {
    id: String,
    idempotency_key: String,
    amount_minor: i64,
    currency: String,
    status: String,
    decline_code: Option<String>,
    card_last4: String,
    card_brand: String,
    description: String,
    created_at: OffsetDateTime,
    refunded_at: Option<OffsetDateTime>,
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> PaymentError {
    PaymentError::Corrupt(format!("charge {id}: {e}"))
}

/// Rebuilds a charge from its row, checking every value as if it came from
/// a caller.
fn charge_of(row: ChargeRow) -> Result<Charge, PaymentError> {
    let at = row.id.as_str();
    let currency = Currency::parse(&row.currency).map_err(|e| corrupt(at, e))?;
    Ok(Charge {
        id: ChargeId::parse(&row.id).map_err(|e| corrupt(at, e))?,
        idempotency_key: IdempotencyKey::parse(&row.idempotency_key).map_err(|e| corrupt(at, e))?,
        amount: Amount::new(row.amount_minor, currency).map_err(|e| corrupt(at, e))?,
        state: ChargeState::parse(&row.status, row.decline_code.as_deref()).ok_or_else(|| {
            corrupt(
                at,
                format!(
                    "status `{}` / decline code {:?}",
                    row.status, row.decline_code
                ),
            )
        })?,
        card_last4: Last4::parse(&row.card_last4).map_err(|e| corrupt(at, e))?,
        card_brand: Brand::parse(&row.card_brand)
            .ok_or_else(|| corrupt(at, format!("brand `{}`", row.card_brand)))?,
        description: Description::parse(&row.description).map_err(|e| corrupt(at, e))?,
        created_at: row.created_at,
        refunded_at: row.refunded_at,
    })
}
