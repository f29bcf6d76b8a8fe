//! Listing and searching: page sizes, cursors and queries.
//!
//! Lists are ordered by product id, which is time-ordered (UUIDv7), and paged
//! by keyset: a cursor holds the last id of a page and the next page starts
//! after it. Unlike offsets, this neither skips nor repeats products when
//! others are added or removed between pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{CategorySlug, Invalid, Product, ProductId};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

/// How many products a page holds: 1 to [`MAX_PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// `0` asks for the default size; above the maximum is an error, so a
    /// caller never silently gets fewer products than it asked for.
    pub fn new(requested: u32) -> Result<Self, Invalid> {
        match requested {
            0 => Ok(Self(DEFAULT_PAGE_SIZE)),
            n if n <= MAX_PAGE_SIZE => Ok(Self(n)),
            n => Err(Invalid::new(
                "page_size",
                format!("{n} is above the maximum of {MAX_PAGE_SIZE}"),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where the next page starts. Opaque to callers: `p1.<base64url(id)>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after: ProductId,
}

const CURSOR_VERSION: &str = "p1.";

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{CURSOR_VERSION}{}",
            URL_SAFE_NO_PAD.encode(self.after.to_string())
        )
    }

    pub fn decode(token: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("page_token", "is not a cursor returned by this API");
        let payload = token.strip_prefix(CURSOR_VERSION).ok_or_else(invalid)?;
        if payload.len() > 64 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let after = ProductId::parse(text).map_err(|_| invalid())?;
        Ok(Self { after })
    }
}

/// Text to search for: 1 to 200 characters, matched case-insensitively as a
/// substring of name, description or SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim();
        let len = value.chars().count();
        if !(1..=200).contains(&len) {
            return Err(Invalid::new(
                "query",
                format!("must be 1 to 200 characters (got {len})"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A `LIKE` pattern (escape character `\`) for the lowercased text.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductQuery {
    pub category: Option<CategorySlug>,
    pub text: Option<SearchText>,
    pub after: Option<Cursor>,
    pub size: PageSize,
}

/// One page of products, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub products: Vec<Product>,
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(PageSize::new(0).unwrap().get(), DEFAULT_PAGE_SIZE);
        assert_eq!(PageSize::new(100).unwrap().get(), 100);
        assert!(PageSize::new(101).is_err());
        assert!(PageSize::new(10_000).is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            after: ProductId::generate(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "p1.",
            "p1.!!!",
            "p2.abc",
            "garbage",
            &format!("p1.{}", "A".repeat(100)),
            "p1.bm90LWEtdXVpZA",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(
            SearchText::parse(" Wool ").unwrap().like_pattern(),
            "%wool%"
        );
        assert_eq!(
            SearchText::parse("100%_a\\b").unwrap().like_pattern(),
            "%100\\%\\_a\\\\b%"
        );
        assert!(SearchText::parse("  ").is_err());
        assert!(SearchText::parse(&"x".repeat(201)).is_err());
    }
}
