//! The catalog's types and rules: no I/O, no transport types.
//!
//! Every value is built by one fallible constructor, so past the edge a
//! `Sku` is always a valid SKU and a `PageSize` always within bounds.

mod page;
mod values;

pub use page::{
    Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageSize, ProductQuery, SearchText,
};
pub use values::{
    CategoryName, CategorySlug, Currency, Description, ImagePath, Money, ProductId, ProductName,
    Sku,
};

use time::OffsetDateTime;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// Most categories a product may be in.
pub const MAX_CATEGORIES_PER_PRODUCT: usize = 5;

/// A product as the catalog sells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    /// Sorted, without duplicates, at least one.
    pub categories: Vec<CategorySlug>,
    pub image: ImagePath,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What it takes to create a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    pub categories: Vec<CategorySlug>,
    pub image: ImagePath,
}

/// A partial update: `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Money>,
    pub categories: Option<Vec<CategorySlug>>,
    pub image: Option<ImagePath>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Validates a product's category list: 1 to 5 slugs, returned sorted and
/// without duplicates.
pub fn categories(
    field: &str,
    slugs: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<Vec<CategorySlug>, Invalid> {
    let mut parsed = slugs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            CategorySlug::parse(s.as_ref()).map_err(|e| e.within(format!("{field}[{i}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    if parsed.is_empty() {
        return Err(Invalid::new(field, "at least one category is required"));
    }
    if parsed.len() > MAX_CATEGORIES_PER_PRODUCT {
        return Err(Invalid::new(
            field,
            format!("at most {MAX_CATEGORIES_PER_PRODUCT} categories"),
        ));
    }
    Ok(parsed)
}

/// A category of products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub slug: CategorySlug,
    pub name: CategoryName,
    pub description: Description,
}

/// A category with the number of products in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySummary {
    pub category: Category,
    pub product_count: u32,
}

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
