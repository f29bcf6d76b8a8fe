//! The database plumbing every service's store shares, so that a store holds
//! only its own SQL and rows.
//!
//! A store keeps a [`Db`]: a pool for SQLite (embedded, the default) or
//! PostgreSQL, chosen by the URL's scheme and set up the same way for every
//! service (see [`Db::connect`]). Its SQL is written once and instantiated per
//! backend in `sql::sqlite` and `sql::postgres`; [`dispatch!`] calls the
//! instance that matches the pool. [`is_unavailable`], [`is_unique_violation`]
//! and [`is_busy`] sort `sqlx` errors the same way in every service.
//!
//! ```text
//! static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
//! static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
//!
//! let db = Db::connect(url, 8, "emporium-catalog")?;
//! db.migrate(&SQLITE, &POSTGRES).await?;
//! let product = dispatch!(db, sql::get_product(id))?;
//! ```

mod classify;
mod outage;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use classify::{is_busy, is_unavailable, is_unique_violation};
pub use outage::Outage;

/// The configuration key every service reads its database URL from; errors
/// about the URL name it.
pub const URL_KEY: &str = "database.url";

/// A service's database: a pool on one of the two engines; cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
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
    /// `sqlite:…` or `postgres:…` / `postgresql:…`; anything else is `None`.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }
}

/// How large a pool is and how long a caller waits for one of its
/// connections before the call fails with `PoolTimedOut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl PoolSettings {
    /// `max_connections` with the usual 3 s acquire timeout.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A database URL that cannot be used: an unknown scheme, or one the driver
/// cannot parse. Names the setting ([`URL_KEY`]), never the URL (it may hold
/// a password).
#[derive(Debug, thiserror::Error)]
#[error("{URL_KEY}: {reason}")]
pub struct UrlError {
    reason: String,
    #[source]
    source: Option<sqlx::Error>,
}

impl UrlError {
    fn scheme(expected: &str) -> Self {
        Self {
            reason: format!("must start with {expected}"),
            source: None,
        }
    }

    fn unparsable(engine: &str, e: sqlx::Error) -> Self {
        Self {
            reason: format!("not a valid {engine} URL: {e}"),
            source: Some(e),
        }
    }

    /// The configuration key at fault, [`URL_KEY`].
    pub fn key(&self) -> &'static str {
        URL_KEY
    }

    /// What is wrong with the URL, without the key.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Db {
    /// A lazy pool on `url` (`sqlite://path/to/file.db` or `postgres://…`)
    /// holding up to `max_connections`; PostgreSQL sessions carry
    /// `application_name`. Fails only for an unusable URL: nothing is
    /// opened until first use ([`Db::ping`] checks reachability).
    ///
    /// SQLite: the file is created if missing; WAL journal, `synchronous =
    /// NORMAL`, foreign keys enforced, and a writer waits up to 5 s for the
    /// write lock before `SQLITE_BUSY`.
    pub fn connect(
        url: &str,
        max_connections: u32,
        application_name: &str,
    ) -> Result<Self, UrlError> {
        Self::connect_with(url, application_name, PoolSettings::new(max_connections))
    }

    /// [`Db::connect`] with other pool settings.
    pub fn connect_with(
        url: &str,
        application_name: &str,
        pool: PoolSettings,
    ) -> Result<Self, UrlError> {
        match Backend::of_url(url) {
            Some(Backend::Sqlite) => sqlite_pool(url, pool).map(Self::Sqlite),
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| UrlError::unparsable("PostgreSQL", e))?
                    .application_name(application_name);
                Ok(Self::Postgres(
                    PgPoolOptions::new()
                        .max_connections(pool.max_connections)
                        .acquire_timeout(pool.acquire_timeout)
                        .connect_lazy_with(options),
                ))
            }
            None => Err(UrlError::scheme("sqlite:// or postgres://")),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations of this backend that have not run yet.
    ///
    /// The pool keeps retrying a server that refuses connections until its
    /// acquire timeout and then only says `PoolTimedOut`; a migration (a Job,
    /// a start-up) then tries one connection of its own, so the error says
    /// why (`Connection refused`) instead.
    pub async fn migrate(
        &self,
        sqlite: &Migrator,
        postgres: &Migrator,
    ) -> Result<(), MigrateError> {
        let result = match self {
            Self::Sqlite(pool) => sqlite.run(pool).await,
            Self::Postgres(pool) => postgres.run(pool).await,
        };
        match result {
            Err(MigrateError::Execute(sqlx::Error::PoolTimedOut)) => {
                Err(MigrateError::Execute(self.why_no_connection().await))
            }
            other => other,
        }
    }

    /// After the pool timed out: the error of one direct connection attempt,
    /// or `PoolTimedOut` if it succeeds (or hangs as long as the pool waited).
    async fn why_no_connection(&self) -> sqlx::Error {
        match self {
            Self::Sqlite(pool) => connect_error(pool).await,
            Self::Postgres(pool) => connect_error(pool).await,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Why `pool` cannot open a connection: one attempt outside it, bounded by
/// its acquire timeout.
async fn connect_error<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> sqlx::Error {
    use sqlx::ConnectOptions;
    let options = pool.connect_options();
    match tokio::time::timeout(pool.options().get_acquire_timeout(), options.connect()).await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) | Err(_) => sqlx::Error::PoolTimedOut,
    }
}

/// A lazy SQLite pool on `url` (`sqlite://…` only) with the settings of
/// [`Db::connect`], for a store that has no PostgreSQL side.
pub fn sqlite_pool(url: &str, pool: PoolSettings) -> Result<SqlitePool, UrlError> {
    if Backend::of_url(url) != Some(Backend::Sqlite) {
        return Err(UrlError::scheme("sqlite://"));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| UrlError::unparsable("SQLite", e))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(pool.max_connections)
        .acquire_timeout(pool.acquire_timeout)
        .connect_lazy_with(options))
}

/// Calls `$sql::sqlite::$f(pool, args…)` or `$sql::postgres::$f(pool, args…)`,
/// whichever matches the pool of `$db` (a [`Db`]), and awaits it.
///
/// ```text
/// dispatch!(self.db, sql::get_user(id))
/// ```
///
/// `$sql` is the store's module holding one `sqlite` and one `postgres`
/// module with the same functions, each taking the pool first. A macro
/// rather than a method taking two closures: the arguments are written once,
/// and each arm is a plain call, so nothing is boxed.
#[macro_export]
macro_rules! dispatch {
    ($db:expr, $sql:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match &$db {
            $crate::Db::Sqlite(pool) => $sql::sqlite::$f(pool, $($arg),*).await,
            $crate::Db::Postgres(pool) => $sql::postgres::$f(pool, $($arg),*).await,
        }
    };
}

#[cfg(test)]
mod tests;
