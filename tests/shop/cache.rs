//! The gateway's cache with every service running: nothing personal is
//! shared, and an admin's price change reaches every gateway replica within
//! the stated bound (`cache.ttl + cache.stale_while_revalidate`, 2 s).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{Customer, start};

#[tokio::test]
async fn one_shoppers_cart_is_never_answered_to_another() {
    let system = start().await;
    let (ada, bob) = (
        Customer::sign_up(&system).await,
        Customer::sign_up(&system).await,
    );
    let products: serde_json::Value = reqwest::get(system.gateway.url("/api/v1/products?limit=2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = products["items"][0]["id"].as_str().unwrap();
    ada.add_to_cart(product, 2).await;
    for _ in 0..3 {
        let response = bob.get("/api/v1/cart").send().await.unwrap();
        assert!(
            response.headers().get("x-cache").is_none(),
            "a cart went through the cache"
        );
        let cart: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            cart["items"].as_array().unwrap().len(),
            0,
            "bob sees {cart}"
        );
        let cart = ada.json("/api/v1/cart").await;
        assert_eq!(cart["items"][0]["quantity"], 2);
    }
}

#[tokio::test]
async fn a_price_change_reaches_every_gateway_replica_within_the_freshness_bound() {
    let system = start().await;
    // A second gateway replica in front of the same catalog.
    let replica = emporium_testkit::spawn_gateway(&system.catalog.base_url())
        .await
        .unwrap();
    let products: serde_json::Value = reqwest::get(system.gateway.url("/api/v1/products?limit=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = products["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/products/{id}");
    let http = reqwest::Client::new();
    let price = |base: String| {
        let (http, path) = (http.clone(), path.clone());
        async move {
            let r = http.get(format!("{base}{path}")).send().await.unwrap();
            let cache = r.headers()["x-cache"].to_str().unwrap().to_owned();
            let body: serde_json::Value = r.json().await.unwrap();
            (body["price"]["amount_minor"].as_i64().unwrap(), cache)
        }
    };
    let bases = [system.gateway.base_url(), replica.base_url()];
    // Both replicas hold the old price in their caches.
    let mut old = 0;
    for base in &bases {
        old = price(base.clone()).await.0;
        assert_eq!(price(base.clone()).await, (old, "HIT".to_owned()));
    }
    let admin = system.sign_token("test-admin", "admin", 600).unwrap();
    let new_price = old + 100;
    let changed = http
        .patch(system.gateway.url(&path))
        .bearer_auth(&admin)
        .json(&json!({"price": {"currency": "USD", "amount_minor": new_price}}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let changed_at = Instant::now();
    let bound = Duration::from_secs(2);
    for base in &bases {
        loop {
            if price(base.clone()).await.0 == new_price {
                break;
            }
            assert!(
                changed_at.elapsed() < bound + Duration::from_millis(500),
                "{base} still shows the old price"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
