//! The inventory's storage contract, run against SQLite always and PostgreSQL
//! when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test functions, one
//! instance per backend.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

use std::future::Future;
use std::time::Duration;

use emporium_inventory::InventoryError;
use emporium_inventory::domain::{Available, Items, OrderId, ReservationStatus, Sku, StockLevel};
use emporium_inventory::store::Store;
use emporium_inventory::sweeper::sweep_once;
use emporium_testkit::{Backend, TestDb};
use time::OffsetDateTime;

const TTL: Duration = Duration::from_secs(900);

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
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(emporium_testkit::Backend::Sqlite, super::$test).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
              async fn $test() { super::with_store(emporium_testkit::Backend::Postgres, super::$test).await })*
        }
    };
}

for_each_backend!(
    fifty_concurrent_reserves_for_ten_units_sell_exactly_ten,
    reserve_is_all_or_nothing,
    reserve_is_idempotent_per_order_and_refuses_other_items,
    unknown_skus_have_no_stock_and_cannot_be_reserved,
    confirm_consumes_the_units_once_and_then_refuses_release,
    release_returns_the_units_once_and_then_refuses_confirm,
    unknown_reservations_are_not_found,
    sweeper_expires_only_due_reservations_and_returns_their_units,
    confirming_an_expired_unswept_reservation_fails_and_returns_the_units,
    concurrent_confirms_and_releases_apply_exactly_one_transition,
    set_stock_keeps_units_held_by_reservations,
    import_stock_sets_every_sku_of_the_seed_file,
);

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s).unwrap()
}

fn items(entries: &[(&str, u32)]) -> Items {
    Items::new(entries.iter().copied()).unwrap()
}

async fn set(store: &Store, entries: &[(&str, i64)]) {
    let levels: Vec<_> = entries
        .iter()
        .map(|(s, n)| (sku(s), Available::new(*n).unwrap()))
        .collect();
    store.set_stock(&levels).await.unwrap();
}

async fn level(store: &Store, s: &str) -> (i64, i64) {
    let got = store.get_stock(&[sku(s)]).await.unwrap();
    (got[0].available, got[0].reserved)
}

fn t0() -> OffsetDateTime {
    emporium_inventory::domain::now()
}

async fn fifty_concurrent_reserves_for_ten_units_sell_exactly_ten(store: Store) {
    set(&store, &[("HOT-0001", 10)]).await;
    let now = t0();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .reserve(
                        &order(&format!("order-{i}")),
                        &items(&[("HOT-0001", 1)]),
                        TTL,
                        now,
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.status, ReservationStatus::Reserved);
                won += 1;
            }
            Err(InventoryError::OutOfStock { sku, available, .. }) => {
                assert_eq!(sku.as_str(), "HOT-0001");
                assert_eq!(available, 0);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 10, "exactly the stock was sold");
    assert_eq!(level(&store, "HOT-0001").await, (0, 10));
}

async fn reserve_is_all_or_nothing(store: Store) {
    set(&store, &[("AAA-0001", 5), ("BBB-0001", 1)]).await;
    let err = store
        .reserve(
            &order("o-1"),
            &items(&[("AAA-0001", 2), ("BBB-0001", 2)]),
            TTL,
            t0(),
        )
        .await
        .unwrap_err();
    match &err {
        InventoryError::OutOfStock { sku, available, .. } => {
            assert_eq!(sku.as_str(), "BBB-0001");
            assert_eq!(*available, 1);
        }
        e => panic!("unexpected error: {e}"),
    }
    assert!(err.to_string().contains("only 1 left"), "{err}");
    assert_eq!(
        level(&store, "AAA-0001").await,
        (5, 0),
        "first item rolled back"
    );
    assert_eq!(level(&store, "BBB-0001").await, (1, 0));
    assert!(matches!(
        store.get_reservation(&order("o-1")).await,
        Err(InventoryError::ReservationNotFound(_))
    ));
    // The same order may try again once there is stock.
    set(&store, &[("BBB-0001", 2)]).await;
    let r = store
        .reserve(
            &order("o-1"),
            &items(&[("AAA-0001", 2), ("BBB-0001", 2)]),
            TTL,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 2);
    assert_eq!(level(&store, "AAA-0001").await, (3, 2));
    assert_eq!(level(&store, "BBB-0001").await, (0, 2));
}

async fn reserve_is_idempotent_per_order_and_refuses_other_items(store: Store) {
    set(&store, &[("IDM-0001", 10), ("IDM-0002", 10)]).await;
    let wanted = items(&[("IDM-0002", 1), ("IDM-0001", 3)]);
    let now = t0();
    let first = store
        .reserve(&order("o-2"), &wanted, TTL, now)
        .await
        .unwrap();
    assert_eq!(first.expires_at, now + TTL);
    let later = now + Duration::from_secs(60);
    let again = store
        .reserve(&order("o-2"), &wanted, TTL, later)
        .await
        .unwrap();
    assert_eq!(again, first, "the existing reservation, unchanged");
    assert_eq!(level(&store, "IDM-0001").await, (7, 3), "held once");
    let other = store
        .reserve(&order("o-2"), &items(&[("IDM-0001", 4)]), TTL, now)
        .await;
    assert!(
        matches!(other, Err(InventoryError::DifferentItems(_))),
        "{other:?}"
    );
    // Concurrent repeats of the same reserve still hold the units once.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, wanted) = (store.clone(), wanted.clone());
            tokio::spawn(async move { store.reserve(&order("o-3"), &wanted, TTL, now).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().order_id, order("o-3"));
    }
    assert_eq!(level(&store, "IDM-0001").await, (4, 6));
    assert_eq!(level(&store, "IDM-0002").await, (8, 2));
}

async fn unknown_skus_have_no_stock_and_cannot_be_reserved(store: Store) {
    let got = store.get_stock(&[sku("NOPE-0001")]).await.unwrap();
    assert_eq!(
        got,
        [StockLevel {
            sku: sku("NOPE-0001"),
            available: 0,
            reserved: 0
        }]
    );
    let err = store
        .reserve(&order("o-4"), &items(&[("NOPE-0001", 1)]), TTL, t0())
        .await
        .unwrap_err();
    assert!(
        matches!(err, InventoryError::OutOfStock { available: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("NOPE-0001"), "{err}");
}

async fn confirm_consumes_the_units_once_and_then_refuses_release(store: Store) {
    set(&store, &[("CNF-0001", 10)]).await;
    let now = t0();
    store
        .reserve(&order("o-5"), &items(&[("CNF-0001", 3)]), TTL, now)
        .await
        .unwrap();
    assert_eq!(level(&store, "CNF-0001").await, (7, 3));
    let confirmed = store.confirm(&order("o-5"), now).await.unwrap();
    assert_eq!(confirmed.status, ReservationStatus::Confirmed);
    assert_eq!(
        level(&store, "CNF-0001").await,
        (7, 0),
        "the units are gone"
    );
    let again = store.confirm(&order("o-5"), now).await.unwrap();
    assert_eq!(again, confirmed);
    assert_eq!(level(&store, "CNF-0001").await, (7, 0), "consumed once");
    let refused = store.release(&order("o-5"), now).await;
    assert!(
        matches!(&refused, Err(e @ InventoryError::WrongState { .. }) if e.kind() == emporium_chassis::ErrorKind::Conflict),
        "{refused:?}"
    );
    // A confirmed reservation no longer expires.
    assert_eq!(sweep_once(&store, now + TTL * 2).await.unwrap(), 0);
    assert_eq!(level(&store, "CNF-0001").await, (7, 0));
}

async fn release_returns_the_units_once_and_then_refuses_confirm(store: Store) {
    set(&store, &[("REL-0001", 10)]).await;
    let now = t0();
    store
        .reserve(&order("o-6"), &items(&[("REL-0001", 4)]), TTL, now)
        .await
        .unwrap();
    let released = store.release(&order("o-6"), now).await.unwrap();
    assert_eq!(released.status, ReservationStatus::Released);
    assert_eq!(level(&store, "REL-0001").await, (10, 0));
    assert_eq!(store.release(&order("o-6"), now).await.unwrap(), released);
    assert_eq!(level(&store, "REL-0001").await, (10, 0), "returned once");
    assert!(matches!(
        store.confirm(&order("o-6"), now).await,
        Err(InventoryError::WrongState { .. })
    ));
}

async fn unknown_reservations_are_not_found(store: Store) {
    let now = t0();
    for result in [
        store.confirm(&order("ghost"), now).await,
        store.release(&order("ghost"), now).await,
        store.get_reservation(&order("ghost")).await,
    ] {
        assert!(
            matches!(result, Err(InventoryError::ReservationNotFound(ref id)) if id.as_str() == "ghost"),
            "{result:?}"
        );
    }
}

async fn sweeper_expires_only_due_reservations_and_returns_their_units(store: Store) {
    set(&store, &[("EXP-0001", 10)]).await;
    let now = t0();
    let short = Duration::from_secs(1);
    store
        .reserve(&order("o-short"), &items(&[("EXP-0001", 2)]), short, now)
        .await
        .unwrap();
    store
        .reserve(&order("o-long"), &items(&[("EXP-0001", 3)]), TTL, now)
        .await
        .unwrap();
    assert_eq!(
        sweep_once(&store, now).await.unwrap(),
        0,
        "nothing is due yet"
    );
    assert_eq!(level(&store, "EXP-0001").await, (5, 5));
    let later = now + Duration::from_secs(2);
    assert_eq!(sweep_once(&store, later).await.unwrap(), 1);
    assert_eq!(level(&store, "EXP-0001").await, (7, 3));
    let expired = store.get_reservation(&order("o-short")).await.unwrap();
    assert_eq!(expired.status, ReservationStatus::Expired);
    assert_eq!(sweep_once(&store, later).await.unwrap(), 0, "expired once");
    assert_eq!(level(&store, "EXP-0001").await, (7, 3));
    assert!(matches!(
        store.confirm(&order("o-short"), later).await,
        Err(InventoryError::WrongState { .. })
    ));
    let released = store.release(&order("o-short"), later).await.unwrap();
    assert_eq!(
        released.status,
        ReservationStatus::Expired,
        "release after expiry is a no-op"
    );
    assert_eq!(level(&store, "EXP-0001").await, (7, 3));
    // Exactly at its expiry a reservation is due.
    assert_eq!(sweep_once(&store, now + TTL).await.unwrap(), 1);
    assert_eq!(level(&store, "EXP-0001").await, (10, 0));
}

async fn confirming_an_expired_unswept_reservation_fails_and_returns_the_units(store: Store) {
    set(&store, &[("LATE-0001", 10)]).await;
    let now = t0();
    store
        .reserve(
            &order("o-late"),
            &items(&[("LATE-0001", 6)]),
            Duration::from_secs(1),
            now,
        )
        .await
        .unwrap();
    let late = now + Duration::from_secs(5);
    let err = store.confirm(&order("o-late"), late).await.unwrap_err();
    assert!(matches!(err, InventoryError::WrongState { .. }), "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(
        level(&store, "LATE-0001").await,
        (10, 0),
        "units went back on sale"
    );
    assert_eq!(
        store
            .get_reservation(&order("o-late"))
            .await
            .unwrap()
            .status,
        ReservationStatus::Expired
    );
    assert_eq!(
        sweep_once(&store, late).await.unwrap(),
        0,
        "nothing left to sweep"
    );
}

async fn concurrent_confirms_and_releases_apply_exactly_one_transition(store: Store) {
    set(&store, &[("RACE-0001", 10)]).await;
    let now = t0();
    store
        .reserve(&order("o-race"), &items(&[("RACE-0001", 5)]), TTL, now)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    store.confirm(&order("o-race"), now).await
                } else {
                    store.release(&order("o-race"), now).await
                }
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) | Err(InventoryError::WrongState { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    let status = store
        .get_reservation(&order("o-race"))
        .await
        .unwrap()
        .status;
    let expected = match status {
        ReservationStatus::Confirmed => (5, 0),
        ReservationStatus::Released => (10, 0),
        other => panic!("unexpected status {other}"),
    };
    assert_eq!(level(&store, "RACE-0001").await, expected);
}

async fn set_stock_keeps_units_held_by_reservations(store: Store) {
    assert_eq!(store.count_skus().await.unwrap(), 0);
    set(&store, &[("SET-0001", 10)]).await;
    assert_eq!(store.count_skus().await.unwrap(), 1);
    store
        .reserve(&order("o-set"), &items(&[("SET-0001", 4)]), TTL, t0())
        .await
        .unwrap();
    set(&store, &[("SET-0001", 20)]).await;
    assert_eq!(level(&store, "SET-0001").await, (20, 4));
    store.release(&order("o-set"), t0()).await.unwrap();
    assert_eq!(level(&store, "SET-0001").await, (24, 0));
}

async fn import_stock_sets_every_sku_of_the_seed_file(store: Store) {
    let json = emporium_testkit::inventory::SEED_STOCK;
    let levels = emporium_inventory::import::parse(json).unwrap();
    assert_eq!(
        emporium_inventory::import_stock(&store, json)
            .await
            .unwrap(),
        levels.len()
    );
    assert_eq!(
        emporium_inventory::import_stock(&store, json)
            .await
            .unwrap(),
        levels.len()
    );
    let skus: Vec<Sku> = levels.iter().map(|(s, _)| s.clone()).collect();
    let got = store.get_stock(&skus).await.unwrap();
    for ((sku, available), level) in levels.iter().zip(&got) {
        assert_eq!(&level.sku, sku);
        assert_eq!(level.available, available.get());
        assert_eq!(level.reserved, 0);
    }
    let bad = emporium_inventory::import_stock(
        &store,
        r#"{"levels":[{"sku":"KIT-0001","available":-1}]}"#,
    )
    .await;
    assert!(matches!(bad, Err(InventoryError::Invalid(_))), "{bad:?}");
}
