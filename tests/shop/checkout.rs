//! The customer journey, declined cards, idempotent retries, and the race
//! for the last units.

use std::collections::HashSet;
use std::time::Duration;

use emporium_api::shipping::v1 as shipping_pb;
use emporium_api::shipping::v1::shipping_service_client::ShippingServiceClient;
use emporium_testkit::poll;

use emporium_api::payment::v1::ChargeStatus;
use serde_json::Value;

use emporium_testkit::system::{System, SystemOptions};

use crate::{
    Backend, Customer, DECLINED_CARD, GOOD_CARD, charges, problem, products, set_stock, start,
    stock,
};

#[tokio::test]
async fn journey_sign_up_browse_add_two_products_and_check_out_in_eur() {
    journey(&start().await).await;
}

/// The same journey with every service on PostgreSQL and the cart on Redis,
/// as in a cluster (skipped when those are not configured).
#[tokio::test]
async fn journey_on_postgresql_and_redis() {
    let options = SystemOptions {
        backend: Backend::Postgres,
        ..SystemOptions::default()
    };
    match emporium_testkit::system::spawn_system(options)
        .await
        .unwrap()
    {
        Some(system) => journey(&system).await,
        None => eprintln!(
            "SKIPPED (PostgreSQL): set EMPORIUM_TEST_POSTGRES_URL to run the journey on PostgreSQL"
        ),
    }
}

async fn journey(system: &System) {
    let customer = Customer::sign_up(system).await;
    let picked = products(system, 2).await;
    let before: Vec<_> = futures_join(picked.iter().map(|(_, sku)| stock(system, sku))).await;
    customer.add_to_cart(&picked[0].0, 2).await;
    customer.add_to_cart(&picked[1].0, 1).await;
    let cart = customer.json("/api/v1/cart").await;
    assert_eq!(cart["item_count"], 3);

    let response = customer.checkout("journey-1", "EUR", GOOD_CARD).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "placed");
    assert_eq!(order["total"]["currency"], "EUR");
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    let items_total = order["items_total"]["amount_minor"].as_i64().unwrap();
    let shipping = order["shipping_cost"]["amount_minor"].as_i64().unwrap();
    assert!(items_total > 0 && shipping > 0);
    assert_eq!(
        order["total"]["amount_minor"].as_i64().unwrap(),
        items_total + shipping
    );

    // Stock went down by exactly the quantities, and nothing stays reserved.
    for ((_, sku), (available, reserved), quantity) in picked
        .iter()
        .zip(&before)
        .zip([2, 1])
        .map(|((p, b), q)| (p, b, q))
    {
        let (now_available, now_reserved) = stock(system, sku).await;
        assert_eq!(now_available, available - quantity, "{sku}");
        assert_eq!(now_reserved, *reserved, "{sku}");
    }
    // Exactly one charge, for the total.
    let order_id = order["id"].as_str().unwrap();
    let charges = charges(system, order_id).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].status, ChargeStatus::Succeeded as i32);
    assert_eq!(
        charges[0].amount.as_ref().unwrap().minor_units,
        order["total"]["amount_minor"].as_i64().unwrap()
    );
    // Shipping heard of the order (order.placed.v1 through the outbox and the bus).
    let mut shipping = ShippingServiceClient::connect(system.shipping.base_url())
        .await
        .unwrap();
    let shipment_request = || shipping_pb::GetShipmentRequest {
        id: String::new(),
        order_id: order_id.into(),
    };
    poll(Duration::from_secs(20), || {
        let mut shipping = shipping.clone();
        let request = shipment_request();
        async move { shipping.get_shipment(request).await.is_ok() }
    })
    .await
    .expect("the order got a shipment");
    let shipment = shipping
        .get_shipment(shipment_request())
        .await
        .unwrap()
        .into_inner();
    assert!(shipment.tracking_id.starts_with("EMP"), "{shipment:?}");
    // Two e-mails: the order confirmation and the shipping notice.
    let mails = || -> Vec<String> {
        std::fs::read_dir(&system.mail_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_id = &order_id[order_id.len() - 8..];
    poll(Duration::from_secs(20), || async {
        mails().iter().filter(|m| m.contains(short_id)).count() >= 2
    })
    .await
    .expect("two e-mails about the order");
    let about_order: Vec<String> = mails()
        .into_iter()
        .filter(|m| m.contains(short_id))
        .collect();
    assert_eq!(about_order.len(), 2, "exactly two: {about_order:#?}");
    assert!(
        about_order
            .iter()
            .any(|m| m.contains(&shipment.tracking_id)),
        "the shipping notice has the tracking id"
    );
    // The cart is empty and the order is in the history.
    assert_eq!(customer.json("/api/v1/cart").await["item_count"], 0);
    let history = customer.json("/api/v1/orders").await;
    assert_eq!(history["items"][0]["id"], order["id"]);
    assert_eq!(customer.json(&location).await["status"], "placed");
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

#[tokio::test]
async fn a_declined_card_is_a_402_that_releases_stock_and_keeps_the_cart() {
    let system = &start().await;
    let customer = Customer::sign_up(system).await;
    let (product, sku) = products(system, 1).await.remove(0);
    let before = stock(system, &sku).await;
    customer.add_to_cart(&product, 2).await;

    let body = problem(
        customer.checkout("declined-1", "EUR", DECLINED_CARD).await,
        402,
    )
    .await;
    assert_eq!(
        body["type"],
        "https://emporium.example/problems/payment-declined"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("declined"),
        "{body}"
    );

    assert_eq!(stock(system, &sku).await, before, "stock released");
    assert_eq!(
        customer.json("/api/v1/cart").await["item_count"],
        2,
        "cart intact"
    );
    let orders = customer.json("/api/v1/orders").await;
    assert!(
        orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] != "placed"),
        "{orders}"
    );
    let failed = &orders["items"][0];
    assert_eq!(failed["status"], "failed");
    let charges = charges(system, failed["id"].as_str().unwrap()).await;
    assert!(
        charges
            .iter()
            .all(|c| c.status != ChargeStatus::Succeeded as i32)
    );
}

#[tokio::test]
async fn the_same_idempotency_key_gives_one_order_and_one_charge_also_concurrently() {
    let system = &start().await;
    let customer = Customer::sign_up(system).await;
    let (product, _) = products(system, 1).await.remove(0);
    customer.add_to_cart(&product, 1).await;

    let first = customer.checkout("same-key", "USD", GOOD_CARD).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = customer.checkout("same-key", "USD", GOOD_CARD).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first, "same response");
    assert_eq!(
        charges(system, first["id"].as_str().unwrap()).await.len(),
        1
    );

    // Concurrent requests with one new key.
    customer.add_to_cart(&product, 1).await;
    let attempts = (0..6).map(|_| {
        let c = customer.clone();
        tokio::spawn(async move {
            let response = c.checkout("parallel-key", "USD", GOOD_CARD).await;
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    });
    let mut ids = HashSet::new();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one order for one key");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(charges(system, &id).await.len(), 1, "one charge");

    // The same key with a different request is refused.
    let other = customer.checkout("same-key", "EUR", GOOD_CARD).await;
    problem(other, 400).await;
}

#[tokio::test]
async fn fifty_shoppers_race_for_the_last_ten_units() {
    let system = &start().await;
    let (product, sku) = products(system, 1).await.remove(0);
    set_stock(system, &sku, 10).await;
    let mut shoppers = Vec::new();
    for _ in 0..50 {
        let customer = Customer::sign_up(system).await;
        customer.add_to_cart(&product, 1).await;
        shoppers.push(customer);
    }
    let races = shoppers.into_iter().enumerate().map(|(i, c)| {
        tokio::spawn(async move {
            let response = c.checkout(&format!("race-{i}"), "USD", GOOD_CARD).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    let (mut placed, mut refused) = (Vec::new(), 0);
    for race in races {
        let (status, body) = race.await.unwrap();
        match status {
            201 => placed.push(body["id"].as_str().unwrap().to_owned()),
            409 => {
                assert_eq!(
                    body["type"], "https://emporium.example/problems/conflict",
                    "{body}"
                );
                assert!(
                    body["detail"].as_str().unwrap().contains(&sku),
                    "the loser is told which product: {body}"
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(placed.len(), 10);
    assert_eq!(refused, 40);
    assert_eq!(stock(system, &sku).await, (0, 0));
    for id in &placed {
        assert_eq!(charges(system, id).await.len(), 1);
    }
}
