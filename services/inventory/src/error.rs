//! The inventory's one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::{Invalid, OrderId, Quantity, Refusal, Sku};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A reserve found too few units of `sku`; nothing was reserved.
    #[error("cannot reserve {wanted} of {sku}: only {available} left")]
    OutOfStock {
        sku: Sku,
        wanted: Quantity,
        available: i64,
    },
    #[error("order {0} has no reservation")]
    ReservationNotFound(OrderId),
    /// A repeated reserve for an order named other items than the first.
    #[error("order {0} already has a reservation with other items")]
    DifferentItems(OrderId),
    #[error("order {order_id}: {refusal}")]
    WrongState { order_id: OrderId, refusal: Refusal },
    /// Another transaction changed the reservation first; retried, then
    /// reported as unavailable.
    #[error("the reservation of order {0} is being changed concurrently; try again")]
    Contended(OrderId),
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for InventoryError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl InventoryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::DifferentItems(_) => ErrorKind::InvalidArgument,
            Self::OutOfStock { .. } | Self::WrongState { .. } => ErrorKind::Conflict,
            Self::ReservationNotFound(_) => ErrorKind::NotFound,
            Self::Contended(_) | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Database(e) if emporium_storage::is_busy(e) => ErrorKind::Unavailable,
            Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) => ErrorKind::Internal,
        }
    }

    /// Whether running the same transaction again may succeed: the database
    /// was busy (SQLite's lock, a PostgreSQL serialization failure or
    /// deadlock) or another transaction won a race for the same row.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Contended(_) => true,
            Self::Database(e) => emporium_storage::is_busy(e),
            _ => false,
        }
    }
}

impl From<InventoryError> for tonic::Status {
    fn from(e: InventoryError) -> Self {
        let kind = e.kind();
        if !kind.is_public() || kind == ErrorKind::Unavailable {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
