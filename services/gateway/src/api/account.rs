//! Sign-up, sign-in and the public signing keys, answered by accounts.

use super::extract::Scope;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use emporium_api::accounts::v1 as pb;

use super::AppState;
use super::extract::ApiJson;
use super::views::{Login, ProblemDoc, SignUp, Token, User};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::limit::LoginOutcome;
use emporium_chassis::ErrorKind;

/// Creates a customer account.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", request_body = SignUp,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "Invalid e-mail, password or name", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The e-mail is taken", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let request = pb::SignUpRequest {
        email: body.email,
        password: body.password,
        name: body.name,
    };
    let user = state
        .accounts
        .call(&scope.context(None), request, |mut c, r| async move {
            c.sign_up(r).await
        })
        .await
        .map_err(ApiError::upstream("accounts"))?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Exchanges e-mail and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = Login,
    responses(
        (status = 200, description = "An access token", body = Token),
        (status = 401, description = "Wrong e-mail or password", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Accounts unavailable, or (fail mode `closed`) the rate-limit store", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Token>, ApiError> {
    // Counted before accounts is asked, so parallel guesses cannot overtake
    // the lockout; refused the same way whether or not the account exists.
    let attempt = state.limiter.login_attempt(&body.email).await?;
    let request = pb::SignInRequest {
        email: body.email,
        password: body.password,
    };
    let signed_in = state
        .accounts
        .call(&scope.context(None), request, |mut c, r| async move {
            c.sign_in(r).await
        })
        .await
        .map_err(ApiError::upstream("accounts"));
    attempt
        .settle(match &signed_in {
            Ok(_) => LoginOutcome::Succeeded,
            Err(e) if e.kind() == ErrorKind::Unauthenticated => LoginOutcome::Failed,
            Err(_) => LoginOutcome::Inconclusive,
        })
        .await;
    let signed_in = signed_in?;
    Ok(Json(Token {
        access_token: signed_in.access_token,
        token_type: signed_in.token_type,
        expires_in: signed_in.expires_in_seconds,
        user: signed_in.user.unwrap_or_default().into(),
    }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Not signed in", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn me(
    State(state): State<AppState>,
    scope: Scope,
    Caller(caller): Caller,
) -> Result<Json<User>, ApiError> {
    let user = state
        .accounts
        .call_idempotent(
            &scope.context(Some(caller)),
            pb::GetMeRequest {},
            |mut c, r| async move { c.get_me(r).await },
        )
        .await
        .map_err(ApiError::upstream("accounts"))?;
    Ok(Json(user.into()))
}

/// The public keys that verify access tokens (RFC 7517 JWK Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "accounts",
    responses((status = 200, description = "JWK Set", content_type = "application/jwk-set+json")))]
pub async fn jwks(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let jwks = state
        .accounts
        .call_idempotent(
            &scope.context(None),
            pb::GetJwksRequest {},
            |mut c, r| async move { c.get_jwks(r).await },
        )
        .await
        .map_err(ApiError::upstream("accounts"))?;
    Ok((
        [
            (http::header::CONTENT_TYPE, "application/jwk-set+json"),
            (http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        jwks.jwks_json,
    ))
}
