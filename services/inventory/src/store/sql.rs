//! Every statement the inventory runs, written once and instantiated for
//! SQLite and PostgreSQL by [`backend!`]. Only portable SQL appears here:
//! numbered parameters (`$1`), `ON CONFLICT … DO NOTHING/UPDATE`.
//!
//! Each backend names the statement that opens a writing transaction:
//! SQLite's `BEGIN IMMEDIATE` takes the database write lock up front (a
//! deferred transaction that read first could fail to upgrade its lock with
//! `SQLITE_BUSY` and no chance to wait); PostgreSQL's plain `BEGIN` relies on
//! row locks taken by the conditional updates.

use super::{ItemRow, ReservationRow, StockRow};

const SELECT_RESERVATION: &str =
    "SELECT order_id, status, expires_at, created_at FROM reservations WHERE order_id = $1";

const SELECT_ITEMS: &str =
    "SELECT sku, quantity FROM reservation_items WHERE order_id = $1 ORDER BY sku";

/// Takes `$2` units of `$1` if at least that many are available.
const TAKE_UNITS: &str = "UPDATE stock SET available = available - $2, reserved = reserved + $2
     WHERE sku = $1 AND available >= $2";

const INSERT_RESERVATION: &str =
    "INSERT INTO reservations (order_id, status, expires_at, created_at)
     VALUES ($1, 'reserved', $2, $3)
     ON CONFLICT (order_id) DO NOTHING";

/// Moves a reservation from state `$2` to `$3`; zero rows means another
/// transaction moved it first.
const MOVE_RESERVATION: &str =
    "UPDATE reservations SET status = $3 WHERE order_id = $1 AND status = $2";

const CONSUME_UNITS: &str = "UPDATE stock SET reserved = reserved - $2 WHERE sku = $1";

const RESTORE_UNITS: &str =
    "UPDATE stock SET available = available + $2, reserved = reserved - $2 WHERE sku = $1";

const UPSERT_STOCK: &str = "INSERT INTO stock (sku, available, reserved) VALUES ($1, $2, 0)
     ON CONFLICT (sku) DO UPDATE SET available = excluded.available";

const DUE: &str = "SELECT order_id FROM reservations
     WHERE status = 'reserved' AND expires_at <= $1
     ORDER BY expires_at, order_id
     LIMIT $2";

macro_rules! backend {
    ($module:ident, $db:ty, $begin_write:literal) => {
        pub(super) mod $module {
            use sqlx::Pool;
            use time::OffsetDateTime;

            use super::*;
            use crate::domain::{
                Available, Effect, Items, OrderId, Refusal, Reservation, ReservationStatus, Sku,
                StockLevel, Step,
            };
            use crate::error::InventoryError;
            use crate::store::{corrupt, reservation, stock_level, to_micros};

            type Conn = <$db as sqlx::Database>::Connection;

            async fn read_reservation(
                conn: &mut Conn,
                order_id: &OrderId,
            ) -> Result<Option<Reservation>, InventoryError> {
                let row: Option<ReservationRow> = sqlx::query_as(SELECT_RESERVATION)
                    .bind(order_id.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let items: Vec<ItemRow> = sqlx::query_as(SELECT_ITEMS)
                    .bind(order_id.as_str())
                    .fetch_all(&mut *conn)
                    .await?;
                reservation(row, items).map(Some)
            }

            pub async fn get_reservation(
                pool: &Pool<$db>,
                order_id: &OrderId,
            ) -> Result<Option<Reservation>, InventoryError> {
                let mut conn = pool.acquire().await?;
                read_reservation(&mut conn, order_id).await
            }

            pub async fn count_skus(pool: &Pool<$db>) -> Result<u64, InventoryError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stock").fetch_one(pool).await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn read_stock(conn: &mut Conn, sku: &Sku) -> Result<StockLevel, InventoryError> {
                let row: Option<StockRow> =
                    sqlx::query_as("SELECT sku, available, reserved FROM stock WHERE sku = $1")
                        .bind(sku.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                match row {
                    Some(row) => stock_level(row),
                    None => Ok(StockLevel { sku: sku.clone(), available: 0, reserved: 0 }),
                }
            }

            /// One statement per SKU on one connection: lists are short, and
            /// `IN (…)` with a variable number of parameters is not static SQL.
            pub async fn get_stock(
                pool: &Pool<$db>,
                skus: &[Sku],
            ) -> Result<Vec<StockLevel>, InventoryError> {
                let mut conn = pool.acquire().await?;
                let mut levels = Vec::with_capacity(skus.len());
                for sku in skus {
                    levels.push(read_stock(&mut conn, sku).await?);
                }
                Ok(levels)
            }

            pub async fn set_stock(
                pool: &Pool<$db>,
                levels: &[(Sku, Available)],
            ) -> Result<Vec<StockLevel>, InventoryError> {
                let mut tx = pool.begin_with($begin_write).await?;
                for (sku, available) in levels {
                    sqlx::query(UPSERT_STOCK)
                        .bind(sku.as_str())
                        .bind(available.get())
                        .execute(&mut *tx)
                        .await?;
                }
                let mut result = Vec::with_capacity(levels.len());
                for (sku, _) in levels {
                    result.push(read_stock(&mut tx, sku).await?);
                }
                tx.commit().await?;
                Ok(result)
            }

            pub async fn reserve(
                pool: &Pool<$db>,
                order_id: &OrderId,
                items: &Items,
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> Result<Reservation, InventoryError> {
                let mut tx = pool.begin_with($begin_write).await?;
                // Claim the order id first: a second reserve for the same
                // order waits here (PostgreSQL) or at BEGIN (SQLite) and then
                // finds the first one's reservation.
                let claimed = sqlx::query(INSERT_RESERVATION)
                    .bind(order_id.as_str())
                    .bind(to_micros(expires_at))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if claimed == 0 {
                    let existing = read_reservation(&mut tx, order_id)
                        .await?
                        .ok_or_else(|| InventoryError::Contended(order_id.clone()))?;
                    tx.rollback().await?;
                    return if existing.items == *items {
                        Ok(existing)
                    } else {
                        Err(InventoryError::DifferentItems(order_id.clone()))
                    };
                }
                // Items are in SKU order, so competing reservations lock
                // stock rows in the same order and cannot deadlock.
                for item in items {
                    let quantity = i64::from(item.quantity.get());
                    let taken = sqlx::query(TAKE_UNITS)
                        .bind(item.sku.as_str())
                        .bind(quantity)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if taken == 0 {
                        let available = read_stock(&mut tx, &item.sku).await?.available;
                        tx.rollback().await?;
                        return Err(InventoryError::OutOfStock {
                            sku: item.sku.clone(),
                            wanted: item.quantity,
                            available,
                        });
                    }
                    sqlx::query("INSERT INTO reservation_items (order_id, sku, quantity) VALUES ($1, $2, $3)")
                        .bind(order_id.as_str())
                        .bind(item.sku.as_str())
                        .bind(quantity)
                        .execute(&mut *tx)
                        .await?;
                }
                let created = read_reservation(&mut tx, order_id)
                    .await?
                    .ok_or_else(|| corrupt(order_id.as_str(), "vanished inside its own transaction"))?;
                tx.commit().await?;
                Ok(created)
            }

            /// Applies `step` to a reservation read in state `from`.
            async fn apply(
                conn: &mut Conn,
                order_id: &OrderId,
                items: &Items,
                from: ReservationStatus,
                step: Step,
            ) -> Result<ReservationStatus, InventoryError> {
                let Step::Change { to, effect } = step else {
                    return Ok(from);
                };
                let moved = sqlx::query(MOVE_RESERVATION)
                    .bind(order_id.as_str())
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if moved == 0 {
                    return Err(InventoryError::Contended(order_id.clone()));
                }
                let statement = match effect {
                    Effect::Consume => CONSUME_UNITS,
                    Effect::Restore => RESTORE_UNITS,
                };
                for item in items {
                    let changed = sqlx::query(statement)
                        .bind(item.sku.as_str())
                        .bind(i64::from(item.quantity.get()))
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    if changed == 0 {
                        return Err(corrupt(
                            order_id.as_str(),
                            format!("holds {} of {}, which has no stock row", item.quantity, item.sku),
                        ));
                    }
                }
                Ok(to)
            }

            pub async fn transition(
                pool: &Pool<$db>,
                order_id: &OrderId,
                now: OffsetDateTime,
                decide: fn(ReservationStatus) -> Result<Step, Refusal>,
            ) -> Result<Reservation, InventoryError> {
                let mut tx = pool.begin_with($begin_write).await?;
                let mut current = read_reservation(&mut tx, order_id)
                    .await?
                    .ok_or_else(|| InventoryError::ReservationNotFound(order_id.clone()))?;
                // Time is up even if the sweeper has not come by yet.
                if current.is_due(now) {
                    let step = current.status.expire();
                    current.status = apply(&mut tx, order_id, &current.items, current.status, step).await?;
                    tracing::info!(order_id = %order_id, "reservation expired; units returned");
                }
                match decide(current.status) {
                    Err(refusal) => {
                        // Keep the expiry found above, then refuse.
                        tx.commit().await?;
                        Err(InventoryError::WrongState { order_id: order_id.clone(), refusal })
                    }
                    Ok(step) => {
                        current.status = apply(&mut tx, order_id, &current.items, current.status, step).await?;
                        tx.commit().await?;
                        Ok(current)
                    }
                }
            }

            pub async fn due(
                pool: &Pool<$db>,
                now: OffsetDateTime,
                limit: i64,
            ) -> Result<Vec<OrderId>, InventoryError> {
                let ids: Vec<String> = sqlx::query_scalar(DUE)
                    .bind(to_micros(now))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                ids.iter()
                    .map(|id| OrderId::parse(id).map_err(|e| corrupt(id, e)))
                    .collect()
            }

            /// Expires one reservation if it is still due; whether it did.
            pub async fn expire(
                pool: &Pool<$db>,
                order_id: &OrderId,
                now: OffsetDateTime,
            ) -> Result<bool, InventoryError> {
                let mut tx = pool.begin_with($begin_write).await?;
                let Some(current) = read_reservation(&mut tx, order_id).await? else {
                    return Ok(false);
                };
                if !current.is_due(now) {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let status = current.status;
                apply(&mut tx, order_id, &current.items, status, status.expire()).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE");
backend!(postgres, sqlx::Postgres, "BEGIN");
