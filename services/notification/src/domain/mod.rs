//! Notification's types and rules: no I/O, no transport types.
//!
//! Events arrive as wire payloads (`emporium_eventbus::events`); the
//! `events` module turns them into the values here, each built by one
//! fallible constructor. Past that edge an [`Email`] is a plausible mailbox
//! address, a [`Money`] amount carries an ISO 4217 [`Currency`] that knows its
//! minor-unit digits, and an order has at least one line.
//!
//! - [`values`] — e-mail addresses, order ids and other small values
//! - [`money`] — currencies and amounts, formatted for people
//! - [`order`] — what the events say: a placed order, a shipment, a contact
//! - [`message`] — e-mails: their kinds, states and the retry schedule
//! - [`render`] — the texts of the two e-mails

pub mod message;
pub mod money;
pub mod order;
pub mod render;
pub mod values;

pub use message::{Message, MessageId, MessageKind, MessageStatus, NewMessage, RetryPolicy};
pub use money::{Currency, Money};
pub use order::{Address, Line, OrderContact, PlacedOrder, Shipped};
pub use values::{Email, OrderId, Text};

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
