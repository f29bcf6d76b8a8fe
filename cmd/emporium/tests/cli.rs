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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
}

/// Starts `emporium up --ephemeral` on free ports and waits for its table.
async fn start_up(extra_env: &[(&str, &str)]) -> (Up, String) {
    let (http, gw_admin, grpc, cat_admin) = (free_port(), free_port(), free_port(), free_port());
    let mut cmd = emporium(&["up", "--ephemeral"]);
    cmd.env("EMPORIUM_GATEWAY__HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env(
            "EMPORIUM_GATEWAY__ADMIN_ADDR",
            format!("127.0.0.1:{gw_admin}"),
        )
        .env("EMPORIUM_CATALOG__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env(
            "EMPORIUM_CATALOG__ADMIN_ADDR",
            format!("127.0.0.1:{cat_admin}"),
        )
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
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
    let up = Up {
        child,
        api: format!("http://127.0.0.1:{http}"),
        gateway_admin: format!("http://127.0.0.1:{gw_admin}"),
    };
    (up, table)
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
