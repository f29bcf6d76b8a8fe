//! The catalog's database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in [`sql`], written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees: every write is one transaction (a failed or cancelled request
//! leaves nothing half-written); reads see committed data only.

mod sql;

pub use emporium_storage::Backend;

use emporium_storage::{Db, dispatch};
use time::OffsetDateTime;

use crate::domain::{
    Category, CategoryName, CategorySlug, CategorySummary, Currency, Description, ImagePath,
    Invalid, Money, NewProduct, Page, Product, ProductId, ProductName, ProductPatch, ProductQuery,
    Sku,
};
use crate::error::CatalogError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the catalog database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub categories: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, CatalogError> {
        let db = Db::connect(url, max_connections, "emporium-catalog")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), CatalogError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        self.db.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    pub async fn list_products(&self, query: &ProductQuery) -> Result<Page, CatalogError> {
        let size = query.size.get();
        let mut products = dispatch!(self.db, sql::list_products(query))?;
        let next = if products.len() > size as usize {
            products.truncate(size as usize);
            products
                .last()
                .map(|p| crate::domain::Cursor { after: p.id })
        } else {
            None
        };
        Ok(Page { products, next })
    }

    pub async fn get_product(&self, id: ProductId) -> Result<Product, CatalogError> {
        dispatch!(self.db, sql::get_product(id))?.ok_or(CatalogError::ProductNotFound(id))
    }

    pub async fn list_categories(&self) -> Result<Vec<CategorySummary>, CatalogError> {
        dispatch!(self.db, sql::list_categories())
    }

    pub async fn count_products(&self) -> Result<u64, CatalogError> {
        dispatch!(self.db, sql::count_products())
    }

    pub async fn create_product(&self, new: &NewProduct) -> Result<Product, CatalogError> {
        dispatch!(self.db, sql::create_product(new))
    }

    pub async fn update_product(
        &self,
        id: ProductId,
        patch: &ProductPatch,
    ) -> Result<Product, CatalogError> {
        dispatch!(self.db, sql::update_product(id, patch))
    }

    pub async fn delete_product(&self, id: ProductId) -> Result<(), CatalogError> {
        dispatch!(self.db, sql::delete_product(id))
    }

    /// Upserts categories (by slug) and products (by SKU) in one transaction:
    /// either all of it lands or none. Products not named are left alone.
    pub async fn import(
        &self,
        categories: &[Category],
        products: &[NewProduct],
    ) -> Result<ImportReport, CatalogError> {
        dispatch!(self.db, sql::import(categories, products))
    }
}

/// A product row joined with one of its categories (or none).
#[derive(Debug, sqlx::FromRow)]
struct ProductRow {
    id: String,
    sku: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    image_path: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    category_slug: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct CategoryRow {
    slug: String,
    name: String,
    description: String,
    product_count: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Corrupt(format!("{what}: {e}"))
}

/// Folds rows ordered by product id into products with their categories.
fn fold_products(rows: Vec<ProductRow>) -> Result<Vec<Product>, CatalogError> {
    let mut products: Vec<Product> = Vec::new();
    for row in rows {
        let slug = row
            .category_slug
            .as_deref()
            .map(CategorySlug::parse)
            .transpose()
            .map_err(|e| corrupt(&row.id, e))?;
        match products.last_mut() {
            Some(last) if last.id.to_string() == row.id => last.categories.extend(slug),
            _ => {
                let id = row.id.clone();
                let currency = Currency::parse(&row.currency).map_err(|e| corrupt(&id, e))?;
                products.push(Product {
                    id: ProductId::parse(&row.id).map_err(|e| corrupt(&id, e))?,
                    sku: Sku::parse(&row.sku).map_err(|e| corrupt(&id, e))?,
                    name: ProductName::parse(&row.name).map_err(|e| corrupt(&id, e))?,
                    description: Description::parse(&row.description)
                        .map_err(|e| corrupt(&id, e))?,
                    price: Money::new(row.price_minor, currency).map_err(|e| corrupt(&id, e))?,
                    categories: slug.into_iter().collect(),
                    image: ImagePath::parse(&row.image_path).map_err(|e| corrupt(&id, e))?,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                });
            }
        }
    }
    Ok(products)
}

fn category_summaries(rows: Vec<CategoryRow>) -> Result<Vec<CategorySummary>, CatalogError> {
    rows.into_iter()
        .map(|row| {
            Ok(CategorySummary {
                category: Category {
                    slug: CategorySlug::parse(&row.slug).map_err(|e| corrupt(&row.slug, e))?,
                    name: CategoryName::parse(&row.name).map_err(|e| corrupt(&row.slug, e))?,
                    description: Description::parse(&row.description)
                        .map_err(|e| corrupt(&row.slug, e))?,
                },
                product_count: u32::try_from(row.product_count).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// A unique-key violation (SKU taken) as a domain error.
fn on_unique_violation(e: sqlx::Error, sku: &Sku) -> CatalogError {
    if emporium_storage::is_unique_violation(&e) {
        CatalogError::SkuTaken(sku.clone())
    } else {
        e.into()
    }
}
