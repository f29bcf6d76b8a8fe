//! The accounts database: SQLite (embedded, the default) or PostgreSQL,
//! chosen by the URL's scheme. All SQL lives in [`sql`], written once and
//! instantiated for each backend, so both run exactly the same statements.
//!
//! Guarantees: an email belongs to at most one user, also when sign-ups race
//! (the database's unique index decides, and the loser gets
//! [`AccountsError::EmailTaken`]); password hashes leave this module only
//! for verification.

mod sql;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
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

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $f:ident ( $($arg:expr),* )) => {
        match &$self.db {
            Db::Sqlite(pool) => sql::sqlite::$f(pool, $($arg),*).await,
            Db::Postgres(pool) => sql::postgres::$f(pool, $($arg),*).await,
        }
    };
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` or `postgres://…`).
    /// A SQLite file is created if missing. Connections are opened lazily,
    /// so this fails only for a malformed URL; [`Store::ping`] checks reachability.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, AccountsError> {
        let acquire = Duration::from_secs(3);
        let db = match Backend::of_url(url) {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            Some(Backend::Postgres) => {
                let options =
                    PgConnectOptions::from_str(url)?.application_name("emporium-accounts");
                Db::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                )
            }
            None => {
                return Err(AccountsError::Invalid(Invalid::new(
                    "database.url",
                    "must start with sqlite:// or postgres://",
                )));
            }
        };
        Ok(Self { db })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), AccountsError> {
        match &self.db {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), AccountsError> {
        dispatch!(self, ping())
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Stores a new user; [`AccountsError::EmailTaken`] if the email is in use.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, AccountsError> {
        dispatch!(self, create_user(new))?;
        Ok(new.user.clone())
    }

    /// The user with `email` and their password hash, for signing in.
    pub async fn find_credentials(
        &self,
        email: &Email,
    ) -> Result<Option<(User, PasswordHash)>, AccountsError> {
        dispatch!(self, find_by_email(email))?
            .map(UserRow::into_credentials)
            .transpose()
    }

    pub async fn get_user(&self, id: UserId) -> Result<User, AccountsError> {
        let row = dispatch!(self, get_user(id))?;
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
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => AccountsError::EmailTaken,
        _ => e.into(),
    }
}
