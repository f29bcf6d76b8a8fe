//! Access-token verification at the edge.
//!
//! The gateway checks every `Authorization: Bearer` token itself, against the
//! public keys accounts publishes (JWKS over gRPC). Keys are cached for
//! `auth.jwks_ttl`; a token naming an unknown key id triggers one refresh (at
//! most every `auth.jwks_min_refresh`), which is how key rotation reaches the
//! gateway without a restart. The verified caller becomes an [`Identity`]
//! that handlers forward to services in gRPC metadata.

use std::sync::RwLock;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use emporium_api::accounts::v1 as accounts;
use emporium_api::accounts::v1::accounts_service_client::AccountsServiceClient;
use emporium_chassis::TraceContext;
use emporium_chassis::grpc::{CallContext, Channel, Client};
use emporium_chassis::identity::{Identity, Role};
use emporium_chassis::jwt::{Jwks, JwtError, Verifier};
use http::request::Parts;
use std::sync::Arc;

use crate::config::AuthConfig;
use crate::error::ApiError;

/// The JWKS cache and verifier.
#[derive(Debug)]
pub struct Keys {
    accounts: Client<AccountsServiceClient<Channel>>,
    config: AuthConfig,
    cached: RwLock<Cached>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cached {
    verifier: Option<Verifier>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone)]
pub enum AuthFailure {
    /// The token is missing its scheme, malformed, forged or expired.
    Invalid(String),
    /// The keys could not be fetched; the token cannot be checked now.
    KeysUnavailable,
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Keys {
    pub fn new(accounts: Client<AccountsServiceClient<Channel>>, config: AuthConfig) -> Self {
        Self {
            accounts,
            config,
            cached: RwLock::default(),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self, kid: &str) -> Option<Verifier> {
        let cached = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = cached
            .fetched
            .is_some_and(|t| t.elapsed() < self.config.jwks_ttl.get());
        cached
            .verifier
            .as_ref()
            .filter(|v| fresh && v.knows(kid))
            .cloned()
    }

    /// Fetches the key set unless another task just did (or tried).
    async fn refresh(&self, trace: TraceContext) -> Result<(), AuthFailure> {
        let _single_flight = self.refresh.lock().await;
        {
            let cached = self
                .cached
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cached
                .attempted
                .is_some_and(|t| t.elapsed() < self.config.jwks_min_refresh.get())
            {
                return Ok(());
            }
        }
        let fetched = self
            .accounts
            .call_idempotent(
                &CallContext::new(trace, None),
                accounts::GetJwksRequest {},
                |mut c, r| async move { c.get_jwks(r).await },
            )
            .await;
        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.attempted = Some(Instant::now());
        let jwks: Jwks = match fetched {
            Ok(response) => serde_json::from_str(&response.jwks_json).map_err(|e| {
                tracing::error!(error = %e, "accounts published an unreadable JWKS");
                AuthFailure::KeysUnavailable
            })?,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot fetch signing keys from accounts");
                return Err(AuthFailure::KeysUnavailable);
            }
        };
        let verifier =
            Verifier::new(&jwks, &self.config.issuer, &self.config.audience).map_err(|e| {
                tracing::error!(error = %e, "accounts published an invalid key");
                AuthFailure::KeysUnavailable
            })?;
        cached.verifier = Some(verifier);
        cached.fetched = Some(Instant::now());
        tracing::info!(keys = jwks.keys.len(), "signing keys refreshed");
        Ok(())
    }

    /// The caller a bearer token names, if it checks out.
    pub async fn verify(&self, token: &str, trace: TraceContext) -> Result<Identity, AuthFailure> {
        let invalid = |e: JwtError| AuthFailure::Invalid(e.to_string());
        let kid = Verifier::kid_of(token).map_err(invalid)?;
        let verifier = match self.current(&kid) {
            Some(v) => v,
            None => {
                self.refresh(trace).await?;
                let cached = self
                    .cached
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                cached
                    .verifier
                    .clone()
                    .ok_or(AuthFailure::KeysUnavailable)?
            }
        };
        let claims = verifier.verify(token, unix_now()).map_err(invalid)?;
        claims
            .identity()
            .ok_or_else(|| AuthFailure::Invalid("the token names an unknown role".into()))
    }
}

/// Middleware: verifies a bearer token if one is sent, and records the
/// caller (or why there is none) for the extractors below.
pub async fn authenticate(
    State(keys): State<Arc<Keys>>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned));
    if let Some(header) = header {
        let trace = request
            .extensions()
            .get::<TraceContext>()
            .copied()
            .unwrap_or_else(TraceContext::new_root);
        let outcome = match header
            .ok()
            .as_deref()
            .and_then(|h| h.strip_prefix("Bearer "))
        {
            Some(token) => keys.verify(token.trim(), trace).await,
            None => Err(AuthFailure::Invalid(
                "expected `Authorization: Bearer <token>`".into(),
            )),
        };
        match outcome {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
            }
            Err(failure) => {
                request.extensions_mut().insert(failure);
            }
        }
    }
    next.run(request).await
}

/// A signed-in caller; rejects with 401 (or 503 when keys are unavailable).
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(identity) = parts.extensions.get::<Identity>() {
            return Ok(Self(identity.clone()));
        }
        match parts.extensions.get::<AuthFailure>() {
            Some(AuthFailure::Invalid(why)) => Err(ApiError::Unauthenticated(why.clone())),
            Some(AuthFailure::KeysUnavailable) => Err(ApiError::KeysUnavailable),
            None => Err(ApiError::Unauthenticated(
                "sign in and send `Authorization: Bearer <token>`".into(),
            )),
        }
    }
}

/// A signed-in admin; 403 for other callers.
#[derive(Debug, Clone)]
pub struct Admin(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(identity) = Caller::from_request_parts(parts, state).await?;
        if identity.role == Role::Admin {
            Ok(Self(identity))
        } else {
            Err(ApiError::Forbidden("this needs the admin role".into()))
        }
    }
}
