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
    the_sales_report_sums_the_window_per_currency_and_product,
    placed_orders_page_through_equal_creation_times_once_each,
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

/// An order created at `at` (seconds after the window's start) in `step`.
fn sale(key: &str, at: i64, step: Step, currency: &str, lines: &[(&str, u32, i64)]) -> Order {
    let c = Currency::parse(currency).unwrap();
    let mut o = order("u1", key);
    o.currency = c;
    o.step = step;
    o.items = lines
        .iter()
        .map(|&(sku, quantity, unit_price)| OrderItem {
            product_id: format!("p-{sku}"),
            sku: sku.into(),
            name: format!("Product {sku}"),
            quantity,
            unit_price,
        })
        .collect();
    let items: i64 = lines.iter().map(|&(_, q, p)| i64::from(q) * p).sum();
    o.items_total = Money::new(items, c).unwrap();
    o.shipping_cost = Money::new(490, c).unwrap();
    o.total = Money::new(items + 490, c).unwrap();
    o.created_at = window_start() + time::Duration::seconds(at);
    o.updated_at = o.created_at;
    o
}

fn window_start() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

const DAY: i64 = 86_400;

async fn the_sales_report_sums_the_window_per_currency_and_product(store: Store) {
    let orders = [
        // At the start: inside (the window includes its start).
        sale("k1", 0, Step::Placed, "EUR", &[("KIT-0001", 2, 3199)]),
        sale(
            "k2",
            3600,
            Step::Completed,
            "EUR",
            &[("KIT-0001", 1, 3199), ("MUG-0001", 3, 1000)],
        ),
        sale("k3", 7200, Step::Placed, "USD", &[("KIT-0001", 1, 3500)]),
        sale("k4", 7300, Step::Failed, "EUR", &[("MUG-0001", 50, 1000)]),
        sale("k5", 7400, Step::Charging, "EUR", &[("MUG-0001", 7, 1000)]),
        // At the end and before the start: outside.
        sale("k6", DAY, Step::Placed, "EUR", &[("KIT-0001", 9, 3199)]),
        sale("k7", -1, Step::Placed, "EUR", &[("KIT-0001", 9, 3199)]),
    ];
    let mine = lease("a", NOW);
    for o in &orders {
        if o.step == Step::Failed {
            // Failed orders get there by compensation, which records the failure.
            let mut started = o.clone();
            started.step = Step::Charging;
            store.create(&started, &mine).await.unwrap();
            let declined = Changes {
                failure: Some(Failure {
                    kind: "payment_declined".into(),
                    reason: "card declined".into(),
                }),
                ..Changes::default()
            };
            for (from, to, changes) in [
                (Step::Charging, Step::Compensating, &declined),
                (Step::Compensating, Step::Failed, &Changes::default()),
            ] {
                assert!(store.advance(o.id, from, to, changes, &mine).await.unwrap());
            }
        } else {
            store.create(o, &mine).await.unwrap();
        }
    }
    let from = window_start();
    let until = from + time::Duration::seconds(DAY);
    let report = emporium_checkout::report::sales(&store, from, until, 10)
        .await
        .unwrap();

    assert_eq!(report.from, "2027-01-15T08:00:00Z");
    assert_eq!(report.until, "2027-01-16T08:00:00Z");
    let eur = &report.currencies[0];
    assert_eq!(
        (eur.currency.as_str(), eur.placed, eur.pending, eur.failed),
        ("EUR", 2, 1, 1)
    );
    assert_eq!(eur.items_minor, 6398 + 3199 + 3000);
    assert_eq!(eur.shipping_minor, 980);
    assert_eq!(eur.revenue_minor, 6398 + 3199 + 3000 + 980);
    let usd = &report.currencies[1];
    assert_eq!(
        (usd.currency.as_str(), usd.placed, usd.revenue_minor),
        ("USD", 1, 3990)
    );
    assert_eq!(report.currencies.len(), 2);

    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        (report.failures[0].kind.as_str(), report.failures[0].orders),
        ("payment_declined", 1)
    );

    assert_eq!(report.products_sold, 2);
    let kit = &report.top_products[0];
    assert_eq!((kit.sku.as_str(), kit.units), ("KIT-0001", 4));
    assert_eq!(kit.revenue_minor.get("EUR"), Some(&(6398 + 3199)));
    assert_eq!(kit.revenue_minor.get("USD"), Some(&3500));
    let mug = &report.top_products[1];
    assert_eq!((mug.sku.as_str(), mug.units), ("MUG-0001", 3));
    assert_eq!(mug.revenue_minor.get("EUR"), Some(&3000));

    // `top` bounds the list, not the count of products sold.
    let top1 = emporium_checkout::report::sales(&store, from, until, 1)
        .await
        .unwrap();
    assert_eq!(top1.top_products.len(), 1);
    assert_eq!(top1.products_sold, 2);

    // An empty window is an empty report.
    let later = until + time::Duration::seconds(DAY);
    let empty =
        emporium_checkout::report::sales(&store, later, later + time::Duration::seconds(DAY), 10)
            .await
            .unwrap();
    assert!(
        empty.currencies.is_empty() && empty.top_products.is_empty() && empty.failures.is_empty()
    );
    assert!(empty.to_string().contains("(no orders)"));
    let text = report.to_string();
    assert!(text.contains("KIT-0001"), "{text}");
    assert!(
        text.contains("EUR 135.77"),
        "EUR revenue as people read it: {text}"
    );
    assert!(text.contains("USD 39.90"), "{text}");
}

async fn placed_orders_page_through_equal_creation_times_once_each(store: Store) {
    let mut ids = Vec::new();
    for (i, at) in [5, 5, 5, 9, 9].into_iter().enumerate() {
        let o = sale(
            &format!("k{i}"),
            at,
            Step::Placed,
            "EUR",
            &[("KIT-0001", 1, 100)],
        );
        ids.push(o.id.to_string());
        store.create(&o, &lease("a", NOW)).await.unwrap();
    }
    let until = window_start() + time::Duration::seconds(DAY);
    let mut cursor = (window_start(), String::new());
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = store.placed_orders_after(&cursor, until, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.cursor.clone();
        seen.extend(page.into_iter().map(|p| p.cursor.1));
    }
    let mut expected = ids.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected, "every placed order exactly once");
    assert_eq!(seen.len(), 5);
}
