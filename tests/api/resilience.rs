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

/// Calls of `method` a service has answered.
async fn served(service: &emporium_testkit::Running, method: &str) -> f64 {
    let series = format!("grpc_server_requests_total{{service=\"catalog\",method=\"{method}\"");
    service.metric(&series).await.unwrap()
}

/// `n` GETs of `path`, eight at a time; the statuses seen.
async fn reads(gateway: &emporium_testkit::Running, path: &str, n: usize) -> Vec<u16> {
    let http = reqwest::Client::new();
    let url = gateway.url(path);
    let tasks = (0..8).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..n / 8 {
                let response = http.get(&url).send().await.unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    });
    let mut all = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        all.extend(task.await.unwrap());
    }
    all
}

/// Two catalog replicas on 127.0.0.2 and 127.0.0.3 behind the name
/// `catalog.test`, one database; the port is picked by the first.
async fn two_catalogs(db: &TestDb) -> (u16, emporium_testkit::Running, emporium_testkit::Running) {
    for _ in 0..20 {
        let a = emporium_testkit::spawn_catalog_on(db, "127.0.0.2:0".parse().unwrap(), table(&[]))
            .await
            .unwrap();
        let port = a.addr.port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 3], port));
        if let Ok(b) = emporium_testkit::spawn_catalog_on(db, addr, table(&[])).await {
            return (port, a, b);
        }
        a.stop().await.unwrap();
    }
    panic!("no port free on both addresses");
}

const LIST_CATEGORIES: &str = "/emporium.catalog.v1.CatalogService/ListCategories";

#[tokio::test]
async fn two_catalogs_behind_one_name_share_the_reads_and_losing_one_fails_none() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    emporium_testkit::seed_catalog(&db, emporium_testkit::SEED_CATALOG)
        .await
        .unwrap();
    let (port, a, b) = two_catalogs(&db).await;
    let names = emporium_chassis::client::StaticResolver::new();
    names.set(
        "catalog.test",
        [[127, 0, 0, 2].into(), [127, 0, 0, 3].into()],
    );
    let gateway = emporium_testkit::spawn_gateway_resolving(
        &format!("http://catalog.test:{port}"),
        emporium_chassis::client::Resolver::new(names),
        crate::uncached(),
    )
    .await
    .unwrap();

    let statuses = reads(&gateway, "/api/v1/categories", 400).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (on_a, on_b) = (
        served(&a, LIST_CATEGORIES).await,
        served(&b, LIST_CATEGORIES).await,
    );
    assert_eq!(on_a + on_b, 400.0);
    for n in [on_a, on_b] {
        assert!((100.0..=300.0).contains(&n), "split {on_a}/{on_b}");
    }

    // One replica goes away while reads go on: none of them fails.
    let traffic = tokio::spawn({
        let url = gateway.url("/api/v1/categories");
        async move {
            let http = reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..200 {
                statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
            }
            statuses
        }
    });
    b.stop().await.unwrap();
    let during = traffic.await.unwrap();
    let after = reads(&gateway, "/api/v1/categories", 200).await;
    assert!(
        during.iter().chain(&after).all(|s| *s == 200),
        "during {during:?}, after {after:?}"
    );
}

#[tokio::test]
async fn when_every_catalog_is_failing_reads_are_refused_at_once_with_retry_after() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let catalog = spawn_catalog_with(&db, table(&[])).await.unwrap();
    let gateway = spawn_gateway_with(&catalog.base_url(), table(&[]))
        .await
        .unwrap();
    catalog.stop().await.unwrap();
    let http = reqwest::Client::new();
    let response = http
        .get(gateway.url("/api/v1/categories"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    // Nothing to wait for: the next call is refused without a connection attempt.
    let started = std::time::Instant::now();
    let response = http
        .get(gateway.url("/api/v1/categories"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 503).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(300));
}

/// The etcd URL for registry tests, or `None` after saying the test is skipped.
fn etcd_url() -> Option<String> {
    let url = std::env::var("EMPORIUM_TEST_ETCD_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED (etcd): set EMPORIUM_TEST_ETCD_URL to run this test against etcd");
    }
    url
}

#[tokio::test]
async fn with_a_registry_replicas_register_when_ready_leave_when_they_drain_and_share_the_reads() {
    let Some(etcd) = etcd_url() else { return };
    let prefix = format!(
        "/emporium-test/{}/",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let registry = [
        ("registry.url", etcd.as_str()),
        ("registry.prefix", prefix.as_str()),
        ("registry.ttl", "2s"),
    ];
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let spawn = |ip: [u8; 4]| {
        emporium_testkit::spawn_catalog_on(
            &db,
            std::net::SocketAddr::from((ip, 0)),
            table(&registry),
        )
    };
    let a = spawn([127, 0, 0, 2]).await.unwrap();
    let b = spawn([127, 0, 0, 3]).await.unwrap();
    let listing = emporium_registry::Registry::connect_lazy(&etcd, Some(&prefix)).unwrap();
    let registered = || async { listing.list("catalog").await.unwrap_or_default() };
    emporium_testkit::poll(std::time::Duration::from_secs(5), || async {
        registered().await.len() == 2
    })
    .await
    .expect("both replicas register once ready");

    // The gateway names the service; the registry, not DNS, says where it is.
    let mut gateway_settings = registry.to_vec();
    gateway_settings.push(("catalog.resolve_interval", "200ms"));
    let mut settings = table(&gateway_settings);
    emporium_chassis::config::merge(&mut settings, crate::uncached());
    let gateway = spawn_gateway_with("http://catalog:50051", settings)
        .await
        .unwrap();
    let statuses = reads(&gateway, "/api/v1/categories", 200).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (on_a, on_b) = (
        served(&a, LIST_CATEGORIES).await,
        served(&b, LIST_CATEGORIES).await,
    );
    assert_eq!(on_a + on_b, 200.0);
    assert!(on_a >= 50.0 && on_b >= 50.0, "split {on_a}/{on_b}");

    // A graceful stop deregisters at once (no waiting for the lease).
    b.stop().await.unwrap();
    assert_eq!(registered().await, vec![a.addr]);
    let statuses = reads(&gateway, "/api/v1/categories", 80).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // A new replica is found through the watch and gets calls.
    let c = spawn([127, 0, 0, 4]).await.unwrap();
    let mut found = false;
    for _ in 0..40 {
        let statuses = reads(&gateway, "/api/v1/categories", 16).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        if served(&c, LIST_CATEGORIES).await > 0.0 {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found, "the new replica never got a call");
}
