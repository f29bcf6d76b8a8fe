//! Events through a real broker: checkouts keep working while NATS is down
//! (the outbox holds the events) — whether it went away or was never there
//! when the services started — and once it is back every order gets its
//! shipment exactly once. And consumers outlive an outage of their own
//! database: orders placed while shipping's database is away get exactly one
//! shipment and their two e-mails once it is back, nothing is dead-lettered,
//! and the confirmations do not wait for shipping meanwhile.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use emporium_api::shipping::v1 as shipping;
use emporium_api::shipping::v1::shipping_service_client::ShippingServiceClient;
use emporium_testkit::poll;
use emporium_testkit::system::{SystemOptions, nats_events};

use crate::{Backend, Customer, GOOD_CARD, products, start_with};

/// A nats-server of this test's own, on loopback, with JetStream on disk.
struct Nats {
    child: Child,
}

impl Nats {
    fn start(port: u16, store: &Path) -> Option<Self> {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut nats = Self { child };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(nats);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        nats.stop();
        None
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn shipment_of(
    client: &mut ShippingServiceClient<tonic::transport::Channel>,
    order_id: &str,
) -> Option<shipping::Shipment> {
    client
        .get_shipment(shipping::GetShipmentRequest {
            id: String::new(),
            order_id: order_id.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn checkouts_succeed_while_the_broker_is_down_and_every_event_arrives_once_it_is_back() {
    broker_outage(Outage::AfterStart).await;
}

#[tokio::test]
async fn services_start_without_the_broker_and_deliver_every_event_once_it_comes() {
    broker_outage(Outage::AtStart).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outage {
    /// The broker runs when the services start, then goes away.
    AfterStart,
    /// The broker is not there when the services start.
    AtStart,
}

async fn broker_outage(outage: Outage) {
    let store = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(mut nats) = Nats::start(port, store.path()) else {
        eprintln!("SKIPPED (NATS): no nats-server binary to run a broker of this test's own");
        return;
    };
    if outage == Outage::AtStart {
        nats.stop();
    }
    let events = nats_events(&format!("nats://127.0.0.1:{port}"));
    let system = start_with(SystemOptions {
        events: Some(events),
        ..SystemOptions::default()
    })
    .await;
    let customer = Customer::sign_up(&system).await;
    let (product, _) = products(&system, 1).await.remove(0);

    if outage == Outage::AfterStart {
        nats.stop();
    }
    let mut orders = Vec::new();
    for i in 0..3 {
        customer.add_to_cart(&product, 1).await;
        let response = customer
            .checkout(&format!("outage-{i}"), "USD", GOOD_CARD)
            .await;
        assert_eq!(response.status(), 201, "checkout works without the broker");
        let order: serde_json::Value = response.json().await.unwrap();
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    let mut client = ShippingServiceClient::connect(system.shipping.base_url())
        .await
        .unwrap();
    for id in &orders {
        assert!(
            shipment_of(&mut client, id).await.is_none(),
            "no event could reach shipping yet"
        );
    }
    // The outbox gauges show the backlog the lag alerts fire on.
    let metrics_url = system.checkout.admin_url("/metrics");
    poll(Duration::from_secs(15), || {
        let url = metrics_url.clone();
        async move {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            text.lines()
                .any(|l| l.starts_with("emporium_outbox_pending{") && l.ends_with("} 3"))
        }
    })
    .await
    .expect("emporium_outbox_pending shows the 3 waiting events");

    let _nats = Nats::start(port, store.path()).expect("the broker restarts");
    poll(Duration::from_secs(60), || {
        let mut client = client.clone();
        let orders = orders.clone();
        async move {
            for id in &orders {
                if shipment_of(&mut client, id).await.is_none() {
                    return false;
                }
            }
            true
        }
    })
    .await
    .expect("every order got its shipment once the broker was back");
    for id in &orders {
        let shipment = shipment_of(&mut client, id).await.unwrap();
        assert!(shipment.tracking_id.starts_with("EMP"), "{shipment:?}");
    }
    // Notification, also on the broker, mails a confirmation and a shipping
    // notice for each order.
    let mail_dir = system.mail_dir.clone();
    let emails = || {
        std::fs::read_dir(&mail_dir).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
    };
    poll(Duration::from_secs(30), || async { emails() >= 6 })
        .await
        .expect("two e-mails per order");
    assert_eq!(emails(), 6, "no e-mail twice");
}

/// How long shipping's database is away in the regular suite: well beyond
/// the ~13 s after which the old policy (5 counted attempts) dead-lettered an
/// order. The issue's 60 s outage runs with `--ignored`.
const SHORT_OUTAGE: Duration = Duration::from_secs(20);
const ISSUE_OUTAGE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn orders_placed_while_shippings_sqlite_database_is_away_ship_once_with_their_emails() {
    database_outage(Backend::Sqlite, SHORT_OUTAGE).await;
}

#[tokio::test]
async fn orders_placed_while_shippings_postgresql_is_away_ship_once_with_their_emails_over_nats() {
    database_outage(Backend::Postgres, SHORT_OUTAGE).await;
}

#[tokio::test]
#[ignore = "the issue's 60 s outage; the regular suite runs a 20 s one"]
async fn a_60_s_outage_of_shippings_sqlite_database_loses_no_order() {
    database_outage(Backend::Sqlite, ISSUE_OUTAGE).await;
}

#[tokio::test]
#[ignore = "the issue's 60 s outage; the regular suite runs a 20 s one"]
async fn a_60_s_outage_of_shippings_postgresql_loses_no_order_over_nats() {
    database_outage(Backend::Postgres, ISSUE_OUTAGE).await;
}

/// Files in the mail directory that contain every one of `needles`.
fn emails_with(mail_dir: &Path, needles: &[&str]) -> usize {
    std::fs::read_dir(mail_dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|text| needles.iter().all(|n| text.contains(n)))
            .count()
    })
}

/// A value of shipping's `emporium_consumer_deliveries_total` by outcome.
async fn shipping_deliveries(system: &emporium_testkit::system::System, outcome: &str) -> u64 {
    let text = reqwest::get(system.shipping.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("emporium_consumer_deliveries_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Shipping's database goes away for `outage` while customers place
/// orders: every order still gets exactly one shipment and its two e-mails,
/// nothing is dead-lettered, and the confirmations (notification, which does
/// not need shipping) arrive during the outage. SQLite runs on the embedded
/// log; PostgreSQL (when `EMPORIUM_TEST_POSTGRES_URL` is set) on NATS (when
/// `EMPORIUM_TEST_NATS_URL` is set), with shipping behind a TCP proxy that is
/// cut.
async fn database_outage(backend: Backend, outage: Duration) {
    let events = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let postgres = std::env::var("EMPORIUM_TEST_POSTGRES_URL").unwrap_or_default();
            let nats = std::env::var("EMPORIUM_TEST_NATS_URL").unwrap_or_default();
            if postgres.is_empty() || nats.is_empty() {
                eprintln!(
                    "SKIPPED (PostgreSQL + NATS): set EMPORIUM_TEST_POSTGRES_URL and EMPORIUM_TEST_NATS_URL"
                );
                return;
            }
            Some(nats_events(&nats))
        }
    };
    let system = start_with(SystemOptions {
        backend,
        events,
        ..SystemOptions::default()
    })
    .await;
    let bus_config: emporium_eventbus::EventBusConfig = system
        .events
        .get("events")
        .cloned()
        .unwrap()
        .try_into()
        .unwrap();
    let bus = emporium_eventbus::connect(&bus_config).await.unwrap();
    let customer = Customer::sign_up(&system).await;
    let (product, _) = products(&system, 1).await.remove(0);
    let mut client = ShippingServiceClient::connect(system.shipping.base_url())
        .await
        .unwrap();

    let began = Instant::now();
    system.shipping_database.begin();
    let mut orders = Vec::new();
    for i in 0..4 {
        customer.add_to_cart(&product, 1).await;
        let response = customer
            .checkout(&format!("db-outage-{i}"), "USD", GOOD_CARD)
            .await;
        assert_eq!(
            response.status(),
            201,
            "checkout does not need shipping's database"
        );
        let order: serde_json::Value = response.json().await.unwrap();
        orders.push(order["id"].as_str().unwrap().to_owned());
    }

    // Unrelated work is not held up behind the orders shipping cannot take:
    // every confirmation e-mail goes out while the database is still away.
    let mail_dir = system.mail_dir.clone();
    poll(outage.saturating_sub(began.elapsed()), || {
        let (mail_dir, orders) = (mail_dir.clone(), orders.clone());
        async move {
            orders
                .iter()
                .all(|id| emails_with(&mail_dir, &[id, "is confirmed"]) == 1)
        }
    })
    .await
    .expect("the confirmations went out during shipping's outage");
    let retried = poll(outage.saturating_sub(began.elapsed()), || async {
        shipping_deliveries(&system, "retried").await >= 4
    })
    .await;
    if let Err(e) = retried {
        let metrics = reqwest::get(system.shipping.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let letters = bus.dead_letters(None, 100).await.unwrap_or_default();
        let errors: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
        panic!(
            "shipping did not retry every order as a transient failure: {e}\n{metrics}\n{errors:?}"
        );
    }

    // The outage lasts as long as it lasts; then, still during it: nothing
    // shipped, nothing given up on.
    tokio::time::sleep(outage.saturating_sub(began.elapsed())).await;
    for id in &orders {
        assert!(
            emails_with(&mail_dir, &[id, "has shipped"]) == 0,
            "no shipment without the database"
        );
    }
    assert!(bus.dead_letters(None, 100).await.unwrap().is_empty());
    assert_eq!(shipping_deliveries(&system, "dead_lettered").await, 0);
    assert_eq!(
        shipping_deliveries(&system, "failed").await,
        0,
        "no attempt counted"
    );
    system.shipping_database.end();

    // The transient backoff is capped at 30 s, so every order is retried
    // within about that once the database is back.
    poll(Duration::from_secs(90), || {
        let mut client = client.clone();
        let orders = orders.clone();
        async move {
            for id in &orders {
                if shipment_of(&mut client, id).await.is_none() {
                    return false;
                }
            }
            true
        }
    })
    .await
    .expect("every order got its shipment once the database was back");
    poll(Duration::from_secs(30), || {
        let (mail_dir, orders) = (mail_dir.clone(), orders.clone());
        async move {
            orders
                .iter()
                .all(|id| emails_with(&mail_dir, &[id, "has shipped"]) == 1)
        }
    })
    .await
    .expect("every order's shipment e-mail went out");
    for id in &orders {
        let shipment = shipment_of(&mut client, id).await.unwrap();
        assert!(shipment.tracking_id.starts_with("EMP"), "{shipment:?}");
        assert_eq!(
            emails_with(&mail_dir, &[id, "is confirmed"]),
            1,
            "one confirmation"
        );
        assert_eq!(
            emails_with(&mail_dir, &[id, "has shipped"]),
            1,
            "one shipment e-mail"
        );
        assert_eq!(
            emails_with(&mail_dir, &[&shipment.tracking_id]),
            1,
            "one shipment per order: only its tracking id was announced"
        );
    }
    assert!(
        bus.dead_letters(None, 100).await.unwrap().is_empty(),
        "nothing was dead-lettered"
    );
    assert_eq!(shipping_deliveries(&system, "dead_lettered").await, 0);
    drop(system);
    if bus_config.backend == emporium_eventbus::BackendKind::Nats
        && let Ok(nats) = emporium_eventbus::nats::NatsBus::connect(&bus_config.nats).await
    {
        let _ = nats.delete_streams().await;
    }
}
