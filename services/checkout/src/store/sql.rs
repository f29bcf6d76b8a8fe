//! Every statement checkout runs, written once and instantiated for SQLite
//! and PostgreSQL by [`backend!`].

use super::OrderRow;

macro_rules! order_columns {
    () => {
        "id, user_id, email, idempotency_key, request_hash, step, currency, items, items_total, shipping_cost, \
         total, address, charge_id, failure_kind, failure_reason, created_at, updated_at"
    };
}

const INSERT_ORDER: &str = "INSERT INTO orders
     (id, user_id, idempotency_key, request_hash, status, step, currency, items, items_total,
      shipping_cost, total, address, lease_owner, lease_until, created_at, updated_at, email)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)
     ON CONFLICT (user_id, idempotency_key) DO NOTHING";

const GET_ORDER: &str = concat!("SELECT ", order_columns!(), " FROM orders WHERE id = $1");
const FIND_BY_KEY: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE user_id = $1 AND idempotency_key = $2"
);
const LIST_FOR_USER: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
);

const ADVANCE: &str = "UPDATE orders SET
     step = $3, status = $4,
     shipping_cost = COALESCE($5, shipping_cost),
     total = COALESCE($6, total),
     charge_id = COALESCE($7, charge_id),
     failure_kind = COALESCE($8, failure_kind),
     failure_reason = COALESCE($9, failure_reason),
     lease_until = $11, updated_at = $12
     WHERE id = $1 AND step = $2 AND lease_owner = $10";

const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, aggregate_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)";

const STALE: &str = "SELECT id FROM orders
     WHERE step NOT IN ('completed', 'failed') AND (lease_until IS NULL OR lease_until < $1)
     ORDER BY id LIMIT $2";

const CLAIM: &str = "UPDATE orders SET lease_owner = $2, lease_until = $3
     WHERE id = $1 AND step NOT IN ('completed', 'failed') AND (lease_until IS NULL OR lease_until < $4)";

const PENDING_OUTBOX: &str = "SELECT id, payload, created_at FROM outbox
     WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1";

const MARK_PUBLISHED: &str = "UPDATE outbox SET published_at = $2 WHERE id = $1";

const UNPUBLISHED: &str = "SELECT id, aggregate_id, event_type, payload FROM outbox
     WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1";

// Sales figures over a creation-time window [$1, $2).
const SALES_BY_STATUS: &str = "SELECT currency, status, COUNT(*),
     CAST(COALESCE(SUM(items_total), 0) AS BIGINT),
     CAST(COALESCE(SUM(shipping_cost), 0) AS BIGINT),
     CAST(COALESCE(SUM(total), 0) AS BIGINT)
     FROM orders WHERE created_at >= $1 AND created_at < $2
     GROUP BY currency, status ORDER BY currency, status";

const FAILURES: &str = "SELECT COALESCE(failure_kind, 'unknown'), COUNT(*)
     FROM orders WHERE status = 'failed' AND created_at >= $1 AND created_at < $2
     GROUP BY COALESCE(failure_kind, 'unknown')";

// Placed orders' lines, one page after the cursor ($1, $3) in (created_at, id) order.
const PLACED_ITEMS: &str = "SELECT id, currency, items, created_at FROM orders
     WHERE status = 'placed' AND created_at < $2
       AND (created_at > $1 OR (created_at = $1 AND id > $3))
     ORDER BY created_at, id LIMIT $4";

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::Pool;

            use super::*;
            use crate::domain::{IdempotencyKey, Order, OrderId, Step};
            use crate::error::CheckoutError;
            use crate::store::{Changes, Lease, OutboxEvent, SalesRow};

            type Conn = <$db as sqlx::Database>::Connection;

            fn orders(rows: Vec<OrderRow>) -> Result<Vec<Order>, CheckoutError> {
                rows.into_iter().map(Order::try_from).collect()
            }

            pub async fn insert_order(
                pool: &Pool<$db>,
                o: &Order,
                lease: &Lease,
            ) -> Result<bool, CheckoutError> {
                let items = serde_json::to_string(&o.items)
                    .map_err(|e| CheckoutError::Corrupt(e.to_string()))?;
                let address = serde_json::to_string(&o.address)
                    .map_err(|e| CheckoutError::Corrupt(e.to_string()))?;
                let inserted = sqlx::query(INSERT_ORDER)
                    .bind(o.id.to_string())
                    .bind(&o.user_id)
                    .bind(o.idempotency_key.as_str())
                    .bind(&o.request_hash)
                    .bind(o.step.status().as_str())
                    .bind(o.step.as_str())
                    .bind(o.currency.as_str())
                    .bind(items)
                    .bind(o.items_total.minor())
                    .bind(o.shipping_cost.minor())
                    .bind(o.total.minor())
                    .bind(address)
                    .bind(&lease.owner)
                    .bind(lease.until_ms)
                    .bind(o.created_at)
                    .bind(o.email.as_deref())
                    .execute(pool)
                    .await?;
                Ok(inserted.rows_affected() == 1)
            }

            pub async fn get_order(
                pool: &Pool<$db>,
                id: OrderId,
            ) -> Result<Option<Order>, CheckoutError> {
                let row: Option<OrderRow> = sqlx::query_as(GET_ORDER)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?;
                row.map(Order::try_from).transpose()
            }

            pub async fn find_by_key(
                pool: &Pool<$db>,
                user_id: &str,
                key: &IdempotencyKey,
            ) -> Result<Option<Order>, CheckoutError> {
                let row: Option<OrderRow> = sqlx::query_as(FIND_BY_KEY)
                    .bind(user_id)
                    .bind(key.as_str())
                    .fetch_optional(pool)
                    .await?;
                row.map(Order::try_from).transpose()
            }

            pub async fn list_for_user(
                pool: &Pool<$db>,
                user_id: &str,
                before: Option<OrderId>,
                limit: u32,
            ) -> Result<Vec<Order>, CheckoutError> {
                let rows: Vec<OrderRow> = sqlx::query_as(LIST_FOR_USER)
                    .bind(user_id)
                    .bind(before.map(|id| id.to_string()))
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                orders(rows)
            }

            async fn advance_on(
                conn: &mut Conn,
                id: OrderId,
                from: Step,
                to: Step,
                c: &Changes,
                lease: &Lease,
            ) -> Result<bool, CheckoutError> {
                let updated = sqlx::query(ADVANCE)
                    .bind(id.to_string())
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(to.status().as_str())
                    .bind(c.shipping_cost)
                    .bind(c.total)
                    .bind(c.charge_id.as_deref())
                    .bind(c.failure.as_ref().map(|f| f.kind.as_str()))
                    .bind(c.failure.as_ref().map(|f| f.reason.as_str()))
                    .bind(&lease.owner)
                    .bind(lease.until_ms)
                    .bind(crate::domain::now())
                    .execute(&mut *conn)
                    .await?;
                Ok(updated.rows_affected() == 1)
            }

            pub async fn advance(
                pool: &Pool<$db>,
                id: OrderId,
                from: Step,
                to: Step,
                c: &Changes,
                lease: &Lease,
            ) -> Result<bool, CheckoutError> {
                let mut conn = pool.acquire().await?;
                advance_on(&mut conn, id, from, to, c, lease).await
            }

            pub async fn place(
                pool: &Pool<$db>,
                id: OrderId,
                lease: &Lease,
                e: &OutboxEvent,
            ) -> Result<bool, CheckoutError> {
                let mut tx = pool.begin().await?;
                if !advance_on(
                    &mut tx,
                    id,
                    Step::Charged,
                    Step::Placed,
                    &Changes::default(),
                    lease,
                )
                .await?
                {
                    return Ok(false);
                }
                sqlx::query(INSERT_OUTBOX)
                    .bind(&e.id)
                    .bind(&e.aggregate_id)
                    .bind(&e.event_type)
                    .bind(&e.payload)
                    .bind(crate::domain::now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            pub async fn claim_stale(
                pool: &Pool<$db>,
                now_ms: i64,
                lease: &Lease,
                limit: u32,
            ) -> Result<Vec<Order>, CheckoutError> {
                let ids: Vec<String> = sqlx::query_scalar(STALE)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                let mut claimed = Vec::new();
                for id in ids {
                    let taken = sqlx::query(CLAIM)
                        .bind(&id)
                        .bind(&lease.owner)
                        .bind(lease.until_ms)
                        .bind(now_ms)
                        .execute(pool)
                        .await?;
                    if taken.rows_affected() == 1 {
                        let row: Option<OrderRow> = sqlx::query_as(GET_ORDER)
                            .bind(&id)
                            .fetch_optional(pool)
                            .await?;
                        claimed.extend(row.map(Order::try_from).transpose()?);
                    }
                }
                Ok(claimed)
            }

            pub async fn pending_outbox(
                pool: &Pool<$db>,
                limit: u32,
            ) -> Result<Vec<(String, String, time::OffsetDateTime)>, CheckoutError> {
                Ok(sqlx::query_as(PENDING_OUTBOX)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn mark_published(
                pool: &Pool<$db>,
                ids: &[String],
            ) -> Result<(), CheckoutError> {
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

            pub async fn unpublished_events(
                pool: &Pool<$db>,
                limit: u32,
            ) -> Result<Vec<OutboxEvent>, CheckoutError> {
                let rows: Vec<(String, String, String, String)> = sqlx::query_as(UNPUBLISHED)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, aggregate_id, event_type, payload)| OutboxEvent {
                        id,
                        aggregate_id,
                        event_type,
                        payload,
                    })
                    .collect())
            }

            pub async fn sales_by_status(
                pool: &Pool<$db>,
                from: time::OffsetDateTime,
                until: time::OffsetDateTime,
            ) -> Result<Vec<SalesRow>, CheckoutError> {
                Ok(sqlx::query_as(SALES_BY_STATUS)
                    .bind(from)
                    .bind(until)
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn failures(
                pool: &Pool<$db>,
                from: time::OffsetDateTime,
                until: time::OffsetDateTime,
            ) -> Result<Vec<(String, i64)>, CheckoutError> {
                Ok(sqlx::query_as(FAILURES)
                    .bind(from)
                    .bind(until)
                    .fetch_all(pool)
                    .await?)
            }

            pub async fn placed_items(
                pool: &Pool<$db>,
                after: &(time::OffsetDateTime, String),
                until: time::OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<(String, String, String, time::OffsetDateTime)>, CheckoutError> {
                Ok(sqlx::query_as(PLACED_ITEMS)
                    .bind(after.0)
                    .bind(until)
                    .bind(&after.1)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?)
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);
