//! The catalog's one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::{CategorySlug, Invalid, ProductId, Sku};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    #[error("category `{0}` does not exist")]
    UnknownCategory(CategorySlug),
    #[error("a product with sku {0} already exists")]
    SkuTaken(Sku),
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl CatalogError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::UnknownCategory(_) => ErrorKind::InvalidArgument,
            Self::ProductNotFound(_) => ErrorKind::NotFound,
            Self::SkuTaken(_) => ErrorKind::AlreadyExists,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) => ErrorKind::Internal,
        }
    }
}

impl From<CatalogError> for tonic::Status {
    fn from(e: CatalogError) -> Self {
        let kind = e.kind();
        if !kind.is_public() || kind == ErrorKind::Unavailable {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
