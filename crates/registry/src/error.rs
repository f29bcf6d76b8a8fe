//! The registry's one error type. [`Error::Unavailable`] is worth retrying
//! (etcd did not answer in time, the connection failed, etcd has no leader);
//! [`Error::Rejected`] is an answer that retrying will not change.

use std::time::Duration;

use tonic::{Code, Status};

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The etcd URL is not `http://host:port`.
    #[error("etcd URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: &'static str },
    /// A service name must be 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[error(
        "service name {name:?} is not valid: it must be 1 to 63 characters of a-z, 0-9 and '-'"
    )]
    BadServiceName { name: String },
    /// etcd counts lease TTLs in whole seconds, at least one.
    #[error("lease TTL {ttl:?} is too short: etcd counts whole seconds, at least one")]
    BadTtl { ttl: Duration },
    /// A value under the prefix is not a socket address. Listing and
    /// watching skip such keys (with a warning); this is what they log.
    #[error("the value under {key:?} is not a socket address: {value:?}")]
    BadValue { key: String, value: String },
    /// The registry was created outside a Tokio runtime.
    #[error("the registry needs a Tokio runtime to connect to etcd")]
    NoRuntime,
    /// etcd did not answer within the deadline, could not be reached, or
    /// answered that it cannot serve now (no leader, overloaded).
    #[error("etcd is unavailable for {operation}: {}", status.message())]
    Unavailable {
        operation: &'static str,
        #[source]
        status: Status,
    },
    /// etcd answered with an error that a retry will not change.
    #[error("etcd rejected {operation}: {message} ({code:?})")]
    Rejected {
        operation: &'static str,
        code: Code,
        message: String,
    },
}

impl Error {
    /// Sorts a gRPC status from etcd into [`Error::Unavailable`] (worth a
    /// retry) or [`Error::Rejected`].
    pub(crate) fn from_status(operation: &'static str, status: Status) -> Self {
        match status.code() {
            // Transport failures surface as Unavailable or Unknown; etcd says
            // Unavailable for "no leader" / "request timed out" and
            // ResourceExhausted for "too many requests".
            Code::Unavailable
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted => Self::Unavailable { operation, status },
            code => Self::Rejected {
                operation,
                code,
                message: status.message().to_owned(),
            },
        }
    }

    pub(crate) fn deadline(operation: &'static str, deadline: Duration) -> Self {
        Self::Unavailable {
            operation,
            status: Status::deadline_exceeded(format!("no answer within {deadline:?}")),
        }
    }
}
