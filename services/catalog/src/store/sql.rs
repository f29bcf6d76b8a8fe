//! Every statement the catalog runs, written once and instantiated for
//! SQLite and PostgreSQL by [`backend!`]. Only portable SQL appears here:
//! numbered parameters (`$1`), `ON CONFLICT … DO UPDATE`, `LIKE … ESCAPE`.

use super::{CategoryRow, ProductRow};

/// Product columns plus one category per row (statements must be static
/// strings, so they are put together with `concat!`).
macro_rules! product_columns {
    () => {
        "p.id, p.sku, p.name, p.description, p.price_minor, p.currency, \
         p.image_path, p.created_at, p.updated_at, pc.category_slug"
    };
}

/// One page: the inner query filters, orders by id and limits; the join adds
/// each product's categories afterwards, so the limit counts products.
const LIST_SQL: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM (
        SELECT * FROM products p
        WHERE ($1 IS NULL OR EXISTS (
                SELECT 1 FROM product_categories f WHERE f.product_id = p.id AND f.category_slug = $1))
          AND ($2 IS NULL OR p.id > $2)
          AND ($3 IS NULL
               OR lower(p.name) LIKE $3 ESCAPE '\\'
               OR lower(p.description) LIKE $3 ESCAPE '\\'
               OR lower(p.sku) LIKE $3 ESCAPE '\\')
        ORDER BY p.id
        LIMIT $4
     ) p
     LEFT JOIN product_categories pc ON pc.product_id = p.id
     ORDER BY p.id, pc.category_slug"
);

const GET_SQL: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products p
     LEFT JOIN product_categories pc ON pc.product_id = p.id
     WHERE p.id = $1
     ORDER BY pc.category_slug"
);

const CATEGORIES_SQL: &str =
    "SELECT c.slug, c.name, c.description, COUNT(pc.product_id) AS product_count
     FROM categories c LEFT JOIN product_categories pc ON pc.category_slug = c.slug
     GROUP BY c.slug, c.name, c.description
     ORDER BY c.slug";

const INSERT_PRODUCT: &str = "INSERT INTO products
     (id, sku, name, description, price_minor, currency, image_path, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";

const UPDATE_PRODUCT: &str = "UPDATE products SET
     name = COALESCE($2, name),
     description = COALESCE($3, description),
     price_minor = COALESCE($4, price_minor),
     currency = COALESCE($5, currency),
     image_path = COALESCE($6, image_path),
     updated_at = $7
     WHERE id = $1";

const UPSERT_CATEGORY: &str = "INSERT INTO categories (slug, name, description) VALUES ($1, $2, $3)
     ON CONFLICT (slug) DO UPDATE SET name = excluded.name, description = excluded.description";

macro_rules! backend {
    ($module:ident, $db:ty) => {
        pub(super) mod $module {
            use sqlx::{Pool, Row};

            use super::*;
            use crate::domain::{Category, CategorySlug, CategorySummary, NewProduct, Product, ProductId, ProductPatch, ProductQuery};
            use crate::error::CatalogError;
            use crate::store::{ImportReport, category_summaries, fold_products, on_unique_violation};

            type Conn = <$db as sqlx::Database>::Connection;

            pub async fn list_products(pool: &Pool<$db>, q: &ProductQuery) -> Result<Vec<Product>, CatalogError> {
                let rows: Vec<ProductRow> = sqlx::query_as(LIST_SQL)
                    .bind(q.category.as_ref().map(|c| c.as_str().to_owned()))
                    .bind(q.after.map(|c| c.after.to_string()))
                    .bind(q.text.as_ref().map(|t| t.like_pattern()))
                    .bind(i64::from(q.size.get()) + 1)
                    .fetch_all(pool)
                    .await?;
                fold_products(rows)
            }

            pub async fn get_product(pool: &Pool<$db>, id: ProductId) -> Result<Option<Product>, CatalogError> {
                let mut conn = pool.acquire().await?;
                read_product(&mut conn, id).await
            }

            async fn read_product(conn: &mut Conn, id: ProductId) -> Result<Option<Product>, CatalogError> {
                let rows: Vec<ProductRow> = sqlx::query_as(GET_SQL).bind(id.to_string()).fetch_all(&mut *conn).await?;
                Ok(fold_products(rows)?.into_iter().next())
            }

            pub async fn list_categories(pool: &Pool<$db>) -> Result<Vec<CategorySummary>, CatalogError> {
                let rows: Vec<CategoryRow> = sqlx::query_as(CATEGORIES_SQL).fetch_all(pool).await?;
                category_summaries(rows)
            }

            pub async fn count_products(pool: &Pool<$db>) -> Result<u64, CatalogError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM products").fetch_one(pool).await?.try_get(0)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            /// Fails with `UnknownCategory` for the first slug that does not exist.
            async fn check_categories(conn: &mut Conn, slugs: &[CategorySlug]) -> Result<(), CatalogError> {
                for slug in slugs {
                    let found = sqlx::query("SELECT 1 FROM categories WHERE slug = $1")
                        .bind(slug.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                    if found.is_none() {
                        return Err(CatalogError::UnknownCategory(slug.clone()));
                    }
                }
                Ok(())
            }

            async fn set_categories(conn: &mut Conn, id: ProductId, slugs: &[CategorySlug]) -> Result<(), CatalogError> {
                check_categories(conn, slugs).await?;
                sqlx::query("DELETE FROM product_categories WHERE product_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                for slug in slugs {
                    sqlx::query("INSERT INTO product_categories (product_id, category_slug) VALUES ($1, $2)")
                        .bind(id.to_string())
                        .bind(slug.as_str())
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            async fn insert_product(conn: &mut Conn, id: ProductId, new: &NewProduct) -> Result<(), CatalogError> {
                sqlx::query(INSERT_PRODUCT)
                    .bind(id.to_string())
                    .bind(new.sku.as_str())
                    .bind(new.name.as_str())
                    .bind(new.description.as_str())
                    .bind(new.price.minor())
                    .bind(new.price.currency().as_str())
                    .bind(new.image.as_str())
                    .bind(crate::domain::now())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| on_unique_violation(e, &new.sku))?;
                set_categories(conn, id, &new.categories).await
            }

            async fn patch_product(conn: &mut Conn, id: ProductId, patch: &ProductPatch) -> Result<bool, CatalogError> {
                let updated = sqlx::query(UPDATE_PRODUCT)
                    .bind(id.to_string())
                    .bind(patch.name.as_ref().map(|n| n.as_str()))
                    .bind(patch.description.as_ref().map(|d| d.as_str()))
                    .bind(patch.price.map(|p| p.minor()))
                    .bind(patch.price.map(|p| p.currency().to_string()))
                    .bind(patch.image.as_ref().map(|i| i.as_str()))
                    .bind(crate::domain::now())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if updated == 0 {
                    return Ok(false);
                }
                if let Some(categories) = &patch.categories {
                    set_categories(conn, id, categories).await?;
                }
                Ok(true)
            }

            pub async fn create_product(pool: &Pool<$db>, new: &NewProduct) -> Result<Product, CatalogError> {
                let mut tx = pool.begin().await?;
                let id = ProductId::generate();
                insert_product(&mut tx, id, new).await?;
                let product = read_product(&mut tx, id).await?.ok_or(CatalogError::ProductNotFound(id))?;
                tx.commit().await?;
                Ok(product)
            }

            pub async fn update_product(pool: &Pool<$db>, id: ProductId, patch: &ProductPatch) -> Result<Product, CatalogError> {
                let mut tx = pool.begin().await?;
                if !patch_product(&mut tx, id, patch).await? {
                    return Err(CatalogError::ProductNotFound(id));
                }
                let product = read_product(&mut tx, id).await?.ok_or(CatalogError::ProductNotFound(id))?;
                tx.commit().await?;
                Ok(product)
            }

            pub async fn delete_product(pool: &Pool<$db>, id: ProductId) -> Result<(), CatalogError> {
                let deleted = sqlx::query("DELETE FROM products WHERE id = $1").bind(id.to_string()).execute(pool).await?;
                if deleted.rows_affected() == 0 {
                    return Err(CatalogError::ProductNotFound(id));
                }
                Ok(())
            }

            pub async fn import(
                pool: &Pool<$db>,
                categories: &[Category],
                products: &[NewProduct],
            ) -> Result<ImportReport, CatalogError> {
                let mut tx = pool.begin().await?;
                let mut report = ImportReport { categories: categories.len(), ..ImportReport::default() };
                for c in categories {
                    sqlx::query(UPSERT_CATEGORY)
                        .bind(c.slug.as_str())
                        .bind(c.name.as_str())
                        .bind(c.description.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                for new in products {
                    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM products WHERE sku = $1")
                        .bind(new.sku.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(existing) = existing else {
                        insert_product(&mut tx, ProductId::generate(), new).await?;
                        report.created += 1;
                        continue;
                    };
                    let id = ProductId::parse(&existing).map_err(|e| super::super::corrupt(&existing, e))?;
                    let current = read_product(&mut tx, id).await?.ok_or(CatalogError::ProductNotFound(id))?;
                    let same = current.name == new.name
                        && current.description == new.description
                        && current.price == new.price
                        && current.categories == new.categories
                        && current.image == new.image;
                    if same {
                        report.unchanged += 1;
                        continue;
                    }
                    let patch = ProductPatch {
                        name: Some(new.name.clone()),
                        description: Some(new.description.clone()),
                        price: Some(new.price),
                        categories: Some(new.categories.clone()),
                        image: Some(new.image.clone()),
                    };
                    patch_product(&mut tx, id, &patch).await?;
                    report.updated += 1;
                }
                tx.commit().await?;
                Ok(report)
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);
