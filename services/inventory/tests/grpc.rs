//! The inventory's gRPC API over a real socket: status codes, the admin
//! check on SetStock, the background sweeper and draining.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::time::Duration;

use emporium_api::inventory::v1 as pb;
use emporium_api::inventory::v1::inventory_service_client::InventoryServiceClient;
use emporium_testkit::inventory::{spawn_inventory, spawn_inventory_with};
use emporium_testkit::{Backend, Running, TestDb, admin, customer, poll, request_as, table};
use tonic::Code;
use tonic::transport::Channel;

async fn started(
    overrides: emporium_chassis::config::Table,
) -> (TestDb, Running, InventoryServiceClient<Channel>) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let inventory = spawn_inventory_with(&db, overrides).await.unwrap();
    let client = InventoryServiceClient::connect(inventory.base_url())
        .await
        .unwrap();
    (db, inventory, client)
}

fn level(sku: &str, available: i64) -> pb::StockLevel {
    pb::StockLevel {
        sku: sku.into(),
        available,
        reserved: 0,
    }
}

fn reserve(order_id: &str, items: &[(&str, u32)]) -> pb::ReserveRequest {
    pb::ReserveRequest {
        order_id: order_id.into(),
        items: items
            .iter()
            .map(|(sku, quantity)| pb::Item {
                sku: (*sku).into(),
                quantity: *quantity,
            })
            .collect(),
    }
}

async fn available(client: &mut InventoryServiceClient<Channel>, sku: &str) -> (i64, i64) {
    let got = client
        .get_stock(pb::GetStockRequest {
            skus: vec![sku.into()],
        })
        .await
        .unwrap()
        .into_inner();
    (got.levels[0].available, got.levels[0].reserved)
}

#[tokio::test]
async fn only_admins_set_stock() {
    let (_db, _inventory, mut client) = started(Default::default()).await;
    let body = || pb::SetStockRequest {
        levels: vec![level("KIT-0001", 12)],
    };
    let anonymous = client.set_stock(body()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let customer = client
        .set_stock(request_as(&customer(), body()))
        .await
        .unwrap_err();
    assert_eq!(customer.code(), Code::PermissionDenied);
    let set = client
        .set_stock(request_as(&admin(), body()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.levels, [level("KIT-0001", 12)]);
    let negative = client
        .set_stock(request_as(
            &admin(),
            pb::SetStockRequest {
                levels: vec![level("KIT-0001", -1)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert_eq!(available(&mut client, "KIT-0001").await, (12, 0));
}

#[tokio::test]
async fn reserve_confirm_and_release_answer_with_the_documented_codes() {
    let (_db, _inventory, mut client) = started(Default::default()).await;
    client
        .set_stock(request_as(
            &admin(),
            pb::SetStockRequest {
                levels: vec![level("KIT-0001", 3), level("KIT-0002", 9)],
            },
        ))
        .await
        .unwrap();

    let short = client
        .reserve(reserve("order-1", &[("KIT-0002", 1), ("KIT-0001", 4)]))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::FailedPrecondition);
    assert!(
        short.message().contains("KIT-0001") && short.message().contains("only 3 left"),
        "{}",
        short.message()
    );
    assert_eq!(
        available(&mut client, "KIT-0002").await,
        (9, 0),
        "nothing held"
    );

    let held = client
        .reserve(reserve("order-1", &[("KIT-0002", 1), ("KIT-0001", 3)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.status(), pb::ReservationStatus::Reserved);
    assert_eq!(
        held.items
            .iter()
            .map(|i| i.sku.as_str())
            .collect::<Vec<_>>(),
        ["KIT-0001", "KIT-0002"]
    );
    assert!(held.expire_time.unwrap().seconds > time::OffsetDateTime::now_utc().unix_timestamp());
    let again = client
        .reserve(reserve("order-1", &[("KIT-0001", 3), ("KIT-0002", 1)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.items, held.items);
    assert_eq!(available(&mut client, "KIT-0001").await, (0, 3));

    let confirmed = client
        .confirm(pb::ConfirmRequest {
            order_id: "order-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.status(), pb::ReservationStatus::Confirmed);
    let refused = client
        .release(pb::ReleaseRequest {
            order_id: "order-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let unknown = client
        .release(pb::ReleaseRequest {
            order_id: "order-404".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    for bad in [
        reserve("", &[("KIT-0001", 1)]),
        reserve(&"x".repeat(65), &[("KIT-0001", 1)]),
        reserve("order-2", &[]),
        reserve("order-2", &[("KIT-0001", 0)]),
        reserve("order-2", &[("KIT-0001", 1000)]),
        reserve("order-2", &[("kit-0001", 1)]),
        reserve("order-2", &[("KIT-0001", 1), ("KIT-0001", 1)]),
        reserve("order-1", &[("KIT-0002", 2)]),
    ] {
        let status = client.reserve(bad.clone()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{bad:?}: {}",
            status.message()
        );
    }
    let unknown_sku = client
        .get_stock(pb::GetStockRequest {
            skus: vec!["NEW-0001".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown_sku.levels, [level("NEW-0001", 0)]);
}

#[tokio::test]
async fn the_background_sweeper_returns_units_of_expired_reservations() {
    let (_db, _inventory, mut client) = started(table(&[
        ("reservation_ttl", "50ms"),
        ("sweep_interval", "20ms"),
    ]))
    .await;
    client
        .set_stock(request_as(
            &admin(),
            pb::SetStockRequest {
                levels: vec![level("KIT-0001", 5)],
            },
        ))
        .await
        .unwrap();
    client
        .reserve(reserve("order-9", &[("KIT-0001", 5)]))
        .await
        .unwrap();
    let mut probe = client.clone();
    poll(Duration::from_secs(10), || {
        let mut probe = probe.clone();
        async move { available(&mut probe, "KIT-0001").await == (5, 0) }
    })
    .await
    .unwrap();
    let confirm = probe
        .confirm(pb::ConfirmRequest {
            order_id: "order-9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(confirm.code(), Code::FailedPrecondition);
    let released = client
        .release(pb::ReleaseRequest {
            order_id: "order-9".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.status(), pb::ReservationStatus::Expired);
}

#[tokio::test]
async fn stopping_stops_the_sweeper_and_drains() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let inventory = spawn_inventory(&db).await.unwrap();
    let stopped = inventory.stop().await.unwrap();
    assert_eq!(stopped, emporium_chassis::lifecycle::Stopped::Drained);
}
