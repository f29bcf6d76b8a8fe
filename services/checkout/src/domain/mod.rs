//! Orders and the saga that places them: types and rules, no I/O.
//!
//! An order row is the saga's state. [`Step`] is the state machine: each step
//! is persisted before its side effect is attempted (`Reserving`, `Charging`)
//! and after it succeeded (`Reserved`, `Charged`), so a process that dies at
//! any point leaves enough behind to resume forward or compensate.

mod values;

pub use values::{Address, Card, Currency, IdempotencyKey, Invalid, Money, OrderId};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where an order's saga is. Persisted as [`Step::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Items priced and converted; nothing done elsewhere yet.
    Priced,
    /// About to ask inventory for a reservation (it may exist).
    Reserving,
    Reserved,
    /// Shipping quoted; totals known.
    Quoted,
    /// About to charge the card (a charge may exist under the order id).
    Charging,
    Charged,
    /// Reservation confirmed, then order placed and `order.placed.v1` in the
    /// outbox (one transaction).
    Placed,
    /// Cart cleared: nothing left to do.
    Completed,
    /// Undoing what was done (release stock, refund).
    Compensating,
    /// Compensated; the order failed.
    Failed,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Self::Priced,
        Self::Reserving,
        Self::Reserved,
        Self::Quoted,
        Self::Charging,
        Self::Charged,
        Self::Placed,
        Self::Completed,
        Self::Compensating,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priced => "priced",
            Self::Reserving => "reserving",
            Self::Reserved => "reserved",
            Self::Quoted => "quoted",
            Self::Charging => "charging",
            Self::Charged => "charged",
            Self::Placed => "placed",
            Self::Completed => "completed",
            Self::Compensating => "compensating",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == s)
    }

    /// Nothing more will happen to an order in this step.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// The status a customer sees.
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Placed | Self::Completed => OrderStatus::Placed,
            Self::Failed => OrderStatus::Failed,
            _ => OrderStatus::Pending,
        }
    }

    /// The legal moves of the state machine. Any step up to `Charged` may
    /// turn to compensation (from `Charged` only when the stock can no longer
    /// be confirmed, and the charge is refunded); a placed order stays placed.
    pub fn can_become(self, next: Step) -> bool {
        use Step::*;
        matches!(
            (self, next),
            (Priced, Reserving)
                | (Reserving, Reserved)
                | (Reserved, Quoted)
                | (Quoted, Charging)
                | (Charging, Charged)
                | (Charged, Placed)
                | (Placed, Completed)
                | (Compensating, Failed)
                | (
                    Priced | Reserving | Reserved | Quoted | Charging | Charged,
                    Compensating
                )
        )
    }
}

/// What a customer sees of an order's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Placed,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Placed => "placed",
            Self::Failed => "failed",
        }
    }
}

/// One priced line of an order, in the order's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// Minor units of the order's currency.
    pub unit_price: i64,
}

/// Why an order failed: an error kind's problem slug and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: String,
    pub reason: String,
}

/// An order and its saga state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: String,
    /// Where order notifications go, when the customer's token carried it.
    pub email: Option<String>,
    pub idempotency_key: IdempotencyKey,
    /// Digest of the request, to refuse a reused key with other content.
    pub request_hash: String,
    pub step: Step,
    pub currency: Currency,
    pub items: Vec<OrderItem>,
    pub items_total: Money,
    pub shipping_cost: Money,
    pub total: Money,
    pub address: Address,
    pub charge_id: Option<String>,
    pub failure: Option<Failure>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Order {
    pub fn status(&self) -> OrderStatus {
        self.step.status()
    }
}

/// Sums `quantity × unit_price` over the items, failing on overflow.
pub fn items_total(currency: Currency, items: &[OrderItem]) -> Result<Money, Invalid> {
    items.iter().try_fold(Money::zero(currency), |sum, item| {
        let line = Money::new(item.unit_price, currency)?.times(item.quantity)?;
        sum.plus(line)
    })
}

/// The current time at the precision both databases keep (microseconds).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_and_map_to_statuses() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::Charged.status(), OrderStatus::Pending);
        assert_eq!(Step::Placed.status(), OrderStatus::Placed);
        assert_eq!(Step::Failed.status(), OrderStatus::Failed);
        assert!(Step::Completed.is_final() && Step::Failed.is_final() && !Step::Charged.is_final());
    }

    #[test]
    fn a_placed_order_stays_placed() {
        assert!(Step::Charging.can_become(Step::Compensating));
        assert!(Step::Charged.can_become(Step::Compensating));
        assert!(!Step::Placed.can_become(Step::Compensating));
        assert!(!Step::Placed.can_become(Step::Failed));
        assert!(
            !Step::Priced.can_become(Step::Charged),
            "no skipping the reservation"
        );
        assert!(!Step::Failed.can_become(Step::Priced));
    }

    #[test]
    fn totals_are_checked() {
        let eur = Currency::parse("EUR").unwrap();
        let item = |q, p| OrderItem {
            product_id: "p".into(),
            sku: "S".into(),
            name: "n".into(),
            quantity: q,
            unit_price: p,
        };
        assert_eq!(
            items_total(eur, &[item(2, 1050), item(1, 1)])
                .unwrap()
                .minor(),
            2101
        );
        assert!(items_total(eur, &[item(999, i64::MAX / 2)]).is_err());
    }
}
