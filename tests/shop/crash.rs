//! A checkout that stops between the charge and the order commit is
//! finished by the next instance: never two charges, never lost stock.

use std::time::Duration;

use emporium_api::payment::v1::ChargeStatus;
use emporium_testkit::system::SystemOptions;
use emporium_testkit::{poll, table};
use serde_json::Value;

use crate::{Customer, GOOD_CARD, charges, products, start_with, stock};

#[tokio::test]
async fn a_checkout_stopped_after_the_charge_is_completed_after_restart() {
    let fast = [
        ("saga.lease", "1500ms"),
        ("cart.timeout", "1s"),
        ("catalog.timeout", "1s"),
        ("currency.timeout", "1s"),
        ("inventory.timeout", "1s"),
        ("payment.timeout", "1s"),
        ("shipping.timeout", "1s"),
    ];
    let mut halting = fast.to_vec();
    halting.push(("saga.halt_after", "charged"));
    let mut system = start_with(SystemOptions {
        checkout: table(&halting),
        ..SystemOptions::default()
    })
    .await;
    let customer = Customer::sign_up(&system).await;
    let (product, sku) = products(&system, 1).await.remove(0);
    let (available, _) = stock(&system, &sku).await;
    customer.add_to_cart(&product, 3).await;

    // The first instance stops right after the charge is recorded.
    let response = customer.checkout("crash-1", "USD", GOOD_CARD).await;
    assert_eq!(response.status(), 503);
    let orders = customer.json("/api/v1/orders").await;
    let order_id = orders["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(orders["items"][0]["status"], "pending");
    assert_eq!(charges(&system, &order_id).await.len(), 1);

    // A new instance (same database, same port) takes the saga over once the lease expires.
    system.restart_checkout(table(&fast)).await.unwrap();
    let path = format!("/api/v1/orders/{order_id}");
    poll(Duration::from_secs(20), || async {
        customer.json(&path).await["status"] == "placed"
    })
    .await
    .expect("the recovered order is placed");
    poll(Duration::from_secs(10), || async {
        customer.json("/api/v1/cart").await["item_count"] == 0
    })
    .await
    .expect("the cart is cleared");

    let charges = charges(&system, &order_id).await;
    assert_eq!(charges.len(), 1, "never two charges");
    assert_eq!(charges[0].status, ChargeStatus::Succeeded as i32);
    assert_eq!(
        stock(&system, &sku).await,
        (available - 3, 0),
        "stock taken once, nothing left reserved"
    );

    // Retrying the customer's request now returns the recovered order.
    let retried = customer.checkout("crash-1", "USD", GOOD_CARD).await;
    assert_eq!(retried.status(), 201);
    assert_eq!(
        retried.json::<Value>().await.unwrap()["id"],
        order_id.as_str()
    );
}

#[tokio::test]
async fn a_checkout_stopped_before_the_charge_is_compensated_after_restart() {
    let fast = [
        ("saga.lease", "1500ms"),
        ("cart.timeout", "1s"),
        ("catalog.timeout", "1s"),
        ("currency.timeout", "1s"),
        ("inventory.timeout", "1s"),
        ("payment.timeout", "1s"),
        ("shipping.timeout", "1s"),
    ];
    let mut halting = fast.to_vec();
    halting.push(("saga.halt_after", "reserved"));
    let mut system = start_with(SystemOptions {
        checkout: table(&halting),
        ..SystemOptions::default()
    })
    .await;
    let customer = Customer::sign_up(&system).await;
    let (product, sku) = products(&system, 1).await.remove(0);
    let before = stock(&system, &sku).await;
    customer.add_to_cart(&product, 2).await;

    assert_eq!(
        customer
            .checkout("crash-2", "USD", GOOD_CARD)
            .await
            .status(),
        503
    );
    let (available, reserved) = stock(&system, &sku).await;
    assert_eq!(
        (available, reserved),
        (before.0 - 2, before.1 + 2),
        "held by the interrupted saga"
    );

    system.restart_checkout(table(&fast)).await.unwrap();
    let orders_path = "/api/v1/orders";
    poll(Duration::from_secs(20), || async {
        customer.json(orders_path).await["items"][0]["status"] == "failed"
    })
    .await
    .expect("the interrupted order is compensated");
    assert_eq!(
        stock(&system, &sku).await,
        before,
        "the reservation was released"
    );
    let order_id = customer.json(orders_path).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        charges(&system, &order_id).await.is_empty(),
        "nothing was charged"
    );
    assert_eq!(
        customer.json("/api/v1/cart").await["item_count"],
        2,
        "the cart is intact"
    );
}
