//! The currency service's one error type, and its one mapping to gRPC status.

use emporium_chassis::ErrorKind;

use crate::domain::{ConvertError, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum CurrencyError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A rates document that cannot be used; `origin` says where it came from.
    #[error("rates from {origin} are not usable: {reason}")]
    BadRates { origin: String, reason: String },
}

impl CurrencyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) | Self::Convert(_) => ErrorKind::InvalidArgument,
            Self::BadRates { .. } => ErrorKind::Internal,
        }
    }
}

impl From<CurrencyError> for tonic::Status {
    fn from(e: CurrencyError) -> Self {
        let kind = e.kind();
        if !kind.is_public() {
            tracing::error!(error = %e, "request failed");
        }
        emporium_chassis::error::status(kind, e.to_string())
    }
}
