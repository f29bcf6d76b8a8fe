//! W3C trace context flows from the HTTP request into the gRPC call, and
//! every log line of both services carries the trace id. Its own test binary,
//! because it installs the process-wide log subscriber.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emporium_chassis::telemetry::{LogFormat, LogSettings, init_logging_to};
use emporium_testkit::{Backend, SEED_CATALOG, TestDb, poll, spawn_catalog, spawn_gateway};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The `trace_id` of any span a JSON log line was written in.
fn trace_ids(line: &serde_json::Value) -> Vec<String> {
    line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["trace_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn traceparent_reaches_the_catalog_and_every_log_line_carries_it() {
    let logs = Captured::default();
    let writer = logs.clone();
    init_logging_to(
        &LogSettings {
            filter: "info".into(),
            format: LogFormat::Json,
        },
        move || writer.clone(),
    );

    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    emporium_testkit::seed_catalog(&db, SEED_CATALOG)
        .await
        .unwrap();
    let catalog = spawn_catalog(&db).await.unwrap();
    let gateway = spawn_gateway(&catalog.base_url()).await.unwrap();

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .get(gateway.url("/api/v1/categories"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let has = |message: &str| {
        logs.lines()
            .iter()
            .any(|l| l["message"] == message && trace_ids(l).iter().any(|t| t == trace_id))
    };
    poll(Duration::from_secs(5), || async {
        has("request finished") && has("call finished")
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "log lines with trace {trace_id} missing: {:#?}",
            logs.lines()
        )
    });

    // The catalog's span is a child: same trace, a different span id from the caller's.
    let call = logs
        .lines()
        .into_iter()
        .find(|l| l["message"] == "call finished")
        .unwrap();
    let span = call["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["trace_id"] == trace_id)
        .unwrap()
        .clone();
    assert_ne!(span["span_id"], "b7ad6b7169203331");
    assert_eq!(
        span["rpc.method"],
        "/emporium.catalog.v1.CatalogService/ListCategories"
    );

    // Without a traceparent, the gateway starts a trace and still propagates it
    // (another read: the categories are in the gateway's cache by now).
    let before = logs.lines().len();
    reqwest::get(gateway.url("/api/v1/products?limit=1"))
        .await
        .unwrap();
    poll(Duration::from_secs(5), || async {
        let lines = logs.lines();
        let new = &lines[before.min(lines.len())..];
        let gateway_trace = new
            .iter()
            .find(|l| l["message"] == "request finished")
            .and_then(|l| trace_ids(l).pop());
        gateway_trace.is_some_and(|t| {
            new.iter()
                .any(|l| l["message"] == "call finished" && trace_ids(l).contains(&t))
        })
    })
    .await
    .expect("a new trace from the gateway reaches the catalog");
}
