//! Where carts are kept: embedded SQLite (a local run; durable, one file) or
//! Redis (a cluster; one hash per user). Both implement the same operations
//! with the same rules and pass one test suite.
//!
//! Guarantees, on both: every operation is atomic per cart — a change and the
//! cart it returns are one step (a SQLite transaction holding the write
//! lock; a Lua script, which Redis runs without interleaving), so concurrent
//! adds to one line never lose an update and the quantity and line limits
//! hold under concurrency.

mod redis;
mod sqlite;

use crate::domain::{Cart, Currency, Line, Money, Owner, ProductId, ProductName, Quantity};
use crate::error::CartError;

pub use self::redis::{RedisCarts, ca_cert_problem, redis_client};
pub use self::sqlite::SqliteCarts;

/// The cart store this service was configured with; cheap to clone.
#[derive(Debug, Clone)]
pub enum CartStore {
    Sqlite(SqliteCarts),
    Redis(RedisCarts),
}

macro_rules! dispatch {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match $self {
            CartStore::Sqlite(store) => store.$f($($arg),*).await,
            CartStore::Redis(store) => store.$f($($arg),*).await,
        }
    };
}

impl CartStore {
    /// Prepares the store's schema (SQLite migrations; nothing for Redis).
    pub async fn migrate(&self) -> Result<(), CartError> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
            Self::Redis(_) => Ok(()),
        }
    }

    pub async fn close(&self) {
        if let Self::Sqlite(store) = self {
            store.close().await;
        }
    }

    pub async fn get(&self, owner: &Owner) -> Result<Cart, CartError> {
        dispatch!(self, get(owner))
    }

    /// Adds `line.quantity` units to the owner's line for the product
    /// (creating it), storing the line's name and price; refused if the line
    /// would exceed 99 units or a new line would exceed 50 lines.
    pub async fn add(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        dispatch!(self, add(owner, line))
    }

    /// Sets the owner's line for the product to `line` (creating it);
    /// refused if a new line would exceed 50 lines.
    pub async fn set(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        dispatch!(self, set(owner, line))
    }

    /// Removes the line for the product; a missing line is fine.
    pub async fn remove(&self, owner: &Owner, product_id: ProductId) -> Result<Cart, CartError> {
        dispatch!(self, remove(owner, product_id))
    }

    /// Empties the owner's cart.
    pub async fn clear(&self, owner: &Owner) -> Result<Cart, CartError> {
        dispatch!(self, clear(owner))
    }
}

/// A stored line in plain values, as either store reads it back.
struct StoredLine {
    product_id: String,
    quantity: i64,
    name: String,
    unit_price_minor: i64,
    currency: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> CartError {
    CartError::Corrupt(format!("{what}: {e}"))
}

impl StoredLine {
    fn into_line(self) -> Result<Line, CartError> {
        let at = self.product_id.clone();
        let quantity = u32::try_from(self.quantity).map_err(|e| corrupt(&at, e))?;
        let currency = Currency::parse(&self.currency).map_err(|e| corrupt(&at, e))?;
        Ok(Line {
            product_id: ProductId::parse(&self.product_id).map_err(|e| corrupt(&at, e))?,
            quantity: Quantity::new(quantity).map_err(|e| corrupt(&at, e))?,
            name: ProductName::parse(&self.name).map_err(|e| corrupt(&at, e))?,
            unit_price: Money::new(self.unit_price_minor, currency).map_err(|e| corrupt(&at, e))?,
        })
    }
}

fn cart_of(lines: Vec<StoredLine>) -> Result<Cart, CartError> {
    Ok(Cart::new(
        lines
            .into_iter()
            .map(StoredLine::into_line)
            .collect::<Result<_, _>>()?,
    ))
}
