//! Notification's one error type.
//!
//! The service has no API, so nothing maps errors to a wire format; what
//! matters is what the caller does next, which [`NotificationError::kind`]
//! says in the chassis's terms: `Unavailable` (the database or the bus is
//! unreachable: retry later) versus `InvalidArgument` (an event or a
//! setting that can never work) versus `Internal`.

use emporium_chassis::ErrorKind;

use crate::domain::Invalid;
use crate::mail::MailError;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event bus: {0}")]
    Bus(#[from] emporium_eventbus::Error),
    #[error(transparent)]
    Mail(#[from] MailError),
}

impl From<sqlx::Error> for NotificationError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl NotificationError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidArgument,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Bus(e) if e.is_transient() => ErrorKind::Unavailable,
            Self::Mail(e) if e.is_transient() => ErrorKind::Unavailable,
            Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) | Self::Bus(_) => {
                ErrorKind::Internal
            }
            Self::Mail(_) => ErrorKind::InvalidArgument,
        }
    }
}
