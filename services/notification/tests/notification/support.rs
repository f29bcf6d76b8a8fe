//! What the suites share: sample events, a running service on a test
//! database and a log-backed bus, reading `.eml` files, and polling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use emporium_chassis::config::{Secret, Table};
use emporium_eventbus::events::{
    OrderLine, OrderPlacedV1, ShipmentCreatedV1, ShippingAddress, sources,
};
use emporium_eventbus::{Envelope, EventBus, EventBusConfig, LogConfig};
use emporium_notification::{NotificationConfig, NotificationServer, Store};
use emporium_testkit::{Running, TestDb, test_config};

/// The longest a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn order_placed(order_id: &str, email: Option<&str>) -> OrderPlacedV1 {
    OrderPlacedV1 {
        order_id: order_id.to_owned(),
        user_id: "user-1".into(),
        email: email.map(str::to_owned),
        currency: "EUR".into(),
        items: vec![
            OrderLine {
                product_id: "p-1".into(),
                sku: "LAMP-001".into(),
                name: "Desk lamp".into(),
                quantity: 2,
                unit_price: 1999,
            },
            OrderLine {
                product_id: "p-2".into(),
                sku: "BOOK-007".into(),
                name: "Notebook".into(),
                quantity: 1,
                unit_price: 450,
            },
        ],
        items_total: 4448,
        shipping_cost: 500,
        total: 4948,
        shipping_address: ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country_code: "GB".into(),
        },
        charge_id: "ch_1".into(),
    }
}

pub fn shipment_created(order_id: &str, tracking_id: &str) -> ShipmentCreatedV1 {
    ShipmentCreatedV1 {
        shipment_id: uuid::Uuid::now_v7().to_string(),
        order_id: order_id.to_owned(),
        user_id: "user-1".into(),
        tracking_id: tracking_id.to_owned(),
        carrier: Some("DHL".into()),
    }
}

pub fn placed_envelope(event: &OrderPlacedV1) -> Envelope {
    Envelope::for_event(sources::CHECKOUT, event).unwrap()
}

pub fn shipped_envelope(event: &ShipmentCreatedV1) -> Envelope {
    Envelope::for_event(sources::SHIPPING, event).unwrap()
}

/// A fresh order id, as checkout makes them.
pub fn new_order_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The embedded log in `dir`, polled often so tests are quick.
pub fn log_bus(dir: &Path) -> EventBusConfig {
    EventBusConfig {
        log: LogConfig {
            poll_interval: emporium_chassis::config::Duration::from_millis(20),
            ..LogConfig::at(dir.join("events.db"))
        },
        ..EventBusConfig::default()
    }
}

/// A second handle on the same bus, as the producing services hold one.
pub async fn producer(events: &EventBusConfig) -> Arc<dyn EventBus> {
    emporium_eventbus::connect(events).await.unwrap()
}

/// Notification running on `db`, `events`, writing mail to `mail_dir`
/// unless `overrides` choose otherwise; with a handle on its store.
pub async fn spawn(
    db: &TestDb,
    events: &EventBusConfig,
    mail_dir: &Path,
    overrides: Table,
) -> (Running, Store) {
    let mut config: NotificationConfig = test_config(NotificationConfig::load, overrides).unwrap();
    config.database.url = Some(Secret::new(db.url()));
    config.events = events.clone();
    config.mail.dir = mail_dir.to_owned();
    let server = NotificationServer::build(config).await.unwrap();
    let store = server.store().clone();
    let admin = server.admin_addr();
    let running = Running::start(
        admin,
        admin,
        |token| async move { Ok(server.run(token).await?) },
    )
    .await
    .unwrap();
    (running, store)
}

/// Calls `check` until it returns `Some`, for at most [`PATIENCE`]; no
/// fixed sleeps, a short growing pause between checks.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Waits until the consumer has settled every event published so far.
pub async fn consumed_everything(bus: &dyn EventBus) {
    eventually("the consumer catches up", || async {
        let consumers = bus.consumers().await.ok()?;
        let me = consumers.iter().find(|c| c.name == "notification")?;
        (me.pending == 0).then_some(())
    })
    .await;
}

/// An `.eml` file: its name, headers (lowercased names) and body.
#[derive(Debug)]
pub struct Eml {
    pub path: PathBuf,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Eml {
    pub fn parse(path: PathBuf, bytes: &[u8]) -> Self {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let headers = head
            .split("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Self {
            path,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {}", self.path.display()))
    }
}

/// Every `.eml` file in `dir`, by name.
pub fn eml_files(dir: &Path) -> Vec<Eml> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            Eml::parse(p, &bytes)
        })
        .collect()
}

/// Every file name in `dir`.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The admin port's `/metrics` text.
pub async fn metrics(service: &Running) -> String {
    reqwest::get(service.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until `/metrics` shows every one of `lines` (counters are bumped
/// just after the work they count, so they may trail it briefly).
pub async fn metrics_show(service: &Running, lines: &[&str]) {
    let mut last = String::new();
    let shown = tokio::time::timeout(PATIENCE, async {
        loop {
            last = metrics(service).await;
            if lines.iter().all(|l| last.contains(l)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if shown.is_err() {
        let missing: Vec<_> = lines.iter().filter(|l| !last.contains(*l)).collect();
        panic!("{missing:?} missing from\n{last}");
    }
}
