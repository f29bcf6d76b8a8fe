//! Checkout's storage contract on SQLite and (when configured) PostgreSQL:
//! idempotency keys, compare-and-set steps under a lease, stale-saga claims,
//! and the order + outbox transaction.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::future::Future;

use emporium_checkout::domain::{
    Address, Currency, Failure, IdempotencyKey, Money, Order, OrderId, OrderItem, Step,
};
use emporium_checkout::store::{Changes, Created, Lease, OutboxEvent, Store};
use emporium_testkit::{Backend, TestDb};

async fn with_store<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await.unwrap() else {
        return;
    };
    let store = Store::connect(db.url(), 4).unwrap();
    store.migrate().await.unwrap();
    test(store.clone()).await;
    store.close().await;
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    an_idempotency_key_holds_one_order_per_user,
    orders_read_back_exactly,
    steps_change_only_from_the_expected_step_and_by_the_lease_holder,
    placing_writes_the_outbox_record_in_the_same_transaction,
    stale_sagas_are_claimed_once_and_only_after_their_lease,
    orders_list_newest_first_per_user,
);

const NOW: i64 = 1_800_000_000_000;

fn lease(owner: &str, until_ms: i64) -> Lease {
    Lease {
        owner: owner.into(),
        until_ms,
    }
}

fn order(user: &str, key: &str) -> Order {
    let eur = Currency::parse("EUR").unwrap();
    let now = emporium_checkout::domain::now();
    Order {
        id: OrderId::generate(),
        user_id: user.into(),
        email: Some("ada@example.com".into()),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        request_hash: "h".into(),
        step: Step::Priced,
        currency: eur,
        items: vec![OrderItem {
            product_id: "p1".into(),
            sku: "KIT-0001".into(),
            name: "Skillet".into(),
            quantity: 2,
            unit_price: 3199,
        }],
        items_total: Money::new(6398, eur).unwrap(),
        shipping_cost: Money::zero(eur),
        total: Money::new(6398, eur).unwrap(),
        address: Address::parse("Ada", "1 Main St", "", "Berlin", "10115", "DE").unwrap(),
        charge_id: None,
        failure: None,
        created_at: now,
        updated_at: now,
    }
}

async fn an_idempotency_key_holds_one_order_per_user(store: Store) {
    let first = order("u1", "k1");
    assert!(matches!(
        store.create(&first, &lease("a", NOW)).await.unwrap(),
        Created::New
    ));
    match store
        .create(&order("u1", "k1"), &lease("b", NOW))
        .await
        .unwrap()
    {
        Created::Existing(existing) => assert_eq!(existing.id, first.id),
        Created::New => panic!("a second order under the same key"),
    }
    // The same key from another user is another order.
    assert!(matches!(
        store
            .create(&order("u2", "k1"), &lease("a", NOW))
            .await
            .unwrap(),
        Created::New
    ));
}

async fn orders_read_back_exactly(store: Store) {
    let o = order("u1", "k1");
    store.create(&o, &lease("a", NOW)).await.unwrap();
    assert_eq!(store.get(o.id).await.unwrap().unwrap(), o);
    assert_eq!(
        store
            .find_by_key("u1", &o.idempotency_key)
            .await
            .unwrap()
            .unwrap(),
        o
    );
    assert!(store.get(OrderId::generate()).await.unwrap().is_none());
}

async fn steps_change_only_from_the_expected_step_and_by_the_lease_holder(store: Store) {
    let o = order("u1", "k1");
    let mine = lease("a", NOW);
    store.create(&o, &mine).await.unwrap();
    assert!(
        store
            .advance(
                o.id,
                Step::Priced,
                Step::Reserving,
                &Changes::default(),
                &mine
            )
            .await
            .unwrap()
    );
    // Seen step is stale now: no change.
    assert!(
        !store
            .advance(
                o.id,
                Step::Priced,
                Step::Reserving,
                &Changes::default(),
                &mine
            )
            .await
            .unwrap()
    );
    // Someone else's lease: no change.
    assert!(
        !store
            .advance(
                o.id,
                Step::Reserving,
                Step::Reserved,
                &Changes::default(),
                &lease("b", NOW)
            )
            .await
            .unwrap()
    );
    // Illegal moves are refused before touching the database.
    assert!(
        store
            .advance(
                o.id,
                Step::Reserving,
                Step::Placed,
                &Changes::default(),
                &mine
            )
            .await
            .is_err()
    );
    let failure = Failure {
        kind: "payment-declined".into(),
        reason: "declined".into(),
    };
    let changes = Changes {
        failure: Some(failure.clone()),
        ..Changes::default()
    };
    assert!(
        store
            .advance(o.id, Step::Reserving, Step::Compensating, &changes, &mine)
            .await
            .unwrap()
    );
    let got = store.get(o.id).await.unwrap().unwrap();
    assert_eq!(got.step, Step::Compensating);
    assert_eq!(got.failure, Some(failure));
}

async fn placing_writes_the_outbox_record_in_the_same_transaction(store: Store) {
    let o = order("u1", "k1");
    let mine = lease("a", NOW);
    store.create(&o, &mine).await.unwrap();
    for (from, to) in [
        (Step::Priced, Step::Reserving),
        (Step::Reserving, Step::Reserved),
        (Step::Reserved, Step::Quoted),
        (Step::Quoted, Step::Charging),
    ] {
        assert!(
            store
                .advance(o.id, from, to, &Changes::default(), &mine)
                .await
                .unwrap()
        );
    }
    let charged = Changes {
        charge_id: Some("ch_1".into()),
        ..Changes::default()
    };
    assert!(
        store
            .advance(o.id, Step::Charging, Step::Charged, &charged, &mine)
            .await
            .unwrap()
    );
    let event = |id: &str| OutboxEvent {
        id: id.into(),
        aggregate_id: o.id.to_string(),
        event_type: "order.placed.v1".into(),
        payload: "{}".into(),
    };
    // Wrong lease: neither the step nor the event is written.
    assert!(
        !store
            .place(o.id, &lease("b", NOW), &event("e0"))
            .await
            .unwrap()
    );
    assert!(store.unpublished_events(10).await.unwrap().is_empty());
    assert!(store.place(o.id, &mine, &event("e1")).await.unwrap());
    let events = store.unpublished_events(10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "order.placed.v1");
    let placed = store.get(o.id).await.unwrap().unwrap();
    assert_eq!(placed.step, Step::Placed);
    assert_eq!(placed.charge_id.as_deref(), Some("ch_1"));
    // Placing twice is refused (the step moved on) and writes no second event.
    assert!(!store.place(o.id, &mine, &event("e2")).await.unwrap());
    assert_eq!(store.unpublished_events(10).await.unwrap().len(), 1);
}

async fn stale_sagas_are_claimed_once_and_only_after_their_lease(store: Store) {
    let live = order("u1", "k-live");
    let dead = order("u1", "k-dead");
    store
        .create(&live, &lease("a", NOW + 30_000))
        .await
        .unwrap();
    store.create(&dead, &lease("a", NOW - 1)).await.unwrap();
    let claimed = store
        .claim_stale(NOW, &lease("b", NOW + 30_000), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![dead.id]
    );
    // Now b holds it: nobody else can claim it, and b can drive it.
    assert!(
        store
            .claim_stale(NOW, &lease("c", NOW + 30_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .advance(
                dead.id,
                Step::Priced,
                Step::Reserving,
                &Changes::default(),
                &lease("b", NOW + 1)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance(
                dead.id,
                Step::Reserving,
                Step::Reserved,
                &Changes::default(),
                &lease("a", NOW + 1)
            )
            .await
            .unwrap()
    );
}

async fn orders_list_newest_first_per_user(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let o = order("u1", &format!("k{i}"));
        ids.push(o.id);
        store.create(&o, &lease("a", NOW)).await.unwrap();
    }
    store
        .create(&order("u2", "other"), &lease("a", NOW))
        .await
        .unwrap();
    ids.reverse();
    let first = store.list_for_user("u1", None, 3).await.unwrap();
    assert_eq!(first.iter().map(|o| o.id).collect::<Vec<_>>(), ids[..3]);
    let rest = store.list_for_user("u1", Some(ids[2]), 3).await.unwrap();
    assert_eq!(rest.iter().map(|o| o.id).collect::<Vec<_>>(), ids[3..]);
}
