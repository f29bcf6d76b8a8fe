//! What callers see when the catalog is down or slow.

use emporium_testkit::{
    Backend, TestDb, spawn_catalog_with, spawn_gateway, spawn_gateway_with, table,
};

use crate::assert_problem;

#[tokio::test]
async fn a_stopped_catalog_is_a_503_not_a_hang() {
    let store = crate::spawn_store().await;
    let crate::Store {
        gateway,
        catalog,
        db,
        http,
    } = store;
    catalog.stop().await.unwrap();
    // The gateway's deadline is 2 s; a refused connection must not wait for it.
    let response = http
        .get(gateway.url("/api/v1/products"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 503).await;
    assert_eq!(
        body["type"],
        "https://emporium.example/problems/unavailable"
    );
    drop(db);
}

#[tokio::test]
async fn nothing_listening_at_all_is_a_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gateway = spawn_gateway(&dead).await.unwrap();
    let response = reqwest::get(gateway.url("/api/v1/categories"))
        .await
        .unwrap();
    assert_problem(response, 503).await;
}

#[tokio::test]
async fn a_catalog_slower_than_the_deadline_is_a_504() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let catalog = spawn_catalog_with(&db, table(&[("faults.latency", "3s")]))
        .await
        .unwrap();
    let gateway = spawn_gateway_with(&catalog.base_url(), table(&[("catalog.timeout", "100ms")]))
        .await
        .unwrap();
    let response = reqwest::get(gateway.url("/api/v1/categories"))
        .await
        .unwrap();
    let body = assert_problem(response, 504).await;
    assert_eq!(
        body["type"],
        "https://emporium.example/problems/deadline-exceeded"
    );
}
