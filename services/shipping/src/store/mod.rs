//! Shipping's database: SQLite (embedded, the default) or PostgreSQL, chosen
//! by the URL's scheme. All SQL lives in `sql.rs`, written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees: a shipment and its items are written in one transaction
//! (a failed or cancelled request leaves nothing half-written); there is at
//! most one shipment per order, also when callers race (a unique key on
//! `order_id`, `INSERT … ON CONFLICT DO NOTHING`, then read back in the same
//! transaction: every caller gets the one row that won).

mod sql;

pub use emporium_storage::Backend;

use emporium_storage::{Db, Outage, dispatch};
use time::OffsetDateTime;

use crate::domain::{
    Address, Invalid, Item, NewShipment, OrderId, Parcel, Shipment, ShipmentId, ShipmentStatus,
    TrackingId,
};
use crate::error::ShippingError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the shipping database; cheap to clone.
/// What processing an event adds to a shipment's transaction.
pub struct EventEffect<'a> {
    /// The consumer name and event id recorded as processed.
    pub consumer: &'a str,
    pub event_id: &'a str,
    /// The outbox row announcing a new shipment: (envelope id, event type,
    /// envelope JSON), built from the shipment's ids.
    #[allow(clippy::type_complexity)]
    pub announce:
        &'a (dyn Fn(&Candidate) -> Result<(String, String, String), ShippingError> + Sync),
}

impl std::fmt::Debug for EventEffect<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventEffect")
            .field("consumer", &self.consumer)
            .field("event_id", &self.event_id)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    outage: Outage,
}

/// How often a new shipment is tried with fresh random ids when the first
/// collide with existing ones (about 2⁻⁶² per try for tracking ids).
const CREATE_ATTEMPTS: usize = 3;

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, ShippingError> {
        let db = Db::connect(url, max_connections, "emporium-shipping")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self {
            db,
            outage: Outage::default(),
        })
    }

    /// The test switch that makes this store (and its clones) answer as if
    /// the database were unreachable (see [`Outage`]); for SQLite, where no
    /// connection can be cut from outside.
    pub fn outage(&self) -> &Outage {
        &self.outage
    }

    /// The database, unless the test outage switch is on.
    fn db(&self) -> Result<&Db, ShippingError> {
        self.outage.check()?;
        Ok(&self.db)
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), ShippingError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), ShippingError> {
        self.db()?.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// The order's shipment: created now, or the one created by an earlier
    /// call for the same order (whose address and items then stand; the
    /// ones passed this time are not compared).
    pub async fn create_shipment(&self, new: &NewShipment) -> Result<Shipment, ShippingError> {
        self.create_shipment_with(new, None).await
    }

    /// Like [`Store::create_shipment`], as the effect of an event: the event
    /// id is recorded in the same transaction (a redelivery changes
    /// nothing), and a newly created shipment's announcement goes into the
    /// outbox in that transaction too.
    pub async fn create_shipment_for_event(
        &self,
        new: &NewShipment,
        effect: &EventEffect<'_>,
    ) -> Result<Shipment, ShippingError> {
        self.create_shipment_with(new, Some(effect)).await
    }

    async fn create_shipment_with(
        &self,
        new: &NewShipment,
        effect: Option<&EventEffect<'_>>,
    ) -> Result<Shipment, ShippingError> {
        for _ in 0..CREATE_ATTEMPTS {
            let candidate = Candidate {
                id: ShipmentId::generate(),
                tracking_id: TrackingId::generate(),
                created_at: crate::domain::now(),
            };
            if let Some(shipment) =
                dispatch!(self.db()?, sql::create_shipment(new, &candidate, effect))?
            {
                return Ok(shipment);
            }
        }
        Err(ShippingError::Corrupt(format!(
            "no free shipment or tracking id for order {} after {CREATE_ATTEMPTS} attempts",
            new.order_id
        )))
    }

    pub async fn get_shipment(&self, id: ShipmentId) -> Result<Shipment, ShippingError> {
        dispatch!(self.db()?, sql::get_shipment(id))?.ok_or_else(|| {
            ShippingError::ShipmentNotFound {
                which: format!("shipment {id}"),
            }
        })
    }

    pub async fn get_shipment_of_order(&self, order: &OrderId) -> Result<Shipment, ShippingError> {
        dispatch!(self.db()?, sql::get_shipment_of_order(order))?.ok_or_else(|| {
            ShippingError::ShipmentNotFound {
                which: format!("the shipment of order {order}"),
            }
        })
    }

    /// Outbox rows not yet published (id, envelope JSON, created), oldest first.
    pub async fn pending_outbox(
        &self,
        limit: u32,
    ) -> Result<Vec<(String, String, time::OffsetDateTime)>, ShippingError> {
        dispatch!(self.db()?, sql::pending_outbox(limit))
    }

    pub async fn mark_published(&self, ids: &[String]) -> Result<(), ShippingError> {
        dispatch!(self.db()?, sql::mark_published(ids))
    }

    pub async fn count_shipments(&self) -> Result<u64, ShippingError> {
        dispatch!(self.db()?, sql::count_shipments())
    }
}

/// The ids and time a new shipment gets if it is the first for its order.
#[derive(Debug)]
pub struct Candidate {
    pub id: ShipmentId,
    pub tracking_id: TrackingId,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct ShipmentRow {
    id: String,
    order_id: String,
    tracking_id: String,
    status: String,
    name: String,
    line1: String,
    line2: String,
    city: String,
    postal_code: String,
    country_code: String,
    created_at: OffsetDateTime,
}

#[derive(Debug, sqlx::FromRow)]
struct ItemRow {
    sku: String,
    quantity: i32,
    unit_weight_grams: i32,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ShippingError {
    ShippingError::Corrupt(format!("shipment {what}: {e}"))
}

/// Rebuilds a shipment from its row and its item rows (in position order),
/// checking every value as if it came from a caller.
fn shipment(row: ShipmentRow, items: Vec<ItemRow>) -> Result<Shipment, ShippingError> {
    let at = row.id.clone();
    let bad = |e: crate::domain::Invalid| corrupt(&at, e);
    let items = items
        .into_iter()
        .map(|i| {
            let quantity = u32::try_from(i.quantity).map_err(|e| corrupt(&at, e))?;
            let weight = u32::try_from(i.unit_weight_grams).map_err(|e| corrupt(&at, e))?;
            Item::new(&i.sku, quantity, weight).map_err(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Shipment {
        id: ShipmentId::parse(&row.id).map_err(bad)?,
        order_id: OrderId::parse(&row.order_id).map_err(bad)?,
        tracking_id: TrackingId::parse(&row.tracking_id).map_err(bad)?,
        status: ShipmentStatus::parse(&row.status)
            .ok_or_else(|| corrupt(&at, format!("unknown status `{}`", row.status)))?,
        address: Address::new(
            &row.name,
            &row.line1,
            &row.line2,
            &row.city,
            &row.postal_code,
            &row.country_code,
        )
        .map_err(bad)?,
        parcel: Parcel::new(items).map_err(bad)?,
        created_at: row.created_at,
    })
}
