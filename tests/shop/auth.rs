//! Who may do what: tokens, ownership, roles.

use serde_json::json;

use crate::{Customer, GOOD_CARD, problem, products, start};

#[tokio::test]
async fn another_users_order_is_not_found() {
    let system = start().await;
    let alice = Customer::sign_up(&system).await;
    let bob = Customer::sign_up(&system).await;
    let (product, _) = products(&system, 1).await.remove(0);
    alice.add_to_cart(&product, 1).await;
    let order: serde_json::Value = alice
        .checkout("alice-1", "USD", GOOD_CARD)
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(alice.get(&path).send().await.unwrap().status(), 200);
    problem(bob.get(&path).send().await.unwrap(), 404).await;
    // Bob's cart is his own: empty, whatever Alice does.
    assert_eq!(bob.json("/api/v1/cart").await["item_count"], 0);
    assert!(
        bob.json("/api/v1/orders").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_are_401() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let http = reqwest::Client::new();
    let url = system.gateway.url("/api/v1/cart");

    let none = problem(http.get(&url).send().await.unwrap(), 401).await;
    assert_eq!(
        none["type"],
        "https://emporium.example/problems/unauthenticated"
    );

    // Flip a character of the signature.
    let mut forged = customer.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    problem(
        http.get(&url).bearer_auth(&forged).send().await.unwrap(),
        401,
    )
    .await;

    // Correctly signed by the real key, but expired an hour ago.
    let expired = system
        .sign_token(&customer.user_id, "customer", -3600)
        .unwrap();
    let body = problem(
        http.get(&url).bearer_auth(&expired).send().await.unwrap(),
        401,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // Signed by a key accounts never published.
    let stranger = emporium_chassis::jwt::SigningKey::generate().unwrap();
    let foreign = system.sign_token_with(&stranger, &customer.user_id, "customer", 600);
    problem(
        http.get(&url).bearer_auth(&foreign).send().await.unwrap(),
        401,
    )
    .await;

    problem(
        http.get(&url)
            .header("authorization", "Basic Zm9vOmJhcg==")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(
        customer.get("/api/v1/cart").send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn customers_cannot_write_products_but_admins_can() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let product = json!({
        "sku": "TST-9000", "name": "Walnut Cutting Board", "description": "End-grain walnut.",
        "price": {"currency": "USD", "amount_minor": 5900}, "categories": ["kitchen"],
        "image_url": "/static/img/products/walnut-board.jpg"
    });
    let refused = customer
        .post("/api/v1/products")
        .json(&product)
        .send()
        .await
        .unwrap();
    let body = problem(refused, 403).await;
    assert_eq!(body["type"], "https://emporium.example/problems/forbidden");

    let admin_token = system.sign_token("test-admin", "admin", 600).unwrap();
    let http = reqwest::Client::new();
    let created = http
        .post(system.gateway.url("/api/v1/products"))
        .bearer_auth(&admin_token)
        .json(&product)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let renamed = http
        .patch(system.gateway.url(&path))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "Walnut Board"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    assert_eq!(
        renamed.json::<serde_json::Value>().await.unwrap()["name"],
        "Walnut Board"
    );
    let deleted = http
        .delete(system.gateway.url(&path))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    problem(reqwest::get(system.gateway.url(&path)).await.unwrap(), 404).await;
}

#[tokio::test]
async fn jwks_is_published_and_verifies_issued_tokens() {
    let system = start().await;
    let customer = Customer::sign_up(&system).await;
    let jwks: emporium_chassis::jwt::Jwks =
        reqwest::get(system.gateway.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let verifier = emporium_chassis::jwt::Verifier::new(&jwks, "emporium", "emporium-api").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = verifier.verify(&customer.token, now).unwrap();
    assert_eq!(claims.sub, customer.user_id);
    assert_eq!(
        customer.json("/api/v1/me").await["id"],
        customer.user_id.as_str()
    );
}
