//! The inventory's types and rules: no I/O, no transport types.
//!
//! Values are built by one fallible constructor each ([`Sku::parse`],
//! [`Quantity::new`], [`Items::new`], …), so past the edge an item list is
//! always 1 to 100 distinct SKUs in SKU order with quantities of 1 to 999.
//! A reservation's life is the [`ReservationStatus`] state machine: every
//! transition the store may apply is decided here, with the stock effect it
//! implies.

mod reservation;
mod values;

pub use reservation::{Effect, Refusal, Reservation, ReservationStatus, Step};
pub use values::{Available, Item, Items, MAX_ITEMS, OrderId, Quantity, Sku, StockLevel};

use time::OffsetDateTime;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
