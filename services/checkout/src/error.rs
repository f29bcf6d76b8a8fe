//! Checkout's one error type and its mapping to gRPC status.

use emporium_chassis::ErrorKind;
use emporium_chassis::grpc::CallError;

use crate::domain::{Invalid, Step};

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the cart is empty")]
    EmptyCart,
    #[error("this Idempotency-Key was used for a different request")]
    KeyReused,
    #[error("order {0} does not exist")]
    OrderNotFound(String),
    /// The order is still being placed by an earlier request with the same key.
    #[error("order {0} is still being placed; retry shortly")]
    InProgress(String),
    /// The saga ended in failure (and was compensated).
    #[error("{reason}")]
    OrderFailed { kind: ErrorKind, reason: String },
    /// An upstream call failed.
    #[error("{service}: {message}")]
    Upstream {
        service: &'static str,
        kind: ErrorKind,
        message: String,
    },
    #[error("illegal saga step {from:?} → {to:?}")]
    IllegalStep { from: Step, to: Step },
    /// Another instance now drives this saga.
    #[error("the saga's lease was lost")]
    LostLease,
    /// A configured fault stopped the saga here (tests of crash recovery).
    #[error("checkout stopped by a configured fault after step {0:?}")]
    Halted(Step),
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the saga task failed: {0}")]
    Task(String),
}

impl From<sqlx::Error> for CheckoutError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl CheckoutError {
    /// Maps a failed upstream call, keeping the upstream's error kind.
    pub fn upstream(service: &'static str) -> impl FnOnce(CallError) -> Self {
        move |e| match e {
            CallError::DeadlineExceeded => Self::Upstream {
                service,
                kind: ErrorKind::DeadlineExceeded,
                message: "no answer in time".into(),
            },
            CallError::Status(status) => Self::Upstream {
                service,
                kind: ErrorKind::from_status(&status),
                message: status.message().to_owned(),
            },
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::KeyReused => ErrorKind::InvalidArgument,
            Self::EmptyCart | Self::InProgress(_) => ErrorKind::Conflict,
            Self::OrderNotFound(_) => ErrorKind::NotFound,
            Self::OrderFailed { kind, .. } => *kind,
            Self::Upstream { kind, .. } => match kind {
                // A caller's mistake seen upstream is still the caller's mistake.
                ErrorKind::InvalidArgument
                | ErrorKind::Conflict
                | ErrorKind::NotFound
                | ErrorKind::PaymentDeclined => *kind,
                ErrorKind::DeadlineExceeded => ErrorKind::DeadlineExceeded,
                _ => ErrorKind::Unavailable,
            },
            Self::LostLease | Self::Halted(_) | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::IllegalStep { .. }
            | Self::Database(_)
            | Self::Corrupt(_)
            | Self::Migrate(_)
            | Self::Task(_) => ErrorKind::Internal,
        }
    }
}

impl From<CheckoutError> for tonic::Status {
    fn from(e: CheckoutError) -> Self {
        let kind = e.kind();
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
