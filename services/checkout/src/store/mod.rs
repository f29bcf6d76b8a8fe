//! The checkout database: orders (each row is also its saga's state) and the
//! transactional outbox. SQLite or PostgreSQL by URL; every statement is in
//! [`sql`], written once for both.
//!
//! Guarantees:
//! - one order per (user, idempotency key), enforced by a unique key;
//! - a step changes only by compare-and-set from the step the caller saw,
//!   and only for the instance holding the saga's lease, so two instances
//!   never drive the same saga;
//! - an order becomes `placed` in the same transaction that writes its
//!   `order.placed.v1` outbox record.

mod sql;

use emporium_storage::{Db, dispatch};
use time::OffsetDateTime;

use crate::domain::{
    Address, Currency, Failure, IdempotencyKey, Invalid, Money, Order, OrderId, OrderItem, Step,
};
use crate::error::CheckoutError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// Who drives a saga, and until when (epoch milliseconds).
#[derive(Debug, Clone)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

/// Fields a step change may set alongside the step.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub shipping_cost: Option<i64>,
    pub total: Option<i64>,
    pub charge_id: Option<String>,
    pub failure: Option<Failure>,
}

/// An event to publish, written in the same transaction as the state change.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: String,
}

/// The result of creating an order under an idempotency key.
#[derive(Debug)]
pub enum Created {
    /// The order was created as given.
    New,
    /// The key was used before: the order that holds it.
    Existing(Box<Order>),
}

impl Store {
    /// Connects lazily to `sqlite://…` or `postgres://…`.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, CheckoutError> {
        let db = Db::connect(url, max_connections, "emporium-checkout")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub async fn migrate(&self) -> Result<(), CheckoutError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Inserts a new order holding `lease`, unless the user's key is taken.
    pub async fn create(&self, order: &Order, lease: &Lease) -> Result<Created, CheckoutError> {
        if dispatch!(self.db, sql::insert_order(order, lease))? {
            return Ok(Created::New);
        }
        let existing = self
            .find_by_key(&order.user_id, &order.idempotency_key)
            .await?
            .ok_or_else(|| {
                CheckoutError::Corrupt("idempotency key taken but no order holds it".into())
            })?;
        Ok(Created::Existing(Box::new(existing)))
    }

    pub async fn get(&self, id: OrderId) -> Result<Option<Order>, CheckoutError> {
        dispatch!(self.db, sql::get_order(id))
    }

    pub async fn find_by_key(
        &self,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, CheckoutError> {
        dispatch!(self.db, sql::find_by_key(user_id, key))
    }

    /// A user's orders, newest first, older than `before` if given.
    pub async fn list_for_user(
        &self,
        user_id: &str,
        before: Option<OrderId>,
        limit: u32,
    ) -> Result<Vec<Order>, CheckoutError> {
        dispatch!(self.db, sql::list_for_user(user_id, before, limit))
    }

    /// Moves `id` from `from` to `to` with `changes`, renewing the lease.
    /// False when the order is not at `from` or the lease is someone else's.
    pub async fn advance(
        &self,
        id: OrderId,
        from: Step,
        to: Step,
        changes: &Changes,
        lease: &Lease,
    ) -> Result<bool, CheckoutError> {
        if !from.can_become(to) {
            return Err(CheckoutError::IllegalStep { from, to });
        }
        dispatch!(self.db, sql::advance(id, from, to, changes, lease))
    }

    /// `Charged` → `Placed` and the outbox record, in one transaction.
    pub async fn place(
        &self,
        id: OrderId,
        lease: &Lease,
        event: &OutboxEvent,
    ) -> Result<bool, CheckoutError> {
        dispatch!(self.db, sql::place(id, lease, event))
    }

    /// Takes over up to `limit` unfinished sagas whose lease has expired.
    pub async fn claim_stale(
        &self,
        now_ms: i64,
        lease: &Lease,
        limit: u32,
    ) -> Result<Vec<Order>, CheckoutError> {
        dispatch!(self.db, sql::claim_stale(now_ms, lease, limit))
    }

    /// Outbox rows not yet published (id, envelope JSON, created), oldest first.
    pub async fn pending_outbox(
        &self,
        limit: u32,
    ) -> Result<Vec<(String, String, OffsetDateTime)>, CheckoutError> {
        dispatch!(self.db, sql::pending_outbox(limit))
    }

    pub async fn mark_published(&self, ids: &[String]) -> Result<(), CheckoutError> {
        dispatch!(self.db, sql::mark_published(ids))
    }

    /// Outbox records not yet published, oldest first.
    pub async fn unpublished_events(&self, limit: u32) -> Result<Vec<OutboxEvent>, CheckoutError> {
        dispatch!(self.db, sql::unpublished_events(limit))
    }

    /// Order counts and sums per (currency, status) of the orders created in
    /// `[from, until)`.
    pub async fn sales_by_status(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SalesRow>, CheckoutError> {
        dispatch!(
            self.db,
            sql::sales_by_status(from.to_offset(UTC), until.to_offset(UTC))
        )
    }

    /// Failed orders per failure kind, created in `[from, until)`.
    pub async fn failures(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<(String, i64)>, CheckoutError> {
        dispatch!(
            self.db,
            sql::failures(from.to_offset(UTC), until.to_offset(UTC))
        )
    }

    /// The next `limit` placed orders created after `after` (creation time,
    /// order id) and before `until`, oldest first; start with `(from, "")`.
    pub async fn placed_orders_after(
        &self,
        after: &PageCursor,
        until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PlacedLines>, CheckoutError> {
        let after = (after.0.to_offset(UTC), after.1.clone());
        let rows = dispatch!(
            self.db,
            sql::placed_items(&after, until.to_offset(UTC), limit)
        )?;
        rows.into_iter()
            .map(|(id, currency, items, created_at)| {
                Ok(PlacedLines {
                    currency: Currency::parse(currency.trim()).map_err(|e| corrupt(&id, e))?,
                    items: serde_json::from_str(&items).map_err(|e| corrupt(&id, e))?,
                    cursor: (created_at, id),
                })
            })
            .collect()
    }
}

const UTC: time::UtcOffset = time::UtcOffset::UTC;

/// Where a page of [`Store::placed_orders_after`] ends: creation time and order id.
pub type PageCursor = (OffsetDateTime, String);

/// One row of [`Store::sales_by_status`]: currency, status, orders, and the
/// sums of items, shipping and total in minor units.
pub type SalesRow = (String, String, i64, i64, i64, i64);

/// A placed order's lines, for reports.
#[derive(Debug, Clone)]
pub struct PlacedLines {
    pub currency: Currency,
    pub items: Vec<OrderItem>,
    /// Pass to the next [`Store::placed_orders_after`] call.
    pub cursor: PageCursor,
}

#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    id: String,
    user_id: String,
    email: Option<String>,
    idempotency_key: String,
    request_hash: String,
    step: String,
    currency: String,
    items: String,
    items_total: i64,
    shipping_cost: i64,
    total: i64,
    address: String,
    charge_id: Option<String>,
    failure_kind: Option<String>,
    failure_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(id: &str, what: impl std::fmt::Display) -> CheckoutError {
    CheckoutError::Corrupt(format!("order {id}: {what}"))
}

impl TryFrom<OrderRow> for Order {
    type Error = CheckoutError;

    fn try_from(row: OrderRow) -> Result<Self, Self::Error> {
        let id = row.id.clone();
        let currency = Currency::parse(row.currency.trim()).map_err(|e| corrupt(&id, e))?;
        let money = |minor| Money::new(minor, currency).map_err(|e| corrupt(&id, e));
        Ok(Order {
            id: OrderId::parse(&row.id).map_err(|e| corrupt(&id, e))?,
            user_id: row.user_id,
            email: row.email,
            idempotency_key: IdempotencyKey::parse(&row.idempotency_key)
                .map_err(|e| corrupt(&id, e))?,
            request_hash: row.request_hash,
            step: Step::parse(&row.step)
                .ok_or_else(|| corrupt(&id, format!("unknown step {}", row.step)))?,
            currency,
            items: serde_json::from_str::<Vec<OrderItem>>(&row.items)
                .map_err(|e| corrupt(&id, e))?,
            items_total: money(row.items_total)?,
            shipping_cost: money(row.shipping_cost)?,
            total: money(row.total)?,
            address: serde_json::from_str::<Address>(&row.address).map_err(|e| corrupt(&id, e))?,
            charge_id: row.charge_id,
            failure: match (row.failure_kind, row.failure_reason) {
                (Some(kind), reason) => Some(Failure {
                    kind,
                    reason: reason.unwrap_or_default(),
                }),
                (None, _) => None,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
