//! The load generator as benches and the CLI use it: against a server that
//! stalls (no coordinated omission), against the whole store, and against
//! nothing.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use emporium_loadgen::{Arrival, Error, Journey, Mix, Plan, Slo};
use emporium_testkit::Backend;
use emporium_testkit::system::{SystemOptions, spawn_system};
use tokio::sync::RwLock;

/// A server with a product list and a currency list that answers at once,
/// except while `stall` is held: then every request waits for its release.
async fn stalling_server(stall: Arc<RwLock<()>>) -> String {
    let app = Router::new()
        .route(
            "/api/v1/products",
            get(move || {
                let stall = Arc::clone(&stall);
                async move {
                    let _pass = stall.read().await;
                    axum::Json(serde_json::json!({"items": [{"id": "p1"}]}))
                }
            }),
        )
        .route(
            "/api/v1/currencies",
            get(|| async { axum::Json(serde_json::json!({"items": [{"code": "EUR"}]})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn browse_only(target: &str, arrival: Arrival) -> Plan {
    Plan {
        arrival,
        duration: Duration::from_secs(3),
        mix: Mix(vec![(Journey::Browse, 1)]),
        shoppers: 0,
        ..Plan::new(target)
    }
}

/// Holds the server still for one second, one second into the run.
async fn stall_for_a_second(stall: Arc<RwLock<()>>) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = stall.write().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(held);
}

#[tokio::test]
async fn a_stall_shows_in_the_open_loop_percentiles_but_hides_from_a_closed_loop() {
    let stall = Arc::new(RwLock::new(()));
    let target = stalling_server(Arc::clone(&stall)).await;

    // Open loop, 100 journeys a second: the ~100 meant to start during the
    // one-second stall each count their wait from their intended start, so
    // about a third of all requests took 0..1 s and p90 is ~0.7 s.
    let plan = browse_only(&target, Arrival::Constant { rate: 100.0 });
    let (report, ()) = tokio::join!(
        emporium_loadgen::run(&plan, &[], None),
        stall_for_a_second(Arc::clone(&stall))
    );
    let open = report.unwrap();
    assert_eq!(open.all.failed, 0, "{}", open.table());
    assert!((270..=330).contains(&open.all.requests), "{}", open.table());
    assert!(
        open.all.p90_ms > 500.0,
        "open loop hides the stall:\n{}",
        open.table()
    );
    assert!(open.all.p50_ms < 100.0, "{}", open.table());

    // Closed loop, one user: it waits out the stall in ONE request, so the
    // same stall is one slow sample among hundreds (coordinated omission).
    let plan = browse_only(
        &target,
        Arrival::VirtualUsers {
            users: 1,
            think: Duration::from_millis(10),
        },
    );
    let (report, ()) = tokio::join!(
        emporium_loadgen::run(&plan, &[], None),
        stall_for_a_second(Arc::clone(&stall))
    );
    let closed = report.unwrap();
    assert!(closed.all.max_ms > 500.0, "{}", closed.table());
    assert!(closed.all.p90_ms < 100.0, "{}", closed.table());
}

#[tokio::test]
async fn the_whole_store_takes_every_journey_and_the_gates_judge_the_run() {
    let Some(system) = spawn_system(SystemOptions {
        backend: Backend::Sqlite,
        ..SystemOptions::default()
    })
    .await
    .unwrap() else {
        return;
    };
    let plan = Plan {
        arrival: Arrival::Poisson { rate: 40.0 },
        duration: Duration::from_secs(4),
        shoppers: 4,
        seed: 11,
        ..Plan::new(system.gateway.base_url())
    };
    let gates = [
        Slo::parse("errors<1%").unwrap(),
        Slo::parse("rps>=10").unwrap(),
        // Nothing answers in a microsecond: this one must fail.
        Slo::parse("browse:p50<1us").unwrap(),
    ];
    let report = emporium_loadgen::run(&plan, &gates, None).await.unwrap();
    let table = report.table();
    assert_eq!(report.all.failed, 0, "{table}");
    for journey in Journey::ALL {
        assert!(
            report.journeys.contains_key(journey.name()),
            "{} missing:\n{table}",
            journey.name()
        );
    }
    let checkouts = report.routes["POST /api/v1/checkout"].requests;
    assert!(checkouts > 0, "{table}");
    // Every answered checkout is counted as placed, declined or out of stock.
    let outcomes: u64 = report
        .outcomes
        .iter()
        .filter(|(k, _)| k.starts_with("checkout: "))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(outcomes, checkouts, "{table}");
    assert!(
        report
            .outcomes
            .get("checkout: placed")
            .is_some_and(|n| *n > 0),
        "{table}"
    );
    let verdicts: Vec<bool> = report.slos.iter().map(|v| v.ok).collect();
    assert_eq!(verdicts, [true, true, false], "{table}");
    assert!(!report.passed());
    assert!(table.contains("FAIL browse:p50<1us"), "{table}");
    // The JSON report carries the same figures.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["all"]["requests"], report.all.requests);
    assert_eq!(json["slos"][2]["ok"], false);
}

#[tokio::test]
async fn an_unreachable_target_is_an_error_before_any_load() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let plan = Plan::new(format!("http://{closed}"));
    let error = emporium_loadgen::run(&plan, &[], None).await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains(&closed.to_string()), "{error}");
}

#[tokio::test]
async fn a_plan_that_cannot_run_is_refused() {
    let plan = Plan {
        arrival: Arrival::Constant { rate: 0.0 },
        ..Plan::new("http://127.0.0.1:9")
    };
    let error = emporium_loadgen::run(&plan, &[], None).await.unwrap_err();
    assert!(error.to_string().contains("rate"), "{error}");
    let plan = Plan {
        shoppers: 0,
        ..Plan::new("http://127.0.0.1:9")
    };
    let error = emporium_loadgen::run(&plan, &[], None).await.unwrap_err();
    assert!(error.to_string().contains("shopper"), "{error}");
}

#[tokio::test]
async fn journeys_dropped_because_too_many_are_in_flight_fail_the_run() {
    let stall = Arc::new(RwLock::new(()));
    let target = stalling_server(Arc::clone(&stall)).await;
    let plan = Plan {
        max_in_flight: 5,
        ..browse_only(&target, Arrival::Constant { rate: 100.0 })
    };
    let gates = [Slo::parse("errors<1%").unwrap()];
    let (report, ()) = tokio::join!(
        emporium_loadgen::run(&plan, &gates, None),
        stall_for_a_second(Arc::clone(&stall))
    );
    let report = report.unwrap();
    assert!(report.dropped > 50, "{}", report.table());
    assert!(!report.passed(), "{}", report.table());
    assert!(
        report.table().contains("FAIL no journey dropped"),
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn a_gate_on_an_unknown_journey_or_route_is_refused_before_any_load() {
    let plan = Plan::new("http://127.0.0.1:9");
    let gate = Slo::parse("chekout:p99<50ms").unwrap();
    let error = emporium_loadgen::run(&plan, &[gate], None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`chekout` is not `all`, a journey"),
        "{error}"
    );
}
