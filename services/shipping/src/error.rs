//! Shipping's one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum ShippingError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// `which` says how it was looked up: `shipment 0192…` or `the shipment of order 42`.
    #[error("{which} does not exist")]
    ShipmentNotFound { which: String },
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for ShippingError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl ShippingError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidArgument,
            Self::ShipmentNotFound { .. } => ErrorKind::NotFound,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) => ErrorKind::Internal,
        }
    }
}

impl From<ShippingError> for tonic::Status {
    fn from(e: ShippingError) -> Self {
        let kind = e.kind();
        if !kind.is_public() || kind == ErrorKind::Unavailable {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
