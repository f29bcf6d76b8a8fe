//! The cart's storage contract, run against the embedded SQLite store always,
//! against Redis when `EMPORIUM_TEST_REDIS_URL` is set and against Redis over
//! TLS when `EMPORIUM_TEST_REDIS_TLS_URL` and `…_CA_FILE` are: the same test
//! functions, one instance per store. Every test uses fresh owners (and, on
//! Redis, its own key prefix), so tests run in parallel and nothing global
//! is flushed.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::future::Future;
use std::time::Duration;

use emporium_cart::CartError;
use emporium_cart::domain::{
    Currency, Line, MAX_LINES, Money, Owner, ProductId, ProductName, Quantity, Refused,
};
use emporium_cart::store::{CartStore, RedisCarts, SqliteCarts, redis_client};
use emporium_testkit::{Backend, TestDb};

/// Short, so whatever a crashed test leaves in Redis goes away soon.
const TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Redis,
    /// Redis over TLS (`rediss://`), its certificate signed by a private CA.
    RedisTls,
}

/// Runs `test` on a fresh store of `kind`; skips (with a message) when Redis
/// is not configured.
async fn with_store<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(CartStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, _db, redis) = match kind {
        Kind::Sqlite => {
            let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
            let store = CartStore::Sqlite(SqliteCarts::connect(db.url(), 8).unwrap());
            (store, Some(db), None)
        }
        Kind::Redis | Kind::RedisTls => {
            let client = match kind {
                Kind::RedisTls => {
                    let Some((url, ca_cert)) = emporium_testkit::cart::test_redis_tls() else {
                        return;
                    };
                    redis_client(&url, Some(&ca_cert)).unwrap()
                }
                _ => {
                    let Some(url) = emporium_testkit::cart::test_redis_url() else {
                        return;
                    };
                    redis_client(&url, None).unwrap()
                }
            };
            let prefix = emporium_testkit::cart::unique_key_prefix();
            let store =
                CartStore::Redis(RedisCarts::connect(client.clone(), &prefix, TTL).unwrap());
            (store, None, Some((client, prefix)))
        }
    };
    store.migrate().await.unwrap();
    test(store.clone()).await;
    store.close().await;
    if let Some((client, prefix)) = redis {
        delete_keys(&client, &prefix).await;
    }
}

/// Deletes this test's keys (and only those: they share its unique prefix).
async fn delete_keys(client: &::redis::Client, prefix: &str) {
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    for key in keys {
        let _: () = ::redis::cmd("DEL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

macro_rules! for_each_store {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(super::Kind::Sqlite, super::$test).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(super::Kind::Redis, super::$test).await })*
        }
        mod redis_tls {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(super::Kind::RedisTls, super::$test).await })*
        }
    };
}

for_each_store!(
    a_new_owner_has_an_empty_cart,
    add_creates_a_line_then_adds_to_it_keeping_the_latest_name_and_price,
    adding_beyond_99_units_is_refused_and_changes_nothing,
    set_replaces_the_quantity,
    a_cart_holds_at_most_50_lines,
    remove_is_idempotent_and_clear_empties_only_that_cart,
    lines_are_ordered_by_product_id,
    twenty_concurrent_adds_of_one_unit_make_twenty,
    concurrent_new_lines_never_exceed_the_line_limit,
);

fn owner() -> Owner {
    Owner::parse(&uuid::Uuid::now_v7().to_string()).unwrap()
}

fn product() -> ProductId {
    ProductId::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
}

fn line(product_id: ProductId, quantity: u32) -> Line {
    line_priced(
        product_id,
        quantity,
        "Brass Compass \"Mk II\" — ünïcode",
        4500,
    )
}

fn line_priced(product_id: ProductId, quantity: u32, name: &str, minor: i64) -> Line {
    Line {
        product_id,
        quantity: Quantity::new(quantity).unwrap(),
        name: ProductName::parse(name).unwrap(),
        unit_price: Money::new(minor, Currency::parse("USD").unwrap()).unwrap(),
    }
}

async fn a_new_owner_has_an_empty_cart(store: CartStore) {
    assert!(store.get(&owner()).await.unwrap().lines.is_empty());
}

async fn add_creates_a_line_then_adds_to_it_keeping_the_latest_name_and_price(store: CartStore) {
    let (me, p) = (owner(), product());
    let cart = store.add(&me, &line(p, 2)).await.unwrap();
    assert_eq!(cart.lines, [line(p, 2)]);
    let cart = store
        .add(&me, &line_priced(p, 3, "Brass Compass (renamed)", 3999))
        .await
        .unwrap();
    assert_eq!(
        cart.lines,
        [line_priced(p, 5, "Brass Compass (renamed)", 3999)]
    );
    assert_eq!(store.get(&me).await.unwrap(), cart);
}

async fn adding_beyond_99_units_is_refused_and_changes_nothing(store: CartStore) {
    let (me, p) = (owner(), product());
    store.add(&me, &line(p, 90)).await.unwrap();
    let refused = store.add(&me, &line(p, 10)).await;
    assert!(
        matches!(
            refused,
            Err(CartError::Refused(Refused::TooMany { wanted: 100, .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(store.get(&me).await.unwrap().lines, [line(p, 90)]);
    let cart = store.add(&me, &line(p, 9)).await.unwrap();
    assert_eq!(cart.lines, [line(p, 99)]);
}

async fn set_replaces_the_quantity(store: CartStore) {
    let (me, p) = (owner(), product());
    store.add(&me, &line(p, 7)).await.unwrap();
    assert_eq!(
        store.set(&me, &line(p, 2)).await.unwrap().lines,
        [line(p, 2)]
    );
    assert_eq!(
        store.set(&me, &line(p, 99)).await.unwrap().lines,
        [line(p, 99)]
    );
    let other = product();
    let cart = store.set(&me, &line(other, 1)).await.unwrap();
    assert_eq!(cart.lines.len(), 2, "set creates a missing line");
}

async fn a_cart_holds_at_most_50_lines(store: CartStore) {
    let me = owner();
    let mut products = Vec::new();
    for _ in 0..MAX_LINES {
        let p = product();
        store.add(&me, &line(p, 1)).await.unwrap();
        products.push(p);
    }
    let full = store.add(&me, &line(product(), 1)).await;
    assert!(
        matches!(full, Err(CartError::Refused(Refused::CartFull))),
        "{full:?}"
    );
    let full = store.set(&me, &line(product(), 1)).await;
    assert!(
        matches!(full, Err(CartError::Refused(Refused::CartFull))),
        "{full:?}"
    );
    // Existing lines still change.
    let cart = store.add(&me, &line(products[0], 1)).await.unwrap();
    assert_eq!(cart.lines.len(), MAX_LINES);
    assert_eq!(cart.line(products[0]).unwrap().quantity.get(), 2);
    store.set(&me, &line(products[1], 5)).await.unwrap();
    // After a removal there is room again.
    store.remove(&me, products[2]).await.unwrap();
    assert_eq!(
        store
            .add(&me, &line(product(), 1))
            .await
            .unwrap()
            .lines
            .len(),
        MAX_LINES
    );
}

async fn remove_is_idempotent_and_clear_empties_only_that_cart(store: CartStore) {
    let (me, other) = (owner(), owner());
    let (a, b) = (product(), product());
    store.add(&me, &line(a, 1)).await.unwrap();
    store.add(&me, &line(b, 2)).await.unwrap();
    store.add(&other, &line(a, 3)).await.unwrap();
    assert_eq!(store.remove(&me, a).await.unwrap().lines, [line(b, 2)]);
    assert_eq!(
        store.remove(&me, a).await.unwrap().lines,
        [line(b, 2)],
        "removing twice is fine"
    );
    assert_eq!(
        store.remove(&owner(), a).await.unwrap().lines,
        [],
        "so is removing from an empty cart"
    );
    assert!(store.clear(&me).await.unwrap().lines.is_empty());
    assert!(store.get(&me).await.unwrap().lines.is_empty());
    assert!(store.clear(&me).await.unwrap().lines.is_empty());
    assert_eq!(
        store.get(&other).await.unwrap().lines,
        [line(a, 3)],
        "other carts are untouched"
    );
}

async fn lines_are_ordered_by_product_id(store: CartStore) {
    let me = owner();
    let mut products: Vec<ProductId> = (0..8).map(|_| product()).collect();
    for p in &products {
        store.add(&me, &line(*p, 1)).await.unwrap();
    }
    products.sort();
    let got: Vec<ProductId> = store
        .get(&me)
        .await
        .unwrap()
        .lines
        .iter()
        .map(|l| l.product_id)
        .collect();
    assert_eq!(got, products);
    let as_text: Vec<String> = got.iter().map(ToString::to_string).collect();
    let mut sorted_text = as_text.clone();
    sorted_text.sort();
    assert_eq!(as_text, sorted_text, "the same order as their text");
}

async fn twenty_concurrent_adds_of_one_unit_make_twenty(store: CartStore) {
    let (me, p) = (owner(), product());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, me) = (store.clone(), me.clone());
            tokio::spawn(async move { store.add(&me, &line(p, 1)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        store.get(&me).await.unwrap().lines,
        [line(p, 20)],
        "no add was lost"
    );
}

async fn concurrent_new_lines_never_exceed_the_line_limit(store: CartStore) {
    let me = owner();
    for _ in 0..MAX_LINES - 5 {
        store.add(&me, &line(product(), 1)).await.unwrap();
    }
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, me) = (store.clone(), me.clone());
            tokio::spawn(async move { store.add(&me, &line(product(), 1)).await })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => added += 1,
            Err(CartError::Refused(Refused::CartFull)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(added, 5);
    assert_eq!(store.get(&me).await.unwrap().lines.len(), MAX_LINES);
}

#[tokio::test]
async fn redis_carts_live_under_their_prefix_and_expire_after_the_ttl() {
    let Some(url) = emporium_testkit::cart::test_redis_url() else {
        return;
    };
    let prefix = emporium_testkit::cart::unique_key_prefix();
    let client = redis_client(&url, None).unwrap();
    let carts = RedisCarts::connect(client, &prefix, Duration::from_secs(3600)).unwrap();
    let me = owner();
    carts.add(&me, &line(product(), 1)).await.unwrap();
    let key = carts.key_of(&me);
    assert_eq!(key, format!("{prefix}{me}"));
    let mut connection = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = ::redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    carts.clear(&me).await.unwrap();
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(exists, 0, "an empty cart leaves no key behind");
}

#[tokio::test]
async fn redis_over_tls_verifies_the_server_certificate() {
    let Some((url, ca_cert)) = emporium_testkit::cart::test_redis_tls() else {
        return;
    };
    let me = owner();
    // Trusting its CA, the store works; the system's roots do not know that
    // CA, so the same server is refused, and plain text is not spoken at all.
    let trusted = RedisCarts::connect(redis_client(&url, Some(&ca_cert)).unwrap(), "t:", TTL);
    assert!(trusted.unwrap().get(&me).await.unwrap().lines.is_empty());
    let untrusted = RedisCarts::connect(redis_client(&url, None).unwrap(), "t:", TTL).unwrap();
    let err = untrusted.get(&me).await.unwrap_err();
    assert!(matches!(err, CartError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let plain = url.replacen("rediss://", "redis://", 1);
    let plain = RedisCarts::connect(redis_client(&plain, None).unwrap(), "t:", TTL).unwrap();
    assert!(plain.get(&me).await.is_err());
}

#[test]
fn a_ca_certificate_is_checked_before_dialling() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let err = redis_client("redis://127.0.0.1:1", Some(pem)).unwrap_err();
    assert!(err.to_string().contains("rediss://"), "{err}");
    let err = redis_client("rediss://127.0.0.1:1", Some("junk")).unwrap_err();
    assert!(err.to_string().contains("redis.ca_cert"), "{err}");
    let err = redis_client("http://127.0.0.1:1", None).unwrap_err();
    assert!(err.to_string().contains("redis.url"), "{err}");
}
