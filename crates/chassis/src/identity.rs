//! Who is calling: the identity the gateway verified, carried to services in
//! gRPC metadata.
//!
//! Only the gateway reads access tokens. It verifies the signature, then
//! forwards the caller as `x-emporium-user-id` / `x-emporium-user-role`
//! metadata. Services trust that metadata because only the gateway (and
//! services forwarding a caller's request) can reach them — NetworkPolicies
//! enforce exactly those edges in the cluster.

use tonic::metadata::MetadataMap;

use crate::ErrorKind;
use crate::error::status;

pub const USER_ID: &str = "x-emporium-user-id";
pub const USER_ROLE: &str = "x-emporium-user-role";
pub const USER_EMAIL: &str = "x-emporium-user-email";

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub role: Role,
    /// The user's e-mail, when the token carried it (for notifications).
    pub email: Option<String>,
}

impl Identity {
    /// Writes the identity into an outgoing request's metadata.
    pub fn inject<T>(&self, request: &mut tonic::Request<T>) {
        let metadata = request.metadata_mut();
        if let Ok(v) = self.user_id.parse() {
            metadata.insert(USER_ID, v);
        }
        if let Ok(v) = self.role.as_str().parse() {
            metadata.insert(USER_ROLE, v);
        }
        if let Some(Ok(v)) = self.email.as_deref().map(str::parse) {
            metadata.insert(USER_EMAIL, v);
        }
    }

    /// The identity in a request's metadata, if well-formed.
    pub fn from_metadata(metadata: &MetadataMap) -> Option<Self> {
        let user_id = metadata.get(USER_ID)?.to_str().ok()?;
        let valid = (1..=64).contains(&user_id.len())
            && user_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let role = Role::parse(metadata.get(USER_ROLE)?.to_str().ok()?)?;
        let email = metadata
            .get(USER_EMAIL)
            .and_then(|v| v.to_str().ok())
            .filter(|e| (3..=254).contains(&e.len()) && e.contains('@'))
            .map(str::to_owned);
        valid.then(|| Self {
            user_id: user_id.to_owned(),
            role,
            email,
        })
    }

    /// The caller, or `UNAUTHENTICATED`.
    pub fn require<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        Self::from_metadata(request.metadata()).ok_or_else(|| {
            status(
                ErrorKind::Unauthenticated,
                "this call needs a signed-in user",
            )
        })
    }

    /// The caller if an admin; `UNAUTHENTICATED` or `PERMISSION_DENIED` otherwise.
    pub fn require_admin<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        let identity = Self::require(request)?;
        if identity.role == Role::Admin {
            Ok(identity)
        } else {
            Err(status(
                ErrorKind::PermissionDenied,
                "this call needs the admin role",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_metadata() {
        let who = Identity {
            user_id: "0192f0c4-6a3b-7c3d-8e4f-0123456789ab".into(),
            role: Role::Admin,
            email: Some("ada@example.com".into()),
        };
        let mut request = tonic::Request::new(());
        who.inject(&mut request);
        assert_eq!(Identity::require(&request).unwrap(), who);
        assert!(Identity::require_admin(&request).is_ok());
    }

    #[test]
    fn missing_or_forged_identities_are_refused() {
        let request = tonic::Request::new(());
        assert_eq!(
            Identity::require(&request).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert(USER_ID, "u1".parse().unwrap());
        request
            .metadata_mut()
            .insert(USER_ROLE, "root".parse().unwrap());
        assert!(Identity::from_metadata(request.metadata()).is_none());
        let mut request = tonic::Request::new(());
        Identity {
            user_id: "u1".into(),
            role: Role::Customer,
            email: None,
        }
        .inject(&mut request);
        assert_eq!(
            Identity::require_admin(&request).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }
}
