//! The public API end to end: HTTP → gateway → gRPC → catalog → database,
//! over real sockets, one integration binary with a module per concern.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod bad_input;
mod browse;
mod cache;
mod edge;
mod limits;
mod observability;
mod resilience;

use emporium_testkit::{Backend, Running, SEED_CATALOG, TestDb, spawn_catalog, spawn_gateway};

/// A seeded catalog behind a gateway. Fields drop in reverse: gateway, catalog, database.
#[derive(Debug)]
pub struct Store {
    pub gateway: Running,
    pub catalog: Running,
    pub db: TestDb,
    pub http: reqwest::Client,
}

impl Store {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.gateway.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json body")
    }
}

/// The seed catalog on SQLite, or on PostgreSQL when the backend is named
/// and configured.
pub async fn spawn_store_on(backend: Backend) -> Option<Store> {
    let db = TestDb::new(backend).await.expect("database")?;
    emporium_testkit::seed_catalog(&db, SEED_CATALOG)
        .await
        .expect("seed");
    let catalog = spawn_catalog(&db).await.expect("catalog");
    let gateway = spawn_gateway(&catalog.base_url()).await.expect("gateway");
    Some(Store {
        gateway,
        catalog,
        db,
        http: reqwest::Client::new(),
    })
}

pub async fn spawn_store() -> Store {
    spawn_store_on(Backend::Sqlite)
        .await
        .expect("sqlite is always available")
}

/// Gateway settings with its response cache off, for tests that count the
/// calls reads make upstream.
pub fn uncached() -> emporium_chassis::config::Table {
    let mut cache = emporium_chassis::config::Table::new();
    cache.insert("enabled".into(), false.into());
    let mut settings = emporium_chassis::config::Table::new();
    settings.insert("cache".into(), cache.into());
    settings
}

/// Asserts a problem+json answer with `status`, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status(),
        status,
        "{:?}",
        response.url().to_string()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://emporium.example/problems/"),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}
