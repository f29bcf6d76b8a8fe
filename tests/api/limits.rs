//! Rate limits over real sockets: a client over its budget, the clients
//! beside it, forwarded addresses, shadow mode, failed sign-ins per account,
//! and a Redis store that cannot be reached. Every gateway here is its own
//! (limits are per process with the memory backend), with tiny budgets.

use emporium_chassis::config::Table;
use emporium_testkit::accounts::spawn_accounts;
use emporium_testkit::{Backend, Running, TestDb, spawn_gateway_with, table};
use serde_json::{Value, json};

use crate::assert_problem;

/// A gateway with limits switched on by `extra` (dotted keys under
/// `rate_limit`, strings) and `counts` (whole-number ones). No catalog: the
/// limiter answers before any upstream, and `/openapi.json` needs none.
async fn gateway(extra: &[(&str, &str)], counts: &[(&str, i64)]) -> Running {
    spawn_gateway_with("http://127.0.0.1:9", settings(extra, counts))
        .await
        .unwrap()
}

fn settings(extra: &[(&str, &str)], counts: &[(&str, i64)]) -> Table {
    let mut entries = vec![("rate_limit.mode".to_owned(), "enforce".to_owned())];
    entries.extend(
        extra
            .iter()
            .filter(|(k, _)| *k != "trusted_proxies")
            .map(|(k, v)| (format!("rate_limit.{k}"), (*v).to_owned())),
    );
    let borrowed: Vec<(&str, &str)> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut t = table(&borrowed);
    // `trusted_proxies` is a list: comma-separated here.
    if let Some((_, proxies)) = extra.iter().find(|(k, _)| *k == "trusted_proxies") {
        let list: Vec<&str> = proxies.split(',').collect();
        let rate_limit = t["rate_limit"].as_table_mut().unwrap();
        rate_limit.insert("trusted_proxies".into(), list.into());
    }
    for (key, value) in counts {
        let (class, field) = key.split_once('.').unwrap();
        let rate_limit = t["rate_limit"].as_table_mut().unwrap();
        let class = rate_limit
            .entry(class.to_owned())
            .or_insert_with(|| Table::new().into())
            .as_table_mut()
            .unwrap();
        class.insert(field.into(), (*value).into());
    }
    t
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn get(
    http: &reqwest::Client,
    gateway: &Running,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = http.get(gateway.url("/openapi.json"));
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_client_over_its_read_budget_gets_a_429_problem_with_retry_after_and_limit_headers() {
    let gateway = gateway(&[("read.period", "60s")], &[("read.requests", 3)]).await;
    let http = reqwest::Client::new();
    for left in [2, 1, 0] {
        let response = get(&http, &gateway, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("\"read\";q=3;w=60")
        );
        let state = header(&response, "ratelimit").unwrap();
        assert!(
            state.starts_with(&format!("\"read\";r={left};t=")),
            "{state}"
        );
    }
    let refused = get(&http, &gateway, None).await;
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(
        header(&refused, "ratelimit-policy").as_deref(),
        Some("\"read\";q=3;w=60")
    );
    assert!(
        header(&refused, "ratelimit")
            .unwrap()
            .starts_with("\"read\";r=0;t=")
    );
    let body = assert_problem(refused, 429).await;
    assert_eq!(
        body["type"],
        "https://emporium.example/problems/rate-limited"
    );
    // Another class has its own budget: a write is not refused for reads.
    let write = http
        .post(gateway.url("/api/v1/cart/items"))
        .send()
        .await
        .unwrap();
    assert_ne!(write.status(), 429);
    assert_eq!(
        header(&write, "ratelimit-policy")
            .as_deref()
            .map(|p| p.starts_with("\"write\"")),
        Some(true)
    );
    assert_eq!(
        counter(
            &gateway,
            "gateway_rate_limit_exceeded_total",
            &[r#"class="read""#, r#"mode="enforce""#]
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let http = reqwest::Client::new();
    // The test client (127.0.0.1) is a trusted proxy: each forwarded client
    // has a budget of its own, whatever it claimed further left.
    let behind_proxy = gateway(
        &[("trusted_proxies", "127.0.0.1/32")],
        &[("read.requests", 2)],
    )
    .await;
    for _ in 0..2 {
        let ok = get(&http, &behind_proxy, Some("203.0.113.5, 198.51.100.1")).await;
        assert_eq!(ok.status(), 200);
    }
    assert_eq!(
        get(&http, &behind_proxy, Some("198.51.100.1"))
            .await
            .status(),
        429
    );
    assert_eq!(
        get(&http, &behind_proxy, Some("6.6.6.6, 198.51.100.1"))
            .await
            .status(),
        429
    );
    assert_eq!(
        get(&http, &behind_proxy, Some("198.51.100.2"))
            .await
            .status(),
        200
    );
    let forwarded = http
        .get(behind_proxy.url("/openapi.json"))
        .header("forwarded", "for=\"[2001:db8::7]:443\"")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);

    // Not trusted: the headers are ignored and every request is the peer's.
    let direct = gateway(
        &[("trusted_proxies", "10.0.0.0/8")],
        &[("read.requests", 2)],
    )
    .await;
    for (i, client) in ["198.51.100.1", "198.51.100.2"].into_iter().enumerate() {
        assert_eq!(
            get(&http, &direct, Some(client)).await.status(),
            200,
            "request {i}"
        );
    }
    assert_eq!(
        get(&http, &direct, Some("198.51.100.3")).await.status(),
        429
    );
}

#[tokio::test]
async fn shadow_mode_counts_what_it_would_refuse_but_serves_everything() {
    let gateway = gateway(&[("mode", "shadow")], &[("read.requests", 1)]).await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let response = get(&http, &gateway, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "ratelimit"),
            None,
            "shadow mode is invisible"
        );
    }
    assert_eq!(
        counter(
            &gateway,
            "gateway_rate_limit_exceeded_total",
            &[r#"class="read""#, r#"mode="shadow""#]
        )
        .await,
        4.0
    );
}

/// Accounts behind a gateway whose sign-in budget is wide but whose
/// failed-sign-in limit is 3, trusting the test client as a proxy so each
/// attempt can come from another address.
struct SignIn {
    gateway: Running,
    _accounts: Running,
    _db: TestDb,
    http: reqwest::Client,
}

impl SignIn {
    async fn start() -> Self {
        let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
        let accounts = spawn_accounts(&db).await.unwrap();
        let mut overrides = settings(
            &[
                ("trusted_proxies", "127.0.0.1/32"),
                ("login.lockout", "60s"),
            ],
            &[("auth.requests", 100), ("login.max_failures", 3)],
        );
        emporium_chassis::config::merge(
            &mut overrides,
            table(&[("accounts.url", &accounts.base_url())]),
        );
        let gateway = spawn_gateway_with("http://127.0.0.1:9", overrides)
            .await
            .unwrap();
        Self {
            gateway,
            _accounts: accounts,
            _db: db,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value, from: &str) -> reqwest::Response {
        self.http
            .post(self.gateway.url(path))
            .header("x-forwarded-for", from)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, email: &str, password: &str, from: &str) -> reqwest::Response {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
            from,
        )
        .await
    }
}

/// Status, `Retry-After` presence and the problem body with digits blanked
/// (the seconds left may differ by one between two runs).
async fn shape(response: reqwest::Response) -> (u16, bool, String) {
    let status = response.status().as_u16();
    let retry = response.headers().contains_key("retry-after");
    let body = response.text().await.unwrap();
    (
        status,
        retry,
        body.replace(|c: char| c.is_ascii_digit(), "#"),
    )
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_from_any_address_and_an_unknown_account_looks_the_same() {
    let store = SignIn::start().await;
    let created = store
        .post(
            "/api/v1/auth/signup",
            json!({"email": "ann@example.com", "password": "correct horse battery", "name": "Ann"}),
            "192.0.2.1",
        )
        .await;
    assert_eq!(created.status(), 201);

    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        let mut shapes = Vec::new();
        for i in 1..=3 {
            let wrong = store
                .login(email, "wrong password!", &format!("198.51.100.{i}"))
                .await;
            shapes.push(shape(wrong).await);
        }
        // Locked now: even the right password, from yet another address.
        let locked = store
            .login(email, "correct horse battery", "203.0.113.77")
            .await;
        let retry_after: u64 = header(&locked, "retry-after").unwrap().parse().unwrap();
        assert!(
            (59..=60).contains(&retry_after),
            "Retry-After {retry_after}"
        );
        shapes.push(shape(locked).await);
        answers.push(shapes);
    }
    let statuses: Vec<u16> = answers[0].iter().map(|s| s.0).collect();
    assert_eq!(statuses, [401, 401, 401, 429]);
    assert_eq!(
        answers[0], answers[1],
        "a known and an unknown account answer alike"
    );
    assert!(
        answers[0][3].2.contains("rate-limited"),
        "{}",
        answers[0][3].2
    );

    // Another account is not affected; its success signs in.
    let bob = store
        .post(
            "/api/v1/auth/signup",
            json!({"email": "bob@example.com", "password": "correct horse battery", "name": "Bob"}),
            "192.0.2.1",
        )
        .await;
    assert_eq!(bob.status(), 201);
    let ok = store
        .login("Bob@Example.com", "correct horse battery", "192.0.2.1")
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        counter(
            &store.gateway,
            "gateway_login_locked_total",
            &[r#"mode="enforce""#]
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn signed_in_users_are_counted_by_user_id_not_by_address() {
    let store = SignIn::start().await;
    let mut tokens = Vec::new();
    for name in ["cat", "dan"] {
        let email = format!("{name}@example.com");
        let body = json!({"email": email, "password": "correct horse battery", "name": name});
        assert_eq!(
            store
                .post("/api/v1/auth/signup", body, "192.0.2.1")
                .await
                .status(),
            201
        );
        let login: Value = store
            .login(&email, "correct horse battery", "192.0.2.1")
            .await
            .json()
            .await
            .unwrap();
        tokens.push(login["access_token"].as_str().unwrap().to_owned());
    }
    // One address, two users and an anonymous client: three read budgets.
    let me = |token: &str| {
        store
            .http
            .get(store.gateway.url("/api/v1/me"))
            .bearer_auth(token)
            .header("x-forwarded-for", "192.0.2.50")
            .send()
    };
    // Each user's `r=` counts down on its own.
    let first = me(&tokens[0]).await.unwrap();
    assert_eq!(first.status(), 200);
    let r_cat: u32 = remaining(&first);
    let second = me(&tokens[0]).await.unwrap();
    assert_eq!(remaining(&second), r_cat - 1);
    let other = me(&tokens[1]).await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(
        remaining(&other),
        r_cat,
        "another user has a budget of its own"
    );
    let anonymous = store
        .http
        .get(store.gateway.url("/openapi.json"))
        .header("x-forwarded-for", "192.0.2.50")
        .send()
        .await
        .unwrap();
    assert_eq!(
        remaining(&anonymous),
        r_cat,
        "the address has its own budget too"
    );
}

/// The `r=` of a `RateLimit` header.
fn remaining(response: &reqwest::Response) -> u32 {
    let state = header(response, "ratelimit").unwrap();
    let r = state.split(';').find_map(|p| p.strip_prefix("r=")).unwrap();
    r.parse().unwrap()
}

/// The sum of the series of counter `name` whose labels include every one
/// of `labels` (`class="read"`), read from the gateway's `/metrics`.
async fn counter(gateway: &Running, name: &str, labels: &[&str]) -> f64 {
    let text = reqwest::get(gateway.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_redis_fails_open_by_default_with_a_metric() {
    let url = format!("redis://127.0.0.1:{}", closed_port().await);
    let gateway = gateway(
        &[("backend", "redis"), ("redis.url", &url)],
        &[("read.requests", 1)],
    )
    .await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let response = get(&http, &gateway, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit"), None);
    }
    let errors = counter(
        &gateway,
        "gateway_rate_limit_backend_errors_total",
        &[r#"fail_mode="open""#],
    )
    .await;
    assert_eq!(errors, 3.0);
}

#[tokio::test]
async fn an_unreachable_redis_fails_closed_with_a_503_problem_when_configured_so() {
    let url = format!("redis://127.0.0.1:{}", closed_port().await);
    let gateway = gateway(
        &[
            ("backend", "redis"),
            ("redis.url", &url),
            ("fail_mode", "closed"),
        ],
        &[],
    )
    .await;
    let response = get(&reqwest::Client::new(), &gateway, None).await;
    assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));
    assert_problem(response, 503).await;
}

#[tokio::test]
async fn replicas_sharing_redis_share_each_clients_budget() {
    let Some(url) = emporium_testkit::cart::test_redis_url() else {
        return;
    };
    let prefix =
        emporium_testkit::cart::unique_key_prefix().replace("test:cart:", "test:ratelimit:");
    let extra = [
        ("backend", "redis"),
        ("redis.url", url.as_str()),
        ("redis.key_prefix", prefix.as_str()),
        ("fail_mode", "closed"),
    ];
    let one = gateway(&extra, &[("read.requests", 3)]).await;
    let two = gateway(&extra, &[("read.requests", 3)]).await;
    let http = reqwest::Client::new();
    for (i, replica) in [&one, &two, &one].into_iter().enumerate() {
        assert_eq!(get(&http, replica, None).await.status(), 200, "request {i}");
    }
    let refused = get(&http, &two, None).await;
    assert!(header(&refused, "retry-after").is_some());
    assert_problem(refused, 429).await;
}

#[tokio::test]
async fn the_openapi_document_declares_the_429_and_the_limit_headers_on_every_operation() {
    let gateway = gateway(&[], &[]).await;
    let doc: Value = reqwest::get(gateway.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let too_many = &doc["components"]["responses"]["TooManyRequests"];
    for name in ["Retry-After", "RateLimit-Policy", "RateLimit"] {
        assert!(too_many["headers"][name].is_object(), "{name}: {too_many}");
    }
    assert!(too_many["content"]["application/problem+json"].is_object());
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = &operation["responses"];
            assert_eq!(
                responses["429"]["$ref"], "#/components/responses/TooManyRequests",
                "{method} {path}"
            );
            for (status, response) in responses.as_object().unwrap() {
                if status != "429" {
                    assert!(
                        response["headers"]["RateLimit"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(operations > 15, "{operations} operations");
}
