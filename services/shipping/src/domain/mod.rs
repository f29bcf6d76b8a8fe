//! Shipping's types and rules: no I/O, no transport types.
//!
//! Every value is built by one fallible constructor, so past the edge an
//! [`Address`] always has its required lines within bounds and a country
//! code of two uppercase letters, and a [`Parcel`] always has 1 to
//! [`MAX_LINES`] items whose total weight fits the price list.
//!
//! - [`address`] — postal addresses, countries and shipping zones
//! - [`parcel`] — items, weights and the price list that turns them into a quote
//! - [`ids`] — shipment, order and tracking ids

pub mod address;
pub mod ids;
pub mod parcel;

pub use address::{Address, CountryCode, Zone};
pub use ids::{OrderId, ShipmentId, TrackingId};
pub use parcel::{
    DEFAULT_UNIT_WEIGHT_GRAMS, Item, MAX_LINES, MAX_QUANTITY, MAX_TOTAL_WEIGHT_GRAMS,
    MAX_UNIT_WEIGHT_GRAMS, Parcel, Quote, Sku, quote,
};

use time::OffsetDateTime;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// Where a shipment is in its life. Shipments are created by this service;
/// the later states are set by the carrier integration (not simulated yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipmentStatus {
    Created,
    Shipped,
    Delivered,
}

impl ShipmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "created" => Some(Self::Created),
            "shipped" => Some(Self::Shipped),
            "delivered" => Some(Self::Delivered),
            _ => None,
        }
    }
}

/// What it takes to create an order's shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShipment {
    pub order_id: OrderId,
    pub address: Address,
    pub parcel: Parcel,
}

/// An order's shipment: there is at most one per order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_id: TrackingId,
    pub status: ShipmentStatus,
    pub address: Address,
    pub parcel: Parcel,
    pub created_at: OffsetDateTime,
}

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
