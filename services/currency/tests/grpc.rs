//! The currency service over a real socket: listing, exact conversions and
//! their rounding, errors, reloading the rates file, health.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::path::Path;
use std::time::Duration;

use emporium_api::currency::v1 as pb;
use emporium_api::currency::v1::currency_service_client::CurrencyServiceClient;
use emporium_api::types::v1 as types;
use emporium_testkit::currency::{spawn_currency, spawn_currency_with};
use emporium_testkit::{Running, poll, table};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn client(service: &Running) -> CurrencyServiceClient<Channel> {
    CurrencyServiceClient::connect(service.base_url())
        .await
        .unwrap()
}

fn request(minor_units: i64, from: &str, to: &str) -> pb::ConvertRequest {
    pb::ConvertRequest {
        from: Some(types::Money {
            minor_units,
            currency_code: from.into(),
        }),
        to_currency_code: to.into(),
    }
}

async fn convert(
    client: &mut CurrencyServiceClient<Channel>,
    minor_units: i64,
    from: &str,
    to: &str,
) -> pb::ConvertResponse {
    client
        .convert(request(minor_units, from, to))
        .await
        .unwrap()
        .into_inner()
}

/// A rates document with EUR and USD at `usd` (and JPY at 100).
fn rates_doc(usd: &str) -> String {
    format!(
        r#"{{"base": "EUR", "date": "2026-01-02", "currencies": [
            {{"code": "EUR", "name": "Euro", "minor_unit_digits": 2, "rate": "1"}},
            {{"code": "USD", "name": "US Dollar", "minor_unit_digits": 2, "rate": "{usd}"}},
            {{"code": "JPY", "name": "Japanese Yen", "minor_unit_digits": 0, "rate": "100"}}
        ]}}"#
    )
}

/// Replaces the file in one step, so the service never reads half of it.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn spawn_with_file(path: &Path) -> Running {
    spawn_currency_with(table(&[
        ("rates_path", path.to_str().unwrap()),
        ("reload_interval", "20ms"),
    ]))
    .await
    .unwrap()
}

#[tokio::test]
async fn lists_the_shipped_currencies_with_names_and_minor_units() {
    let currency = spawn_currency().await.unwrap();
    let list = client(&currency)
        .await
        .list_currencies(pb::ListCurrenciesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.rates_date, "2026-11-24");
    let codes: Vec<_> = list.currencies.iter().map(|c| c.code.as_str()).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted, "listed in code order");
    for code in [
        "EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "PLN", "CZK",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let jpy = list.currencies.iter().find(|c| c.code == "JPY").unwrap();
    assert_eq!(
        (jpy.name.as_str(), jpy.minor_unit_digits),
        ("Japanese Yen", 0)
    );
    let usd = list.currencies.iter().find(|c| c.code == "USD").unwrap();
    assert_eq!(usd.minor_unit_digits, 2);
}

#[tokio::test]
async fn converts_exactly_with_the_shipped_rates() {
    let currency = spawn_currency().await.unwrap();
    let mut c = client(&currency).await;
    // 10 000 JPY / 161.42 × 1.0478 = 64.9114… USD.
    let yen_to_dollars = convert(&mut c, 10_000, "JPY", "USD").await;
    let converted = yen_to_dollars.converted.unwrap();
    assert_eq!(
        (converted.minor_units, converted.currency_code.as_str()),
        (6_491, "USD")
    );
    assert_eq!(yen_to_dollars.rate, "0.0064911411");
    assert_eq!(yen_to_dollars.rates_date, "2026-11-24");
    // 19.99 USD / 1.0478 × 161.42 = 3079.58… JPY (no minor unit).
    let dollars_to_yen = convert(&mut c, 1_999, "USD", "JPY").await;
    assert_eq!(dollars_to_yen.converted.unwrap().minor_units, 3_080);
    // 19.99 USD / 1.0478 × 0.83215 = 15.8758… GBP.
    assert_eq!(
        convert(&mut c, 1_999, "USD", "GBP")
            .await
            .converted
            .unwrap()
            .minor_units,
        1_588
    );
}

#[tokio::test]
async fn converting_to_the_same_currency_is_the_identity() {
    let currency = spawn_currency().await.unwrap();
    let mut c = client(&currency).await;
    for (minor, code) in [(1_234, "USD"), (0, "EUR"), (987_654_321, "JPY")] {
        let same = convert(&mut c, minor, code, code).await;
        let converted = same.converted.unwrap();
        assert_eq!(
            (converted.minor_units, converted.currency_code.as_str()),
            (minor, code)
        );
        assert_eq!(same.rate, "1");
    }
}

#[tokio::test]
async fn exact_halves_round_to_even_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.json");
    write_atomically(&path, &rates_doc("1.5"));
    let currency = spawn_with_file(&path).await;
    let mut c = client(&currency).await;
    let usd = |r: pb::ConvertResponse| r.converted.unwrap().minor_units;
    // 0.25 EUR × 1.5 = 0.375 USD: the tie goes up, to the even 38.
    assert_eq!(usd(convert(&mut c, 25, "EUR", "USD").await), 38);
    // 0.15 EUR × 1.5 = 0.225 USD: the tie goes down, to the even 22.
    assert_eq!(usd(convert(&mut c, 15, "EUR", "USD").await), 22);
    // Not a tie: 0.01 USD = 0.00666… EUR = 0.666… JPY, to the nearest yen.
    assert_eq!(usd(convert(&mut c, 1, "USD", "JPY").await), 1);
    // 3 JPY = 0.03 EUR = 0.045 USD = 4.5 cents: tie, to the even 4.
    assert_eq!(usd(convert(&mut c, 3, "JPY", "USD").await), 4);
    // 5 JPY = 0.075 USD = 7.5 cents: tie, to the even 8.
    assert_eq!(usd(convert(&mut c, 5, "JPY", "USD").await), 8);
    // Negative amounts mirror positive ones.
    assert_eq!(usd(convert(&mut c, -25, "EUR", "USD").await), -38);
    assert_eq!(usd(convert(&mut c, -3, "JPY", "USD").await), -4);
}

#[tokio::test]
async fn bad_requests_are_invalid_argument_and_name_the_problem() {
    let currency = spawn_currency().await.unwrap();
    let mut c = client(&currency).await;
    let unknown = c.convert(request(100, "USD", "XYZ")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(unknown.message().contains("XYZ"), "{}", unknown.message());
    let unknown_source = c.convert(request(100, "ABC", "USD")).await.unwrap_err();
    assert_eq!(unknown_source.code(), Code::InvalidArgument);
    assert!(
        unknown_source.message().contains("ABC"),
        "{}",
        unknown_source.message()
    );
    let malformed = c.convert(request(100, "usd", "EUR")).await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(
        malformed.message().contains("from.currency_code"),
        "{}",
        malformed.message()
    );
    let malformed_target = c.convert(request(100, "USD", "EURO")).await.unwrap_err();
    assert_eq!(malformed_target.code(), Code::InvalidArgument);
    assert!(malformed_target.message().contains("to_currency_code"));
    let missing = c
        .convert(pb::ConvertRequest {
            from: None,
            to_currency_code: "EUR".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let huge = c
        .convert(request(i64::MAX, "EUR", "JPY"))
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::InvalidArgument);
    assert!(huge.message().contains("too large"), "{}", huge.message());
}

/// The value of a counter in a Prometheus text page (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn metrics(service: &Running) -> String {
    reqwest::get(service.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

const FAILURES: &str = r#"currency_rates_reload_failures_total{service="currency"}"#;
const RELOADS: &str = r#"currency_rates_reloads_total{service="currency"}"#;

#[tokio::test]
async fn a_changed_rates_file_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.json");
    write_atomically(&path, &rates_doc("1.5"));
    let currency = spawn_with_file(&path).await;
    let mut c = client(&currency).await;
    assert_eq!(
        convert(&mut c, 100, "EUR", "USD")
            .await
            .converted
            .unwrap()
            .minor_units,
        150
    );

    write_atomically(&path, &rates_doc("1.75"));
    poll(Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            convert(&mut c, 100, "EUR", "USD")
                .await
                .converted
                .unwrap()
                .minor_units
                == 175
        }
    })
    .await
    .expect("the new rate was not applied");
    let page = metrics(&currency).await;
    assert_eq!(counter(&page, RELOADS), 1, "{page}");
    assert_eq!(counter(&page, FAILURES), 0, "{page}");
}

#[tokio::test]
async fn a_bad_rates_file_is_ignored_and_the_old_rates_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.json");
    write_atomically(&path, &rates_doc("1.5"));
    let currency = spawn_with_file(&path).await;
    let mut c = client(&currency).await;

    for bad in [
        "{ this is not json".to_owned(),
        rates_doc("-2"),
        rates_doc("1.5").replace("\"EUR\", \"date\"", "\"GBP\", \"date\""),
    ] {
        let before = counter(&metrics(&currency).await, FAILURES);
        write_atomically(&path, &bad);
        poll(Duration::from_secs(10), || async {
            counter(&metrics(&currency).await, FAILURES) > before
        })
        .await
        .expect("the bad file was not looked at");
        let still = convert(&mut c, 100, "EUR", "USD").await;
        assert_eq!(still.converted.unwrap().minor_units, 150, "{bad}");
        assert_eq!(still.rates_date, "2026-01-02");
    }
    assert_eq!(counter(&metrics(&currency).await, RELOADS), 0);

    // A good file after the bad ones is applied again.
    write_atomically(&path, &rates_doc("2"));
    poll(Duration::from_secs(10), || {
        let mut c = c.clone();
        async move {
            convert(&mut c, 100, "EUR", "USD")
                .await
                .converted
                .unwrap()
                .minor_units
                == 200
        }
    })
    .await
    .expect("the good file was not applied");
}

#[tokio::test]
async fn a_missing_or_invalid_rates_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let err = spawn_currency_with(table(&[("rates_path", missing.to_str().unwrap())]))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("missing.json"), "{err:#}");
    let bad = dir.path().join("bad.json");
    write_atomically(&bad, &rates_doc("0"));
    let err = spawn_currency_with(table(&[("rates_path", bad.to_str().unwrap())]))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("rate"), "{err:#}");
}

#[tokio::test]
async fn answers_the_grpc_health_protocol_as_serving() {
    let currency = spawn_currency().await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(currency.base_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", emporium_currency::SERVICE_NAME] {
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
    let stopped = currency.stop().await.unwrap();
    assert_eq!(stopped, emporium_chassis::lifecycle::Stopped::Drained);
}

#[tokio::test]
async fn many_amounts_convert_in_one_call_exactly_as_one_by_one() {
    let service = spawn_currency().await.unwrap();
    let mut client = client(&service).await;
    let amounts = [
        (1999, "USD"),
        (0, "EUR"),
        (123_456, "JPY"),
        (5, "USD"),
        (-250, "EUR"),
    ];
    let many = client
        .convert_many(pb::ConvertManyRequest {
            amounts: amounts
                .iter()
                .map(|(minor_units, code)| types::Money {
                    minor_units: *minor_units,
                    currency_code: (*code).into(),
                })
                .collect(),
            to_currency_code: "GBP".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(many.converted.len(), amounts.len());
    for ((minor_units, code), converted) in amounts.iter().zip(&many.converted) {
        let one = convert(&mut client, *minor_units, code, "GBP").await;
        assert_eq!(
            Some(converted),
            one.converted.as_ref(),
            "{minor_units} {code}"
        );
        assert_eq!(many.rates_date, one.rates_date);
    }
}

#[tokio::test]
async fn a_batch_too_big_or_with_a_bad_amount_is_refused_naming_it() {
    let service = spawn_currency().await.unwrap();
    let mut client = client(&service).await;
    let usd = |minor_units| types::Money {
        minor_units,
        currency_code: "USD".into(),
    };
    let too_many = client
        .convert_many(pb::ConvertManyRequest {
            amounts: (0..101).map(usd).collect(),
            to_currency_code: "EUR".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(too_many.message().contains("at most 100"), "{too_many:?}");
    let mut amounts: Vec<types::Money> = (0..3).map(usd).collect();
    amounts[2].currency_code = "XX".into();
    let bad = client
        .convert_many(pb::ConvertManyRequest {
            amounts,
            to_currency_code: "EUR".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("amounts[2]"), "{bad:?}");
    let bad_target = client
        .convert_many(pb::ConvertManyRequest {
            amounts: vec![usd(1)],
            to_currency_code: "euro".into(),
        })
        .await
        .unwrap_err();
    assert!(
        bad_target.message().contains("to_currency_code"),
        "{bad_target:?}"
    );
}
