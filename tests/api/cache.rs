//! The gateway's cache of public reads: validators, hits, coalesced misses,
//! stale answers when the catalog fails, and what it never stores.

use std::time::{Duration, Instant};

use emporium_testkit::{
    Backend, Running, SEED_CATALOG, TestDb, seed_catalog, spawn_catalog_with, spawn_gateway_with,
    table,
};

/// A seeded catalog answering after `latency`, and a gateway with `cache` settings.
async fn store(latency: &str, cache: &[(&str, &str)]) -> (TestDb, Running, Running) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    seed_catalog(&db, SEED_CATALOG).await.unwrap();
    let catalog = spawn_catalog_with(&db, table(&[("faults.latency", latency)]))
        .await
        .unwrap();
    let gateway = spawn_gateway_with(&catalog.base_url(), table(cache))
        .await
        .unwrap();
    (db, catalog, gateway)
}

async fn catalog_calls(catalog: &Running) -> f64 {
    catalog
        .metric("grpc_server_requests_total{service=\"catalog\",method=\"/emporium.catalog.v1.CatalogService/")
        .await
        .unwrap()
}

#[tokio::test]
async fn public_reads_carry_validators_hit_the_cache_and_answer_304() {
    let (_db, catalog, gateway) = store("0ms", &[]).await;
    let http = reqwest::Client::new();
    let url = gateway.url("/api/v1/products?limit=5");
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache"], "MISS");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let control = first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(control.starts_with("public, max-age=1"), "{control}");
    let vary = first.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(vary.contains("accept-encoding"), "{vary}");
    let body = first.text().await.unwrap();
    let calls = catalog_calls(&catalog).await;

    let second = http.get(&url).send().await.unwrap();
    assert_eq!(second.headers()["x-cache"], "HIT");
    assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(second.text().await.unwrap(), body);
    assert_eq!(
        catalog_calls(&catalog).await,
        calls,
        "a hit does not call the catalog"
    );

    let revalidated = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["etag"].to_str().unwrap(), etag);
    assert!(revalidated.bytes().await.unwrap().is_empty());
    let weak = http
        .get(&url)
        .header("if-none-match", format!("\"nope\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);
    // A malformed or different tag gets the whole answer.
    for tag in ["garbage", "\"0\"", "\""] {
        let full = http
            .get(&url)
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(full.status(), 200, "{tag}");
        assert_eq!(full.text().await.unwrap(), body, "{tag}");
    }
    // Another query (e.g. a currency) is another entry.
    let euros = http
        .get(gateway.url("/api/v1/products?limit=5&currency=EUR"))
        .send()
        .await
        .unwrap();
    assert_eq!(euros.headers()["x-cache"], "MISS");
}

#[tokio::test]
async fn requests_with_credentials_never_use_the_shared_cache() {
    let (_db, catalog, gateway) = store("0ms", &[]).await;
    let http = reqwest::Client::new();
    let url = gateway.url("/api/v1/categories");
    assert_eq!(
        http.get(&url).send().await.unwrap().headers()["x-cache"],
        "MISS"
    );
    assert_eq!(
        http.get(&url).send().await.unwrap().headers()["x-cache"],
        "HIT"
    );
    let calls = catalog_calls(&catalog).await;
    // With a cookie (or a token) the request goes through, uncached.
    let personal = http
        .get(&url)
        .header("cookie", "session=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(personal.status(), 200);
    assert!(personal.headers().get("x-cache").is_none());
    assert_eq!(catalog_calls(&catalog).await, calls + 1.0);
}

#[tokio::test]
async fn concurrent_misses_for_one_key_make_one_catalog_call() {
    let (_db, catalog, gateway) = store("300ms", &[]).await;
    let http = reqwest::Client::new();
    let url = gateway.url("/api/v1/products?limit=7");
    let before = catalog_calls(&catalog).await;
    let answers = futures_util::future::join_all((0..20).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()["x-cache"].to_str().unwrap().to_owned(),
                r.text().await.unwrap(),
            )
        }
    }))
    .await;
    assert!(
        answers
            .iter()
            .all(|(status, cache, _)| *status == 200 && cache == "MISS"),
        "{answers:?}"
    );
    assert!(answers.windows(2).all(|w| w[0].2 == w[1].2));
    // The list is one ListProducts call (plus currency, none here).
    assert_eq!(catalog_calls(&catalog).await - before, 1.0);
}

#[tokio::test]
async fn a_stale_answer_is_served_while_revalidating_and_when_the_catalog_fails() {
    let (_db, catalog, gateway) = store(
        "0ms",
        &[("cache.ttl", "1s"), ("cache.stale_while_revalidate", "2s")],
    )
    .await;
    let http = reqwest::Client::new();
    let url = gateway.url("/api/v1/categories");
    let fresh = http.get(&url).send().await.unwrap().text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Past its freshness: served at once, fetched again in the background.
    let stale = http.get(&url).send().await.unwrap();
    assert_eq!(stale.headers()["x-cache"], "STALE");
    assert_eq!(stale.text().await.unwrap(), fresh);
    emporium_testkit::poll(Duration::from_secs(5), || async {
        http.get(&url).send().await.unwrap().headers()["x-cache"] == "HIT"
    })
    .await
    .unwrap();
    // The catalog goes away: within stale_if_error (60 s) the last answer stands.
    catalog.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let started = Instant::now();
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-cache"], "STALE");
    assert_eq!(answer.text().await.unwrap(), fresh);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Something never fetched is an error, not a stale answer.
    let never = http
        .get(gateway.url("/api/v1/products?limit=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(never.status(), 503);
}
