//! The one error type of the event bus.
//!
//! Variants say what went wrong in the bus's own terms; the backend's error
//! (sqlx, async-nats) is kept as a message together with what the bus was
//! doing, so a log line reads "the event bus failed while acknowledging a
//! delivery: …". [`Error::is_transient`] tells a caller whether retrying the
//! same call later can succeed.

use crate::admin::DeadLetterId;
use crate::envelope::EnvelopeError;

/// The result type of every fallible event-bus call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an event-bus call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The event (or a stored one) breaks the envelope rules.
    #[error("invalid event: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A configuration value (bus or consumer) is not acceptable.
    #[error("invalid event bus configuration at `{key}`: {message}")]
    Config { key: String, message: String },
    /// The broker or the log file could not be reached in time.
    #[error("the event bus is unavailable while {doing}: {message}")]
    Unavailable {
        doing: &'static str,
        message: String,
    },
    /// The backend answered with an error.
    #[error("the event bus failed while {doing}: {message}")]
    Backend {
        doing: &'static str,
        message: String,
    },
    /// No dead letter has this id (already replayed or deleted).
    #[error("dead letter {0} does not exist")]
    DeadLetterNotFound(DeadLetterId),
    /// No consumer has this name.
    #[error("consumer `{0}` does not exist")]
    ConsumerNotFound(String),
}

impl Error {
    pub(crate) fn config(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::Config {
            key: key.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn backend(doing: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Backend {
            doing,
            message: error.to_string(),
        }
    }

    pub(crate) fn unavailable(doing: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            doing,
            message: error.to_string(),
        }
    }

    /// Whether the same call may succeed later (the broker or the database
    /// was unreachable or busy), as opposed to a call that is wrong.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Backend { .. })
    }

    /// A sqlx error met while `doing` something: pool timeouts and I/O are
    /// "unavailable", everything else a backend failure.
    pub(crate) fn sqlx(doing: &'static str, error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::unavailable(doing, error)
            }
            other => Self::backend(doing, other),
        }
    }
}
