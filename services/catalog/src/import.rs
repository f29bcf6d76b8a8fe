//! Loading a catalog data file (`emporium import catalog FILE`).
//!
//! The file is JSON: `{"categories": [...], "products": [...]}` (see
//! `data/catalog.json`). It is validated whole before anything is written,
//! then applied in one transaction that upserts categories by slug and
//! products by SKU, so running the same import twice changes nothing and an
//! invalid file changes nothing either.

use std::collections::HashSet;

use serde::Deserialize;

use crate::domain::{
    Category, CategoryName, CategorySlug, Currency, Description, ImagePath, Invalid, Money,
    NewProduct, ProductName, Sku,
};

/// Largest file accepted.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    categories: Vec<CategoryEntry>,
    products: Vec<ProductEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryEntry {
    slug: String,
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    sku: String,
    name: String,
    #[serde(default)]
    description: String,
    price: PriceEntry,
    categories: Vec<String>,
    image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    minor: i64,
    currency: String,
}

/// A validated catalog file, ready for [`crate::store::Store::import`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogData {
    pub categories: Vec<Category>,
    pub products: Vec<NewProduct>,
}

/// Parses and validates a catalog file. Errors name the entry and field,
/// e.g. `products[3].sku: …`.
pub fn parse(text: &str) -> Result<CatalogData, Invalid> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Invalid::new(
            "file",
            format!("is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let file: CatalogFile =
        serde_json::from_str(text).map_err(|e| Invalid::new("file", e.to_string()))?;
    let mut slugs = HashSet::new();
    let categories = file
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("categories[{i}]");
            let category = Category {
                slug: CategorySlug::parse(&c.slug).map_err(|e| e.within(&at))?,
                name: CategoryName::parse(&c.name).map_err(|e| e.within(&at))?,
                description: Description::parse(&c.description).map_err(|e| e.within(&at))?,
            };
            if !slugs.insert(category.slug.clone()) {
                return Err(Invalid::new(
                    format!("{at}.slug"),
                    format!("`{}` appears twice", category.slug),
                ));
            }
            Ok(category)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut skus = HashSet::new();
    let products = file
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = format!("products[{i}]");
            let currency =
                Currency::parse(&p.price.currency).map_err(|e| Invalid::from(e).within(&at))?;
            let product = NewProduct {
                sku: Sku::parse(&p.sku).map_err(|e| e.within(&at))?,
                name: ProductName::parse(&p.name).map_err(|e| e.within(&at))?,
                description: Description::parse(&p.description).map_err(|e| e.within(&at))?,
                price: Money::new(p.price.minor, currency).map_err(|e| e.within(&at))?,
                categories: crate::domain::categories("categories", &p.categories)
                    .map_err(|e| e.within(&at))?,
                image: ImagePath::parse(&p.image).map_err(|e| e.within(&at))?,
            };
            if !skus.insert(product.sku.clone()) {
                return Err(Invalid::new(
                    format!("{at}.sku"),
                    format!("`{}` appears twice", product.sku),
                ));
            }
            Ok(product)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CatalogData {
        categories,
        products,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../data/catalog.json");

    #[test]
    fn the_shipped_seed_catalog_is_valid_and_realistic() {
        let data = parse(SEED).unwrap();
        assert!(
            data.products.len() >= 20,
            "{} products",
            data.products.len()
        );
        assert!(data.categories.len() >= 4);
        for c in &data.categories {
            let n = data
                .products
                .iter()
                .filter(|p| p.categories.contains(&c.slug))
                .count();
            assert!(n >= 2, "category {} has {n} products", c.slug);
        }
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let text = r#"{"categories":[{"slug":"a-b","name":"AB"}],
            "products":[{"sku":"OK-1","name":"n","price":{"minor":1,"currency":"USD"},"categories":["a-b"],"image":"/x.jpg"},
                        {"sku":"bad sku","name":"n","price":{"minor":1,"currency":"USD"},"categories":["a-b"],"image":"/x.jpg"}]}"#;
        let err = parse(text).unwrap_err();
        assert_eq!(err.field, "products[1].sku");
    }

    #[test]
    fn duplicates_and_unknown_fields_are_rejected() {
        let dup = r#"{"products":[
            {"sku":"AAA","name":"n","price":{"minor":1,"currency":"USD"},"categories":["x1"],"image":"/x.jpg"},
            {"sku":"AAA","name":"m","price":{"minor":1,"currency":"USD"},"categories":["x1"],"image":"/y.jpg"}]}"#;
        assert_eq!(parse(dup).unwrap_err().field, "products[1].sku");
        let unknown = r#"{"products":[], "extra": 1}"#;
        assert!(parse(unknown).unwrap_err().reason.contains("unknown field"));
        assert_eq!(parse("not json").unwrap_err().field, "file");
    }
}
