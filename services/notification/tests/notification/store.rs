//! Handling events and the sender's queue, against SQLite always and
//! PostgreSQL when `EMPORIUM_TEST_POSTGRES_URL` is set: the same test
//! functions, one instance per backend.

use std::future::Future;
use std::time::Duration;

use emporium_eventbus::{Envelope, EventType};
use emporium_notification::domain::{MessageKind, MessageStatus, now};
use emporium_notification::events::{self, CONSUMER, Done, Verdict};
use emporium_notification::store::Store;
use emporium_testkit::{Backend, TestDb};
use serde_json::json;

use crate::support::{
    new_order_id, order_placed, placed_envelope, shipment_created, shipped_envelope,
};

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
    the_same_order_event_twice_makes_one_message,
    concurrent_deliveries_of_one_event_make_one_message,
    a_shipment_before_its_order_is_not_processed,
    an_order_without_a_usable_address_is_processed_without_messages,
    unreadable_or_invalid_events_are_rejected_and_leave_nothing,
    the_sender_queue_claims_once_backs_off_failures_and_keeps_sent_messages_sent,
    due_messages_come_longest_due_first_in_bounded_batches,
);

const APPLIED_WITH_MESSAGE: Verdict = Verdict::Done(Done::Applied { message: true });
const APPLIED_WITHOUT_MESSAGE: Verdict = Verdict::Done(Done::Applied { message: false });
const DUPLICATE: Verdict = Verdict::Done(Done::Duplicate);

async fn the_same_order_event_twice_makes_one_message(store: Store) {
    let order_id = new_order_id();
    let envelope = placed_envelope(&order_placed(&order_id, Some("ada@example.com")));
    assert_eq!(
        events::handle(&store, &envelope, now()).await,
        APPLIED_WITH_MESSAGE
    );
    assert_eq!(events::handle(&store, &envelope, now()).await, DUPLICATE);

    let messages = store.messages().await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m.event_id, envelope.id());
    assert_eq!(m.kind, MessageKind::OrderConfirmation);
    assert_eq!(m.to.as_str(), "ada@example.com");
    let short = &order_id.replace('-', "")[24..];
    assert_eq!(
        m.subject,
        format!("Your Emporium order {short} is confirmed")
    );
    assert!(m.body.contains("Desk lamp (LAMP-001)"), "{}", m.body);
    assert!(m.body.contains("Total:  EUR 49.48"), "{}", m.body);
    assert_eq!(
        (m.status, m.attempts, m.sent_at, &m.last_error),
        (MessageStatus::Pending, 0, None, &None)
    );
    assert_eq!(
        store.message(m.id).await.unwrap().as_ref(),
        Some(m),
        "a message reads back exactly, timestamps included"
    );
    assert!(store.is_processed(CONSUMER, envelope.id()).await.unwrap());
    let contact = store
        .contact(&emporium_notification::domain::OrderId::parse(&order_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.email.unwrap().as_str(), "ada@example.com");
    assert_eq!(contact.name.as_str(), "Ada Lovelace");
}

async fn concurrent_deliveries_of_one_event_make_one_message(store: Store) {
    let envelope = placed_envelope(&order_placed(&new_order_id(), Some("ada@example.com")));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (store, envelope) = (store.clone(), envelope.clone());
            tokio::spawn(async move { events::handle(&store, &envelope, now()).await })
        })
        .collect();
    let mut verdicts = Vec::new();
    for call in calls {
        verdicts.push(call.await.unwrap());
    }
    let applied = verdicts
        .iter()
        .filter(|v| **v == APPLIED_WITH_MESSAGE)
        .count();
    let duplicates = verdicts.iter().filter(|v| **v == DUPLICATE).count();
    assert_eq!((applied, duplicates), (1, 7), "{verdicts:?}");
    assert_eq!(store.messages().await.unwrap().len(), 1);
}

async fn a_shipment_before_its_order_is_not_processed(store: Store) {
    let order_id = new_order_id();
    let shipped = shipped_envelope(&shipment_created(&order_id, "EMP0123456789AB"));
    let verdict = events::handle(&store, &shipped, now()).await;
    match &verdict {
        Verdict::Retry(reason) => assert!(reason.contains(&order_id), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(!store.is_processed(CONSUMER, shipped.id()).await.unwrap());
    assert!(store.messages().await.unwrap().is_empty());

    // Once the order is known, the same delivery succeeds.
    let placed = placed_envelope(&order_placed(&order_id, Some("ada@example.com")));
    assert_eq!(
        events::handle(&store, &placed, now()).await,
        APPLIED_WITH_MESSAGE
    );
    assert_eq!(
        events::handle(&store, &shipped, now()).await,
        APPLIED_WITH_MESSAGE
    );
    assert_eq!(events::handle(&store, &shipped, now()).await, DUPLICATE);
    let messages = store.messages().await.unwrap();
    let kinds: Vec<_> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [MessageKind::OrderConfirmation, MessageKind::OrderShipped]
    );
    let shipped_mail = &messages[1];
    assert_eq!(shipped_mail.event_id, shipped.id());
    assert_eq!(shipped_mail.to.as_str(), "ada@example.com");
    assert!(shipped_mail.subject.ends_with("has shipped"));
    assert!(
        shipped_mail.body.contains("EMP0123456789AB"),
        "{}",
        shipped_mail.body
    );
}

async fn an_order_without_a_usable_address_is_processed_without_messages(store: Store) {
    for email in [None, Some("not an address")] {
        let order_id = new_order_id();
        let placed = placed_envelope(&order_placed(&order_id, email));
        assert_eq!(
            events::handle(&store, &placed, now()).await,
            APPLIED_WITHOUT_MESSAGE,
            "{email:?}"
        );
        assert!(store.is_processed(CONSUMER, placed.id()).await.unwrap());
        // Its shipment is settled too (not retried until dead-lettered).
        let shipped = shipped_envelope(&shipment_created(&order_id, "EMP1"));
        assert_eq!(
            events::handle(&store, &shipped, now()).await,
            APPLIED_WITHOUT_MESSAGE
        );
        assert!(store.is_processed(CONSUMER, shipped.id()).await.unwrap());
    }
    assert!(store.messages().await.unwrap().is_empty());
}

async fn unreadable_or_invalid_events_are_rejected_and_leave_nothing(store: Store) {
    let ty = |t: &str| EventType::parse(t).unwrap();
    let unreadable = Envelope::new(
        "/emporium/checkout",
        ty("order.placed.v1"),
        "o-1",
        json!({"order_id": "o-1"}),
    )
    .unwrap();
    let mut bad_currency = order_placed(&new_order_id(), Some("ada@example.com"));
    bad_currency.currency = "euro".into();
    let mut no_items = order_placed(&new_order_id(), Some("ada@example.com"));
    no_items.items.clear();
    let mut no_tracking = shipment_created(&new_order_id(), "EMP1");
    no_tracking.tracking_id = " ".into();
    for envelope in [
        unreadable,
        placed_envelope(&bad_currency),
        placed_envelope(&no_items),
        shipped_envelope(&no_tracking),
    ] {
        let verdict = events::handle(&store, &envelope, now()).await;
        assert!(
            matches!(verdict, Verdict::Reject(_)),
            "{}: {verdict:?}",
            envelope.data()
        );
        assert!(!store.is_processed(CONSUMER, envelope.id()).await.unwrap());
    }
    let other = Envelope::new("/emporium/inventory", ty("stock.low.v1"), "SKU", json!({})).unwrap();
    assert_eq!(
        events::handle(&store, &other, now()).await,
        Verdict::Done(Done::Ignored)
    );
    assert!(store.messages().await.unwrap().is_empty());
}

async fn the_sender_queue_claims_once_backs_off_failures_and_keeps_sent_messages_sent(
    store: Store,
) {
    let placed = placed_envelope(&order_placed(&new_order_id(), Some("ada@example.com")));
    events::handle(&store, &placed, now()).await;
    let t0 = now();
    let later = |secs: u64| t0 + Duration::from_secs(secs);

    let due = store.due_messages(t0, 10).await.unwrap();
    assert_eq!(due.len(), 1, "a new message is due at once");
    let id = due[0].id;
    assert!(store.claim(id, t0, later(300)).await.unwrap());
    assert!(
        !store.claim(id, t0, later(300)).await.unwrap(),
        "a claimed message is not claimed again"
    );
    assert!(store.due_messages(t0, 10).await.unwrap().is_empty());
    assert_eq!(
        store.due_messages(later(301), 10).await.unwrap().len(),
        1,
        "a lapsed claim makes it due again"
    );

    assert!(
        store
            .mark_failed(id, "451 try again later", later(10))
            .await
            .unwrap()
    );
    let failed = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.attempts),
        (MessageStatus::Pending, 1)
    );
    assert_eq!(failed.last_error.as_deref(), Some("451 try again later"));
    assert!(store.due_messages(later(9), 10).await.unwrap().is_empty());
    assert_eq!(store.due_messages(later(10), 10).await.unwrap().len(), 1);

    let sent_at = now();
    assert!(store.mark_sent(id, sent_at).await.unwrap());
    let sent = store.message(id).await.unwrap().unwrap();
    assert_eq!(
        (sent.status, sent.attempts, sent.sent_at),
        (MessageStatus::Sent, 2, Some(sent_at))
    );
    assert!(
        store
            .due_messages(later(100_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.mark_failed(id, "late", later(1)).await.unwrap());
    assert!(!store.mark_sent(id, now()).await.unwrap());
    assert!(
        !store
            .claim(id, later(100_000), later(100_300))
            .await
            .unwrap()
    );
    assert_eq!(
        store.message(id).await.unwrap().unwrap().status,
        MessageStatus::Sent,
        "a sent message never goes back to pending"
    );
}

async fn due_messages_come_longest_due_first_in_bounded_batches(store: Store) {
    for _ in 0..3 {
        let placed = placed_envelope(&order_placed(&new_order_id(), Some("ada@example.com")));
        assert_eq!(
            events::handle(&store, &placed, now()).await,
            APPLIED_WITH_MESSAGE
        );
    }
    let all = store.messages().await.unwrap();
    let t = now();
    // The oldest one failed once and is due again only later.
    assert!(
        store
            .mark_failed(all[0].id, "timeout", t + Duration::from_secs(60))
            .await
            .unwrap()
    );
    let batch = store.due_messages(t, 2).await.unwrap();
    assert_eq!(
        batch.iter().map(|m| m.id).collect::<Vec<_>>(),
        [all[1].id, all[2].id]
    );
    let later = store
        .due_messages(t + Duration::from_secs(61), 2)
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|m| m.id).collect::<Vec<_>>(),
        [all[1].id, all[2].id],
        "at most the batch size, the longest-due first"
    );
    assert_eq!(
        store
            .due_messages(t + Duration::from_secs(61), 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
