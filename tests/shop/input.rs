//! Bad input is a 400 (or the right 4xx) problem, and writes nothing.

use serde_json::json;

use crate::{Customer, GOOD_CARD, checkout_body, problem, products, start, stock};

#[tokio::test]
async fn malformed_bodies_wrong_types_and_absurd_values_are_400() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let (product, _) = products(&system, 1).await.remove(0);
    let add = |body: String| {
        customer
            .post("/api/v1/cart/items")
            .header("content-type", "application/json")
            .body(body)
    };
    for body in [
        "{not json".to_owned(),
        json!({"product_id": product, "quantity": "two"}).to_string(),
        json!({"product_id": product, "quantity": -1}).to_string(),
        json!({"product_id": product, "quantity": 0}).to_string(),
        json!({"product_id": product, "quantity": 100}).to_string(),
        json!({"product_id": product, "quantity": 4294967296u64}).to_string(),
        json!({"product_id": "not-a-product", "quantity": 1}).to_string(),
        json!({"product_id": "01920000-0000-7000-8000-000000000000", "quantity": 1}).to_string(),
        json!({"product_id": product, "quantity": 1, "price": 0}).to_string(),
    ] {
        problem(add(body.clone()).send().await.unwrap(), 400).await;
    }
    let no_content_type = customer
        .post("/api/v1/cart/items")
        .body(json!({"product_id": product, "quantity": 1}).to_string());
    problem(no_content_type.send().await.unwrap(), 400).await;
    let huge = customer
        .post("/api/v1/cart/items")
        .json(&json!({"product_id": "x".repeat(200_000), "quantity": 1}));
    problem(huge.send().await.unwrap(), 413).await;
    assert_eq!(
        customer.json("/api/v1/cart").await["item_count"],
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn bad_checkouts_are_400_and_write_nothing() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let (product, sku) = products(&system, 1).await.remove(0);
    customer.add_to_cart(&product, 1).await;
    let before = stock(&system, &sku).await;

    let unknown_currency = problem(customer.checkout("bad-1", "XYZ", GOOD_CARD).await, 400).await;
    assert!(
        unknown_currency["detail"].as_str().unwrap().contains("XYZ"),
        "{unknown_currency}"
    );
    problem(customer.checkout("bad-2", "euro", GOOD_CARD).await, 400).await;
    problem(customer.checkout("bad-3", "EUR", "1234").await, 400).await;
    problem(
        customer.checkout("bad-4", "EUR", "4242424242424241").await,
        400,
    )
    .await; // fails Luhn
    let mut no_country = checkout_body("EUR", GOOD_CARD);
    no_country["shipping_address"]["country_code"] = json!("");
    let response = customer
        .post("/api/v1/checkout")
        .header("Idempotency-Key", "bad-5")
        .json(&no_country)
        .send()
        .await
        .unwrap();
    problem(response, 400).await;
    let no_key = customer
        .post("/api/v1/checkout")
        .json(&checkout_body("EUR", GOOD_CARD))
        .send()
        .await
        .unwrap();
    let body = problem(no_key, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("Idempotency-Key"));

    assert_eq!(stock(&system, &sku).await, before, "no stock moved");
    assert_eq!(
        customer.json("/api/v1/cart").await["item_count"],
        1,
        "cart untouched"
    );
    let placed = customer.json("/api/v1/orders").await;
    assert!(
        placed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] != "placed")
    );
    assert!(
        crate::all_charges(&system)
            .await
            .iter()
            .all(|c| c.status != emporium_api::payment::v1::ChargeStatus::Succeeded as i32)
    );
}

#[tokio::test]
async fn an_empty_cart_cannot_be_checked_out() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let body = problem(customer.checkout("empty-1", "USD", GOOD_CARD).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("empty"), "{body}");
}
