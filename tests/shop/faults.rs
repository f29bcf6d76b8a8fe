//! A slow or failing payment service under the checkout saga.
//!
//! Slow (Online Boutique's #3474: checkout waits out a slow payment service
//! for its whole delay): here the gateway's checkout budget travels down
//! every call as `grpc-timeout`, the shopper is answered within it, nothing
//! stays charged, the stock comes back. Failing: checkout's breaker for
//! payment opens, and checkouts are refused at once with `Retry-After`
//! instead of each waiting on a payment service that keeps failing.

use std::time::{Duration, Instant};

use emporium_api::payment::v1::ChargeStatus;
use emporium_testkit::system::SystemOptions;
use emporium_testkit::{poll, table};
use serde_json::Value;

use crate::{Customer, GOOD_CARD, charges, products, start_with, stock};

#[tokio::test]
async fn a_payment_two_seconds_slow_is_a_504_within_the_budget_with_no_charge_and_stock_released() {
    let system = start_with(SystemOptions {
        payment: table(&[("faults.latency", "2s")]),
        ..SystemOptions::default()
    })
    .await;
    let customer = Customer::sign_up(&system).await;
    let (product, sku) = products(&system, 1).await.remove(0);
    let (available, _) = stock(&system, &sku).await;
    customer.add_to_cart(&product, 2).await;

    let started = Instant::now();
    let response = customer.checkout("slow-payment-1", "USD", GOOD_CARD).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 504, "{:?}", response.text().await);
    // The default checkout budget is 1.5 s: answered well before payment's 2 s.
    assert!(
        took < Duration::from_millis(1900),
        "answered after {took:?}"
    );
    eprintln!("slow payment: answered 504 after {took:?}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        "https://emporium.example/problems/deadline-exceeded"
    );

    // The saga found out the charge never happened and undid the reservation.
    let orders = customer.json("/api/v1/orders").await;
    let order_id = orders["items"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{order_id}");
    poll(Duration::from_secs(20), || async {
        customer.json(&path).await["status"] == "failed"
    })
    .await
    .expect("the order fails once payment has been asked");
    let left = charges(&system, &order_id).await;
    assert!(
        left.iter()
            .all(|c| c.status != ChargeStatus::Succeeded as i32),
        "no charge left on a failed order: {left:?}"
    );
    assert_eq!(stock(&system, &sku).await, (available, 0), "stock released");
    assert_ne!(
        customer.json("/api/v1/cart").await["item_count"],
        0,
        "the cart is kept"
    );
}

#[tokio::test]
async fn a_failing_payment_opens_checkouts_breaker_and_checkouts_are_refused_at_once() {
    let system = start_with(SystemOptions {
        payment: table(&[("faults.error_rate", "1")]),
        ..SystemOptions::default()
    })
    .await;
    let customer = Customer::sign_up(&system).await;
    let (product, _) = products(&system, 1).await.remove(0);
    customer.add_to_cart(&product, 1).await;

    // Every payment call answers UNAVAILABLE: each checkout fails, and the
    // failures add up on payment's one endpoint until it is ejected.
    for i in 0..3 {
        let response = customer
            .checkout(&format!("failing-payment-{i}"), "USD", GOOD_CARD)
            .await;
        assert_eq!(response.status(), 503, "{:?}", response.text().await);
    }
    let open = r#"grpc_client_breaker_state{service="checkout",upstream="payment"}"#;
    assert_eq!(
        system.checkout.metric(open).await.unwrap(),
        2.0,
        "breaker open"
    );
    let ejections = r#"grpc_client_ejections_total{service="checkout",upstream="payment""#;
    assert!(system.checkout.metric(ejections).await.unwrap() >= 1.0);

    // Now a checkout is refused without waiting on payment.
    let started = Instant::now();
    let response = customer
        .checkout("failing-payment-fast", "USD", GOOD_CARD)
        .await;
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(took < Duration::from_millis(500), "refused after {took:?}");
    let refused = r#"grpc_client_fail_fast_total{service="checkout",upstream="payment"}"#;
    assert!(system.checkout.metric(refused).await.unwrap() >= 1.0);
}
