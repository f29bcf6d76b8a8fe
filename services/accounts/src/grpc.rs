//! The gRPC API (`emporium.accounts.v1.AccountsService`): maps requests to
//! domain values, calls the store, the hasher and the token issuer, maps
//! results and errors back.
//!
//! Sign-in answers every failure — unknown email, wrong password, even a
//! malformed email or password — with the same `UNAUTHENTICATED` message,
//! after the same amount of hashing work.

use std::sync::Arc;

use emporium_api::accounts::v1 as pb;
use emporium_api::accounts::v1::accounts_service_server::AccountsService;
use emporium_chassis::identity::Identity;
use tonic::{Request, Response, Status};

use crate::domain::{self, Email, NewUser, Password, Role, User, UserId, UserName};
use crate::error::AccountsError;
use crate::password::Passwords;
use crate::store::Store;
use crate::token::Issuer;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct AccountsApi {
    store: Store,
    passwords: Passwords,
    issuer: Arc<Issuer>,
}

impl AccountsApi {
    pub fn new(store: Store, passwords: Passwords, issuer: Arc<Issuer>) -> Self {
        Self {
            store,
            passwords,
            issuer,
        }
    }

    pub fn into_server(self) -> pb::accounts_service_server::AccountsServiceServer<Self> {
        pb::accounts_service_server::AccountsServiceServer::new(self)
            // Requests here are small; anything bigger is a mistake or an attack.
            .max_decoding_message_size(64 * 1024)
    }
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Customer => pb::Role::Customer,
        Role::Admin => pb::Role::Admin,
    }
}

fn user_to_pb(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.to_string(),
        name: user.name.to_string(),
        role: role_to_pb(user.role) as i32,
        create_time: Some(timestamp(user.created_at)),
    }
}

fn invalid(e: domain::Invalid) -> Status {
    AccountsError::from(e).into()
}

#[tonic::async_trait]
impl AccountsService for AccountsApi {
    #[tracing::instrument(skip_all)]
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let r = request.into_inner();
        let email = Email::parse(&r.email).map_err(invalid)?;
        let password = Password::parse(&r.password).map_err(invalid)?;
        let name = UserName::parse(&r.name).map_err(invalid)?;
        // Everyone signs up as a customer; an operator grants admin
        // (`emporium accounts grant-admin`, Store::set_role).
        let role = Role::Customer;
        let password_hash = self.passwords.hash(&password).await?;
        let new = NewUser {
            user: User {
                id: UserId::generate(),
                email,
                name,
                role,
                created_at: domain::now(),
            },
            password_hash,
        };
        let user = self.store.create_user(&new).await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "user signed up");
        Ok(Response::new(user_to_pb(user)))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let r = request.into_inner();
        // Malformed input is just another wrong guess: same answer, same work.
        let email = Email::parse(&r.email).ok();
        let password = Password::parse(&r.password).ok();
        let found = match &email {
            Some(email) => self.store.find_credentials(email).await?,
            None => None,
        };
        let (user, stored) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let candidate = password.as_ref().map_or("", Password::expose);
        let matches = self.passwords.verify(candidate, stored).await? && password.is_some();
        let user = match user {
            Some(user) if matches => user,
            _ => {
                tracing::info!("sign-in refused");
                return Err(AccountsError::BadCredentials.into());
            }
        };
        let token = self.issuer.issue(&user, time::OffsetDateTime::now_utc());
        tracing::info!(user_id = %user.id, "user signed in");
        Ok(Response::new(pb::SignInResponse {
            access_token: token.token,
            token_type: "Bearer".into(),
            expires_in_seconds: u32::try_from(token.expires_in.as_secs()).unwrap_or(u32::MAX),
            user: Some(user_to_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let jwks_json = serde_json::to_string(&self.issuer.jwks())
            .map_err(|e| AccountsError::Corrupt(format!("JWKS does not serialize: {e}")))?;
        Ok(Response::new(pb::GetJwksResponse { jwks_json }))
    }

    #[tracing::instrument(skip_all, fields(user_id))]
    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = Identity::require(&request)?;
        tracing::Span::current().record("user_id", caller.user_id.as_str());
        let id = UserId::parse(&caller.user_id)
            .map_err(|_| AccountsError::UserNotFound(caller.user_id.clone()))?;
        Ok(Response::new(user_to_pb(self.store.get_user(id).await?)))
    }
}
