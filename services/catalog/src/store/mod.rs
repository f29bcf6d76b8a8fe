//! The catalog's database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in [`sql`], written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees: every write is one transaction (a failed or cancelled request
//! leaves nothing half-written); reads see committed data only.

mod sql;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;

use crate::domain::{
    Category, CategoryName, CategorySlug, CategorySummary, Currency, Description, ImagePath, Money,
    NewProduct, Page, Product, ProductId, ProductName, ProductPatch, ProductQuery, Sku,
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

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub categories: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

macro_rules! dispatch {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Db::Sqlite(pool) => sql::sqlite::$f(pool, $($arg),*).await,
            Db::Postgres(pool) => sql::postgres::$f(pool, $($arg),*).await,
        }
    };
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, CatalogError> {
        let acquire = Duration::from_secs(3);
        let db = match Backend::of_url(url) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)?.application_name("emporium-catalog");
                Db::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            None => {
                return Err(CatalogError::Invalid(crate::domain::Invalid::new(
                    "database.url",
                    "must start with sqlite:// or postgres://",
                )));
            }
        };
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), CatalogError> {
        match &self.db {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        dispatch!(self, ping())
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub async fn list_products(&self, query: &ProductQuery) -> Result<Page, CatalogError> {
        let size = query.size.get();
        let mut products = dispatch!(self, list_products(query))?;
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
        dispatch!(self, get_product(id))?.ok_or(CatalogError::ProductNotFound(id))
    }

    pub async fn list_categories(&self) -> Result<Vec<CategorySummary>, CatalogError> {
        dispatch!(self, list_categories())
    }

    pub async fn count_products(&self) -> Result<u64, CatalogError> {
        dispatch!(self, count_products())
    }

    pub async fn create_product(&self, new: &NewProduct) -> Result<Product, CatalogError> {
        dispatch!(self, create_product(new))
    }

    pub async fn update_product(
        &self,
        id: ProductId,
        patch: &ProductPatch,
    ) -> Result<Product, CatalogError> {
        dispatch!(self, update_product(id, patch))
    }

    pub async fn delete_product(&self, id: ProductId) -> Result<(), CatalogError> {
        dispatch!(self, delete_product(id))
    }

    /// Upserts categories (by slug) and products (by SKU) in one transaction:
    /// either all of it lands or none. Products not named are left alone.
    pub async fn import(
        &self,
        categories: &[Category],
        products: &[NewProduct],
    ) -> Result<ImportReport, CatalogError> {
        dispatch!(self, import(categories, products))
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
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            CatalogError::SkuTaken(sku.clone())
        }
        _ => e.into(),
    }
}
