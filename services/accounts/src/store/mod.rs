//! The accounts database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in [`sql`], written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees: an email belongs to at most one user, also when sign-ups race
//! (the database's unique index decides, and the loser gets
//! [`AccountsError::EmailTaken`]); password hashes leave this module only
//! for verification.

mod sql;

pub use emporium_storage::Backend;

use emporium_storage::{Db, dispatch};
use time::OffsetDateTime;

use crate::domain::{Email, Invalid, NewUser, PasswordHash, Role, User, UserId, UserName};
use crate::error::AccountsError;

/// Embedded migrations, one set per backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the accounts database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, AccountsError> {
        let db = Db::connect(url, max_connections, "emporium-accounts")
            .map_err(|e| Invalid::new(e.key(), e.reason()))?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), AccountsError> {
        self.db
            .migrate(&SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), AccountsError> {
        self.db.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Stores a new user; [`AccountsError::EmailTaken`] if the email is in use.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, AccountsError> {
        dispatch!(self.db, sql::create_user(new))?;
        Ok(new.user.clone())
    }

    /// The user with `email` and their password hash, for signing in.
    pub async fn find_credentials(
        &self,
        email: &Email,
    ) -> Result<Option<(User, PasswordHash)>, AccountsError> {
        dispatch!(self.db, sql::find_by_email(email))?
            .map(UserRow::into_credentials)
            .transpose()
    }

    /// Gives the user with `email` the role `role`: `Ok(true)` when it
    /// changed, `Ok(false)` when they had it already,
    /// [`AccountsError::UserNotFound`] when no user has that email. One
    /// conditional update, so concurrent grants and revokes settle on the
    /// last one and each reports whether it changed anything.
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<bool, AccountsError> {
        if dispatch!(self.db, sql::set_role(email, role))? {
            return Ok(true);
        }
        match dispatch!(self.db, sql::find_by_email(email))? {
            Some(_) => Ok(false),
            None => Err(AccountsError::UserNotFound(email.to_string())),
        }
    }

    pub async fn get_user(&self, id: UserId) -> Result<User, AccountsError> {
        let row = dispatch!(self.db, sql::get_user(id))?;
        match row {
            Some(row) => Ok(row.into_credentials()?.0),
            None => Err(AccountsError::UserNotFound(id.to_string())),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    created_at: OffsetDateTime,
    password_hash: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> AccountsError {
    AccountsError::Corrupt(format!("{what}: {e}"))
}

impl UserRow {
    fn into_credentials(self) -> Result<(User, PasswordHash), AccountsError> {
        let user = User {
            id: UserId::parse(&self.id).map_err(|e| corrupt(&self.id, e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt(&self.id, e))?,
            name: UserName::parse(&self.name).map_err(|e| corrupt(&self.id, e))?,
            role: Role::parse(&self.role)
                .ok_or_else(|| corrupt(&self.id, format!("unknown role `{}`", self.role)))?,
            created_at: self.created_at,
        };
        Ok((user, PasswordHash::new(self.password_hash)))
    }
}

/// A unique-key violation (the email is taken) as a domain error.
fn on_unique_violation(e: sqlx::Error) -> AccountsError {
    if emporium_storage::is_unique_violation(&e) {
        AccountsError::EmailTaken
    } else {
        e.into()
    }
}
