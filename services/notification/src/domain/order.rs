//! What the consumed events tell this service, as validated values: a
//! placed order (everything the confirmation e-mail shows), a shipment, and
//! the contact kept per order so the shipment e-mail knows where to go.

use super::values::{Email, OrderId, Text};
use super::{Currency, Invalid, Money};

/// Most lines an order may have.
pub const MAX_LINES: usize = 1000;
/// Longest product or person name.
pub const MAX_NAME_LEN: usize = 200;
/// Longest address line, city or SKU.
pub const MAX_LINE_LEN: usize = 200;
/// Longest postal code.
pub const MAX_POSTAL_CODE_LEN: usize = 32;
/// Longest user id, tracking id or carrier.
pub const MAX_ID_LEN: usize = 128;

/// One line of an order: what, how many, at which price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    name: Text,
    sku: Text,
    quantity: u32,
    unit_price: Money,
    total: Money,
}

impl Line {
    pub fn new(name: &str, sku: &str, quantity: u32, unit_price: Money) -> Result<Self, Invalid> {
        if quantity == 0 {
            return Err(Invalid::new("quantity", "must be at least 1"));
        }
        if unit_price.minor < 0 {
            return Err(Invalid::new("unit_price", "must not be negative"));
        }
        let total = unit_price
            .times(quantity)
            .ok_or_else(|| Invalid::new("quantity", "times unit_price overflows"))?;
        Ok(Self {
            name: Text::required("name", name, MAX_NAME_LEN)?,
            sku: Text::required("sku", sku, MAX_LINE_LEN)?,
            quantity,
            unit_price,
            total,
        })
    }

    pub fn name(&self) -> &Text {
        &self.name
    }

    pub fn sku(&self) -> &Text {
        &self.sku
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }

    pub fn unit_price(&self) -> Money {
        self.unit_price
    }

    /// quantity × unit price.
    pub fn total(&self) -> Money {
        self.total
    }
}

/// A postal address as the e-mail prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Text,
    pub line1: Text,
    /// Empty when there is no second line.
    pub line2: Text,
    pub city: Text,
    pub postal_code: Text,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Text,
}

impl Address {
    pub fn new(
        name: &str,
        line1: &str,
        line2: &str,
        city: &str,
        postal_code: &str,
        country_code: &str,
    ) -> Result<Self, Invalid> {
        let country_ok =
            country_code.len() == 2 && country_code.bytes().all(|b| b.is_ascii_uppercase());
        if !country_ok {
            return Err(Invalid::new(
                "country_code",
                "must be two uppercase letters (ISO 3166-1 alpha-2)",
            ));
        }
        Ok(Self {
            name: Text::required("name", name, MAX_NAME_LEN)?,
            line1: Text::required("line1", line1, MAX_LINE_LEN)?,
            line2: Text::optional("line2", line2, MAX_LINE_LEN)?,
            city: Text::required("city", city, MAX_LINE_LEN)?,
            postal_code: Text::required("postal_code", postal_code, MAX_POSTAL_CODE_LEN)?,
            country_code: Text::required("country_code", country_code, 2)?,
        })
    }
}

/// The three amounts of an order, all in the order's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub items: Money,
    pub shipping: Money,
    pub total: Money,
}

/// A placed order: what the confirmation e-mail lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_id: OrderId,
    pub user_id: Text,
    pub lines: Vec<Line>,
    pub totals: Totals,
    pub address: Address,
}

impl PlacedOrder {
    /// Checks that there is at least one line, that every amount is in the
    /// same currency and none is negative. The totals are shown as the
    /// event states them (checkout computed them); they are not recomputed.
    pub fn new(
        order_id: OrderId,
        user_id: &str,
        lines: Vec<Line>,
        totals: Totals,
        address: Address,
    ) -> Result<Self, Invalid> {
        if lines.is_empty() {
            return Err(Invalid::new("items", "an order has at least one line"));
        }
        if lines.len() > MAX_LINES {
            return Err(Invalid::new(
                "items",
                format!("at most {MAX_LINES} lines are allowed"),
            ));
        }
        let currency = totals.total.currency;
        let amounts = [
            ("items_total", totals.items),
            ("shipping_cost", totals.shipping),
            ("total", totals.total),
        ];
        for (field, amount) in amounts {
            if amount.currency != currency {
                return Err(Invalid::new(field, "is in another currency than total"));
            }
            if amount.minor < 0 {
                return Err(Invalid::new(field, "must not be negative"));
            }
        }
        if let Some(i) = lines.iter().position(|l| l.unit_price.currency != currency) {
            return Err(Invalid::new(
                format!("items[{i}].unit_price"),
                "is in another currency than total",
            ));
        }
        Ok(Self {
            order_id,
            user_id: Text::required("user_id", user_id, MAX_ID_LEN)?,
            lines,
            totals,
            address,
        })
    }

    pub fn currency(&self) -> Currency {
        self.totals.total.currency
    }
}

/// A shipment created for an order: what the shipment e-mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub order_id: OrderId,
    pub tracking_id: Text,
    pub carrier: Option<Text>,
}

impl Shipped {
    pub fn new(
        order_id: OrderId,
        tracking_id: &str,
        carrier: Option<&str>,
    ) -> Result<Self, Invalid> {
        let carrier = match carrier.map(|c| Text::optional("carrier", c, MAX_ID_LEN)) {
            None => None,
            Some(Ok(c)) if c.is_empty() => None,
            Some(c) => Some(c?),
        };
        Ok(Self {
            order_id,
            tracking_id: Text::required("tracking_id", tracking_id, MAX_ID_LEN)?,
            carrier,
        })
    }
}

/// Whom to write to about an order, remembered from its `order.placed.v1`
/// for the e-mails that follow (events after it carry no address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderContact {
    pub order_id: OrderId,
    pub user_id: Text,
    /// `None` when the order came without a usable address: its e-mails
    /// are skipped.
    pub email: Option<Email>,
    /// The recipient name from the shipping address.
    pub name: Text,
}

impl OrderContact {
    /// The contact of a placed order.
    pub fn of(order: &PlacedOrder, email: Option<Email>) -> Self {
        Self {
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            email,
            name: order.address.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap())
    }

    fn address() -> Address {
        Address::new("Ada", "1 Main St", "", "Springfield", "12345", "DE").unwrap()
    }

    fn totals(items: i64, shipping: i64) -> Totals {
        Totals {
            items: eur(items),
            shipping: eur(shipping),
            total: eur(items + shipping),
        }
    }

    #[test]
    fn lines_know_their_total_and_refuse_nonsense() {
        let line = Line::new("Lamp", "LAMP-001", 3, eur(1999)).unwrap();
        assert_eq!(line.total(), eur(5997));
        assert_eq!(
            Line::new("Lamp", "L", 0, eur(1)).unwrap_err().field,
            "quantity"
        );
        assert_eq!(
            Line::new("Lamp", "L", 1, eur(-1)).unwrap_err().field,
            "unit_price"
        );
        assert!(Line::new("Lamp", "L", u32::MAX, eur(i64::MAX / 2)).is_err());
        assert_eq!(Line::new(" ", "L", 1, eur(1)).unwrap_err().field, "name");
    }

    #[test]
    fn orders_need_lines_and_one_currency() {
        let id = OrderId::parse("o-1").unwrap();
        let line = Line::new("Lamp", "LAMP-001", 1, eur(1000)).unwrap();
        assert!(PlacedOrder::new(id.clone(), "u", vec![], totals(0, 0), address()).is_err());
        let ok = PlacedOrder::new(
            id.clone(),
            "u",
            vec![line.clone()],
            totals(1000, 500),
            address(),
        )
        .unwrap();
        assert_eq!(ok.currency().as_str(), "EUR");
        let mut mixed = totals(1000, 500);
        mixed.shipping = Money::new(500, Currency::parse("USD").unwrap());
        let err =
            PlacedOrder::new(id.clone(), "u", vec![line.clone()], mixed, address()).unwrap_err();
        assert_eq!(err.field, "shipping_cost");
        let yen_line = Line::new(
            "Tea",
            "TEA",
            1,
            Money::new(5, Currency::parse("JPY").unwrap()),
        )
        .unwrap();
        let err = PlacedOrder::new(id, "u", vec![line, yen_line], totals(1000, 0), address())
            .unwrap_err();
        assert_eq!(err.field, "items[1].unit_price");
    }

    #[test]
    fn addresses_need_a_country_code() {
        assert!(Address::new("Ada", "1 Main St", "", "X", "1", "de").is_err());
        assert!(Address::new("Ada", "1 Main St", "", "X", "1", "DEU").is_err());
        assert!(Address::new("Ada", "", "", "X", "1", "DE").is_err());
    }

    #[test]
    fn an_empty_carrier_is_no_carrier() {
        let id = OrderId::parse("o-1").unwrap();
        assert_eq!(
            Shipped::new(id.clone(), "EMP1", Some("")).unwrap().carrier,
            None
        );
        assert_eq!(
            Shipped::new(id.clone(), "EMP1", Some("DHL"))
                .unwrap()
                .carrier
                .unwrap()
                .as_str(),
            "DHL"
        );
        assert!(Shipped::new(id, " ", None).is_err());
    }
}
