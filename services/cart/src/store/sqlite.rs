//! The embedded cart store: one SQLite file, migrations embedded.
//!
//! Every change runs in a transaction opened with `BEGIN IMMEDIATE`, which
//! takes the database write lock before reading the line it changes, so two
//! concurrent adds to the same line run one after the other (the second
//! sees the first's quantity) instead of one failing to upgrade its lock.
//! A transaction that still finds the database busy is retried a few times.

use std::time::Duration;

use emporium_storage::PoolSettings;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::{StoredLine, cart_of};
use crate::domain::{self, Cart, Line, Owner, ProductId};
use crate::error::CartError;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How often a write is tried while SQLite reports it is busy.
const MAX_ATTEMPTS: u32 = 5;

const SELECT_CART: &str = "SELECT product_id, quantity, name, unit_price_minor, currency
     FROM cart_items WHERE user_id = $1 ORDER BY product_id";

const UPSERT_LINE: &str = "INSERT INTO cart_items
     (user_id, product_id, quantity, name, unit_price_minor, currency, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (user_id, product_id) DO UPDATE SET
       quantity = excluded.quantity,
       name = excluded.name,
       unit_price_minor = excluded.unit_price_minor,
       currency = excluded.currency,
       updated_at = excluded.updated_at";

/// Carts in a SQLite database; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteCarts {
    pool: SqlitePool,
}

/// How a write changes one line, given its current quantity.
#[derive(Debug, Clone, Copy)]
enum Write {
    Add,
    Set,
}

impl SqliteCarts {
    /// Opens (creating if missing) the database at `url` (`sqlite://…`);
    /// connections are opened lazily.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, CartError> {
        let settings = PoolSettings {
            acquire_timeout: Duration::from_secs(5),
            ..PoolSettings::new(max_connections)
        };
        let pool = emporium_storage::sqlite_pool(url, settings)
            .map_err(|e| domain::Invalid::new(e.key(), e.reason()))?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), CartError> {
        MIGRATIONS.run(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn read(conn: &mut SqliteConnection, owner: &Owner) -> Result<Cart, CartError> {
        let rows = sqlx::query(SELECT_CART)
            .bind(owner.as_str())
            .fetch_all(&mut *conn)
            .await?;
        let lines = rows
            .into_iter()
            .map(|row| {
                Ok(StoredLine {
                    product_id: row.try_get("product_id")?,
                    quantity: row.try_get("quantity")?,
                    name: row.try_get("name")?,
                    unit_price_minor: row.try_get("unit_price_minor")?,
                    currency: row.try_get("currency")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        cart_of(lines)
    }

    pub async fn get(&self, owner: &Owner) -> Result<Cart, CartError> {
        let mut conn = self.pool.acquire().await?;
        Self::read(&mut conn, owner).await
    }

    pub async fn add(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        self.write_retrying(owner, line, Write::Add).await
    }

    pub async fn set(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        self.write_retrying(owner, line, Write::Set).await
    }

    async fn write_retrying(
        &self,
        owner: &Owner,
        line: &Line,
        how: Write,
    ) -> Result<Cart, CartError> {
        let mut attempt = 1;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.write(owner, line, how).await {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "cart database busy; retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                    pause *= 3;
                }
                result => return result,
            }
        }
    }

    async fn write(&self, owner: &Owner, line: &Line, how: Write) -> Result<Cart, CartError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT quantity FROM cart_items WHERE user_id = $1 AND product_id = $2",
        )
        .bind(owner.as_str())
        .bind(line.product_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            let lines: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM cart_items WHERE user_id = $1")
                    .bind(owner.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            domain::room(usize::try_from(lines).unwrap_or(usize::MAX))?;
        }
        let quantity = match how {
            Write::Set => line.quantity,
            Write::Add => {
                let current = current.map(|q| u32::try_from(q).unwrap_or(u32::MAX));
                domain::added(line.product_id, current, line.quantity)?
            }
        };
        sqlx::query(UPSERT_LINE)
            .bind(owner.as_str())
            .bind(line.product_id.to_string())
            .bind(i64::from(quantity.get()))
            .bind(line.name.as_str())
            .bind(line.unit_price.minor())
            .bind(line.unit_price.currency().as_str())
            .bind(time::OffsetDateTime::now_utc())
            .execute(&mut *tx)
            .await?;
        let cart = Self::read(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(cart)
    }

    pub async fn remove(&self, owner: &Owner, product_id: ProductId) -> Result<Cart, CartError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
            .bind(owner.as_str())
            .bind(product_id.to_string())
            .execute(&mut *tx)
            .await?;
        let cart = Self::read(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(cart)
    }

    pub async fn clear(&self, owner: &Owner) -> Result<Cart, CartError> {
        sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
            .bind(owner.as_str())
            .execute(&self.pool)
            .await?;
        Ok(Cart::default())
    }
}
