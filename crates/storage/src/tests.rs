//! Connecting, migrating and dispatching on a SQLite file, and on
//! PostgreSQL when `EMPORIUM_TEST_POSTGRES_URL` names a server where the
//! user may create databases.

use std::path::Path;

use sqlx::Row;
use sqlx::migrate::Migrator;

use super::*;

const POSTGRES_URL_VAR: &str = "EMPORIUM_TEST_POSTGRES_URL";

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A migrator with one migration creating `notes (id, body UNIQUE)`, read
/// from `dir`.
async fn notes_migrator(dir: &Path) -> Result<Migrator, Box<dyn std::error::Error>> {
    std::fs::write(
        dir.join("0001_notes.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);",
    )?;
    Ok(Migrator::new(dir).await?)
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("test.db").display())
}

/// What [`dispatch!`] calls: one function per backend, pool first.
mod sql {
    pub mod sqlite {
        pub async fn engine(_: &sqlx::SqlitePool, suffix: &str) -> String {
            format!("sqlite{suffix}")
        }
    }
    pub mod postgres {
        pub async fn engine(_: &sqlx::PgPool, suffix: &str) -> String {
            format!("postgres{suffix}")
        }
    }
}

#[test]
fn a_url_names_its_backend_by_scheme() {
    assert_eq!(Backend::of_url("sqlite://a.db"), Some(Backend::Sqlite));
    assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
    assert_eq!(Backend::of_url("postgres://h/db"), Some(Backend::Postgres));
    assert_eq!(
        Backend::of_url("postgresql://h/db"),
        Some(Backend::Postgres)
    );
    assert_eq!(Backend::of_url("mysql://h/db"), None);
    assert_eq!(Backend::of_url("no scheme"), None);
}

#[test]
fn an_unknown_scheme_is_an_error_naming_the_setting() {
    let Err(e) = Db::connect("mysql://user:secret@host/db", 4, "emporium-test") else {
        panic!("a mysql:// URL was accepted");
    };
    assert_eq!(e.key(), "database.url");
    assert_eq!(e.reason(), "must start with sqlite:// or postgres://");
    let shown = e.to_string();
    assert!(shown.starts_with("database.url: "), "{shown}");
    assert!(!shown.contains("secret"), "the URL leaked: {shown}");
}

#[test]
fn an_unparsable_url_is_an_error_naming_the_setting() {
    let Err(e) = Db::connect("sqlite://x.db?mode=sideways", 4, "emporium-test") else {
        panic!("a bad SQLite mode was accepted");
    };
    assert_eq!(e.key(), "database.url");
    assert!(e.reason().starts_with("not a valid SQLite URL"), "{e}");
    assert!(std::error::Error::source(&e).is_some());

    let Err(e) = Db::connect("postgres://host:port/db", 4, "emporium-test") else {
        panic!("a bad PostgreSQL port was accepted");
    };
    assert!(e.reason().starts_with("not a valid PostgreSQL URL"), "{e}");
}

#[test]
fn a_sqlite_only_pool_refuses_postgres() {
    let Err(e) = sqlite_pool("postgres://host/db", PoolSettings::new(2)) else {
        panic!("a postgres:// URL was accepted for SQLite");
    };
    assert_eq!(e.key(), "database.url");
    assert_eq!(e.reason(), "must start with sqlite://");
}

#[tokio::test]
async fn connecting_opens_nothing_until_first_use() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::connect(&sqlite_url(dir.path()), 2, "emporium-test")?;
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(!dir.path().join("test.db").exists());
    db.ping().await?;
    assert!(dir.path().join("test.db").exists());
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn a_sqlite_file_gets_the_shared_settings() -> TestResult {
    let dir = tempfile::tempdir()?;
    let Db::Sqlite(pool) = Db::connect(&sqlite_url(dir.path()), 2, "emporium-test")? else {
        panic!("a sqlite:// URL gave another backend");
    };
    let mut conn = pool.acquire().await?;
    let mut pragma = async |name: &str| -> Result<String, sqlx::Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(&mut *conn)
            .await?;
        // Text for journal_mode, numbers for the others.
        row.try_get::<String, _>(0)
            .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
    };
    assert_eq!(pragma("journal_mode").await?, "wal");
    assert_eq!(pragma("synchronous").await?, "1", "NORMAL");
    assert_eq!(pragma("foreign_keys").await?, "1");
    assert_eq!(pragma("busy_timeout").await?, "5000");
    drop(conn);
    pool.close().await;
    Ok(())
}

/// A server that refuses connections makes the pool wait out its acquire
/// timeout and say only `PoolTimedOut`; a migration says why instead.
#[tokio::test]
async fn a_migration_against_a_refusing_server_says_connection_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let migrator = notes_migrator(dir.path()).await?;
    let pool = PoolSettings {
        acquire_timeout: Duration::from_millis(300),
        ..PoolSettings::new(1)
    };
    // Port 1 on loopback: nothing listens there, so the kernel refuses at once.
    let db = Db::connect_with(
        "postgres://emporium@127.0.0.1:1/none",
        "emporium-test",
        pool,
    )?;
    let Err(e) = db.migrate(&migrator, &migrator).await else {
        panic!("migrated a database that cannot be reached");
    };
    let MigrateError::Execute(cause) = &e else {
        panic!("not an execution error: {e}");
    };
    assert!(is_unavailable(cause), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    Ok(())
}

#[tokio::test]
async fn the_acquire_timeout_can_be_changed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pool = PoolSettings {
        acquire_timeout: Duration::from_millis(50),
        ..PoolSettings::new(1)
    };
    let db = Db::connect_with(&sqlite_url(dir.path()), "emporium-test", pool)?;
    let Db::Sqlite(sqlite) = &db else {
        panic!("a sqlite:// URL gave another backend");
    };
    let held = sqlite.acquire().await?;
    let Err(e) = db.ping().await else {
        panic!("a second connection was handed out");
    };
    assert!(is_unavailable(&e), "{e}");
    drop(held);
    db.ping().await?;
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn migrate_runs_the_migrations_of_the_backend_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let migrations = tempfile::tempdir()?;
    let notes = notes_migrator(migrations.path()).await?;
    let none = Migrator::new(tempfile::tempdir()?.path()).await?;
    let db = Db::connect(&sqlite_url(dir.path()), 2, "emporium-test")?;

    db.migrate(&notes, &none).await?;
    db.migrate(&notes, &none).await?;

    let Db::Sqlite(pool) = &db else {
        panic!("a sqlite:// URL gave another backend");
    };
    sqlx::query("INSERT INTO notes (body) VALUES ('hello')")
        .execute(pool)
        .await?;
    let again = sqlx::query("INSERT INTO notes (body) VALUES ('hello')")
        .execute(pool)
        .await;
    let Err(e) = again else {
        panic!("the unique key let a duplicate in");
    };
    assert!(is_unique_violation(&e), "{e}");
    assert!(!is_unavailable(&e));
    assert!(!is_busy(&e));
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn dispatch_calls_the_function_for_the_pool() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::connect(&sqlite_url(dir.path()), 1, "emporium-test")?;
    assert_eq!(dispatch!(db, sql::engine("!")), "sqlite!");
    let pg = Db::connect("postgres://nobody@127.0.0.1:1/none", 1, "emporium-test")?;
    assert_eq!(dispatch!(pg, sql::engine("?")), "postgres?");
    Ok(())
}

#[test]
fn errors_are_classified() {
    assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
    assert!(is_unavailable(&sqlx::Error::PoolClosed));
    assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    assert!(!is_unique_violation(&sqlx::Error::RowNotFound));
    assert!(!is_busy(&sqlx::Error::PoolTimedOut));
}

/// The server named by [`POSTGRES_URL_VAR`], or `None` after saying the
/// test is skipped.
fn postgres_admin_url() -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!(
            "SKIPPED (PostgreSQL): set {POSTGRES_URL_VAR} to run this test against PostgreSQL"
        );
    }
    url
}

/// `url` with its database (path) replaced by `name`, keeping any query.
fn with_database(url: &str, name: &str) -> Option<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://")? + 3;
    let path_start = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[tokio::test]
async fn postgres_connects_names_itself_and_migrates() -> TestResult {
    let Some(admin_url) = postgres_admin_url() else {
        return Ok(());
    };
    let admin = Db::connect(&admin_url, 1, "emporium-storage-test")?;
    let Db::Postgres(admin_pool) = &admin else {
        panic!("{POSTGRES_URL_VAR} is not a postgres:// URL");
    };
    let name = format!("emporium_storage_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin_pool)
        .await?;

    let outcome = async {
        let url = with_database(&admin_url, &name).ok_or("the PostgreSQL URL has no scheme")?;
        let db = Db::connect(&url, 2, "emporium-storage-test")?;
        assert_eq!(db.backend(), Backend::Postgres);
        db.ping().await?;
        let Db::Postgres(pool) = &db else {
            panic!("a postgres:// URL gave another backend");
        };
        let app: String = sqlx::query_scalar("SELECT current_setting('application_name')")
            .fetch_one(pool)
            .await?;
        assert_eq!(app, "emporium-storage-test");

        let migrations = tempfile::tempdir()?;
        let notes = notes_migrator(migrations.path()).await?;
        let none = Migrator::new(tempfile::tempdir()?.path()).await?;
        db.migrate(&none, &notes).await?;
        db.migrate(&none, &notes).await?;
        sqlx::query("INSERT INTO notes (id, body) VALUES (1, 'hello')")
            .execute(pool)
            .await?;
        let Err(e) = sqlx::query("INSERT INTO notes (id, body) VALUES (2, 'hello')")
            .execute(pool)
            .await
        else {
            panic!("the unique key let a duplicate in");
        };
        assert!(is_unique_violation(&e), "{e}");
        assert_eq!(dispatch!(db, sql::engine("")), "postgres");
        db.close().await;
        TestResult::Ok(())
    }
    .await;

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(admin_pool)
    .await?;
    admin.close().await;
    outcome
}

/// Managed PostgreSQL usually insists on TLS: `sslmode=require` (and
/// `verify-full` with `sslrootcert=`) must work.
#[tokio::test]
async fn postgres_sessions_can_require_tls() -> TestResult {
    let Some(admin_url) = postgres_admin_url() else {
        return Ok(());
    };
    let plain = Db::connect(&admin_url, 1, "emporium-storage-test")?;
    let Db::Postgres(pool) = &plain else {
        panic!("{POSTGRES_URL_VAR} is not a postgres:// URL");
    };
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(pool).await?;
    plain.close().await;
    if ssl != "on" {
        eprintln!("SKIPPED (PostgreSQL TLS): the server at {POSTGRES_URL_VAR} has ssl = {ssl}");
        return Ok(());
    }
    let separator = if admin_url.contains('?') { '&' } else { '?' };
    let db = Db::connect(
        &format!("{admin_url}{separator}sslmode=require"),
        1,
        "emporium-storage-test",
    )?;
    let Db::Postgres(pool) = &db else {
        panic!("a postgres:// URL gave another backend");
    };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await?;
    assert!(encrypted, "sslmode=require gave a plain-text session");
    db.close().await;
    TestResult::Ok(())
}
