//! Value types of checkout, each built by one fallible constructor.

use std::fmt;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// An order id: UUIDv7 (time-ordered), canonical lowercase text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(uuid::Uuid);

impl OrderId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        match uuid::Uuid::try_parse(value) {
            Ok(id) if value.len() == 36 && id.hyphenated().to_string() == value => Ok(Self(id)),
            _ => Err(Invalid::new(
                "id",
                format!("`{}` is not an order id", value.escape_debug()),
            )),
        }
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// The client's key for one logical checkout: 1 to 100 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if (1..=100).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "idempotency_key",
                "must be 1 to 100 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency;

/// Non-negative minor units of a currency; arithmetic is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if minor < 0 {
            return Err(Invalid::new("amount", "must not be negative"));
        }
        Ok(Self { minor, currency })
    }

    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn plus(self, other: Money) -> Result<Money, Invalid> {
        if self.currency != other.currency {
            return Err(Invalid::new(
                "amount",
                format!("cannot add {} to {}", other.currency, self.currency),
            ));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| Invalid::new("amount", "total is too large"))?;
        Ok(Self {
            minor,
            currency: self.currency,
        })
    }

    pub fn times(self, quantity: u32) -> Result<Money, Invalid> {
        let minor = self
            .minor
            .checked_mul(i64::from(quantity))
            .ok_or_else(|| Invalid::new("amount", "total is too large"))?;
        Ok(Self {
            minor,
            currency: self.currency,
        })
    }
}

fn bounded(field: &str, value: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max || value.chars().any(char::is_control) {
        let rule = if min == 0 {
            format!("at most {max} characters")
        } else {
            format!("{min} to {max} characters")
        };
        return Err(Invalid::new(
            field,
            format!("must be {rule}, without control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Where to ship.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
}

impl Address {
    pub fn parse(
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
                "shipping_address.country_code",
                "must be two uppercase letters (ISO 3166-1)",
            ));
        }
        Ok(Self {
            name: bounded("shipping_address.name", name, 1, 100)?,
            line1: bounded("shipping_address.line1", line1, 1, 200)?,
            line2: bounded("shipping_address.line2", line2, 0, 200)?,
            city: bounded("shipping_address.city", city, 1, 100)?,
            postal_code: bounded("shipping_address.postal_code", postal_code, 1, 20)?,
            country_code: country_code.to_owned(),
        })
    }
}

/// A card as typed. Checked for shape here so a typo fails before any stock
/// is reserved; the processor does the real checks. Never stored or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last4 = self
            .number
            .get(self.number.len().saturating_sub(4)..)
            .unwrap_or("");
        write!(f, "Card(…{last4})")
    }
}

impl Card {
    pub fn parse(number: &str, exp_month: u32, exp_year: u32, cvc: &str) -> Result<Self, Invalid> {
        let digits: String = number.chars().filter(|c| *c != ' ').collect();
        if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new("card.number", "must be 12 to 19 digits"));
        }
        if !(1..=12).contains(&exp_month) {
            return Err(Invalid::new("card.exp_month", "must be 1 to 12"));
        }
        if !(2000..=2200).contains(&exp_year) {
            return Err(Invalid::new("card.exp_year", "must be a four-digit year"));
        }
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new("card.cvc", "must be 3 or 4 digits"));
        }
        Ok(Self {
            number: digits,
            exp_month,
            exp_year,
            cvc: cvc.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_checked() {
        let eur = Currency::parse("EUR").unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::new(-1, eur).is_err());
        assert!(
            Money::new(1, eur)
                .unwrap()
                .plus(Money::new(1, usd).unwrap())
                .is_err()
        );
        assert!(
            Money::new(i64::MAX, eur)
                .unwrap()
                .plus(Money::new(1, eur).unwrap())
                .is_err()
        );
        assert_eq!(Money::new(250, eur).unwrap().times(3).unwrap().minor(), 750);
    }

    #[test]
    fn cards_and_addresses_are_shaped_before_use() {
        assert!(Card::parse("4242 4242 4242 4242", 12, 2030, "123").is_ok());
        assert!(Card::parse("4242-4242", 12, 2030, "123").is_err());
        assert!(Card::parse("4242424242424242", 13, 2030, "123").is_err());
        assert!(Card::parse("4242424242424242", 12, 2030, "12a").is_err());
        let card = Card::parse("4242424242424242", 12, 2030, "123").unwrap();
        assert_eq!(format!("{card:?}"), "Card(…4242)");
        assert!(Address::parse("Ada", "1 Main St", "", "Berlin", "10115", "DE").is_ok());
        assert!(Address::parse("Ada", "1 Main St", "", "Berlin", "10115", "de").is_err());
        assert!(Address::parse("", "1 Main St", "", "Berlin", "10115", "DE").is_err());
    }

    #[test]
    fn keys_and_ids() {
        assert!(IdempotencyKey::parse("order-2026-11-25-1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(101)).is_err());
        let id = OrderId::generate();
        assert_eq!(OrderId::parse(&id.to_string()).unwrap(), id);
        assert!(OrderId::parse("nope").is_err());
    }
}
