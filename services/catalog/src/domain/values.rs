//! Value types of the catalog. Each has one constructor that checks its rule.

use std::fmt;

use super::Invalid;

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(
    /// A product's stock-keeping unit: `A-Z`, `0-9` and `-`, 3 to 32 characters.
    Sku
);
string_value!(
    /// A product's display name: 1 to 120 characters, trimmed.
    ProductName
);
string_value!(
    /// Free text of up to 2000 characters (may be empty).
    Description
);
string_value!(
    /// A category's URL-safe key: lowercase letter, then `a-z`, `0-9`, `-`; 2 to 40 characters.
    CategorySlug
);
string_value!(
    /// A category's display name: 1 to 60 characters.
    CategoryName
);
string_value!(
    /// Where a product's image is served: an absolute path (`/static/…`) or an
    /// `https://` URL, without whitespace, up to 300 characters.
    ImagePath
);

fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let value = value.trim();
    let len = value.chars().count();
    if len < min || len > max {
        let rule = if min == 0 {
            format!("at most {max} characters")
        } else {
            format!("{min} to {max} characters")
        };
        return Err(Invalid::new(field, format!("must be {rule} (got {len})")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

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
                "must be 3 to 32 of A-Z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }
}

impl ProductName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text("name", value, 1, 120).map(Self)
    }
}

impl Description {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text("description", value, 0, 2000).map(Self)
    }
}

impl CategorySlug {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (2..=40).contains(&value.len())
            && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "category",
                format!(
                    "`{}` is not a category slug (a-z, 0-9, '-'; 2 to 40 characters)",
                    value.escape_debug()
                ),
            ))
        }
    }
}

impl CategoryName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        text("name", value, 1, 60).map(Self)
    }
}

impl ImagePath {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (2..=300).contains(&value.len())
            && (value.starts_with('/') || value.starts_with("https://"))
            && !value.starts_with("//")
            && value.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "image",
                "must be an absolute path or an https:// URL of up to 300 characters, without spaces",
            ))
        }
    }
}

/// A product id: a UUID (version 7, so ids sort by creation time), written in
/// its canonical lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProductId(uuid::Uuid);

impl ProductId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let parsed = (value.len() == 36)
            .then(|| uuid::Uuid::try_parse(value).ok())
            .flatten();
        match parsed {
            Some(id) if id.hyphenated().to_string() == value => Ok(Self(id)),
            _ => Err(Invalid::new(
                "id",
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

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency;

/// A price: non-negative integer minor units (cents) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Largest price accepted: 10 billion major units.
    pub const MAX_MINOR: i64 = 1_000_000_000_000;

    pub fn new(minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if !(0..=Self::MAX_MINOR).contains(&minor) {
            return Err(Invalid::new(
                "price",
                format!("must be between 0 and {} minor units", Self::MAX_MINOR),
            ));
        }
        Ok(Self { minor, currency })
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
    use super::*;

    #[test]
    fn skus() {
        assert!(Sku::parse("KIT-0001").is_ok());
        for bad in ["", "ab", "kit-0001", "-AB", "A B C", &"A".repeat(33)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Mug ").unwrap().as_str(), "Mug");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"x".repeat(121)).is_err());
        assert!(ProductName::parse("bell\u{7}").is_err());
        assert!(Description::parse("").is_ok());
    }

    #[test]
    fn product_ids_are_canonical_uuids() {
        let id = ProductId::generate();
        assert_eq!(ProductId::parse(&id.to_string()).unwrap(), id);
        for bad in [
            "",
            "42",
            "not-a-uuid",
            "0192F0C4-6A3B-7C3D-8E4F-0123456789AB",
            "{0192f0c4-6a3b-7c3d-8e4f-0123456789ab}",
        ] {
            assert!(ProductId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_currencies_money_and_images() {
        assert!(CategorySlug::parse("home-office").is_ok());
        assert!(CategorySlug::parse("Home").is_err());
        assert!(CategorySlug::parse("1abc").is_err());
        assert!(Currency::parse("EUR").is_ok());
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
        let usd = Currency::parse("USD").unwrap();
        assert!(Money::new(-1, usd).is_err());
        assert!(Money::new(Money::MAX_MINOR + 1, usd).is_err());
        assert_eq!(Money::new(1299, usd).unwrap().minor(), 1299);
        assert!(ImagePath::parse("/static/img/a.jpg").is_ok());
        assert!(ImagePath::parse("https://cdn.example/a.jpg").is_ok());
        assert!(ImagePath::parse("//evil.example/a.jpg").is_err());
        assert!(ImagePath::parse("javascript:alert(1)").is_err());
        assert!(ImagePath::parse("/a b.jpg").is_err());
    }

    #[test]
    fn category_lists_are_sorted_deduplicated_and_bounded() {
        let got =
            super::super::categories("categories", ["outdoor", "kitchen", "outdoor"]).unwrap();
        assert_eq!(
            got.iter().map(CategorySlug::as_str).collect::<Vec<_>>(),
            ["kitchen", "outdoor"]
        );
        assert!(super::super::categories("categories", Vec::<String>::new()).is_err());
        let err = super::super::categories("categories", ["ok", "BAD"]).unwrap_err();
        assert_eq!(err.field, "categories[1].category");
        assert!(super::super::categories("c", ["aa", "bb", "cc", "dd", "ee", "ff"]).is_err());
    }
}
