#![allow(clippy::unwrap_used)] // Tests fail loudly by design.
//! The event-bus contract, run against the embedded log always and against
//! NATS JetStream when `EMPORIUM_TEST_NATS_URL` is set (e.g.
//! `nats://127.0.0.1:4222`): the same test functions, one instance per
//! backend, made by `conformance!` at the bottom.
//!
//! Every NATS test gets its own streams and subject prefix (a random id) and
//! deletes them at the end, also when it fails. Nothing waits with a fixed
//! sleep: waits are `Consumer::next` with a deadline or `poll_until`, and
//! checks that something does NOT happen wait a bounded time.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use emporium_chassis::TraceContext;
use emporium_chassis::config::Secret;
use emporium_eventbus::events::{self, OrderLine, OrderPlacedV1, ShippingAddress};
use emporium_eventbus::lag::{Outcome, Outcomes};
use emporium_eventbus::log::LogBus;
use emporium_eventbus::nats::NatsBus;
use emporium_eventbus::{
    BackendKind, Consumer, ConsumerConfig, ConsumerInfo, Delivery, Envelope, Error, EventBus,
    EventType, Filter, LogConfig, Nacked, NatsConfig, StreamRole,
};
use serde_json::json;

const NATS_URL_VAR: &str = "EMPORIUM_TEST_NATS_URL";
/// The longest a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(10);
/// Short, so redelivery tests are quick.
const ACK_WAIT: Duration = Duration::from_millis(500);
/// How long "nothing more arrives" is watched.
const QUIET: Duration = Duration::from_millis(700);
/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Kind {
    Log,
    Nats,
}

/// What a test gets: a bus, and a way to open the same storage again as a
/// restarted process would.
#[derive(Clone)]
struct Ctx {
    bus: Arc<dyn EventBus>,
    opener: Opener,
}

#[derive(Clone)]
enum Opener {
    Log(LogConfig),
    Nats(NatsConfig),
}

impl Ctx {
    /// A second, independent bus on the same storage (new connection pool
    /// or new NATS connection): "the process came back".
    async fn reopen(&self) -> Arc<dyn EventBus> {
        match &self.opener {
            Opener::Log(config) => Arc::new(LogBus::open(config).await.unwrap()),
            Opener::Nats(config) => Arc::new(NatsBus::connect(config).await.unwrap()),
        }
    }
}

/// Owns the test's storage and removes it, also on panic.
struct Guard {
    ctx: Ctx,
    _dir: Option<tempfile::TempDir>,
    nats: Option<NatsConfig>,
}

impl Guard {
    async fn new(kind: Kind) -> Option<Self> {
        match kind {
            Kind::Log => {
                let dir = tempfile::tempdir().unwrap();
                let config = LogConfig {
                    poll_interval: emporium_chassis::config::Duration::from_millis(50),
                    ..LogConfig::at(dir.path().join("events.db"))
                };
                let bus = LogBus::open(&config).await.unwrap();
                Some(Self {
                    ctx: Ctx {
                        bus: Arc::new(bus),
                        opener: Opener::Log(config),
                    },
                    _dir: Some(dir),
                    nats: None,
                })
            }
            Kind::Nats => {
                let Some(url) = std::env::var(NATS_URL_VAR).ok().filter(|s| !s.is_empty()) else {
                    eprintln!(
                        "SKIPPED (NATS): set {NATS_URL_VAR} (e.g. nats://127.0.0.1:4222) to run this test against NATS JetStream"
                    );
                    return None;
                };
                let id = uuid::Uuid::new_v4().simple().to_string();
                let id = &id[..16];
                let config = NatsConfig {
                    url: Secret::new(url),
                    stream: format!("EMPORIUM_TEST_{id}"),
                    dlq_stream: format!("EMPORIUM_TEST_{id}_DLQ"),
                    subject_prefix: format!("t{id}"),
                    max_age: emporium_chassis::config::Duration::from_secs(600),
                    ..NatsConfig::default()
                };
                let bus = NatsBus::connect(&config).await.unwrap();
                Some(Self {
                    ctx: Ctx {
                        bus: Arc::new(bus),
                        opener: Opener::Nats(config.clone()),
                    },
                    _dir: None,
                    nats: Some(config),
                })
            }
        }
    }

    async fn cleanup(mut self) {
        if let Some(config) = self.nats.take() {
            NatsBus::connect(&config)
                .await
                .unwrap()
                .delete_streams()
                .await
                .unwrap();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Only reached with `nats` set when the test panicked: clean up on a
        // thread with its own runtime (the test's may be unwinding).
        if let Some(config) = self.nats.take() {
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(bus) = NatsBus::connect(&config).await {
                        let _ = bus.delete_streams().await;
                    }
                });
            })
            .join();
        }
    }
}

async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(guard) = Guard::new(kind).await else {
        return;
    };
    tokio::time::timeout(TEST_LIMIT, test(guard.ctx.clone()))
        .await
        .expect("the test did not finish in time");
    guard.cleanup().await;
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod log {
            $(#[tokio::test] async fn $test() { super::run(super::Kind::Log, super::$test).await })*
        }
        mod nats {
            $(#[tokio::test] async fn $test() { super::run(super::Kind::Nats, super::$test).await })*
        }
    };
}

conformance!(
    published_event_arrives_intact_with_its_trace_and_not_again_after_ack,
    events_with_the_same_subject_arrive_in_publish_order,
    unacked_event_comes_again_after_the_consumer_dies,
    durable_consumer_resumes_where_it_stopped_after_a_restart,
    nack_redelivers_after_the_delay_before_anything_behind_it,
    poison_event_is_dead_lettered_after_max_deliver_and_replay_brings_it_back,
    unacknowledged_last_attempt_is_dead_lettered,
    term_dead_letters_at_once_and_dead_letters_can_be_deleted,
    publishing_the_same_envelope_twice_stores_it_once,
    lag_counts_events_not_yet_acknowledged,
    filters_deliver_only_matching_types,
    every_consumer_name_gets_every_event,
    purge_removes_events_consumers_and_dead_letters,
    concurrent_publishers_lose_nothing_and_keep_each_subjects_order,
    transient_retries_never_count_toward_dead_lettering,
    a_retrying_event_holds_back_only_its_own_key,
    deliveries_of_different_keys_are_out_at_once_up_to_max_in_flight,
    settled_events_stay_settled_when_an_earlier_one_is_still_retrying,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn event(ty: &str, subject: &str, n: u32) -> Envelope {
    Envelope::new(
        "/emporium/test",
        EventType::parse(ty).unwrap(),
        subject,
        json!({ "n": n }),
    )
    .unwrap()
}

fn n_of(delivery: &Delivery) -> u64 {
    delivery.envelope().data()["n"].as_u64().unwrap()
}

/// A consumer with the test's short ack_wait and backoff.
fn config(name: &str, filter: Filter) -> ConsumerConfig {
    ConsumerConfig::new(name, filter)
        .ack_wait(ACK_WAIT)
        .backoff([Duration::from_millis(50)])
}

async fn next(consumer: &mut Consumer) -> Delivery {
    consumer
        .next(PATIENCE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no delivery for `{}` within {PATIENCE:?}", consumer.name()))
}

async fn assert_quiet(consumer: &mut Consumer, wait: Duration) {
    if let Some(d) = consumer.next(wait).await.unwrap() {
        panic!(
            "`{}` got an unexpected delivery: {} (n={:?}, attempt {})",
            consumer.name(),
            d.envelope().event_type(),
            d.envelope().data().get("n"),
            d.attempt()
        );
    }
}

async fn publish_all(bus: &dyn EventBus, events: &[Envelope]) {
    for e in events {
        let published = bus.publish(e).await.unwrap();
        assert!(!published.duplicate, "{} was new", e.id());
    }
}

async fn consumer_info(bus: &dyn EventBus, name: &str) -> Option<ConsumerInfo> {
    bus.consumers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
}

/// Polls `check` until it is true or PATIENCE runs out.
async fn poll_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {PATIENCE:?}: {what}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

async fn assert_lag(bus: &dyn EventBus, name: &str, pending: u64, in_flight: u64) {
    poll_until(
        &format!("`{name}` has {pending} pending, {in_flight} in flight"),
        || async {
            consumer_info(bus, name)
                .await
                .is_some_and(|c| c.pending == pending && c.in_flight == in_flight)
        },
    )
    .await;
}

fn order_placed() -> OrderPlacedV1 {
    OrderPlacedV1 {
        order_id: uuid::Uuid::now_v7().to_string(),
        user_id: "user-7".into(),
        email: Some("ada@example.com".into()),
        currency: "EUR".into(),
        items: vec![OrderLine {
            product_id: "prod-1".into(),
            sku: "LAMP-001".into(),
            name: "Brass lamp".into(),
            quantity: 2,
            unit_price: 2_450,
        }],
        items_total: 4_900,
        shipping_cost: 495,
        total: 5_395,
        shipping_address: ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country_code: "GB".into(),
        },
        charge_id: "ch_0001".into(),
    }
}

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

async fn published_event_arrives_intact_with_its_trace_and_not_again_after_ack(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let mut consumer = bus
        .consumer(config("shipping-orders", Filter::All))
        .await
        .unwrap();
    let trace = TraceContext::new_root();
    let placed = order_placed();
    let envelope = Envelope::for_event(events::sources::CHECKOUT, &placed)
        .unwrap()
        .with_trace(trace);

    let published = bus.publish(&envelope).await.unwrap();
    assert!(!published.duplicate);

    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope(), &envelope);
    assert_eq!(delivery.attempt(), 1);
    assert_eq!(delivery.sequence(), published.sequence);
    assert_eq!(
        delivery.envelope().decode::<OrderPlacedV1>().unwrap(),
        placed
    );
    let continued = delivery.trace_context().unwrap();
    assert_eq!(continued.trace_id(), trace.trace_id());
    assert_ne!(continued.span_id(), trace.span_id());
    delivery.ack().await.unwrap();

    // Acknowledged means never again, not even after ack_wait.
    assert_quiet(&mut consumer, ACK_WAIT + QUIET).await;
    assert_lag(bus, "shipping-orders", 0, 0).await;
}

async fn events_with_the_same_subject_arrive_in_publish_order(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let mut consumer = bus.consumer(config("ordered", Filter::All)).await.unwrap();
    let keys = ["order-a", "order-b", "order-c"];
    let mut published = Vec::new();
    for n in 0..20 {
        // Interleave the keys, in a different order each round.
        for k in 0..keys.len() {
            let key = keys[(k + n as usize) % keys.len()];
            published.push(event(events::ORDER_PLACED_V1, key, n));
        }
    }
    publish_all(bus, &published).await;

    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut retried = false;
    for _ in 0..published.len() {
        let delivery = next(&mut consumer).await;
        let key = delivery.envelope().subject().to_owned();
        let n = n_of(&delivery);
        if key == "order-b" && n == 5 && !retried {
            // A failure in the middle must not let a later event of the key overtake.
            retried = true;
            assert!(matches!(
                delivery.nack(None, "transient").await.unwrap(),
                Nacked::Retry { .. }
            ));
            let again = next(&mut consumer).await;
            assert_eq!((again.envelope().subject(), n_of(&again)), ("order-b", 5));
            assert_eq!(again.attempt(), 2);
            again.ack().await.unwrap();
        } else {
            delivery.ack().await.unwrap();
        }
        seen.entry(key).or_default().push(n);
    }
    assert!(retried);
    for key in keys {
        assert_eq!(seen[key], (0..20).collect::<Vec<u64>>(), "order of {key}");
    }
    assert_quiet(&mut consumer, QUIET).await;
}

async fn unacked_event_comes_again_after_the_consumer_dies(ctx: Ctx) {
    let envelope = event(events::STOCK_LOW_V1, "LAMP-001", 1);
    ctx.bus.publish(&envelope).await.unwrap();
    {
        let mut consumer = ctx
            .bus
            .consumer(config("notification-stock", Filter::All))
            .await
            .unwrap();
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.envelope().id(), envelope.id());
        assert_eq!(delivery.attempt(), 1);
        // The handler dies here: neither ack nor nack, consumer gone.
    }

    let restarted = ctx.reopen().await;
    let mut consumer = restarted
        .consumer(config("notification-stock", Filter::All))
        .await
        .unwrap();
    let again = next(&mut consumer).await;
    assert_eq!(again.envelope(), &envelope);
    assert_eq!(again.attempt(), 2);
    again.ack().await.unwrap();
    assert_quiet(&mut consumer, ACK_WAIT + QUIET).await;
}

async fn durable_consumer_resumes_where_it_stopped_after_a_restart(ctx: Ctx) {
    let all: Vec<Envelope> = (0..10)
        .map(|n| event(events::ORDER_PLACED_V1, &format!("order-{n}"), n))
        .collect();
    publish_all(ctx.bus.as_ref(), &all).await;
    {
        let mut consumer = ctx
            .bus
            .consumer(config("resumer", Filter::All))
            .await
            .unwrap();
        for expected in 0..5 {
            let delivery = next(&mut consumer).await;
            assert_eq!(n_of(&delivery), expected);
            delivery.ack().await.unwrap();
        }
    }

    let restarted = ctx.reopen().await;
    let mut consumer = restarted
        .consumer(config("resumer", Filter::All))
        .await
        .unwrap();
    for expected in 5..10 {
        let delivery = next(&mut consumer).await;
        assert_eq!(n_of(&delivery), expected, "resumes after the last ack");
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut consumer, QUIET).await;
    assert_lag(restarted.as_ref(), "resumer", 0, 0).await;
}

async fn nack_redelivers_after_the_delay_before_anything_behind_it(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let mut consumer = bus
        .consumer(
            config("retrier", Filter::All)
                .max_deliver(5)
                .backoff([Duration::from_millis(300)]),
        )
        .await
        .unwrap();
    let first = event(events::ORDER_PLACED_V1, "order-1", 1);
    let second = event(events::ORDER_PLACED_V1, "order-2", 2);
    publish_all(bus, &[first.clone(), second.clone()]).await;

    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), first.id());
    let started = Instant::now();
    let outcome = delivery.nack(None, "database is busy").await.unwrap();
    assert_eq!(
        outcome,
        Nacked::Retry {
            after: Duration::from_millis(300)
        }
    );
    let again = next(&mut consumer).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(again.envelope().id(), first.id(), "the retry comes first");
    assert_eq!(again.attempt(), 2);

    let started = Instant::now();
    let outcome = again
        .nack(Some(Duration::from_millis(200)), "still busy")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Nacked::Retry {
            after: Duration::from_millis(200)
        }
    );
    let third = next(&mut consumer).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(third.envelope().id(), first.id());
    assert_eq!(third.attempt(), 3);
    third.ack().await.unwrap();

    let then = next(&mut consumer).await;
    assert_eq!(then.envelope().id(), second.id());
    assert_eq!(then.attempt(), 1);
    then.ack().await.unwrap();
}

async fn poison_event_is_dead_lettered_after_max_deliver_and_replay_brings_it_back(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "shipping-poison";
    let mut consumer = bus
        .consumer(config(name, Filter::All).max_deliver(3))
        .await
        .unwrap();
    let poison = event(events::ORDER_PLACED_V1, "order-poison", 1);
    let healthy = event(events::ORDER_PLACED_V1, "order-healthy", 2);
    let poison_seq = bus.publish(&poison).await.unwrap().sequence;
    bus.publish(&healthy).await.unwrap();

    for attempt in 1..=3 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.envelope().id(), poison.id());
        assert_eq!(delivery.attempt(), attempt);
        assert_eq!(delivery.is_last_attempt(), attempt == 3);
        let outcome = delivery
            .nack(None, format!("cannot ship: attempt {attempt}"))
            .await
            .unwrap();
        if attempt < 3 {
            assert!(matches!(outcome, Nacked::Retry { .. }));
        } else {
            assert_eq!(outcome, Nacked::DeadLettered);
        }
    }

    let delivery = next(&mut consumer).await;
    assert_eq!(
        delivery.envelope().id(),
        healthy.id(),
        "the consumer moved on"
    );
    assert_eq!(delivery.attempt(), 1);
    delivery.ack().await.unwrap();
    assert_lag(bus, name, 0, 0).await;

    let letters = bus.dead_letters(Some(name), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.envelope, poison);
    assert_eq!(letter.consumer, name);
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.sequence, poison_seq);
    assert_eq!(letter.error, "cannot ship: attempt 3");
    assert_eq!(bus.dead_letters(None, 10).await.unwrap(), letters);
    assert!(
        bus.dead_letters(Some("someone-else"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let dlq = bus
        .streams()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.role == StreamRole::DeadLetters)
        .unwrap();
    assert_eq!(dlq.messages, 1);

    let replayed = bus.replay_dead_letter(letter.id).await.unwrap();
    assert!(!replayed.duplicate);
    assert!(replayed.sequence > poison_seq);
    assert!(bus.dead_letters(None, 10).await.unwrap().is_empty());
    let back = next(&mut consumer).await;
    assert_eq!(back.envelope(), &poison, "same envelope, same id");
    assert_eq!(back.attempt(), 1);
    back.ack().await.unwrap();
    assert!(matches!(
        bus.replay_dead_letter(letter.id).await,
        Err(Error::DeadLetterNotFound(_))
    ));
}

async fn unacknowledged_last_attempt_is_dead_lettered(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "crashy";
    let mut consumer = bus
        .consumer(config(name, Filter::All).max_deliver(2))
        .await
        .unwrap();
    let stuck = event(events::SHIPMENT_CREATED_V1, "order-1", 1);
    let after = event(events::SHIPMENT_CREATED_V1, "order-2", 2);
    publish_all(bus, &[stuck.clone(), after.clone()]).await;

    for attempt in 1..=2 {
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.envelope().id(), stuck.id());
        assert_eq!(delivery.attempt(), attempt);
        drop(delivery); // the handler hangs or crashes: ack_wait expires
    }
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), after.id());
    delivery.ack().await.unwrap();

    let letters = bus.dead_letters(Some(name), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].envelope.id(), stuck.id());
    assert_eq!(letters[0].attempts, 2);
    assert!(
        letters[0].error.contains("ack_wait"),
        "{}",
        letters[0].error
    );
}

async fn term_dead_letters_at_once_and_dead_letters_can_be_deleted(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "strict";
    let mut consumer = bus.consumer(config(name, Filter::All)).await.unwrap();
    let unreadable = event(events::STOCK_LOW_V1, "SKU-1", 1);
    let fine = event(events::STOCK_LOW_V1, "SKU-2", 2);
    publish_all(bus, &[unreadable.clone(), fine.clone()]).await;

    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), unreadable.id());
    delivery.term("payload has no threshold").await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), fine.id());
    delivery.ack().await.unwrap();

    let letters = bus.dead_letters(Some(name), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].error, "payload has no threshold");
    bus.delete_dead_letter(letters[0].id).await.unwrap();
    assert!(bus.dead_letters(None, 10).await.unwrap().is_empty());
    assert!(matches!(
        bus.delete_dead_letter(letters[0].id).await,
        Err(Error::DeadLetterNotFound(_))
    ));
    assert_quiet(&mut consumer, QUIET).await;
}

async fn publishing_the_same_envelope_twice_stores_it_once(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let envelope = event(events::ORDER_CANCELLED_V1, "order-9", 9);
    let first = bus.publish(&envelope).await.unwrap();
    let second = bus.publish(&envelope).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.sequence, first.sequence);
    let other = event(events::ORDER_CANCELLED_V1, "order-9", 10);
    assert!(!bus.publish(&other).await.unwrap().duplicate);

    let events_stream = bus
        .streams()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.role == StreamRole::Events)
        .unwrap();
    assert_eq!(events_stream.messages, 2);

    let mut consumer = bus.consumer(config("dedup", Filter::All)).await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), envelope.id());
    delivery.ack().await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), other.id());
    delivery.ack().await.unwrap();
    assert_quiet(&mut consumer, QUIET).await;
}

async fn lag_counts_events_not_yet_acknowledged(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "order-watcher";
    let mut consumer = bus
        .consumer(config(name, Filter::prefix("order").unwrap()))
        .await
        .unwrap();
    assert_lag(bus, name, 0, 0).await;
    let mut batch = Vec::new();
    for n in 0..4 {
        batch.push(event(events::ORDER_PLACED_V1, &format!("order-{n}"), n));
        if n % 2 == 0 {
            batch.push(event(events::STOCK_LOW_V1, &format!("SKU-{n}"), n));
        }
    }
    publish_all(bus, &batch).await;
    assert_lag(bus, name, 4, 0).await;

    let delivery = next(&mut consumer).await;
    assert_lag(bus, name, 4, 1).await;
    delivery.ack().await.unwrap();
    assert_lag(bus, name, 3, 0).await;

    // The same figure as a metric, for the consumer's service to export.
    let metrics = emporium_chassis::Metrics::new("test");
    let gauge = emporium_eventbus::lag::ConsumerLag::new(name, &metrics);
    assert!(metrics.render().contains("consumer=\"order-watcher\"} 0"));
    assert_eq!(gauge.refresh(bus).await.unwrap(), 3);
    assert!(
        metrics
            .render()
            .lines()
            .any(|l| l.starts_with("emporium_consumer_lag_messages{")
                && l.ends_with("consumer=\"order-watcher\"} 3")),
        "{}",
        metrics.render()
    );

    let streams = bus.streams().await.unwrap();
    assert_eq!(streams.len(), 2);
    let events_stream = streams
        .iter()
        .find(|s| s.role == StreamRole::Events)
        .unwrap();
    assert_eq!(events_stream.messages, 6);
    assert!(events_stream.last_sequence >= 6);
    assert!(events_stream.bytes > 0);

    let info = consumer_info(bus, name).await.unwrap();
    assert!(info.filter.contains("order"), "{}", info.filter);
    bus.delete_consumer(name).await.unwrap();
    assert!(consumer_info(bus, name).await.is_none());
    assert!(matches!(
        bus.delete_consumer(name).await,
        Err(Error::ConsumerNotFound(_))
    ));
}

async fn filters_deliver_only_matching_types(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let mut notification = bus
        .consumer(config(
            "notification",
            Filter::types([events::ORDER_PLACED_V1, events::SHIPMENT_CREATED_V1]).unwrap(),
        ))
        .await
        .unwrap();
    let mut ops = bus
        .consumer(config("ops-stock", Filter::prefix("stock").unwrap()))
        .await
        .unwrap();
    let mut cancellations = bus
        .consumer(config(
            "cancellations",
            Filter::types([events::ORDER_CANCELLED_V1]).unwrap(),
        ))
        .await
        .unwrap();
    let stream = [
        event(events::ORDER_PLACED_V1, "o1", 1),
        event(events::STOCK_LOW_V1, "s1", 2),
        event(events::SHIPMENT_CREATED_V1, "o1", 3),
        event(events::ORDER_CANCELLED_V1, "o2", 4),
        event(events::ORDER_PLACED_V1, "o3", 5),
        event(events::STOCK_LOW_V1, "s2", 6),
    ];
    publish_all(bus, &stream).await;

    for (consumer, expected) in [
        (&mut notification, vec![1, 3, 5]),
        (&mut ops, vec![2, 6]),
        (&mut cancellations, vec![4]),
    ] {
        for n in expected {
            let delivery = next(consumer).await;
            assert_eq!(n_of(&delivery), n, "{}", consumer.name());
            assert!(
                consumer
                    .config()
                    .filter
                    .matches(delivery.envelope().event_type())
            );
            delivery.ack().await.unwrap();
        }
        assert_quiet(consumer, QUIET).await;
    }
}

async fn every_consumer_name_gets_every_event(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let mut shipping = bus.consumer(config("shipping", Filter::All)).await.unwrap();
    let mut notification = bus
        .consumer(config("notification", Filter::All))
        .await
        .unwrap();
    let batch: Vec<Envelope> = (0..3)
        .map(|n| event(events::ORDER_PLACED_V1, &format!("order-{n}"), n))
        .collect();
    publish_all(bus, &batch).await;

    // One consumer acknowledging does not settle anything for the other.
    for n in 0..3 {
        let delivery = next(&mut shipping).await;
        assert_eq!(n_of(&delivery), n);
        delivery.ack().await.unwrap();
    }
    assert_lag(bus, "shipping", 0, 0).await;
    assert_lag(bus, "notification", 3, 0).await;
    for n in 0..3 {
        let delivery = next(&mut notification).await;
        assert_eq!(n_of(&delivery), n);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut shipping, QUIET).await;
    assert_quiet(&mut notification, QUIET).await;
}

async fn purge_removes_events_consumers_and_dead_letters(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    {
        let mut consumer = bus.consumer(config("before", Filter::All)).await.unwrap();
        publish_all(
            bus,
            &[
                event(events::STOCK_LOW_V1, "a", 1),
                event(events::STOCK_LOW_V1, "b", 2),
            ],
        )
        .await;
        next(&mut consumer).await.term("unwanted").await.unwrap();
        assert_eq!(bus.dead_letters(None, 10).await.unwrap().len(), 1);
    }

    bus.purge().await.unwrap();
    for stream in bus.streams().await.unwrap() {
        assert_eq!(stream.messages, 0, "{}", stream.name);
    }
    assert!(bus.consumers().await.unwrap().is_empty());
    assert!(bus.dead_letters(None, 10).await.unwrap().is_empty());

    let fresh = event(events::STOCK_LOW_V1, "c", 3);
    bus.publish(&fresh).await.unwrap();
    let mut consumer = bus.consumer(config("after", Filter::All)).await.unwrap();
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.envelope().id(), fresh.id());
    delivery.ack().await.unwrap();
    assert_quiet(&mut consumer, QUIET).await;
}

async fn concurrent_publishers_lose_nothing_and_keep_each_subjects_order(ctx: Ctx) {
    const PUBLISHERS: u32 = 8;
    const EACH: u32 = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..PUBLISHERS {
        let bus = Arc::clone(&ctx.bus);
        tasks.spawn(async move {
            for n in 0..EACH {
                let e = event(events::STOCK_LOW_V1, &format!("SKU-{p}"), n);
                assert!(!bus.publish(&e).await.unwrap().duplicate);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let mut consumer = ctx
        .bus
        .consumer(config("ops-stock", Filter::All))
        .await
        .unwrap();
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut last_sequence = 0;
    for _ in 0..PUBLISHERS * EACH {
        let delivery = next(&mut consumer).await;
        assert!(delivery.sequence() > last_sequence, "stream order");
        last_sequence = delivery.sequence();
        seen.entry(delivery.envelope().subject().to_owned())
            .or_default()
            .push(n_of(&delivery));
        delivery.ack().await.unwrap();
    }
    assert_eq!(seen.len(), PUBLISHERS as usize);
    for (subject, ns) in seen {
        assert_eq!(ns, (0..u64::from(EACH)).collect::<Vec<_>>(), "{subject}");
    }
    assert_quiet(&mut consumer, QUIET).await;
}

/// A transient failure (`retry`) brings the event back after the backoff
/// for its retry count, with the same attempt number, as often as it takes;
/// only counted failures (`nack`) lead to the dead letters.
async fn transient_retries_never_count_toward_dead_lettering(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "outage-rider";
    let consumer = bus
        .consumer(
            config(name, Filter::All)
                .max_deliver(2)
                .backoff([Duration::from_millis(20), Duration::from_millis(60)]),
        )
        .await
        .unwrap();
    let outcomes = Outcomes::new(name, &emporium_chassis::Metrics::new("test"));
    let mut consumer = consumer.counting(Arc::clone(&outcomes));
    let order = event(events::ORDER_PLACED_V1, "order-1", 1);
    publish_all(bus, std::slice::from_ref(&order)).await;

    // Far more transient failures than max_deliver allows failed attempts.
    let mut retried: Option<(Instant, Duration)> = None;
    for retry in 0..6u32 {
        let delivery = next(&mut consumer).await;
        if let Some((at, after)) = retried {
            assert!(at.elapsed() >= after, "not before its delay");
        }
        assert_eq!(delivery.envelope().id(), order.id());
        assert_eq!(delivery.attempt(), 1, "transient retries are not attempts");
        assert_eq!(delivery.retries(), retry);
        let at = Instant::now();
        let after = delivery.retry("database unavailable").await.unwrap();
        let expected = if retry == 0 { 20 } else { 60 };
        assert_eq!(after, Duration::from_millis(expected), "capped backoff");
        retried = Some((at, after));
    }
    assert!(bus.dead_letters(Some(name), 10).await.unwrap().is_empty());

    // Then a deterministic failure: two counted attempts dead-letter it.
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.attempt(), 1);
    assert_eq!(delivery.retries(), 6);
    let outcome = delivery.nack(None, "bad payload").await.unwrap();
    assert!(matches!(outcome, Nacked::Retry { .. }));
    let last = next(&mut consumer).await;
    assert_eq!(last.attempt(), 2);
    assert!(last.is_last_attempt());
    assert_eq!(
        last.nack(None, "bad payload").await.unwrap(),
        Nacked::DeadLettered
    );
    let letters = bus.dead_letters(Some(name), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 2);
    assert_quiet(&mut consumer, QUIET).await;
    // emporium_consumer_deliveries_total{outcome} counts them apart.
    assert_eq!(outcomes.get(Outcome::Retried), 6);
    assert_eq!(outcomes.get(Outcome::Failed), 1);
    assert_eq!(outcomes.get(Outcome::DeadLettered), 1);
    assert_eq!(outcomes.get(Outcome::Acked), 0);
}

/// While one event of a key waits for a transient retry, events of other
/// keys are delivered and acknowledged; the later event of the same key
/// waits until the first one is settled.
async fn a_retrying_event_holds_back_only_its_own_key(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "per-key";
    let mut consumer = bus
        .consumer(
            config(name, Filter::All)
                .max_in_flight(8)
                .backoff([Duration::from_millis(800)]),
        )
        .await
        .unwrap();
    let stuck = event(events::ORDER_PLACED_V1, "order-stuck", 1);
    let same_key = event(events::SHIPMENT_CREATED_V1, "order-stuck", 2);
    let others: Vec<Envelope> = (3..6)
        .map(|n| event(events::ORDER_PLACED_V1, &format!("order-{n}"), n))
        .collect();
    publish_all(bus, &[stuck.clone(), same_key.clone()]).await;
    publish_all(bus, &others).await;

    let first = next(&mut consumer).await;
    assert_eq!(first.envelope().id(), stuck.id());
    let retried_at = Instant::now();
    first.retry("database unavailable").await.unwrap();

    // The other keys flow while `stuck` waits; `same_key` does not.
    let mut seen = Vec::new();
    for _ in 0..others.len() {
        let d = next(&mut consumer).await;
        assert_ne!(
            d.envelope().id(),
            same_key.id(),
            "an event overtook an earlier one of its key"
        );
        assert_ne!(d.envelope().id(), stuck.id(), "not before its delay");
        seen.push(n_of(&d));
        d.ack().await.unwrap();
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![3, 4, 5]);
    assert!(
        retried_at.elapsed() < Duration::from_millis(800),
        "the other keys did not wait for the retry"
    );

    let again = next(&mut consumer).await;
    assert_eq!(again.envelope().id(), stuck.id());
    assert_eq!(again.attempt(), 1);
    again.ack().await.unwrap();
    let then = next(&mut consumer).await;
    assert_eq!(then.envelope().id(), same_key.id(), "then its key's next");
    then.ack().await.unwrap();
    assert_quiet(&mut consumer, QUIET).await;
    assert_lag(bus, name, 0, 0).await;
}

/// Up to `max_in_flight` deliveries of different keys are outstanding at
/// once; one more waits until one of them is settled.
async fn deliveries_of_different_keys_are_out_at_once_up_to_max_in_flight(ctx: Ctx) {
    let bus = ctx.bus.as_ref();
    let name = "parallel";
    let mut consumer = bus
        .consumer(
            config(name, Filter::All)
                .max_in_flight(2)
                .ack_wait(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let events: Vec<Envelope> = (1..=3)
        .map(|n| event(events::ORDER_PLACED_V1, &format!("order-{n}"), n))
        .collect();
    publish_all(bus, &events).await;
    let one = next(&mut consumer).await;
    let two = next(&mut consumer).await;
    assert_eq!((n_of(&one), n_of(&two)), (1, 2));
    assert_quiet(&mut consumer, QUIET).await;
    two.ack().await.unwrap();
    let three = next(&mut consumer).await;
    assert_eq!(n_of(&three), 3);
    three.ack().await.unwrap();
    one.ack().await.unwrap();
    assert_quiet(&mut consumer, QUIET).await;
    assert_lag(bus, name, 0, 0).await;
}

/// Events acknowledged while an earlier one is still being retried are not
/// delivered again after a restart; the retrying one and its key's later
/// events are, in order.
async fn settled_events_stay_settled_when_an_earlier_one_is_still_retrying(ctx: Ctx) {
    let name = "restart-mid-retry";
    let cfg = config(name, Filter::All)
        .max_in_flight(4)
        .backoff([Duration::from_millis(100)]);
    let stuck = event(events::ORDER_PLACED_V1, "order-a", 1);
    let behind = event(events::SHIPMENT_CREATED_V1, "order-a", 2);
    let other = event(events::ORDER_PLACED_V1, "order-b", 3);
    {
        let bus = ctx.bus.as_ref();
        let mut consumer = bus.consumer(cfg.clone()).await.unwrap();
        publish_all(bus, &[stuck.clone(), behind.clone(), other.clone()]).await;
        let first = next(&mut consumer).await;
        assert_eq!(first.envelope().id(), stuck.id());
        first.retry("database unavailable").await.unwrap();
        let d = next(&mut consumer).await;
        assert_eq!(d.envelope().id(), other.id());
        d.ack().await.unwrap();
        // The process stops here, with `stuck` waiting for its retry.
    }
    let bus = ctx.reopen().await;
    let mut consumer = bus.consumer(cfg).await.unwrap();
    let again = next(&mut consumer).await;
    assert_eq!(
        again.envelope().id(),
        stuck.id(),
        "the retrying event first"
    );
    match bus.backend() {
        // The retry state is in the file: the restart counted nothing.
        BackendKind::Log => assert_eq!((again.attempt(), again.retries()), (1, 1)),
        // The waiting event was in the process: its lease ended, which
        // counts as one failed attempt.
        BackendKind::Nats => assert_eq!(again.attempt(), 2),
    }
    again.ack().await.unwrap();
    let then = next(&mut consumer).await;
    assert_eq!(then.envelope().id(), behind.id());
    then.ack().await.unwrap();
    assert_quiet(&mut consumer, QUIET).await;
    assert_lag(bus.as_ref(), name, 0, 0).await;
}
