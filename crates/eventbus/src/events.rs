//! The event catalogue: every event type Emporium publishes, as a constant
//! and a typed payload. `docs/events.md` documents the same list with
//! producers and consumers; a new event type is added in both places.
//!
//! Types are versioned (`….v1`): a payload change that an existing consumer
//! could misread gets a new type (`….v2`) published next to the old one
//! until every consumer has moved. Adding an optional field is not such a
//! change (consumers ignore unknown fields).
//!
//! Amounts are integer minor units of the order's `currency` (ISO 4217),
//! as everywhere in Emporium.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `order.placed.v1`: an order was paid for and placed.
pub const ORDER_PLACED_V1: &str = "order.placed.v1";
/// `order.cancelled.v1`: a placed order was cancelled.
pub const ORDER_CANCELLED_V1: &str = "order.cancelled.v1";
/// `shipment.created.v1`: a shipment was created for an order.
pub const SHIPMENT_CREATED_V1: &str = "shipment.created.v1";
/// `stock.low.v1`: a SKU's available stock fell to or below its threshold.
pub const STOCK_LOW_V1: &str = "stock.low.v1";

/// Every event type above.
pub const ALL: &[&str] = &[
    ORDER_PLACED_V1,
    ORDER_CANCELLED_V1,
    SHIPMENT_CREATED_V1,
    STOCK_LOW_V1,
];

/// The CloudEvents `source` of each producer.
pub mod sources {
    pub const CHECKOUT: &str = "/emporium/checkout";
    pub const SHIPPING: &str = "/emporium/shipping";
    pub const INVENTORY: &str = "/emporium/inventory";
}

/// A typed event payload.
pub trait Event: Serialize + DeserializeOwned {
    /// The event type, one of the constants of this module.
    const TYPE: &'static str;

    /// The envelope subject: the ordering key of this event.
    fn subject(&self) -> String;
}

/// One line of a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub sku: String,
    /// The product name when the order was placed.
    pub name: String,
    pub quantity: u32,
    /// Minor units of the order's currency.
    pub unit_price: i64,
}

/// Where an order ships to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    /// Empty when there is no second line.
    #[serde(default)]
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
}

/// Payload of `order.placed.v1`; subject: the order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlacedV1 {
    pub order_id: String,
    pub user_id: String,
    /// Where the confirmation goes; absent when checkout does not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    pub items: Vec<OrderLine>,
    pub items_total: i64,
    pub shipping_cost: i64,
    pub total: i64,
    pub shipping_address: ShippingAddress,
    /// The payment service's charge.
    pub charge_id: String,
}

impl Event for OrderPlacedV1 {
    const TYPE: &'static str = ORDER_PLACED_V1;
    fn subject(&self) -> String {
        self.order_id.clone()
    }
}

/// Payload of `order.cancelled.v1`; subject: the order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelledV1 {
    pub order_id: String,
    pub user_id: String,
    /// A sentence for people (support, the customer's e-mail).
    pub reason: String,
}

impl Event for OrderCancelledV1 {
    const TYPE: &'static str = ORDER_CANCELLED_V1;
    fn subject(&self) -> String {
        self.order_id.clone()
    }
}

/// Payload of `shipment.created.v1`; subject: the order id, so that an
/// order's events stay in order relative to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCreatedV1 {
    pub shipment_id: String,
    pub order_id: String,
    pub user_id: String,
    pub tracking_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

impl Event for ShipmentCreatedV1 {
    const TYPE: &'static str = SHIPMENT_CREATED_V1;
    fn subject(&self) -> String {
        self.order_id.clone()
    }
}

/// Payload of `stock.low.v1`; subject: the SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLowV1 {
    pub sku: String,
    /// Units that can still be reserved.
    pub available: i64,
    /// The level at or below which stock counts as low.
    pub threshold: i64,
}

impl Event for StockLowV1 {
    const TYPE: &'static str = STOCK_LOW_V1;
    fn subject(&self) -> String {
        self.sku.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::envelope::{Envelope, EventType};

    fn placed() -> OrderPlacedV1 {
        OrderPlacedV1 {
            order_id: "0193a000-0000-7000-8000-000000000001".into(),
            user_id: "user-1".into(),
            email: Some("ada@example.com".into()),
            currency: "EUR".into(),
            items: vec![OrderLine {
                product_id: "p-1".into(),
                sku: "LAMP-001".into(),
                name: "Lamp".into(),
                quantity: 2,
                unit_price: 1999,
            }],
            items_total: 3998,
            shipping_cost: 500,
            total: 4498,
            shipping_address: ShippingAddress {
                name: "Ada".into(),
                line1: "1 Main St".into(),
                line2: String::new(),
                city: "Springfield".into(),
                postal_code: "12345".into(),
                country_code: "DE".into(),
            },
            charge_id: "ch_1".into(),
        }
    }

    #[test]
    fn every_catalogued_type_is_a_valid_event_type() {
        for ty in ALL {
            assert!(EventType::parse(ty).is_ok(), "{ty}");
        }
    }

    #[test]
    fn typed_payloads_round_trip_through_an_envelope() {
        let event = placed();
        let envelope = Envelope::for_event(sources::CHECKOUT, &event).unwrap();
        assert_eq!(envelope.event_type().as_str(), ORDER_PLACED_V1);
        assert_eq!(envelope.subject(), event.order_id);
        let back = Envelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(back.decode::<OrderPlacedV1>().unwrap(), event);
        assert!(back.decode::<StockLowV1>().is_err());
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let shipped: ShipmentCreatedV1 = serde_json::from_value(serde_json::json!({
            "shipment_id": "s-1", "order_id": "o-1", "user_id": "u-1", "tracking_id": "t-1"
        }))
        .unwrap();
        assert_eq!(shipped.carrier, None);
        assert_eq!(shipped.subject(), "o-1");
        let stock = StockLowV1 {
            sku: "LAMP-001".into(),
            available: 2,
            threshold: 5,
        };
        assert_eq!(stock.subject(), "LAMP-001");
    }
}
