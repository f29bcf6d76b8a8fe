//! The accounts' one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email and wrong password alike: the message must not tell
    /// which.
    #[error("the email or password is incorrect")]
    BadCredentials,
    #[error("user {0} does not exist")]
    UserNotFound(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Too many sign-ups and sign-ins are waiting for a hash slot.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error("the database is unreachable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for AccountsError {
    fn from(e: sqlx::Error) -> Self {
        if emporium_storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl AccountsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidArgument,
            Self::EmailTaken => ErrorKind::AlreadyExists,
            Self::BadCredentials => ErrorKind::Unauthenticated,
            Self::UserNotFound(_) => ErrorKind::NotFound,
            Self::Busy => ErrorKind::RateLimited,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Hashing(_) | Self::Database(_) | Self::Corrupt(_) | Self::Migrate(_) => {
                ErrorKind::Internal
            }
        }
    }
}

impl From<AccountsError> for tonic::Status {
    fn from(e: AccountsError) -> Self {
        let kind = e.kind();
        if !kind.is_public() || kind == ErrorKind::Unavailable {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
