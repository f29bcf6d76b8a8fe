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

/// A value that broke a rule; `field` names it as the caller sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, reported under a parent field (`items[3].sku`).
    pub fn within(self, parent: impl std::fmt::Display) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
