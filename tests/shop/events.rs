//! Events through a real broker: checkouts keep working while NATS is down
//! (the outbox holds the events) — whether it went away or was never there
//! when the services started — and once it is back every order gets its
//! shipment exactly once.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use emporium_api::shipping::v1 as shipping;
use emporium_api::shipping::v1::shipping_service_client::ShippingServiceClient;
use emporium_testkit::poll;
use emporium_testkit::system::{SystemOptions, nats_events};

use crate::{Customer, GOOD_CARD, products, start_with};

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
