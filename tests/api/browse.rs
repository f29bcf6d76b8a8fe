//! Browsing the catalog through the gateway.

use std::collections::HashSet;

use emporium_testkit::Backend;

use crate::{Store, spawn_store_on};

async fn each_backend(test: impl AsyncFn(&Store)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(store) = spawn_store_on(backend).await {
            test(&store).await;
        }
    }
}

#[tokio::test]
async fn lists_the_seeded_catalog_in_pages_that_cover_every_product_once() {
    each_backend(async |store| {
        let mut seen = Vec::new();
        let mut path = "/api/v1/products?limit=8".to_owned();
        for _ in 0..100 {
            let page = store.json(&path).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 8);
            seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/products?limit=8&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 30);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
    })
    .await;
}

#[tokio::test]
async fn default_page_has_twenty_products_with_every_field() {
    let store = crate::spawn_store().await;
    let page = store.json("/api/v1/products").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    let p = &items[0];
    for field in [
        "id",
        "sku",
        "name",
        "description",
        "image_url",
        "created_at",
        "updated_at",
    ] {
        assert!(
            p[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {p}"
        );
    }
    assert_eq!(p["price"]["currency"], "USD");
    assert!(p["price"]["amount_minor"].as_i64().unwrap() > 0);
    assert!(!p["categories"].as_array().unwrap().is_empty());
    assert!(
        time_is_rfc3339(p["created_at"].as_str().unwrap()),
        "{}",
        p["created_at"]
    );
}

fn time_is_rfc3339(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T') && s.ends_with('Z')
}

#[tokio::test]
async fn filters_by_category_and_searches_case_insensitively() {
    each_backend(async |store| {
        let kitchen = store
            .json("/api/v1/products?category=kitchen&limit=100")
            .await;
        let items = kitchen["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(items.iter().all(|p| {
            p["categories"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "kitchen")
        }));

        let lower = store.json("/api/v1/products?q=travel&limit=100").await;
        let upper = store.json("/api/v1/products?q=TRAVEL&limit=100").await;
        assert_eq!(lower["items"], upper["items"]);
        assert!(lower["items"].as_array().unwrap().len() >= 3);

        let both = store
            .json("/api/v1/products?q=travel&category=outdoor&limit=100")
            .await;
        let narrowed = both["items"].as_array().unwrap();
        assert!(!narrowed.is_empty() && narrowed.len() < lower["items"].as_array().unwrap().len());
    })
    .await;
}

#[tokio::test]
async fn gets_one_product_and_lists_categories_with_counts() {
    let store = crate::spawn_store().await;
    let first = store.json("/api/v1/products?limit=1").await["items"][0].clone();
    let id = first["id"].as_str().unwrap();
    let got = store.json(&format!("/api/v1/products/{id}")).await;
    assert_eq!(got, first);

    let categories = store.json("/api/v1/categories").await;
    let items = categories["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let kitchen = items.iter().find(|c| c["slug"] == "kitchen").unwrap();
    let listed = store
        .json("/api/v1/products?category=kitchen&limit=100")
        .await;
    assert_eq!(
        kitchen["product_count"].as_u64().unwrap() as usize,
        listed["items"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn serves_an_openapi_3_1_document_describing_every_route() {
    let store = crate::spawn_store().await;
    let doc = store.json("/openapi.json").await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/categories",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    let params: Vec<_> = doc["paths"]["/api/v1/products"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(params, ["category", "q", "cursor", "limit", "currency"]);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn json_answers_are_compressed_as_the_client_accepts() {
    use std::io::Read;
    let store = crate::spawn_store().await;
    let url = store.gateway.url("/api/v1/products?limit=20");
    let plain = store.http.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    for (encoding, decode) in [
        (
            "gzip",
            Box::new(|b: &[u8]| {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(b)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }) as Box<dyn Fn(&[u8]) -> Vec<u8>>,
        ),
        (
            "br",
            Box::new(|b: &[u8]| {
                let mut out = Vec::new();
                brotli_decompressor::Decompressor::new(b, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }),
        ),
    ] {
        let response = store
            .http
            .get(&url)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], encoding);
        let vary = response.headers()["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(vary.contains("accept-encoding"), "{vary}");
        let body = response.bytes().await.unwrap();
        assert!(
            body.len() * 2 < plain.len(),
            "{encoding}: {} of {} bytes",
            body.len(),
            plain.len()
        );
        assert_eq!(decode(&body), plain, "{encoding}");
    }
}
