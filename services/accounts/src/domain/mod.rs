//! The accounts' types and rules: no I/O, no transport types.
//!
//! Every value is built by one fallible constructor, so past the edge an
//! [`Email`] is always lowercased and well-formed, a [`Password`] always 8 to
//! 128 characters (and never printed), a [`UserName`] always 1 to 100.

mod values;

pub use emporium_chassis::identity::Role;
pub use values::{Email, Password, PasswordHash, UserId, UserName};

use time::OffsetDateTime;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// A user as other services and the user see them (no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: UserName,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

/// A user about to be stored, with the hash of their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub user: User,
    pub password_hash: PasswordHash,
}

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
