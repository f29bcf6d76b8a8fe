//! axum extractors whose rejections are problem documents.

use axum::extract::{FromRequestParts, Path, Query};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Query<T>` answering a bad query string with a 400 problem.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "invalid query string: {}",
                    e.body_text()
                        .trim_start_matches("Failed to deserialize query string: ")
                ))
            })
    }
}

/// `Path<T>` answering a bad path segment with a 400 problem.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {}", e.body_text())))
    }
}

/// `Json<T>` answering a bad body (not JSON, wrong types, unknown fields,
/// wrong content type) with a 400 problem, and an oversized one with 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = axum::response::Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        use axum::response::IntoResponse;
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(emporium_chassis::Problem::new(
                    emporium_chassis::ErrorKind::PayloadTooLarge,
                    e.body_text(),
                )
                .into_response())
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                "send the body as JSON with `Content-Type: application/json`".into(),
            )
            .into_response()),
            Err(e) => Err(
                ApiError::BadRequest(format!("invalid JSON body: {}", e.body_text()))
                    .into_response(),
            ),
        }
    }
}

/// What every upstream call of a request inherits: its trace and the
/// deadline of its route's time budget (set by the edge guard).
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub trace: emporium_chassis::TraceContext,
    pub deadline: emporium_chassis::grpc::Deadline,
}

impl Scope {
    /// The context of a call made for this request, on behalf of `caller`.
    pub fn context(
        &self,
        caller: Option<emporium_chassis::identity::Identity>,
    ) -> emporium_chassis::grpc::CallContext {
        emporium_chassis::grpc::CallContext::new(self.trace, caller).with_deadline(self.deadline)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let trace = parts
            .extensions
            .get::<emporium_chassis::TraceContext>()
            .copied()
            .unwrap_or_else(emporium_chassis::TraceContext::new_root);
        // The guard always sets it; a router used without the guard gets
        // the longest budget a call may have.
        let deadline = parts
            .extensions
            .get::<emporium_chassis::grpc::Deadline>()
            .copied()
            .unwrap_or_else(|| {
                emporium_chassis::grpc::Deadline::after(std::time::Duration::from_secs(10))
            });
        Ok(Self { trace, deadline })
    }
}
