//! Value types of the cart. Each has one constructor that checks its rule.

use std::fmt;

use super::Invalid;

/// Whose cart: the caller's user id as the gateway forwarded it (1 to 64 of
/// `A-Z`, `a-z`, `0-9`, `-`; checked again here because it becomes a key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new("user_id", "is not a user id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A catalog product id: a UUID in its canonical lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProductId(uuid::Uuid);

impl ProductId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let parsed = (value.len() == 36)
            .then(|| uuid::Uuid::try_parse(value).ok())
            .flatten();
        match parsed {
            Some(id) if id.hyphenated().to_string() == value => Ok(Self(id)),
            _ => Err(Invalid::new(
                "product_id",
                format!(
                    "`{}` is not a product id (a lowercase UUID)",
                    value.escape_debug()
                ),
            )),
        }
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Units of one product in a cart: 1 to 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 99;

    pub fn new(value: u32) -> Result<Self, Invalid> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Invalid::new(
                "quantity",
                format!("must be 1 to {} (got {value})", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A product's display name as the catalog gave it: 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let len = value.chars().count();
        if (1..=200).contains(&len) && !value.chars().any(char::is_control) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "name",
                "must be 1 to 200 characters without control characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency;

/// A unit price: non-negative integer minor units and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Largest price accepted (the catalog's limit).
    pub const MAX_MINOR: i64 = 1_000_000_000_000;

    pub fn new(minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if (0..=Self::MAX_MINOR).contains(&minor) {
            Ok(Self { minor, currency })
        } else {
            Err(Invalid::new(
                "price",
                format!("must be between 0 and {} minor units", Self::MAX_MINOR),
            ))
        }
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn product_ids_are_canonical_uuids() {
        assert!(ProductId::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").is_ok());
        for bad in [
            "",
            "42",
            "0192F0C4-6A3B-7C3D-8E4F-0123456789AB",
            "0192f0c46a3b7c3d8e4f0123456789ab",
        ] {
            assert!(ProductId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_owners_and_prices_are_bounded() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(99).is_ok());
        assert!(Quantity::new(100).is_err());
        assert!(Owner::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").is_ok());
        assert!(Owner::parse("").is_err());
        assert!(Owner::parse("a:b").is_err());
        assert!(Owner::parse(&"a".repeat(65)).is_err());
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::new(-1, usd).is_err());
        assert!(Currency::parse("usd").is_err());
        assert!(ProductName::parse("").is_err());
    }
}
