//! Shipping's gRPC API over a real socket: quotes, idempotent shipments,
//! status codes for bad input, health.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use emporium_api::shipping::v1 as pb;
use emporium_api::shipping::v1::shipping_service_client::ShippingServiceClient;
use emporium_api::types::v1 as types;
use emporium_testkit::shipping::spawn_shipping;
use emporium_testkit::{Backend, Running, TestDb};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn started() -> (TestDb, Running, ShippingServiceClient<Channel>) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let shipping = spawn_shipping(&db).await.unwrap();
    let client = ShippingServiceClient::connect(shipping.base_url())
        .await
        .unwrap();
    (db, shipping, client)
}

fn address(country: &str) -> types::Address {
    types::Address {
        name: "Grace Hopper".into(),
        line1: "1 Compiler Way".into(),
        line2: String::new(),
        city: "Arlington".into(),
        postal_code: "22201".into(),
        country_code: country.into(),
    }
}

fn item(sku: &str, quantity: u32, unit_weight_grams: u32) -> pb::Item {
    pb::Item {
        sku: sku.into(),
        quantity,
        unit_weight_grams,
    }
}

fn quote_request(country: &str, items: Vec<pb::Item>) -> pb::GetQuoteRequest {
    pb::GetQuoteRequest {
        address: Some(address(country)),
        items,
    }
}

#[tokio::test]
async fn quotes_are_weight_times_the_zone_rate_plus_a_base_fee_in_usd() {
    let (_db, _shipping, mut client) = started().await;
    let mut quote = async |country: &str, items: Vec<pb::Item>| {
        client
            .get_quote(quote_request(country, items))
            .await
            .unwrap()
            .into_inner()
    };
    // One unit without a weight: the 500 g default. $4.99 + 0.5 kg × $1.20.
    let us = quote("US", vec![item("KIT-0001", 1, 0)]).await;
    let cost = us.cost.unwrap();
    assert_eq!(
        (cost.minor_units, cost.currency_code.as_str()),
        (559, "USD")
    );
    assert_eq!((us.zone, us.total_weight_grams), (1, 500));
    // 2 × 617 g = 1234 g to Germany: $14.99 + 1.234 × $4.50 = 20.543 → $20.55.
    let de = quote("DE", vec![item("A", 2, 617)]).await;
    assert_eq!((de.zone, de.total_weight_grams), (3, 1_234));
    assert_eq!(de.cost.unwrap().minor_units, 2_055);
    // Weights add up across items; Canada is zone 2: $8.99 + 3 kg × $2.40.
    let ca = quote("CA", vec![item("A", 2, 1_000), item("B", 2, 0)]).await;
    assert_eq!((ca.zone, ca.total_weight_grams), (2, 3_000));
    assert_eq!(ca.cost.unwrap().minor_units, 1_619);
    // Everywhere else is zone 4; GB, CH and NO are zone 3 like the EU.
    assert_eq!(quote("JP", vec![item("A", 1, 0)]).await.zone, 4);
    for country in ["GB", "CH", "NO", "FR"] {
        assert_eq!(
            quote(country, vec![item("A", 1, 0)]).await.zone,
            3,
            "{country}"
        );
    }
    // Deterministic: the same parcel costs the same every time.
    let again = quote("DE", vec![item("A", 2, 617)]).await;
    assert_eq!(again.cost.unwrap().minor_units, 2_055);
}

#[tokio::test]
async fn bad_addresses_and_items_are_invalid_argument_naming_the_field() {
    let (_db, _shipping, mut client) = started().await;
    let mut cases: Vec<(pb::GetQuoteRequest, &str)> = vec![
        (
            pb::GetQuoteRequest {
                address: None,
                items: vec![item("A", 1, 0)],
            },
            "address",
        ),
        (
            quote_request("de", vec![item("A", 1, 0)]),
            "address.country_code",
        ),
        (
            quote_request("DEU", vec![item("A", 1, 0)]),
            "address.country_code",
        ),
        (quote_request("DE", vec![]), "items"),
        (
            quote_request("DE", vec![item("A", 0, 0)]),
            "items[0].quantity",
        ),
        (
            quote_request("DE", vec![item("A", 1, 0), item("B", 1000, 0)]),
            "items[1].quantity",
        ),
        (quote_request("DE", vec![item("", 1, 0)]), "items[0].sku"),
        (
            quote_request("DE", vec![item("A", 999, 100_000), item("B", 999, 100_000)]),
            "items",
        ),
    ];
    for (field, mutate) in [
        (
            "address.name",
            (|a: &mut types::Address| a.name = " ".into()) as fn(&mut _),
        ),
        ("address.line1", |a| a.line1 = String::new()),
        ("address.city", |a| a.city = String::new()),
        ("address.postal_code", |a| a.postal_code = "1".repeat(21)),
        ("address.line2", |a| a.line2 = "x".repeat(201)),
    ] {
        let mut request = quote_request("US", vec![item("A", 1, 0)]);
        mutate(request.address.as_mut().unwrap());
        cases.push((request, field));
    }
    for (request, field) in cases {
        let err = client.get_quote(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "expected {field}, got {}",
            err.message()
        );
    }
}

fn create_request(order_id: &str, city: &str) -> pb::CreateShipmentRequest {
    let mut a = address("US");
    a.city = city.into();
    pb::CreateShipmentRequest {
        order_id: order_id.into(),
        address: Some(a),
        items: vec![item("KIT-0001", 3, 250), item("APP-0002", 1, 0)],
    }
}

#[tokio::test]
async fn shipments_are_created_once_per_order_and_found_by_id_or_order() {
    let (_db, _shipping, mut client) = started().await;
    let order_id = "0192f0c4-6a3b-7c3d-8e4f-0123456789ab";
    let created = client
        .create_shipment(create_request(order_id, "Arlington"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.order_id, order_id);
    assert_eq!(created.status, pb::ShipmentStatus::Created as i32);
    assert_eq!(created.tracking_id.len(), 15);
    assert!(created.tracking_id.starts_with("EMP"));
    assert!(
        created.tracking_id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{}",
        created.tracking_id
    );
    assert_eq!(created.items.len(), 2);
    assert_eq!(created.items[1].unit_weight_grams, 0);
    assert!(created.create_time.is_some());

    let again = client
        .create_shipment(create_request(order_id, "Elsewhere"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, created, "same order, same shipment");

    let by_id = client
        .get_shipment(pb::GetShipmentRequest {
            id: created.id.clone(),
            order_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id, created);
    let by_order = client
        .get_shipment(pb::GetShipmentRequest {
            id: String::new(),
            order_id: order_id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_order, created);

    let other = client
        .create_shipment(create_request("another-order", "Arlington"))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(other.id, created.id);
    assert_ne!(other.tracking_id, created.tracking_id);
}

#[tokio::test]
async fn lookups_need_exactly_one_well_formed_key_and_unknown_ones_are_not_found() {
    let (_db, _shipping, mut client) = started().await;
    let mut get = async |id: &str, order_id: &str| {
        client
            .get_shipment(pb::GetShipmentRequest {
                id: id.into(),
                order_id: order_id.into(),
            })
            .await
            .unwrap_err()
            .code()
    };
    assert_eq!(get("", "").await, Code::InvalidArgument);
    assert_eq!(
        get("0192f0c4-6a3b-7c3d-8e4f-0123456789ab", "order-1").await,
        Code::InvalidArgument
    );
    assert_eq!(get("42", "").await, Code::InvalidArgument);
    assert_eq!(get("", "not an order").await, Code::InvalidArgument);
    assert_eq!(
        get("0192f0c4-6a3b-7c3d-8e4f-0123456789ab", "").await,
        Code::NotFound
    );
    assert_eq!(get("", "order-1").await, Code::NotFound);

    let mut bad_order = create_request("", "Arlington");
    let err = client.create_shipment(bad_order.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    bad_order.order_id = "order-1".into();
    bad_order.items.clear();
    let err = client.create_shipment(bad_order).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("items"), "{}", err.message());
}

#[tokio::test]
async fn answers_the_grpc_health_protocol_as_serving_and_drains_on_stop() {
    let (_db, shipping, _client) = started().await;
    let channel = tonic::transport::Endpoint::from_shared(shipping.base_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", emporium_shipping::SERVICE_NAME] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let stopped = shipping.stop().await.unwrap();
    assert_eq!(stopped, emporium_chassis::lifecycle::Stopped::Drained);
}
