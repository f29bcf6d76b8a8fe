//! The cart's one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::{Invalid, ProductId, Refused};

#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    #[error("the catalog is unavailable: {0}")]
    CatalogUnavailable(String),
    #[error("the catalog did not answer in time")]
    CatalogTimeout,
    #[error("the catalog failed: {0}")]
    Catalog(String),
    #[error("the cart store is unreachable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("redis error: {0}")]
    Redis(#[source] redis::RedisError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for CartError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else {
            Self::Database(e)
        }
    }
}

impl From<redis::RedisError> for CartError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_connection_dropped()
        {
            Self::Unavailable(e.to_string())
        } else {
            Self::Redis(e)
        }
    }
}

impl CartError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::Refused(_) | Self::ProductNotFound(_) => {
                ErrorKind::InvalidArgument
            }
            Self::CatalogUnavailable(_) | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::CatalogTimeout => ErrorKind::DeadlineExceeded,
            Self::Catalog(_)
            | Self::Database(_)
            | Self::Redis(_)
            | Self::Corrupt(_)
            | Self::Migrate(_) => ErrorKind::Internal,
        }
    }

    /// Whether the same write may succeed if tried again: SQLite was busy.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Database(e) if emporium_storage::is_busy(e))
    }
}

impl From<CartError> for tonic::Status {
    fn from(e: CartError) -> Self {
        let kind = e.kind();
        if !kind.is_public() || matches!(kind, ErrorKind::Unavailable | ErrorKind::DeadlineExceeded)
        {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
