//! Payment's one error type, and its one mapping to gRPC status.
//!
//! A declined card is NOT an error: it is a charge with status DECLINED.
//! Errors are malformed requests, unknown charges, refunds of declined
//! charges, injected faults and database trouble.

use emporium_chassis::ErrorKind;

use crate::domain::{ChargeId, DeclineCode, IdempotencyKey, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(
        "idempotency key reused with different parameters: `{0}` already charged another amount or currency"
    )]
    KeyReused(IdempotencyKey),
    #[error("charge {0} does not exist")]
    ChargeNotFound(ChargeId),
    #[error("charge {id} was declined ({decline}); there is nothing to refund")]
    NotRefundable { id: ChargeId, decline: DeclineCode },
    /// `faults.error_rate` struck: the call failed before anything was stored.
    #[error("the payment processor is unavailable (injected fault); nothing was charged, retry")]
    InjectedFault,
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for PaymentError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl PaymentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::KeyReused(_) => ErrorKind::InvalidArgument,
            Self::ChargeNotFound(_) => ErrorKind::NotFound,
            Self::NotRefundable { .. } => ErrorKind::Conflict,
            Self::InjectedFault | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) => ErrorKind::Internal,
        }
    }
}

impl From<PaymentError> for tonic::Status {
    fn from(e: PaymentError) -> Self {
        let kind = e.kind();
        match &e {
            PaymentError::InjectedFault => tracing::info!("injected fault: failing the call"),
            _ if !kind.is_public() || kind == ErrorKind::Unavailable => {
                tracing::error!(error = %e, "request failed");
            }
            _ => {}
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
