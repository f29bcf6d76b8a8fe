//! Bad input gets the right 4xx problem document, never a panic.

use crate::{assert_problem, spawn_store};

#[tokio::test]
async fn malformed_and_unknown_product_ids() {
    let store = spawn_store().await;
    let body = assert_problem(store.get("/api/v1/products/not-a-uuid").await, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not a product id"),
        "{body}"
    );
    let body = assert_problem(
        store
            .get("/api/v1/products/01920000-0000-7000-8000-000000000000")
            .await,
        404,
    )
    .await;
    assert_eq!(body["type"], "https://emporium.example/problems/not-found");
    assert_problem(store.get("/api/v1/products/%00%ff").await, 400).await;
}

#[tokio::test]
async fn page_limits_out_of_bounds_or_not_numbers() {
    let store = spawn_store().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=10000",
        "limit=-1",
        "limit=abc",
        "limit=99999999999999999999",
    ] {
        let body = assert_problem(store.get(&format!("/api/v1/products?{query}")).await, 400).await;
        assert!(
            body["detail"].as_str().unwrap().contains("limit"),
            "{query}: {body}"
        );
    }
    assert_eq!(store.get("/api/v1/products?limit=100").await.status(), 200);
}

#[tokio::test]
async fn bad_cursors_searches_and_categories() {
    let store = spawn_store().await;
    for query in [
        "cursor=garbage",
        "cursor=p1.AAAA",
        "q=",
        "q=%20%20",
        &format!("q={}", "x".repeat(201)),
        "category=NOT%20A%20SLUG",
    ] {
        assert_problem(store.get(&format!("/api/v1/products?{query}")).await, 400).await;
    }
}

#[tokio::test]
async fn unknown_or_repeated_query_parameters_are_rejected() {
    let store = spawn_store().await;
    let body = assert_problem(store.get("/api/v1/products?catgory=kitchen").await, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("catgory"),
        "{body}"
    );
    assert_problem(store.get("/api/v1/products?limit=1&limit=2").await, 400).await;
}

#[tokio::test]
async fn oversized_requests_are_refused_before_any_work() {
    let store = spawn_store().await;
    let big_body = store
        .http
        .get(store.gateway.url("/api/v1/products"))
        .body(vec![b'x'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_problem(big_body, 413).await;
    let long_uri = format!("/api/v1/products?q={}", "a".repeat(5000));
    assert_problem(store.get(&long_uri).await, 414).await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let store = spawn_store().await;
    assert_problem(store.get("/api/v1/nothing-here").await, 404).await;
    let put = store
        .http
        .put(store.gateway.url("/api/v1/products"))
        .send()
        .await
        .unwrap();
    assert_problem(put, 405).await;
    let delete = store
        .http
        .delete(store.gateway.url("/api/v1/categories"))
        .send()
        .await
        .unwrap();
    assert_problem(delete, 405).await;
}
