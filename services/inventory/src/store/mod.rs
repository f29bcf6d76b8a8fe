//! The inventory's database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in [`sql`], written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees:
//! - **No oversell.** A reserve takes units with one conditional statement
//!   per SKU (`… SET available = available - q WHERE sku = s AND available >= q`);
//!   zero rows affected means too few units, and the whole transaction rolls
//!   back. On PostgreSQL the row lock serializes competing updates and the
//!   condition is re-checked on the committed row; on SQLite every writing
//!   transaction starts with `BEGIN IMMEDIATE`, taking the write lock first,
//!   so no two writers interleave and none fails to upgrade a read lock.
//!   `CHECK (available >= 0)` backs this up in the schema.
//! - **All or nothing.** A reservation, its items and the stock they hold are
//!   written in one transaction; a failed or cancelled request leaves nothing.
//! - **One transition per reservation.** State changes are conditional on the
//!   state read (`… WHERE status = $old`); losing a race rolls back and the
//!   transaction is retried from the start, a bounded number of times, as it
//!   is when the database reports it is busy.

mod sql;

pub use emporium_storage::Backend;

use std::time::Duration;

use emporium_storage::{Db, PoolSettings, dispatch};
use time::OffsetDateTime;

use crate::domain::{
    Available, Invalid, Items, OrderId, Refusal, Reservation, ReservationStatus, Sku, Step,
    StockLevel,
};
use crate::error::InventoryError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How often a transaction is tried before a transient failure is reported.
const MAX_ATTEMPTS: u32 = 5;

/// Reservations expired per sweeper batch.
const SWEEP_BATCH: i64 = 100;

/// Batches one sweep goes through at most; the next sweep picks up the rest.
const MAX_SWEEP_BATCHES: usize = 100;

/// A handle on the inventory database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// Evaluates `$op` (an expression that awaits a store call) again while it
/// fails transiently (busy database, lost race), with a short growing pause,
/// at most [`MAX_ATTEMPTS`] times. A macro rather than a function taking a
/// closure, so the retried future stays `Send` for any borrowed argument.
macro_rules! retrying {
    ($op:expr) => {{
        let mut attempt = 1;
        let mut pause = Duration::from_millis(5);
        loop {
            match $op {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "transient database failure; retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                    pause *= 3;
                }
                result => break result,
            }
        }
    }};
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, InventoryError> {
        // Inventory waits 5 s for a free connection, the other services 3 s.
        let pool = PoolSettings {
            acquire_timeout: Duration::from_secs(5),
            ..PoolSettings::new(max_connections)
        };
        let db = Db::connect_with(url, "emporium-inventory", pool)
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), InventoryError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), InventoryError> {
        self.db.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// How many SKUs have a stock row (the launcher seeds an empty inventory).
    pub async fn count_skus(&self) -> Result<u64, InventoryError> {
        dispatch!(self.db, sql::count_skus())
    }

    /// The stock of each SKU, in the order asked (unknown SKUs have 0).
    pub async fn get_stock(&self, skus: &[Sku]) -> Result<Vec<StockLevel>, InventoryError> {
        dispatch!(self.db, sql::get_stock(skus))
    }

    /// Sets the available units of SKUs (creating them), in one transaction;
    /// units held by reservations are left as they are.
    pub async fn set_stock(
        &self,
        levels: &[(Sku, Available)],
    ) -> Result<Vec<StockLevel>, InventoryError> {
        retrying!(dispatch!(self.db, sql::set_stock(levels)))
    }

    /// Holds `items` for `order_id` until `now + ttl`, all or nothing.
    ///
    /// Idempotent per order: if the order already has a reservation with the
    /// same items, that reservation is returned as it is (whatever its
    /// status); with other items it is [`InventoryError::DifferentItems`].
    /// Too few units of any SKU is [`InventoryError::OutOfStock`] naming it,
    /// and nothing is held.
    pub async fn reserve(
        &self,
        order_id: &OrderId,
        items: &Items,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Reservation, InventoryError> {
        let expires_at = now + ttl;
        retrying!(dispatch!(
            self.db,
            sql::reserve(order_id, items, now, expires_at)
        ))
    }

    /// The order was placed: the held units leave the warehouse. Confirming
    /// twice is fine; a released or expired reservation (including one whose
    /// time ran out but that the sweeper has not reached yet) is refused.
    pub async fn confirm(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
    ) -> Result<Reservation, InventoryError> {
        self.transition(order_id, now, ReservationStatus::confirm)
            .await
    }

    /// The order failed: the held units go back on sale. Releasing twice, or
    /// after expiry, is fine; a confirmed reservation is refused.
    pub async fn release(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
    ) -> Result<Reservation, InventoryError> {
        self.transition(order_id, now, ReservationStatus::release)
            .await
    }

    async fn transition(
        &self,
        order_id: &OrderId,
        now: OffsetDateTime,
        decide: fn(ReservationStatus) -> Result<Step, Refusal>,
    ) -> Result<Reservation, InventoryError> {
        retrying!(dispatch!(self.db, sql::transition(order_id, now, decide)))
    }

    pub async fn get_reservation(&self, order_id: &OrderId) -> Result<Reservation, InventoryError> {
        dispatch!(self.db, sql::get_reservation(order_id))?
            .ok_or_else(|| InventoryError::ReservationNotFound(order_id.clone()))
    }

    /// Expires every reservation whose time is up at `now`, returning its
    /// units; one transaction per reservation. Returns how many expired.
    pub async fn expire_due(&self, now: OffsetDateTime) -> Result<usize, InventoryError> {
        let mut expired = 0;
        for _ in 0..MAX_SWEEP_BATCHES {
            let due = dispatch!(self.db, sql::due(now, SWEEP_BATCH))?;
            for order_id in &due {
                if retrying!(dispatch!(self.db, sql::expire(order_id, now)))? {
                    tracing::info!(order_id = %order_id, "reservation expired; units returned");
                    expired += 1;
                }
            }
            if (due.len() as i64) < SWEEP_BATCH {
                break;
            }
        }
        Ok(expired)
    }
}

/// A reservation's own row.
#[derive(Debug, sqlx::FromRow)]
struct ReservationRow {
    order_id: String,
    status: String,
    expires_at: i64,
    created_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct ItemRow {
    sku: String,
    quantity: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct StockRow {
    sku: String,
    available: i64,
    reserved: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> InventoryError {
    InventoryError::Corrupt(format!("{what}: {e}"))
}

/// Unix microseconds, as `expires_at` is stored.
fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime, InventoryError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| corrupt("expires_at", e))
}

fn reservation(row: ReservationRow, items: Vec<ItemRow>) -> Result<Reservation, InventoryError> {
    let status = ReservationStatus::parse(&row.status)
        .ok_or_else(|| corrupt(&row.order_id, format!("unknown status `{}`", row.status)))?;
    let entries = items
        .into_iter()
        .map(|i| {
            Ok((
                i.sku,
                u32::try_from(i.quantity).map_err(|e| corrupt(&row.order_id, e))?,
            ))
        })
        .collect::<Result<Vec<_>, InventoryError>>()?;
    Ok(Reservation {
        order_id: OrderId::parse(&row.order_id).map_err(|e| corrupt(&row.order_id, e))?,
        status,
        items: Items::new(entries).map_err(|e| corrupt(&row.order_id, e))?,
        expires_at: from_micros(row.expires_at)?,
        created_at: row.created_at,
    })
}

fn stock_level(row: StockRow) -> Result<StockLevel, InventoryError> {
    Ok(StockLevel {
        sku: Sku::parse(&row.sku).map_err(|e| corrupt(&row.sku, e))?,
        available: row.available,
        reserved: row.reserved,
    })
}
