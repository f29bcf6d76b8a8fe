//! Every statement shipping runs, written once and instantiated for SQLite
//! and PostgreSQL by [`backend!`]. Only portable SQL appears here: numbered
//! parameters (`$1`) and `ON CONFLICT DO NOTHING`.

use super::{ItemRow, ShipmentRow};

/// The columns of [`ShipmentRow`] (statements must be static strings, so
/// they are put together with `concat!`).
macro_rules! shipment_columns {
    () => {
        "id, order_id, tracking_id, status, name, line1, line2, city, postal_code, country_code, created_at"
    };
}

const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    shipment_columns!(),
    " FROM shipments WHERE id = $1"
);

const SELECT_BY_ORDER: &str = concat!(
    "SELECT ",
    shipment_columns!(),
    " FROM shipments WHERE order_id = $1"
);

/// Inserts the shipment unless ANY unique key (order id, shipment id,
/// tracking id) is taken. The first write of the transaction, so SQLite
/// takes its write lock here and concurrent callers queue behind it.
const INSERT_SHIPMENT: &str = "INSERT INTO shipments
     (id, order_id, tracking_id, status, name, line1, line2, city, postal_code, country_code, created_at)
     VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT DO NOTHING";

const INSERT_PROCESSED: &str = "INSERT INTO processed_events (consumer, event_id, processed_at)
     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, aggregate_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)";

const PENDING_OUTBOX: &str = "SELECT id, payload, created_at FROM outbox
     WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1";

const MARK_PUBLISHED: &str = "UPDATE outbox SET published_at = $2 WHERE id = $1";

const INSERT_ITEM: &str = "INSERT INTO shipment_items
     (shipment_id, position, sku, quantity, unit_weight_grams) VALUES ($1, $2, $3, $4, $5)";

const SELECT_ITEMS: &str = "SELECT sku, quantity, unit_weight_grams FROM shipment_items
     WHERE shipment_id = $1 ORDER BY position";

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::{Pool, Row};

            use super::*;
            use crate::domain::{NewShipment, OrderId, Shipment, ShipmentId};
            use crate::error::ShippingError;
            use crate::store::{Candidate, shipment};

            type Conn = <$db as sqlx::Database>::Connection;

            async fn with_items(
                conn: &mut Conn,
                row: Option<ShipmentRow>,
            ) -> Result<Option<Shipment>, ShippingError> {
                let Some(row) = row else { return Ok(None) };
                let items: Vec<ItemRow> = sqlx::query_as(SELECT_ITEMS)
                    .bind(row.id.as_str())
                    .fetch_all(&mut *conn)
                    .await?;
                shipment(row, items).map(Some)
            }

            async fn read_by_order(
                conn: &mut Conn,
                order: &OrderId,
            ) -> Result<Option<Shipment>, ShippingError> {
                let row: Option<ShipmentRow> = sqlx::query_as(SELECT_BY_ORDER)
                    .bind(order.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                with_items(conn, row).await
            }

            /// `None` when the candidate's ids collided with another
            /// order's shipment (nothing was written): try new ones.
            pub async fn create_shipment(
                pool: &Pool<$db>,
                new: &NewShipment,
                candidate: &Candidate,
                effect: Option<&crate::store::EventEffect<'_>>,
            ) -> Result<Option<Shipment>, ShippingError> {
                let mut tx = pool.begin().await?;
                if let Some(effect) = effect {
                    let first = sqlx::query(INSERT_PROCESSED)
                        .bind(effect.consumer)
                        .bind(effect.event_id)
                        .bind(candidate.created_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if first == 0 {
                        // Delivered before: its effect is already there.
                        let found = read_by_order(&mut tx, &new.order_id).await?;
                        tx.commit().await?;
                        return Ok(found);
                    }
                }
                let a = &new.address;
                let inserted = sqlx::query(INSERT_SHIPMENT)
                    .bind(candidate.id.to_string())
                    .bind(new.order_id.as_str())
                    .bind(candidate.tracking_id.as_str())
                    .bind(a.name())
                    .bind(a.line1())
                    .bind(a.line2())
                    .bind(a.city())
                    .bind(a.postal_code())
                    .bind(a.country().as_str())
                    .bind(candidate.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    if let Some(event) = effect.map(|e| (e.announce)(candidate)) {
                        let (id, event_type, payload) = event?;
                        sqlx::query(INSERT_OUTBOX)
                            .bind(id)
                            .bind(new.order_id.as_str())
                            .bind(event_type)
                            .bind(payload)
                            .bind(candidate.created_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for (position, item) in new.parcel.items().iter().enumerate() {
                        sqlx::query(INSERT_ITEM)
                            .bind(candidate.id.to_string())
                            .bind(i32::try_from(position).unwrap_or(i32::MAX))
                            .bind(item.sku().as_str())
                            .bind(i32::try_from(item.quantity()).unwrap_or(i32::MAX))
                            .bind(i32::try_from(item.unit_weight_grams()).unwrap_or(i32::MAX))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let found = read_by_order(&mut tx, &new.order_id).await?;
                tx.commit().await?;
                Ok(found)
            }

            pub async fn pending_outbox(
                pool: &Pool<$db>,
                limit: u32,
            ) -> Result<Vec<(String, String, time::OffsetDateTime)>, ShippingError> {
                Ok(sqlx::query_as(PENDING_OUTBOX)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn mark_published(
                pool: &Pool<$db>,
                ids: &[String],
            ) -> Result<(), ShippingError> {
                let mut tx = pool.begin().await?;
                for id in ids {
                    sqlx::query(MARK_PUBLISHED)
                        .bind(id)
                        .bind(crate::domain::now())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn get_shipment(
                pool: &Pool<$db>,
                id: ShipmentId,
            ) -> Result<Option<Shipment>, ShippingError> {
                let mut conn = pool.acquire().await?;
                let row: Option<ShipmentRow> = sqlx::query_as(SELECT_BY_ID)
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                with_items(&mut conn, row).await
            }

            pub async fn get_shipment_of_order(
                pool: &Pool<$db>,
                order: &OrderId,
            ) -> Result<Option<Shipment>, ShippingError> {
                let mut conn = pool.acquire().await?;
                read_by_order(&mut conn, order).await
            }

            pub async fn count_shipments(pool: &Pool<$db>) -> Result<u64, ShippingError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM shipments")
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
