//! Payment's gRPC API over a real socket: the documented test cards, status
//! codes, idempotency, refunds, injected faults, what reaches the database,
//! health.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::time::{Duration, Instant};

use emporium_api::payment::v1 as pb;
use emporium_api::payment::v1::payment_service_client::PaymentServiceClient;
use emporium_api::types::v1 as types;
use emporium_testkit::payment::{spawn_payment, spawn_payment_with};
use emporium_testkit::{Backend, Running, TestDb, table};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn client(service: &Running) -> PaymentServiceClient<Channel> {
    PaymentServiceClient::connect(service.base_url())
        .await
        .unwrap()
}

async fn started() -> (TestDb, Running, PaymentServiceClient<Channel>) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let payment = spawn_payment(&db).await.unwrap();
    let c = client(&payment).await;
    (db, payment, c)
}

fn next_year() -> u32 {
    u32::try_from(time::OffsetDateTime::now_utc().year()).unwrap() + 1
}

fn card(number: &str) -> types::Card {
    types::Card {
        number: number.into(),
        exp_month: 12,
        exp_year: next_year(),
        cvc: "123".into(),
    }
}

fn charge_request(key: &str, minor_units: i64, number: &str) -> pb::ChargeRequest {
    pb::ChargeRequest {
        idempotency_key: key.into(),
        amount: Some(types::Money {
            minor_units,
            currency_code: "USD".into(),
        }),
        card: Some(card(number)),
        description: "Emporium order".into(),
    }
}

async fn list(client: &mut PaymentServiceClient<Channel>, prefix: &str) -> Vec<pb::Charge> {
    client
        .list_charges(pb::ListChargesRequest {
            idempotency_key_prefix: prefix.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .charges
}

#[tokio::test]
async fn the_documented_test_cards_succeed_or_decline_as_documented() {
    let (_db, _payment, mut c) = started().await;
    let cases = [
        ("4242424242424242", "SUCCEEDED", "", "visa", "4242"),
        (
            "4000000000000002",
            "DECLINED",
            "card_declined",
            "visa",
            "0002",
        ),
        (
            "4000000000009995",
            "DECLINED",
            "insufficient_funds",
            "visa",
            "9995",
        ),
        ("5555 5555 5555 4444", "SUCCEEDED", "", "mastercard", "4444"),
        ("2223 0031 2200 3222", "SUCCEEDED", "", "mastercard", "3222"),
        ("3782 822463 10005", "SUCCEEDED", "", "amex", "0005"),
        ("6011111111111117", "SUCCEEDED", "", "unknown", "1117"),
    ];
    for (i, (number, status, decline, brand, last4)) in cases.into_iter().enumerate() {
        let charge = c
            .charge(charge_request(&format!("card-{i}"), 1_999, number))
            .await
            .unwrap()
            .into_inner();
        let got = pb::ChargeStatus::try_from(charge.status).unwrap();
        assert_eq!(
            got.as_str_name(),
            format!("CHARGE_STATUS_{status}"),
            "{number}"
        );
        assert_eq!(charge.decline_code, decline, "{number}");
        assert_eq!(
            (charge.card_brand.as_str(), charge.card_last4.as_str()),
            (brand, last4)
        );
        assert_eq!(charge.amount.unwrap().minor_units, 1_999);
        assert!(charge.create_time.is_some());
    }
}

#[tokio::test]
async fn an_expired_card_is_a_declined_charge_not_an_error() {
    let (_db, _payment, mut c) = started().await;
    let now = time::OffsetDateTime::now_utc();
    let mut request = charge_request("expired-1", 500, "4242424242424242");
    let card = request.card.as_mut().unwrap();
    card.exp_year = u32::try_from(now.year()).unwrap() - 1;
    let charge = c.charge(request).await.unwrap().into_inner();
    assert_eq!(charge.status, pb::ChargeStatus::Declined as i32);
    assert_eq!(charge.decline_code, "expired_card");
    // The current month is still good.
    let mut request = charge_request("expired-2", 500, "4242424242424242");
    let card = request.card.as_mut().unwrap();
    card.exp_year = u32::try_from(now.year()).unwrap();
    card.exp_month = u32::from(u8::from(now.month()));
    let charge = c.charge(request).await.unwrap().into_inner();
    assert_eq!(charge.status, pb::ChargeStatus::Succeeded as i32);
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument_and_store_nothing() {
    let (_db, _payment, mut c) = started().await;
    type Mutation = fn(&mut pb::ChargeRequest);
    let cases: Vec<(&str, Mutation)> = vec![
        ("card.number", |r| {
            r.card.as_mut().unwrap().number = "4242424242424241".into()
        }),
        ("card.number", |r| {
            r.card.as_mut().unwrap().number = "4242-4242-4242-4242".into()
        }),
        ("card.number", |r| {
            r.card.as_mut().unwrap().number = "42424242424".into()
        }),
        ("card.number", |r| {
            r.card.as_mut().unwrap().number = "4".repeat(20)
        }),
        ("card.number", |r| {
            r.card.as_mut().unwrap().number = String::new()
        }),
        ("card.exp_month", |r| r.card.as_mut().unwrap().exp_month = 0),
        ("card.exp_month", |r| {
            r.card.as_mut().unwrap().exp_month = 13
        }),
        ("card.exp_year", |r| {
            r.card.as_mut().unwrap().exp_year = 1999
        }),
        ("card.cvc", |r| r.card.as_mut().unwrap().cvc = "12".into()),
        ("card.cvc", |r| {
            r.card.as_mut().unwrap().cvc = "12345".into()
        }),
        ("card.cvc", |r| r.card.as_mut().unwrap().cvc = "abc".into()),
        ("card", |r| r.card = None),
        ("amount.minor_units", |r| {
            r.amount.as_mut().unwrap().minor_units = 0
        }),
        ("amount.minor_units", |r| {
            r.amount.as_mut().unwrap().minor_units = -100
        }),
        ("amount.currency_code", |r| {
            r.amount.as_mut().unwrap().currency_code = "usd".into()
        }),
        ("amount.currency_code", |r| {
            r.amount.as_mut().unwrap().currency_code = String::new()
        }),
        ("amount", |r| r.amount = None),
        ("idempotency_key", |r| r.idempotency_key = String::new()),
        ("idempotency_key", |r| {
            r.idempotency_key = "has space".into()
        }),
        ("description", |r| r.description = "d".repeat(501)),
    ];
    for (field, mutate) in cases {
        let mut request = charge_request("malformed", 1_000, "4242424242424242");
        mutate(&mut request);
        let err = c.charge(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().starts_with(&format!("{field}:")),
            "expected {field}, got {}",
            err.message()
        );
    }
    assert!(list(&mut c, "").await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn retries_with_one_key_return_the_same_charge_and_other_parameters_are_refused() {
    let (_db, _payment, mut c) = started().await;
    let first = c
        .charge(charge_request("order-7", 4_200, "4242424242424242"))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .charge(charge_request("order-7", 4_200, "5555555555554444"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first, "same key, same charge");

    let declined = c
        .charge(charge_request("order-8", 4_200, "4000000000000002"))
        .await
        .unwrap()
        .into_inner();
    let declined_again = c
        .charge(charge_request("order-8", 4_200, "4242424242424242"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(declined_again, declined, "a decline is replayed too");

    let other_amount = c
        .charge(charge_request("order-7", 4_201, "4242424242424242"))
        .await
        .unwrap_err();
    assert_eq!(other_amount.code(), Code::InvalidArgument);
    assert!(
        other_amount
            .message()
            .contains("idempotency key reused with different parameters"),
        "{}",
        other_amount.message()
    );
    let mut other_currency = charge_request("order-7", 4_200, "4242424242424242");
    other_currency.amount.as_mut().unwrap().currency_code = "EUR".into();
    assert_eq!(
        c.charge(other_currency).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(list(&mut c, "order-").await.len(), 2);
}

#[tokio::test]
async fn refunds_follow_the_charge_state_machine() {
    let (_db, _payment, mut c) = started().await;
    let charge = c
        .charge(charge_request("order-9", 1_500, "4242424242424242"))
        .await
        .unwrap()
        .into_inner();
    let refund = |id: &str| pb::RefundRequest {
        charge_id: id.into(),
    };
    let refunded = c.refund(refund(&charge.id)).await.unwrap().into_inner();
    assert_eq!(refunded.status, pb::ChargeStatus::Refunded as i32);
    assert_eq!(
        (refunded.id.as_str(), refunded.amount.as_ref()),
        (charge.id.as_str(), charge.amount.as_ref())
    );
    let again = c.refund(refund(&charge.id)).await.unwrap().into_inner();
    assert_eq!(again, refunded, "refunds are idempotent");
    let fetched = c
        .get_charge(pb::GetChargeRequest {
            charge_id: charge.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, refunded);

    let declined = c
        .charge(charge_request("order-10", 1_500, "4000000000009995"))
        .await
        .unwrap()
        .into_inner();
    let err = c.refund(refund(&declined.id)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        emporium_chassis::ErrorKind::from_status(&err),
        emporium_chassis::ErrorKind::Conflict
    );
    assert!(
        err.message().contains("insufficient_funds"),
        "{}",
        err.message()
    );

    let unknown = "01920000-0000-7000-8000-000000000000";
    assert_eq!(
        c.refund(refund(unknown)).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        c.get_charge(pb::GetChargeRequest {
            charge_id: unknown.into()
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    assert_eq!(
        c.refund(refund("42")).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn charges_are_listed_by_key_prefix() {
    let (_db, _payment, mut c) = started().await;
    let order = "0192f0c4-6a3b-7c3d-8e4f-0123456789ab";
    for key in [order, "0192f0c4-ffff-7c3d-8e4f-0123456789ab", "unrelated"] {
        c.charge(charge_request(key, 100, "4242424242424242"))
            .await
            .unwrap();
    }
    let found = list(&mut c, order).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].idempotency_key, order);
    assert_eq!(list(&mut c, "0192f0c4-").await.len(), 2);
    assert_eq!(list(&mut c, "").await.len(), 3);
    let bad = c
        .list_charges(pb::ListChargesRequest {
            idempotency_key_prefix: "with space".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn card_numbers_and_cvcs_never_reach_the_database() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let payment = spawn_payment(&db).await.unwrap();
    let mut c = client(&payment).await;
    let mut request = charge_request("order-11", 2_000, "5555 5555 5555 4444");
    request.card.as_mut().unwrap().cvc = "7319".into();
    c.charge(request).await.unwrap();
    c.charge(charge_request("order-12", 2_000, "4000000000000002"))
        .await
        .unwrap();
    payment.stop().await.unwrap();

    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT id || '|' || idempotency_key || '|' || amount_minor || '|' || currency || '|' || \
         status || '|' || COALESCE(decline_code, '') || '|' || card_last4 || '|' || card_brand || \
         '|' || description FROM charges",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for secret in ["555555555555", "5555555555554444", "400000000000", "7319"] {
            assert!(!row.contains(secret), "{secret} stored in {row}");
        }
    }
    assert!(
        rows.iter().any(|r| r.contains("|4444|mastercard|")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn an_injected_error_rate_fails_calls_before_anything_is_stored() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let always = spawn_payment_with(&db, table(&[("faults.error_rate", "1")]))
        .await
        .unwrap();
    let mut c = client(&always).await;
    for i in 0..5 {
        let err = c
            .charge(charge_request(
                &format!("flaky-{i}"),
                100,
                "4242424242424242",
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
    }
    let err = c
        .list_charges(pb::ListChargesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    always.stop().await.unwrap();
    let store = emporium_payment::Store::connect(db.url(), 1).unwrap();
    assert_eq!(
        store.count_charges().await.unwrap(),
        0,
        "failed calls stored nothing"
    );
    store.close().await;

    // With half the calls failing, retrying one key until it answers charges once.
    let flaky = spawn_payment_with(&db, table(&[("faults.error_rate", "0.5")]))
        .await
        .unwrap();
    let mut c = client(&flaky).await;
    let mut answers = Vec::new();
    let mut failures = 0;
    for _ in 0..200 {
        match c
            .charge(charge_request("retried", 100, "4242424242424242"))
            .await
        {
            Ok(charge) => answers.push(charge.into_inner()),
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable);
                failures += 1;
            }
        }
        if answers.len() >= 3 && failures >= 1 {
            break;
        }
    }
    assert!(
        answers.len() >= 3 && failures >= 1,
        "{} answers, {failures} failures",
        answers.len()
    );
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "one charge, every time"
    );
    flaky.stop().await.unwrap();
    let store = emporium_payment::Store::connect(db.url(), 1).unwrap();
    assert_eq!(store.count_charges().await.unwrap(), 1);
    store.close().await;
}

#[tokio::test]
async fn injected_latency_delays_api_calls() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let slow = spawn_payment_with(&db, table(&[("faults.latency", "150ms")]))
        .await
        .unwrap();
    let mut c = client(&slow).await;
    let started = Instant::now();
    c.list_charges(pb::ListChargesRequest::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn answers_the_grpc_health_protocol_as_serving() {
    let (_db, payment, _c) = started().await;
    let channel = tonic::transport::Endpoint::from_shared(payment.base_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", emporium_payment::SERVICE_NAME] {
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
    let stopped = payment.stop().await.unwrap();
    assert_eq!(stopped, emporium_chassis::lifecycle::Stopped::Drained);
}
