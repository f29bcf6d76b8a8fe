//! Shipping's storage contract, run against SQLite always and PostgreSQL
//! when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test functions, one
//! instance per backend.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::HashSet;
use std::future::Future;

use emporium_shipping::ShippingError;
use emporium_shipping::domain::{
    Address, Item, NewShipment, OrderId, Parcel, ShipmentId, ShipmentStatus, TrackingId,
};
use emporium_shipping::store::Store;
use emporium_testkit::{Backend, TestDb};

/// Runs `test` on a fresh, migrated store of `backend`; skips (with a
/// message) when the backend is not configured.
async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await.expect("test database") else {
        return;
    };
    let store = Store::connect(db.url(), 8).expect("connect");
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    store.close().await;
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    create_stores_every_field_and_reads_back_exactly,
    a_second_create_for_the_same_order_returns_the_first_shipment,
    concurrent_creates_for_one_order_make_exactly_one_shipment,
    every_order_gets_its_own_shipment_and_tracking_id,
    unknown_shipments_are_not_found,
    the_same_event_twice_creates_and_announces_one_shipment,
);

fn order(id: &str) -> OrderId {
    OrderId::parse(id).unwrap()
}

fn new_shipment(order_id: &str, city: &str) -> NewShipment {
    NewShipment {
        order_id: order(order_id),
        address: Address::new(
            "Ada Lovelace",
            "12 St James's Square",
            "Flat 3",
            city,
            "SW1Y 4JH",
            "GB",
        )
        .unwrap(),
        parcel: Parcel::new(vec![
            Item::new("KIT-0001", 2, 350).unwrap(),
            Item::new("APP-0002", 1, 0).unwrap(),
            Item::new("BOOK-0003", 999, 1).unwrap(),
        ])
        .unwrap(),
    }
}

async fn create_stores_every_field_and_reads_back_exactly(store: Store) {
    let new = new_shipment("order-1", "London");
    let created = store.create_shipment(&new).await.unwrap();
    assert_eq!(created.order_id, new.order_id);
    assert_eq!(created.address, new.address);
    assert_eq!(
        created.parcel, new.parcel,
        "items keep their order and as-given weights"
    );
    assert_eq!(created.parcel.items()[1].unit_weight_grams(), 0);
    assert_eq!(created.status, ShipmentStatus::Created);
    assert!(created.tracking_id.as_str().starts_with("EMP"));
    assert_eq!(
        TrackingId::parse(created.tracking_id.as_str()).unwrap(),
        created.tracking_id
    );
    assert_eq!(store.get_shipment(created.id).await.unwrap(), created);
    assert_eq!(
        store.get_shipment_of_order(&new.order_id).await.unwrap(),
        created,
        "timestamps and fields read back exactly"
    );
    assert_eq!(store.count_shipments().await.unwrap(), 1);
}

async fn a_second_create_for_the_same_order_returns_the_first_shipment(store: Store) {
    let first = store
        .create_shipment(&new_shipment("order-2", "London"))
        .await
        .unwrap();
    let again = store
        .create_shipment(&new_shipment("order-2", "Manchester"))
        .await
        .unwrap();
    assert_eq!(again, first, "the first call's shipment stands");
    assert_eq!(again.address.city(), "London");
    assert_eq!(store.count_shipments().await.unwrap(), 1);
}

async fn concurrent_creates_for_one_order_make_exactly_one_shipment(store: Store) {
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_shipment(&new_shipment("order-race", &format!("City {i}")))
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut tracking = HashSet::new();
    for call in calls {
        let shipment = call.await.unwrap().unwrap();
        ids.insert(shipment.id);
        tracking.insert(shipment.tracking_id);
    }
    assert_eq!(ids.len(), 1, "every caller got the same shipment");
    assert_eq!(tracking.len(), 1);
    assert_eq!(store.count_shipments().await.unwrap(), 1);
}

async fn every_order_gets_its_own_shipment_and_tracking_id(store: Store) {
    let mut ids = HashSet::new();
    let mut tracking = HashSet::new();
    for i in 0..10 {
        let s = store
            .create_shipment(&new_shipment(&format!("order-{i}"), "Leeds"))
            .await
            .unwrap();
        ids.insert(s.id);
        tracking.insert(s.tracking_id.to_string());
    }
    assert_eq!((ids.len(), tracking.len()), (10, 10));
    assert_eq!(store.count_shipments().await.unwrap(), 10);
}

async fn unknown_shipments_are_not_found(store: Store) {
    store
        .create_shipment(&new_shipment("order-3", "York"))
        .await
        .unwrap();
    let by_id = store.get_shipment(ShipmentId::generate()).await;
    assert!(
        matches!(by_id, Err(ShippingError::ShipmentNotFound { .. })),
        "{by_id:?}"
    );
    let by_order = store.get_shipment_of_order(&order("order-4")).await;
    match by_order {
        Err(e @ ShippingError::ShipmentNotFound { .. }) => {
            assert!(e.to_string().contains("order-4"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

async fn the_same_event_twice_creates_and_announces_one_shipment(store: Store) {
    use emporium_shipping::store::{Candidate, EventEffect};
    let announce = |c: &Candidate| {
        Ok::<_, ShippingError>((
            format!("evt-{}", c.id),
            "shipment.created.v1".to_owned(),
            "{}".to_owned(),
        ))
    };
    let effect = EventEffect {
        consumer: "shipping",
        event_id: "event-1",
        announce: &announce,
    };
    let first = store
        .create_shipment_for_event(&new_shipment("order-e1", "Arlington"), &effect)
        .await
        .unwrap();
    let again = store
        .create_shipment_for_event(&new_shipment("order-e1", "Elsewhere"), &effect)
        .await
        .unwrap();
    assert_eq!(first, again, "the redelivery changed nothing");
    let pending = store.pending_outbox(10).await.unwrap();
    assert_eq!(pending.len(), 1, "one announcement");
    assert_eq!(pending[0].0, format!("evt-{}", first.id));
    // Another event for the same order finds the shipment and announces nothing new.
    let other = EventEffect {
        consumer: "shipping",
        event_id: "event-2",
        announce: &announce,
    };
    store
        .create_shipment_for_event(&new_shipment("order-e1", "Arlington"), &other)
        .await
        .unwrap();
    assert_eq!(store.pending_outbox(10).await.unwrap().len(), 1);
    store.mark_published(&[pending[0].0.clone()]).await.unwrap();
    assert!(store.pending_outbox(10).await.unwrap().is_empty());
}
