//! The gateway's error type: everything a handler can fail with, answered as
//! `application/problem+json` through the chassis' one mapping.

use axum::response::{IntoResponse, Response};
use emporium_chassis::grpc::CallError;
use emporium_chassis::{ErrorKind, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter the caller sent is wrong.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Tokens cannot be checked right now (accounts unreachable).
    #[error("sign-in cannot be checked right now; try again shortly")]
    KeysUnavailable,
    /// An upstream service answered with an error, or could not be reached.
    #[error("{service}: {status}")]
    Upstream {
        service: &'static str,
        status: tonic::Status,
    },
    #[error("{0} did not answer within its deadline")]
    Deadline(&'static str),
    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// Over a rate limit, or sign-ins to the account are locked.
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: std::time::Duration,
    },
    /// The rate-limit store cannot be asked and the fail mode is `closed`.
    #[error("requests cannot be counted right now; try again shortly")]
    LimiterUnavailable,
}

impl ApiError {
    /// Maps a failed upstream call.
    pub fn upstream(service: &'static str) -> impl FnOnce(CallError) -> Self {
        move |e| match e {
            CallError::DeadlineExceeded => Self::Deadline(service),
            CallError::Status(status) => Self::Upstream { service, status },
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadRequest(_) => ErrorKind::InvalidArgument,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::Forbidden(_) => ErrorKind::PermissionDenied,
            Self::KeysUnavailable | Self::LimiterUnavailable => ErrorKind::Unavailable,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Upstream { status, .. } => ErrorKind::from_status(status),
            Self::Deadline(_) | Self::Timeout(_) => ErrorKind::DeadlineExceeded,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Upstream { service, status } => match self.kind() {
                ErrorKind::Unavailable => {
                    format!("The {service} service is unavailable; try again shortly.")
                }
                _ => status.message().to_owned(),
            },
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        if matches!(
            kind,
            ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::DeadlineExceeded
        ) {
            tracing::warn!(error = %self, "request failed upstream");
        }
        let retry_after = match (&self, kind) {
            (Self::Upstream { status, .. }, ErrorKind::Unavailable) => Some(
                status
                    .metadata()
                    .get(emporium_chassis::client::RETRY_AFTER_KEY)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| http::HeaderValue::from_str(v).ok())
                    .unwrap_or(http::HeaderValue::from_static("1")),
            ),
            (_, ErrorKind::Unavailable) => Some(http::HeaderValue::from_static("1")),
            (Self::RateLimited { retry_after, .. }, _) => {
                Some(crate::limit::retry_after_value(*retry_after))
            }
            // An upstream that is busy (accounts' hash queue): try again shortly.
            (_, ErrorKind::RateLimited) => Some(http::HeaderValue::from_static("1")),
            _ => None,
        };
        let mut response = Problem::new(kind, self.detail()).into_response();
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        if kind == ErrorKind::Unauthenticated {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"emporium\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_that_is_busy_is_a_429_with_retry_after() {
        let busy = ApiError::Upstream {
            service: "accounts",
            status: tonic::Status::resource_exhausted(
                "too many sign-ins at once; try again in a moment",
            ),
        };
        let response = busy.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
    }
}
