//! Value types of the inventory. Each has one constructor that checks its rule.

use std::collections::BTreeSet;
use std::fmt;

use super::Invalid;

/// A stock-keeping unit: `A-Z`, `0-9` and `-`, 3 to 32 characters, starting
/// with a letter or digit (the catalog's rule, so every product SKU fits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (3..=32).contains(&value.len())
            && value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "sku",
                format!(
                    "`{}` is not a SKU (3 to 32 of A-Z, 0-9 and '-', starting with a letter or digit)",
                    value.escape_debug()
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The order a reservation belongs to: 1 to 64 printable ASCII characters
/// without spaces (checkout uses UUIDs; other callers may use their own ids).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderId(String);

impl OrderId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("order_id", "is required"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Invalid::new(
                "order_id",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "order_id",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Units of one SKU in one reservation: 1 to 999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 999;

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

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Units on sale of one SKU, as an administrator or an import sets them:
/// 0 to one billion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Available(i64);

impl Available {
    pub const MAX: i64 = 1_000_000_000;

    pub fn new(value: i64) -> Result<Self, Invalid> {
        if (0..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Invalid::new(
                "available",
                format!("must be 0 to {} (got {value})", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One line of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub sku: Sku,
    pub quantity: Quantity,
}

/// Most lines one reservation may have.
pub const MAX_ITEMS: usize = 100;

/// The lines of a reservation: 1 to [`MAX_ITEMS`] distinct SKUs, kept in SKU
/// order. That order is also the order the store locks stock rows in, so two
/// reservations touching the same SKUs cannot deadlock each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Items(Vec<Item>);

impl Items {
    /// Validates `(sku, quantity)` pairs; errors name the entry (`items[2].sku`).
    pub fn new<S: AsRef<str>>(
        entries: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Self, Invalid> {
        let mut items = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, (sku, quantity)) in entries.into_iter().enumerate() {
            if i >= MAX_ITEMS {
                return Err(Invalid::new(
                    "items",
                    format!("at most {MAX_ITEMS} items per reservation"),
                ));
            }
            let at = format!("items[{i}]");
            let sku = Sku::parse(sku.as_ref()).map_err(|e| e.within(&at))?;
            let quantity = Quantity::new(quantity).map_err(|e| e.within(&at))?;
            if !seen.insert(sku.clone()) {
                return Err(Invalid::new(
                    format!("{at}.sku"),
                    format!("{sku} appears more than once"),
                ));
            }
            items.push(Item { sku, quantity });
        }
        if items.is_empty() {
            return Err(Invalid::new("items", "at least one item is required"));
        }
        items.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(Self(items))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Item> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = &'a Item;
    type IntoIter = std::slice::Iter<'a, Item>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// How much of a SKU there is. A SKU the inventory has never heard of has
/// 0 available and 0 reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub sku: Sku,
    /// Units that can still be reserved.
    pub available: i64,
    /// Units held by reservations not yet confirmed, released or expired.
    pub reserved: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn skus_follow_the_catalog_rule() {
        assert!(Sku::parse("KIT-0001").is_ok());
        for bad in ["", "ab", "kit-0001", "-AB", "A B C", &"A".repeat(33)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_ids_are_bounded_printable_text() {
        assert!(OrderId::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").is_ok());
        assert!(OrderId::parse(&"x".repeat(64)).is_ok());
        for bad in ["", "has space", "tab\t", &"x".repeat(65), "ünï"] {
            assert!(OrderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_and_available_units_are_bounded() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(999).is_ok());
        assert!(Quantity::new(1000).is_err());
        assert!(Available::new(-1).is_err());
        assert!(Available::new(0).is_ok());
        assert!(Available::new(Available::MAX + 1).is_err());
    }

    #[test]
    fn items_are_sorted_distinct_and_bounded() {
        let items = Items::new([("KIT-0002", 1), ("APP-0001", 2)]).unwrap();
        let skus: Vec<_> = items.iter().map(|i| i.sku.as_str()).collect();
        assert_eq!(skus, ["APP-0001", "KIT-0002"]);
        assert!(Items::new(Vec::<(&str, u32)>::new()).is_err());
        let dup = Items::new([("KIT-0001", 1), ("KIT-0001", 2)]).unwrap_err();
        assert_eq!(dup.field, "items[1].sku");
        let bad = Items::new([("KIT-0001", 1), ("KIT-0002", 0)]).unwrap_err();
        assert_eq!(bad.field, "items[1].quantity");
        let many: Vec<(String, u32)> = (0..=MAX_ITEMS)
            .map(|i| (format!("SKU-{i:04}"), 1))
            .collect();
        assert!(Items::new(many.iter().map(|(s, q)| (s.as_str(), *q))).is_err());
        let max: Vec<(String, u32)> = (0..MAX_ITEMS).map(|i| (format!("SKU-{i:04}"), 1)).collect();
        assert_eq!(
            Items::new(max.iter().map(|(s, q)| (s.as_str(), *q)))
                .unwrap()
                .len(),
            MAX_ITEMS
        );
    }
}
