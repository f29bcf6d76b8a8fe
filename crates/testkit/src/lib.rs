//! Test kit: start any Emporium service in-process on ephemeral ports, and
//! get a fresh database for each test.
//!
//! ```text
//! let db = TestDb::new(Backend::Sqlite).await?.unwrap();
//! let catalog = spawn_catalog(&db).await?;
//! let gateway = spawn_gateway(&catalog.grpc_url()).await?;
//! let body = reqwest::get(gateway.url("/api/v1/products")).await?.text().await?;
//! ```
//!
//! PostgreSQL tests run when `EMPORIUM_TEST_POSTGRES_URL` is set (a server
//! where the user may create databases); otherwise [`TestDb::new`] returns
//! `None` and prints that the test is skipped.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use emporium_catalog::{CatalogConfig, CatalogServer};
use emporium_chassis::config::{Secret, Table};
use emporium_chassis::lifecycle::Stopped;
use emporium_gateway::{GatewayConfig, GatewayServer};

pub mod accounts;
pub mod cart;
pub mod checkout;
pub mod currency;
pub mod inventory;
pub mod notification;
pub mod outage;
pub mod payment;
pub mod shipping;
pub mod system;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "EMPORIUM_TEST_POSTGRES_URL";

/// The database engines a store test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test: a SQLite file in a temporary
/// directory, or a new PostgreSQL database dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh database, or `None` (with a message) when the backend is not
    /// configured on this machine.
    pub async fn new(backend: Backend) -> anyhow::Result<Option<Self>> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Ok(Some(Self {
                    url,
                    backend,
                    cleanup: Cleanup::Dir(dir),
                }))
            }
            Backend::Postgres => {
                let Some(admin_url) = std::env::var(POSTGRES_URL_VAR)
                    .ok()
                    .filter(|s| !s.is_empty())
                else {
                    eprintln!(
                        "SKIPPED (PostgreSQL): set {POSTGRES_URL_VAR} to run this test against PostgreSQL"
                    );
                    return Ok(None);
                };
                let name = format!("emporium_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = connect_pg(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("creating test database {name}"))?;
                let url = with_database(&admin_url, &name)?;
                Ok(Some(Self {
                    url,
                    backend,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }))
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

async fn connect_pg(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {POSTGRES_URL_VAR}"))
}

/// The same server URL with another database name.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base
        .find("://")
        .context("the PostgreSQL URL has no scheme")?
        + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime we may block: use a thread with its own.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let mut conn = connect_pg(&admin_url).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await?;
                    anyhow::Ok(())
                })
            })
            .join();
            if let Ok(Err(e)) = done {
                eprintln!("could not drop test database {}: {e:#}", self.url);
            }
        }
    }
}

/// A service running in this process; stopped (and drained) on drop.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<Stopped>>>,
    /// Files the service uses that go when it does (e.g. its own event log).
    keep: Option<tempfile::TempDir>,
}

impl Running {
    /// `http://127.0.0.1:port` of the service's main port.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A URL on the main port.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the admin port.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Keeps `dir` until the service is dropped.
    pub fn keeping(mut self, dir: Option<tempfile::TempDir>) -> Self {
        self.keep = dir;
        self
    }

    /// Asks the service to stop, as SIGTERM would, without waiting.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the service and waits until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<Stopped> {
        self.stop_in_place().await
    }

    /// Like [`Running::stop`], leaving the (stopped) handle in place.
    pub async fn stop_in_place(&mut self) -> anyhow::Result<Stopped> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(Stopped::Drained),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// The sum of the series on this service's `/metrics` whose line starts
    /// with `series` (e.g. `grpc_client_breaker_state{service="checkout",upstream="payment"}`
    /// or a prefix of it); 0 when none matches.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(self.admin_url("/metrics"))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Runs a built service in the background and waits until its `/readyz`
    /// answers 200. `run` gets the shutdown token.
    pub async fn start<F, Fut>(
        addr: SocketAddr,
        admin_addr: SocketAddr,
        run: F,
    ) -> anyhow::Result<Self>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Stopped>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(shutdown.clone()));
        let running = Self {
            addr,
            admin_addr,
            shutdown,
            task: Some(task),
            keep: None,
        };
        wait_ready(&running).await?;
        Ok(running)
    }
}

/// Test settings every spawned service gets: loopback ports chosen by the
/// kernel, short drain.
pub fn local_base() -> Table {
    let mut base = Table::new();
    base.insert("admin_addr".into(), "127.0.0.1:0".into());
    let mut shutdown = Table::new();
    shutdown.insert("drain_timeout".into(), "5s".into());
    base.insert("shutdown".into(), shutdown.into());
    base
}

/// Loads a service config from the test base plus `overrides`, ignoring the
/// process environment (tests must not depend on a developer's variables).
pub fn test_config<T>(
    load: impl FnOnce(
        Table,
        emporium_chassis::config::Sources<'_>,
    ) -> Result<T, emporium_chassis::config::ConfigError>,
    overrides: Table,
) -> anyhow::Result<T> {
    let mut base = local_base();
    emporium_chassis::config::merge(&mut base, overrides);
    let env = emporium_chassis::config::MapEnv::default();
    Ok(load(
        base,
        emporium_chassis::config::Sources {
            file: None,
            env: &env,
        },
    )?)
}

/// Starts the catalog on `db`, migrated, on ephemeral loopback ports.
pub async fn spawn_catalog(db: &TestDb) -> anyhow::Result<Running> {
    spawn_catalog_with(db, Table::new()).await
}

/// Like [`spawn_catalog`], with extra settings (e.g. `faults.latency`).
pub async fn spawn_catalog_with(db: &TestDb, overrides: Table) -> anyhow::Result<Running> {
    spawn_catalog_on(db, "127.0.0.1:0".parse()?, overrides).await
}

/// Starts the catalog on `db` listening on `grpc_addr` (e.g. one of several
/// replicas on 127.0.0.x sharing a port and a database), with extra settings.
pub async fn spawn_catalog_on(
    db: &TestDb,
    grpc_addr: SocketAddr,
    overrides: Table,
) -> anyhow::Result<Running> {
    let mut config: CatalogConfig = test_config(CatalogConfig::load, overrides)?;
    config.grpc_addr = grpc_addr;
    config.database.url = Some(Secret::new(db.url()));
    let server = CatalogServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}

/// Like [`spawn_gateway_with`], every upstream's name resolved by
/// `resolver` (a [`emporium_chassis::client::StaticResolver`] stands for
/// DNS: no `/etc/hosts` needed).
pub async fn spawn_gateway_resolving(
    catalog_url: &str,
    resolver: emporium_chassis::client::Resolver,
    overrides: Table,
) -> anyhow::Result<Running> {
    let mut base = gateway_base();
    let mut catalog = Table::new();
    catalog.insert("url".into(), catalog_url.into());
    base.insert("catalog".into(), catalog.into());
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: GatewayConfig = test_config(GatewayConfig::load, base)?;
    config.http_addr = "127.0.0.1:0".parse()?;
    for upstream in [
        &mut config.catalog,
        &mut config.accounts,
        &mut config.cart,
        &mut config.currency,
        &mut config.checkout,
    ] {
        upstream.resolver = resolver.clone();
    }
    let server = GatewayServer::build(config)?;
    let (addr, admin_addr) = (server.http_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}

/// Settings every test gateway starts from: rate limits off, so tests of
/// other concerns can send as many requests as they like from one address;
/// tests of the limits switch them on (`rate_limit.mode`).
fn gateway_base() -> Table {
    let mut rate_limit = Table::new();
    rate_limit.insert("mode".into(), "off".into());
    let mut base = Table::new();
    base.insert("rate_limit".into(), rate_limit.into());
    base
}

/// Starts the gateway in front of the catalog at `catalog_url`.
pub async fn spawn_gateway(catalog_url: &str) -> anyhow::Result<Running> {
    spawn_gateway_with(catalog_url, Table::new()).await
}

/// Like [`spawn_gateway`], with extra settings (e.g. a short `catalog.timeout`).
pub async fn spawn_gateway_with(catalog_url: &str, overrides: Table) -> anyhow::Result<Running> {
    let mut base = gateway_base();
    let mut catalog = Table::new();
    catalog.insert("url".into(), catalog_url.into());
    base.insert("catalog".into(), catalog.into());
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: GatewayConfig = test_config(GatewayConfig::load, base)?;
    config.http_addr = "127.0.0.1:0".parse()?;
    let server = GatewayServer::build(config)?;
    let (addr, admin_addr) = (server.http_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}

/// Polls `/readyz` until 200, for at most 10 s.
pub async fn wait_ready(service: &Running) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = service.admin_url("/readyz");
    poll(Duration::from_secs(10), || async {
        matches!(client.get(&url).send().await, Ok(r) if r.status() == 200)
    })
    .await
    .with_context(|| format!("{url} did not report ready"))
}

/// Calls `check` until it returns true or `limit` passes; no fixed sleeps.
pub async fn poll<F, Fut>(limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut backoff = Duration::from_millis(2);
    loop {
        if check().await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("condition not met within {limit:?}");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}

/// A gRPC request carrying `identity`, as the gateway would forward it.
pub fn request_as<T>(
    identity: &emporium_chassis::identity::Identity,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    identity.inject(&mut request);
    request
}

/// An admin identity for tests.
pub fn admin() -> emporium_chassis::identity::Identity {
    emporium_chassis::identity::Identity {
        user_id: "test-admin".into(),
        role: emporium_chassis::identity::Role::Admin,
        email: None,
    }
}

/// A customer identity with a fresh id.
pub fn customer() -> emporium_chassis::identity::Identity {
    emporium_chassis::identity::Identity {
        user_id: uuid::Uuid::now_v7().to_string(),
        role: emporium_chassis::identity::Role::Customer,
        email: None,
    }
}

/// Settings that put a service's event bus on the embedded log at `path`.
pub fn events_log(path: &std::path::Path) -> Table {
    let mut log = Table::new();
    log.insert("path".into(), path.display().to_string().into());
    let mut events = Table::new();
    events.insert("backend".into(), "log".into());
    events.insert("log".into(), log.into());
    let mut t = Table::new();
    t.insert("events".into(), events.into());
    t
}

/// A table from `key = value` pairs, for overrides: `table(&[("faults.latency", "1s")])`.
pub fn table(entries: &[(&str, &str)]) -> Table {
    let mut t = Table::new();
    for (key, value) in entries {
        let path: Vec<&str> = key.split('.').collect();
        let mut current = &mut t;
        for part in &path[..path.len() - 1] {
            current = current
                .entry((*part).to_owned())
                .or_insert_with(|| Table::new().into())
                .as_table_mut()
                .expect("override paths do not mix tables and values");
        }
        current.insert(path[path.len() - 1].to_owned(), (*value).into());
    }
    t
}

/// Loads a catalog data file (JSON) into `db`, migrating it first.
pub async fn seed_catalog(
    db: &TestDb,
    json: &str,
) -> anyhow::Result<emporium_catalog::store::ImportReport> {
    let store = emporium_catalog::Store::connect(db.url(), 2)?;
    store.migrate().await?;
    let data = emporium_catalog::import::parse(json)?;
    let report = store.import(&data.categories, &data.products).await?;
    store.close().await;
    Ok(report)
}

/// The seed catalog shipped in `data/catalog.json`.
pub const SEED_CATALOG: &str = include_str!("../../../data/catalog.json");

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_in_postgres_urls() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
        assert_eq!(
            super::with_database("postgresql://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
