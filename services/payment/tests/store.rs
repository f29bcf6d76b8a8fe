//! Payment's storage contract, run against SQLite always and PostgreSQL
//! when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test functions, one
//! instance per backend.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::collections::HashSet;
use std::future::Future;

use emporium_payment::PaymentError;
use emporium_payment::domain::{
    Amount, Brand, Card, ChargeId, ChargeState, Currency, DeclineCode, Description, IdempotencyKey,
    KeyPrefix, MAX_LIST, NewCharge, YearMonth,
};
use emporium_payment::store::Store;
use emporium_testkit::{Backend, TestDb};

/// Runs `test` on a fresh, migrated store of `backend`; skips (with a
/// message) when the backend is not configured.
async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await.expect("test database") else {
        return;
    };
    let store = Store::connect(db.url(), 8).expect("connect");
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    store.close().await;
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    a_new_key_records_the_charge_and_it_reads_back_exactly,
    the_same_key_returns_the_stored_charge_unchanged_even_a_decline,
    twenty_concurrent_charges_with_one_key_make_exactly_one_row,
    a_key_reused_for_another_amount_or_currency_is_refused_and_writes_nothing,
    a_refund_moves_succeeded_to_refunded_and_repeats_harmlessly,
    concurrent_refunds_of_one_charge_all_see_the_same_refund,
    declined_charges_cannot_be_refunded,
    unknown_charges_are_not_found,
    charges_are_listed_by_literal_key_prefix_oldest_first,
    lists_stop_at_the_maximum,
);

const VISA: &str = "4242424242424242";
const MASTERCARD: &str = "5555555555554444";
const INSUFFICIENT_FUNDS: &str = "4000000000009995";

fn new_charge(key: &str, minor: i64, currency: &str, number: &str) -> NewCharge {
    let card = Card::new(number, 12, 2099, "123").unwrap();
    NewCharge::decide(
        IdempotencyKey::parse(key).unwrap(),
        Amount::new(minor, Currency::parse(currency).unwrap()).unwrap(),
        &card,
        Description::parse("Emporium order").unwrap(),
        YearMonth::of(time::OffsetDateTime::now_utc()),
    )
}

async fn a_new_key_records_the_charge_and_it_reads_back_exactly(store: Store) {
    let new = new_charge("order-1", 4_999, "EUR", MASTERCARD);
    let charge = store.charge(&new).await.unwrap();
    assert_eq!(charge.idempotency_key, new.idempotency_key);
    assert_eq!(charge.amount, new.amount);
    assert_eq!(charge.state, ChargeState::Succeeded);
    assert_eq!(charge.card_last4.as_str(), "4444");
    assert_eq!(charge.card_brand, Brand::Mastercard);
    assert_eq!(charge.description.as_str(), "Emporium order");
    assert_eq!(charge.refunded_at, None);
    assert_eq!(
        store.get_charge(charge.id).await.unwrap(),
        charge,
        "timestamps and fields read back exactly"
    );
    assert_eq!(store.count_charges().await.unwrap(), 1);
}

async fn the_same_key_returns_the_stored_charge_unchanged_even_a_decline(store: Store) {
    let declined = store
        .charge(&new_charge("order-2", 1_000, "USD", INSUFFICIENT_FUNDS))
        .await
        .unwrap();
    assert_eq!(
        declined.state,
        ChargeState::Declined(DeclineCode::InsufficientFunds)
    );
    // A retry with a card that would succeed still gets the stored decline.
    let retry = store
        .charge(&new_charge("order-2", 1_000, "USD", VISA))
        .await
        .unwrap();
    assert_eq!(retry, declined);
    assert_eq!(store.count_charges().await.unwrap(), 1);
}

async fn twenty_concurrent_charges_with_one_key_make_exactly_one_row(store: Store) {
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .charge(&new_charge("order-race", 2_500, "USD", VISA))
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for call in calls {
        let charge = call.await.unwrap().unwrap();
        assert_eq!(charge.state, ChargeState::Succeeded);
        ids.insert(charge.id);
    }
    assert_eq!(ids.len(), 1, "every caller got the same charge");
    assert_eq!(store.count_charges().await.unwrap(), 1);
}

async fn a_key_reused_for_another_amount_or_currency_is_refused_and_writes_nothing(store: Store) {
    let first = store
        .charge(&new_charge("order-3", 1_000, "USD", VISA))
        .await
        .unwrap();
    for other in [
        new_charge("order-3", 1_001, "USD", VISA),
        new_charge("order-3", 1_000, "EUR", VISA),
    ] {
        let err = store.charge(&other).await.unwrap_err();
        assert!(matches!(err, PaymentError::KeyReused(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("idempotency key reused with different parameters"),
            "{err}"
        );
    }
    assert_eq!(store.get_charge(first.id).await.unwrap(), first);
    assert_eq!(store.count_charges().await.unwrap(), 1);
}

async fn a_refund_moves_succeeded_to_refunded_and_repeats_harmlessly(store: Store) {
    let charge = store
        .charge(&new_charge("order-4", 7_500, "GBP", VISA))
        .await
        .unwrap();
    let refunded = store.refund(charge.id).await.unwrap();
    assert_eq!(refunded.state, ChargeState::Refunded);
    assert!(refunded.refunded_at.is_some_and(|t| t >= charge.created_at));
    assert_eq!(
        (refunded.id, refunded.amount, refunded.created_at),
        (charge.id, charge.amount, charge.created_at)
    );
    let again = store.refund(charge.id).await.unwrap();
    assert_eq!(again, refunded, "a second refund changes nothing");
    assert_eq!(store.get_charge(charge.id).await.unwrap(), refunded);
    // The key still answers with the (now refunded) charge, never a new one.
    let retry = store
        .charge(&new_charge("order-4", 7_500, "GBP", VISA))
        .await
        .unwrap();
    assert_eq!(retry, refunded);
    assert_eq!(store.count_charges().await.unwrap(), 1);
}

async fn concurrent_refunds_of_one_charge_all_see_the_same_refund(store: Store) {
    let charge = store
        .charge(&new_charge("order-5", 300, "USD", VISA))
        .await
        .unwrap();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.refund(charge.id).await })
        })
        .collect();
    let mut refunded_at = HashSet::new();
    for call in calls {
        let refunded = call.await.unwrap().unwrap();
        assert_eq!(refunded.state, ChargeState::Refunded);
        refunded_at.insert(refunded.refunded_at);
    }
    assert_eq!(refunded_at.len(), 1, "refunded exactly once");
}

async fn declined_charges_cannot_be_refunded(store: Store) {
    let declined = store
        .charge(&new_charge("order-6", 300, "USD", "4000000000000002"))
        .await
        .unwrap();
    assert_eq!(
        declined.state,
        ChargeState::Declined(DeclineCode::CardDeclined)
    );
    let err = store.refund(declined.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            PaymentError::NotRefundable {
                decline: DeclineCode::CardDeclined,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.get_charge(declined.id).await.unwrap(), declined);
}

async fn unknown_charges_are_not_found(store: Store) {
    let id = ChargeId::generate();
    assert!(matches!(
        store.get_charge(id).await,
        Err(PaymentError::ChargeNotFound(got)) if got == id
    ));
    assert!(matches!(
        store.refund(id).await,
        Err(PaymentError::ChargeNotFound(_))
    ));
    assert_eq!(
        store.count_charges().await.unwrap(),
        0,
        "a refund creates nothing"
    );
}

fn keys(charges: &[emporium_payment::domain::Charge]) -> Vec<&str> {
    charges.iter().map(|c| c.idempotency_key.as_str()).collect()
}

async fn charges_are_listed_by_literal_key_prefix_oldest_first(store: Store) {
    for key in [
        "order-10", "other-1", "order-1", "order-2", "order_1", "ORDER-1",
    ] {
        store
            .charge(&new_charge(key, 100, "USD", VISA))
            .await
            .unwrap();
    }
    let list = |prefix: &str| {
        let store = store.clone();
        let prefix = KeyPrefix::parse(prefix).unwrap();
        async move { store.list_charges(&prefix).await.unwrap() }
    };
    assert_eq!(keys(&list("order-1").await), ["order-10", "order-1"]);
    assert_eq!(
        keys(&list("order-").await),
        ["order-10", "order-1", "order-2"]
    );
    assert_eq!(
        keys(&list("order_").await),
        ["order_1"],
        "`_` is not a wildcard"
    );
    assert_eq!(keys(&list("order%").await), Vec::<&str>::new());
    assert_eq!(keys(&list("ORDER").await), ["ORDER-1"], "case matters");
    assert_eq!(list("").await.len(), 6);
    assert!(list("order-10-x").await.is_empty());
}

async fn lists_stop_at_the_maximum(store: Store) {
    let max = usize::try_from(MAX_LIST).unwrap();
    for i in 0..max + 5 {
        store
            .charge(&new_charge(&format!("bulk-{i:04}"), 100, "USD", VISA))
            .await
            .unwrap();
    }
    let listed = store
        .list_charges(&KeyPrefix::parse("bulk-").unwrap())
        .await
        .unwrap();
    assert_eq!(listed.len(), max);
    assert_eq!(
        listed[0].idempotency_key.as_str(),
        "bulk-0000",
        "oldest first"
    );
    assert_eq!(listed[max - 1].idempotency_key.as_str(), "bulk-0099");
}
