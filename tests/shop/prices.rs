//! Prices shown in the shopper's currency: one conversion call per page,
//! whatever its size, with the same figures as converting one by one.

use crate::start;

fn calls(text: &str, method: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("grpc_server_requests_total{") && l.contains(method))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_page_in_another_currency_takes_one_conversion_call() {
    let system = start().await;
    let metrics = || async {
        reqwest::get(system.currency.admin_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = calls(&metrics().await, "/ConvertMany");
    let page: serde_json::Value =
        reqwest::get(system.gateway.url("/api/v1/products?limit=20&currency=JPY"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(calls(&metrics().await, "/ConvertMany") - before, 1.0);
    // Each figure is what converting that price alone gives.
    let mut currency =
        emporium_api::currency::v1::currency_service_client::CurrencyServiceClient::connect(
            system.currency.base_url(),
        )
        .await
        .unwrap();
    for item in items {
        let display = &item["display_price"];
        assert_eq!(display["currency"], "JPY", "{item}");
        let one = currency
            .convert(emporium_api::currency::v1::ConvertRequest {
                from: Some(emporium_api::types::v1::Money {
                    minor_units: item["price"]["amount_minor"].as_i64().unwrap(),
                    currency_code: item["price"]["currency"].as_str().unwrap().into(),
                }),
                to_currency_code: "JPY".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .converted
            .unwrap();
        assert_eq!(
            display["amount_minor"].as_i64().unwrap(),
            one.minor_units,
            "{item}"
        );
    }
}
