//! One error model for the whole system.
//!
//! Every service error says which [`ErrorKind`] it is. The kind decides, from
//! ONE table, the HTTP status and problem type at the public edge and the gRPC
//! code inside, so a `NotFound` in the catalog is a gRPC `NOT_FOUND` on the wire
//! and a 404 `application/problem+json` (RFC 9457) at the gateway.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use tonic::Code;

/// What went wrong, in terms every transport can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Conflict,
    Unauthenticated,
    PermissionDenied,
    /// A payment was declined by the card processor.
    PaymentDeclined,
    /// Edge only: the request body is larger than allowed.
    PayloadTooLarge,
    /// Edge only: the request URI is longer than allowed.
    UriTooLong,
    /// Edge only: the route exists but not for this method.
    MethodNotAllowed,
    RateLimited,
    NotImplemented,
    Unavailable,
    DeadlineExceeded,
    Internal,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    http: u16,
    grpc: Code,
    slug: &'static str,
    title: &'static str,
}

impl ErrorKind {
    /// Every kind, in table order. Reading a gRPC code back to a kind takes
    /// the FIRST kind with that code, so edge-only kinds come last.
    pub const ALL: [ErrorKind; 15] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::AlreadyExists,
        Self::Conflict,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::RateLimited,
        Self::NotImplemented,
        Self::Unavailable,
        Self::DeadlineExceeded,
        Self::Internal,
        Self::PaymentDeclined,
        Self::PayloadTooLarge,
        Self::UriTooLong,
        Self::MethodNotAllowed,
    ];

    /// The one mapping: kind → HTTP status, gRPC code, problem type, title.
    const fn row(self) -> Row {
        let (http, grpc, slug, title) = match self {
            Self::InvalidArgument => (
                400,
                Code::InvalidArgument,
                "invalid-argument",
                "The request is not valid",
            ),
            Self::NotFound => (404, Code::NotFound, "not-found", "Not found"),
            Self::AlreadyExists => (409, Code::AlreadyExists, "already-exists", "Already exists"),
            Self::Conflict => (
                409,
                Code::FailedPrecondition,
                "conflict",
                "Conflicts with the current state",
            ),
            Self::Unauthenticated => (
                401,
                Code::Unauthenticated,
                "unauthenticated",
                "Authentication required",
            ),
            Self::PermissionDenied => (403, Code::PermissionDenied, "forbidden", "Not allowed"),
            Self::RateLimited => (
                429,
                Code::ResourceExhausted,
                "rate-limited",
                "Too many requests",
            ),
            Self::NotImplemented => (
                501,
                Code::Unimplemented,
                "not-implemented",
                "Not implemented",
            ),
            Self::Unavailable => (503, Code::Unavailable, "unavailable", "Service unavailable"),
            Self::DeadlineExceeded => (
                504,
                Code::DeadlineExceeded,
                "deadline-exceeded",
                "Upstream deadline exceeded",
            ),
            Self::Internal => (500, Code::Internal, "internal", "Internal error"),
            Self::PaymentDeclined => (
                402,
                Code::FailedPrecondition,
                "payment-declined",
                "Payment declined",
            ),
            Self::PayloadTooLarge => (
                413,
                Code::InvalidArgument,
                "payload-too-large",
                "Request too large",
            ),
            Self::UriTooLong => (
                414,
                Code::InvalidArgument,
                "uri-too-long",
                "Request URI too long",
            ),
            Self::MethodNotAllowed => (
                405,
                Code::Unimplemented,
                "method-not-allowed",
                "Method not allowed",
            ),
        };
        Row {
            http,
            grpc,
            slug,
            title,
        }
    }
}

/// Problem types are URIs; this prefix is stable and documented in `docs/api.md`.
pub const PROBLEM_TYPE_BASE: &str = "https://emporium.example/problems/";

impl ErrorKind {
    pub fn http_status(self) -> StatusCode {
        StatusCode::from_u16(self.row().http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn grpc_code(self) -> Code {
        self.row().grpc
    }

    /// The stable problem `type` URI.
    pub fn problem_type(self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.row().slug)
    }

    pub fn title(self) -> &'static str {
        self.row().title
    }

    /// The kind a gRPC status code stands for. Codes no service sends on
    /// purpose (`Unknown`, `DataLoss`, …) are internal errors.
    pub fn from_grpc(code: Code) -> Self {
        match code {
            Code::Cancelled => Self::Unavailable,
            Code::Aborted => Self::Conflict,
            Code::OutOfRange => Self::InvalidArgument,
            code => Self::ALL
                .into_iter()
                .find(|k| k.row().grpc == code)
                .unwrap_or(Self::Internal),
        }
    }

    /// The kind of an error status from another Emporium service: the kind
    /// it names in [`KIND_METADATA`] (codes alone are ambiguous: a declined
    /// payment and a conflict are both `FAILED_PRECONDITION`), else the code's.
    pub fn from_status(status: &tonic::Status) -> Self {
        status
            .metadata()
            .get(KIND_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|slug| Self::ALL.into_iter().find(|k| k.row().slug == slug))
            .unwrap_or_else(|| Self::from_grpc(status.code()))
    }

    /// Whether the same work may succeed if simply tried again later: a
    /// dependency (database, upstream, broker) is unavailable, too slow or
    /// rate-limiting. Everything else — bad input, a rule, a bug — fails the
    /// same way next time. Event consumers decide by it whether a failure is
    /// retried without counting, or counts toward dead-lettering
    /// (`emporium_eventbus::Delivery::fail`).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::DeadlineExceeded | Self::RateLimited
        )
    }

    /// Whether the detail text may be shown to a caller. Internal errors keep
    /// their detail in the logs.
    pub fn is_public(self) -> bool {
        self != Self::Internal
    }
}

/// The gRPC metadata key naming an error's kind exactly.
pub const KIND_METADATA: &str = "x-emporium-error-kind";

/// Builds the gRPC status for an error of `kind`; internal details are
/// replaced by a generic message (the caller logs them). The kind travels in
/// [`KIND_METADATA`] so callers recover it exactly.
pub fn status(kind: ErrorKind, message: impl Into<String>) -> tonic::Status {
    let message = if kind.is_public() {
        message.into()
    } else {
        "internal error".to_owned()
    };
    let mut status = tonic::Status::new(kind.grpc_code(), message);
    if let Ok(value) = kind.row().slug.parse() {
        status.metadata_mut().insert(KIND_METADATA, value);
    }
    status
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        let detail = if kind.is_public() {
            detail.into()
        } else {
            "An internal error occurred.".to_owned()
        };
        Self {
            type_: kind.problem_type(),
            title: kind.title().to_owned(),
            status: kind.http_status().as_u16(),
            detail: Some(detail),
            instance: None,
        }
    }

    /// The problem for a gRPC status returned by an upstream service.
    pub fn from_status(status: &tonic::Status) -> Self {
        Self::new(ErrorKind::from_status(status), status.message())
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }
}

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// `error` and its causes as one line, `a: b: c`, leaving out a cause whose
/// text ends its effect's message: many errors print their source in their
/// own message (`#[error("database error: {0}")]`), and the plain chain
/// would say it twice.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut effect = text.clone();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !effect.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        effect = part;
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("the database is unreachable: {0}")]
        Repeats(#[source] std::io::Error),
        #[error("migration 0003 failed")]
        Hides(#[source] std::io::Error),
        #[error("the request timed out after 3 s")]
        Mentions(#[source] std::io::Error),
    }

    #[test]
    fn describe_says_each_cause_once() {
        let io = || std::io::Error::other("connection refused");
        assert_eq!(
            describe(&Outer::Repeats(io())),
            "the database is unreachable: connection refused"
        );
        assert_eq!(
            describe(&Outer::Hides(io())),
            "migration 0003 failed: connection refused"
        );
        // A cause whose words merely occur in its effect is still said.
        assert_eq!(
            describe(&Outer::Mentions(std::io::Error::other("timed out"))),
            "the request timed out after 3 s: timed out"
        );
    }

    #[test]
    fn service_kinds_round_trip_through_grpc_codes() {
        let service_kinds = &ErrorKind::ALL[..ErrorKind::ALL.len() - 4];
        for &kind in service_kinds {
            assert_eq!(ErrorKind::from_grpc(kind.grpc_code()), kind, "{kind:?}");
        }
        let mut codes: Vec<_> = service_kinds.iter().map(|k| k.grpc_code() as i32).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            service_kinds.len(),
            "two service kinds share a gRPC code"
        );
        assert_eq!(ErrorKind::from_grpc(Code::Unknown), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_grpc(Code::DataLoss), ErrorKind::Internal);
    }

    #[test]
    fn every_kind_round_trips_through_a_status() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_status(&status(kind, "x")), kind, "{kind:?}");
        }
        let declined = Problem::from_status(&status(ErrorKind::PaymentDeclined, "card_declined"));
        assert_eq!(declined.status, 402);
        // A plain status from a non-Emporium server falls back to its code.
        assert_eq!(
            ErrorKind::from_status(&tonic::Status::failed_precondition("x")),
            ErrorKind::Conflict
        );
    }

    #[test]
    fn statuses_map_to_problems_with_stable_types() {
        let p = Problem::from_status(&tonic::Status::not_found("product 42 does not exist"));
        assert_eq!(p.status, 404);
        assert_eq!(p.type_, "https://emporium.example/problems/not-found");
        assert_eq!(p.detail.as_deref(), Some("product 42 does not exist"));
        let p = Problem::from_status(&tonic::Status::unavailable("x"));
        assert_eq!(p.status, 503);
        let p = Problem::from_status(&tonic::Status::deadline_exceeded("x"));
        assert_eq!(p.status, 504);
    }

    #[test]
    fn internal_details_are_not_shown() {
        let p = Problem::new(ErrorKind::Internal, "connection string postgres://secret");
        assert!(!p.detail.unwrap().contains("secret"));
        let s = status(ErrorKind::Internal, "disk on fire at /var/lib");
        assert_eq!(s.message(), "internal error");
    }
}

/// A value that broke a rule; `field` names it as the caller sent it
/// (`products[3].sku`). Every service's domain reports bad input this way;
/// its error enum wraps it and classifies it as [`ErrorKind::InvalidArgument`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same problem, reported under a parent field (`items[2].quantity`).
    pub fn within(self, parent: impl std::fmt::Display) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

impl From<crate::currency::InvalidCurrency> for Invalid {
    /// Reported as field `currency`; call sites with another field name
    /// use [`crate::currency::InvalidCurrency::at`].
    fn from(e: crate::currency::InvalidCurrency) -> Self {
        e.at("currency")
    }
}
