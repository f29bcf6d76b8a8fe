//! The `emporium` binary as a user runs it: `up` with SIGTERM draining,
//! `import`, `migrate`, and bad configuration.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::process::Stdio;
use std::time::Duration;

use emporium_testkit::{Backend, TestDb, poll};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_emporium");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/catalog.json");

/// The binary with a clean environment (no developer's EMPORIUM_* leaks in).
fn emporium(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("EMPORIUM_LOG_FORMAT", "json")
        .kill_on_drop(true);
    cmd
}

struct Up {
    child: Child,
    api: String,
    gateway_admin: String,
    payment_grpc: String,
}

const SERVICES: [&str; 9] = [
    "CATALOG",
    "ACCOUNTS",
    "CART",
    "CURRENCY",
    "INVENTORY",
    "PAYMENT",
    "SHIPPING",
    "CHECKOUT",
    "NOTIFICATION",
];

/// Starts `emporium up` with every service on a kernel-chosen loopback port
/// (tests run in parallel), in `data_dir` or `--ephemeral`, and reads the
/// addresses from the table it prints.
async fn start_up_in(
    data_dir: Option<&std::path::Path>,
    extra_env: &[(&str, &str)],
) -> (Up, String) {
    let mut cmd = match data_dir {
        Some(dir) => emporium(&["up", "--data-dir", dir.to_str().unwrap()]),
        None => emporium(&["up", "--ephemeral"]),
    };
    cmd.env("EMPORIUM_GATEWAY__HTTP_ADDR", "127.0.0.1:0")
        .env("EMPORIUM_GATEWAY__ADMIN_ADDR", "127.0.0.1:0");
    for service in SERVICES {
        // Notification has no API port, only its admin port.
        if service != "NOTIFICATION" {
            cmd.env(format!("EMPORIUM_{service}__GRPC_ADDR"), "127.0.0.1:0");
        }
        cmd.env(format!("EMPORIUM_{service}__ADMIN_ADDR"), "127.0.0.1:0");
    }
    cmd.envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let table = read_table(&mut child).await;
    if !table.contains("Emporium is up") {
        let mut stderr = String::new();
        let _ =
            tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
                .await;
        panic!("emporium up did not start:\n{table}\n{stderr}");
    }
    // Rows read: NAME  SERVES  ADMIN.
    let row = |name: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    let gateway = row("gateway");
    let payment = row("payment");
    let up = Up {
        child,
        api: gateway[1].clone(),
        gateway_admin: gateway[2].clone(),
        payment_grpc: payment[1].replace("grpc://", "http://"),
    };
    (up, table)
}

/// Reads what `up` prints on standard output until its table ends
/// ("Stop: …"), within 60 s.
async fn read_table(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut table = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            table.push_str(&line);
            table.push('\n');
            if line.contains("Stop:") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("emporium up printed its table");
    table
}

async fn start_up(extra_env: &[(&str, &str)]) -> (Up, String) {
    start_up_in(None, extra_env).await
}

fn in_flight(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("http_server_requests_in_flight{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn up_serves_the_seeded_catalog_and_lists_its_services() {
    let (mut up, table) = start_up(&[]).await;
    assert!(
        table.contains("gateway") && table.contains("catalog") && table.contains("Emporium is up"),
        "{table}"
    );
    let page: serde_json::Value = reqwest::get(format!("{}/api/v1/products", up.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    assert!(page["next_cursor"].is_string());
    up.child.start_kill().unwrap();
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    // Every catalog call takes 1.5 s, so the request is surely in flight when the signal lands.
    let (mut up, _) = start_up(&[
        ("EMPORIUM_CATALOG__FAULTS__LATENCY", "1500ms"),
        ("EMPORIUM_GATEWAY__CATALOG__TIMEOUT", "5s"),
    ])
    .await;
    let http = reqwest::Client::new();
    let request = tokio::spawn(http.get(format!("{}/api/v1/categories", up.api)).send());
    let metrics_url = format!("{}/metrics", up.gateway_admin);
    poll(Duration::from_secs(10), || async {
        let text = http
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        in_flight(&text) == 1
    })
    .await
    .expect("the request is in flight");

    let pid = up.child.id().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // While it drains, the gateway says it is not ready.
    let readyz = format!("{}/readyz", up.gateway_admin);
    poll(Duration::from_secs(5), || async {
        matches!(http.get(&readyz).send().await, Ok(r) if r.status() == 503)
    })
    .await
    .expect("readiness goes false while draining");

    let response = request
        .await
        .unwrap()
        .expect("the in-flight request got an answer");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 6);

    let status = tokio::time::timeout(Duration::from_secs(30), up.child.wait())
        .await
        .expect("exited")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_bad_setting_exits_64_naming_the_key() {
    let output = emporium(&["up", "--ephemeral"])
        .env("EMPORIUM_GATEWAY__HTTP_ADDR", "everywhere")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gateway.http_addr"), "{stderr}");

    // A rate limit that makes no sense stops the gateway before it binds.
    for (var, value, key) in [
        (
            "EMPORIUM_GATEWAY__RATE_LIMIT__READ__REQUESTS",
            "0",
            "gateway.rate_limit.read.requests",
        ),
        (
            "EMPORIUM_GATEWAY__RATE_LIMIT__BACKEND",
            "redis",
            "gateway.rate_limit.redis.url",
        ),
    ] {
        let output = emporium(&["serve", "gateway"])
            .env(var, value)
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{var}={value}: {stderr}");
    }

    let output = emporium(&["migrate"])
        .env("EMPORIUM_CATALOG__DATABSE__URL", "x")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `databse`"), "{stderr}");
}

#[tokio::test]
async fn import_loads_a_catalog_file_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let first = emporium(&["import", "--data-dir", data_dir, "catalog", SEED])
        .output()
        .await
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("30 created, 0 updated, 0 unchanged"));
    let second = emporium(&["import", "--data-dir", data_dir, "catalog", SEED])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&second.stderr).contains("0 created, 0 updated, 30 unchanged"));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"products":[{"sku":"x","name":"n","price":{"minor":1,"currency":"USD"},"categories":["a1"],"image":"/a.jpg"}]}"#).unwrap();
    let failed = emporium(&[
        "import",
        "--data-dir",
        data_dir,
        "catalog",
        bad.to_str().unwrap(),
    ])
    .output()
    .await
    .unwrap();
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("products[0].sku"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
}

#[tokio::test]
async fn migrate_and_import_work_against_every_backend() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await.unwrap() else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let mut cmd = emporium(args);
            cmd.env("EMPORIUM_CATALOG__DATABASE__URL", db.url())
                .env("EMPORIUM_DATA_DIR", dir.path());
            cmd
        };
        let migrate = run(&["migrate", "catalog"]).output().await.unwrap();
        assert!(
            migrate.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
        let import = run(&["import", "catalog", SEED]).output().await.unwrap();
        assert!(
            import.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&import.stderr)
        );
        assert!(String::from_utf8_lossy(&import.stderr).contains("30 created"));
    }
}

/// `emporium migrate` on a fresh machine: every service with a database, no
/// settings needed (only the database section counts; accounts wants no key).
#[tokio::test]
async fn migrate_needs_no_settings_and_covers_every_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = emporium(&["migrate", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for service in [
        "catalog",
        "accounts",
        "cart",
        "inventory",
        "payment",
        "shipping",
        "checkout",
        "notification",
    ] {
        assert!(
            stderr.contains(&format!("{service}: migrations applied")),
            "{service}: {stderr}"
        );
        assert!(
            dir.path().join(format!("{service}.db")).exists(),
            "{service}"
        );
    }
    // A bad database setting is still a configuration error naming the key.
    let bad = emporium(&[
        "migrate",
        "accounts",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .env("EMPORIUM_ACCOUNTS__DATABASE__MAX_CONNECTIONS", "many")
    .output()
    .await
    .unwrap();
    assert_eq!(bad.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("accounts.database.max_connections"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// A database that cannot be opened fails the command with one line that
/// names the cause once, though several layers of the error chain repeat it.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_reported_once() {
    let out = emporium(&["migrate", "catalog"])
        .env(
            "EMPORIUM_CATALOG__DATABASE__URL",
            "sqlite:///nonexistent/emporium/catalog.db",
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("emporium: catalog"), "{stderr}");
    assert_eq!(
        last.matches("unable to open database file").count(),
        1,
        "{last}"
    );
}

/// A real crash: the whole process exits right after the charge is recorded.
/// Started again on the same data directory, checkout finishes the order:
/// one charge, stock taken once, cart cleared.
#[tokio::test]
async fn a_process_killed_after_the_charge_finishes_the_order_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Short deadlines so the abandoned saga's lease (which must outlast them) expires quickly.
    let quick = [
        ("EMPORIUM_CHECKOUT__SAGA__LEASE", "3s"),
        ("EMPORIUM_CHECKOUT__PAYMENT__TIMEOUT", "1s"),
        ("EMPORIUM_CHECKOUT__INVENTORY__TIMEOUT", "1s"),
        ("EMPORIUM_CHECKOUT__SAGA__RECOVERY_INTERVAL", "200ms"),
    ];
    let mut crashing = quick.to_vec();
    crashing.push(("EMPORIUM_CHECKOUT__SAGA__EXIT_AFTER", "charged"));
    let (mut up, _) = start_up_in(Some(dir.path()), &crashing).await;
    let http = reqwest::Client::new();
    let api = up.api.clone();
    let email = "crash@example.com";
    let auth =
        serde_json::json!({"email": email, "password": "correct horse battery", "name": "Crash"});
    assert_eq!(
        http.post(format!("{api}/api/v1/auth/signup"))
            .json(&auth)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let credentials = serde_json::json!({"email": email, "password": "correct horse battery"});
    let login: serde_json::Value = http
        .post(format!("{api}/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let page: serde_json::Value = http
        .get(format!("{api}/api/v1/products?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = page["items"][0]["id"].as_str().unwrap().to_owned();
    let added = http
        .post(format!("{api}/api/v1/cart/items"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"product_id": product, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let body = serde_json::json!({
        "currency": "EUR",
        "shipping_address": {"name": "C", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country_code": "DE"},
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    });
    let checkout = http
        .post(format!("{api}/api/v1/checkout"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "crash-1")
        .json(&body)
        .send()
        .await;
    assert!(
        checkout.is_err(),
        "the process died mid-request: {checkout:?}"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), up.child.wait())
        .await
        .expect("exited")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(70),
        "the configured fault point exited the process"
    );

    // Start again on the same data directory, without the fault.
    let (mut again, _) = start_up_in(Some(dir.path()), &quick).await;
    let api = again.api.clone();
    let orders_url = format!("{api}/api/v1/orders");
    poll(Duration::from_secs(30), || async {
        let orders: serde_json::Value = http
            .get(&orders_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orders["items"][0]["status"] == "placed"
    })
    .await
    .expect("the order is placed after the restart");
    let orders: serde_json::Value = http
        .get(&orders_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 1);
    let order_id = orders["items"][0]["id"].as_str().unwrap().to_owned();
    let mut payment =
        emporium_api::payment::v1::payment_service_client::PaymentServiceClient::connect(
            again.payment_grpc.clone(),
        )
        .await
        .unwrap();
    let charges = payment
        .list_charges(emporium_api::payment::v1::ListChargesRequest {
            idempotency_key_prefix: order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .charges;
    assert_eq!(charges.len(), 1, "never two charges");
    poll(Duration::from_secs(10), || async {
        let cart: serde_json::Value = http
            .get(format!("{api}/api/v1/cart"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cart["item_count"] == 0
    })
    .await
    .expect("the cart is cleared");
    // A retry of the customer's request gets the recovered order.
    let retried = http
        .post(format!("{api}/api/v1/checkout"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "crash-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 201);
    assert_eq!(
        retried.json::<serde_json::Value>().await.unwrap()["id"],
        order_id.as_str()
    );
    again.child.start_kill().unwrap();
    again.child.wait().await.unwrap();

    // The sales report of the last day counts the recovered order once, at its total.
    let report = emporium(&[
        "report",
        "sales",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ])
    .output()
    .await
    .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let eur = &report["currencies"][0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(
        (eur["placed"].as_u64(), eur["failed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        eur["revenue_minor"],
        orders["items"][0]["total"]["amount_minor"]
    );
    assert_eq!(report["top_products"][0]["units"], 2);
    // A window that ends before the order holds nothing.
    let before = emporium(&[
        "report",
        "sales",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--until",
        "2020-01-01T00:00:00Z",
    ])
    .output()
    .await
    .unwrap();
    assert!(before.status.success());
    assert!(String::from_utf8_lossy(&before.stdout).contains("(no orders)"));
}

#[tokio::test]
async fn events_tooling_lists_streams_consumers_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    for (what, header) in [
        ("streams", "STREAM"),
        ("consumers", "CONSUMER"),
        ("dead-letters", "ATTEMPTS"),
    ] {
        let output = emporium(&["events", "--data-dir", data_dir, what])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(header),
            "{what}"
        );
    }
    let replay = emporium(&["events", "--data-dir", data_dir, "replay", "424242"])
        .output()
        .await
        .unwrap();
    assert!(
        !replay.status.success(),
        "replaying a dead letter that does not exist fails"
    );
}

#[tokio::test]
async fn loadgen_judges_its_gates_by_exit_status_and_explains_bad_input() {
    // Warnings only: nobody reads up's log pipe after start-up, and a full
    // pipe would stall the store under load.
    let (mut up, _) = start_up(&[("EMPORIUM_LOG", "warn")]).await;
    let run = |slo: &'static str| {
        let mut cmd = emporium(&[
            "loadgen",
            "--target",
            &up.api,
            "--rate",
            "20",
            "--duration",
            "2s",
            "--shoppers",
            "2",
            "--slo",
            "errors<1%",
            "--slo",
            slo,
            "--json",
            "-",
        ]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.output()
    };
    // Every gate holds: exit 0; JSON alone on stdout, the table on stderr.
    let out = run("all:p99<30s").await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("ok   all:p99<30s"), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["all"]["requests"].as_u64().unwrap() > 10, "{json}");
    assert_eq!(json["all"]["failed"], 0, "{json}");
    // One gate fails: exit 3 and the report says which.
    let out = run("browse:p50<1us").await.unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAIL browse:p50<1us"), "{stderr}");
    assert!(
        stderr.contains("1 of the SLO gates failed"),
        "{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    up.child.start_kill().unwrap();

    // A malformed gate is a usage error; an unreachable target an error.
    let out = emporium(&["loadgen", "--slo", "checkout:p99"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a comparison"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("http://{closed}");
    let out = emporium(&["loadgen", "--target", &target, "--duration", "1s"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be reached"),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_operator_grants_and_revokes_admin_and_sign_up_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let (mut up, _) = start_up_in(Some(dir.path()), &[("EMPORIUM_LOG", "warn")]).await;
    let http = reqwest::Client::new();
    let api = up.api.clone();
    let credentials =
        serde_json::json!({"email": "boss@example.com", "password": "the boss password"});
    let mut signup = credentials.clone();
    signup["name"] = "Boss".into();
    let created = http
        .post(format!("{api}/api/v1/auth/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        created.json::<serde_json::Value>().await.unwrap()["role"],
        "customer"
    );
    let sign_in = || async {
        let token: serde_json::Value = http
            .post(format!("{api}/api/v1/auth/login"))
            .json(&credentials)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        token["access_token"].as_str().unwrap().to_owned()
    };
    let create_product = |token: String, sku: &'static str| {
        let http = http.clone();
        let api = api.clone();
        async move {
            http.post(format!("{api}/api/v1/products"))
                .bearer_auth(token)
                .json(&serde_json::json!({
                    "sku": sku, "name": "Operator's lamp", "price": {"currency": "USD", "amount_minor": 1999},
                    "categories": ["kitchen"], "image_url": "/static/img/products/lamp.jpg"
                }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(create_product(sign_in().await, "OPS-1001").await, 403);

    let accounts = |args: &[&str]| {
        let mut all = vec!["accounts", "--data-dir", &data_dir];
        all.extend_from_slice(args);
        let mut cmd = emporium(&all);
        cmd.env("USER", "ops-alice");
        cmd.output()
    };
    let out = accounts(&["grant-admin", "Boss@Example.com"])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "boss@example.com is now an admin (from the next sign-in)"
    );
    // Audited in the log: who, on which account, what.
    let audit = String::from_utf8_lossy(&out.stderr);
    let line: serde_json::Value = serde_json::from_str(
        audit
            .lines()
            .find(|l| l.contains("emporium::audit"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["action"], "grant-admin");
    assert_eq!(line["email"], "boss@example.com");
    assert_eq!(line["operator"], "ops-alice");
    assert_eq!(line["changed"], true);
    assert_eq!(create_product(sign_in().await, "OPS-1002").await, 201);
    let again = accounts(&["grant-admin", "boss@example.com"])
        .await
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("was an admin already"));

    let out = accounts(&["revoke-admin", "boss@example.com"])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(create_product(sign_in().await, "OPS-1003").await, 403);

    // Bad input: an unknown account, something that is not an e-mail.
    let out = accounts(&["grant-admin", "nobody@example.com"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no account has the e-mail nobody@example.com"),
        "{stderr}"
    );
    // Failed attempts are audited too.
    assert!(
        stderr.contains(r#""outcome":"no such account""#),
        "{stderr}"
    );
    let out = accounts(&["grant-admin", "not-an-email"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an e-mail address"));
    up.child.start_kill().unwrap();
}

/// Listening sockets of the network namespace `pid` lives in: (address, port).
fn listening(pid: u32) -> Vec<(std::net::IpAddr, u16)> {
    let mut out = Vec::new();
    for (file, v6) in [("tcp", false), ("tcp6", true)] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"0A") {
                continue; // not LISTEN
            }
            let (addr, port) = fields[1].split_once(':').unwrap();
            let port = u16::from_str_radix(port, 16).unwrap();
            // The kernel prints each 32-bit word of the address in host (little-endian) order.
            let words: Vec<[u8; 4]> = (0..addr.len() / 8)
                .map(|i| {
                    u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16)
                        .unwrap()
                        .to_le_bytes()
                })
                .collect();
            let ip = if v6 {
                let bytes: Vec<u8> = words.concat();
                std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap())
            } else {
                std::net::IpAddr::from(words[0])
            };
            out.push((ip, port));
        }
    }
    out
}

#[tokio::test]
async fn up_listens_on_loopback_only_with_its_default_ports() {
    // `up` with no address settings at all, alone in a network namespace of
    // its own (so its fixed ports clash with nothing on the machine).
    if std::env::var("EMPORIUM_TEST_NETNS").is_err() {
        eprintln!(
            "SKIPPED (network namespace): set EMPORIUM_TEST_NETNS=1 (needs root, unshare and ip) to run this test"
        );
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--net",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" up --ephemeral",
        BIN,
    ])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap())
    .env("EMPORIUM_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let table = read_table(&mut child).await;
    assert!(table.contains("Emporium is up"), "{table}");
    assert!(table.contains("http://127.0.0.1:8080"), "{table}");
    let sockets = listening(pid);
    let ports: std::collections::BTreeSet<u16> = sockets.iter().map(|(_, port)| *port).collect();
    let expected: Vec<u16> = [8080]
        .into_iter()
        .chain(50051..=50058)
        .chain(9080..=9089)
        .collect();
    for port in &expected {
        assert!(
            ports.contains(port),
            "nothing listens on {port}: {sockets:?}"
        );
    }
    for (ip, port) in &sockets {
        assert!(
            ip.is_loopback(),
            "{ip}:{port} is reachable from other machines:\n{table}"
        );
    }
    child.start_kill().unwrap();
}
