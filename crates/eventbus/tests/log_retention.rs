#![allow(clippy::unwrap_used)] // Tests fail loudly by design.
//! What only the embedded log has to get right by itself (NATS does it in
//! the server): deleting events older than `max_age`, including one that a
//! consumer holds in flight, and two bus values (two processes) sharing one
//! file; and upgrading a log written by an older build.

use std::time::Duration;

use emporium_chassis::config::Duration as ConfigDuration;
use emporium_eventbus::log::LogBus;
use emporium_eventbus::{
    ConsumerConfig, Envelope, EventBus, EventType, Filter, LogConfig, StreamRole,
};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(10);

fn event(n: u32) -> Envelope {
    Envelope::new(
        "/emporium/test",
        EventType::parse("stock.low.v1").unwrap(),
        &format!("SKU-{n}"),
        json!({ "n": n }),
    )
    .unwrap()
}

async fn stored_events(bus: &dyn EventBus) -> u64 {
    bus.streams()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.role == StreamRole::Events)
        .unwrap()
        .messages
}

#[tokio::test]
async fn expired_events_are_pruned_even_while_in_flight_and_the_consumer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let keep = LogConfig {
        max_age: ConfigDuration::from_secs(0),
        poll_interval: ConfigDuration::from_millis(20),
        ..LogConfig::at(dir.path().join("events.db"))
    };
    let bus = LogBus::open(&keep).await.unwrap();
    let config = ConsumerConfig::new("ops-stock", Filter::All).ack_wait(Duration::from_millis(200));
    let mut consumer = bus.consumer(config.clone()).await.unwrap();
    bus.publish(&event(1)).await.unwrap();
    bus.publish(&event(2)).await.unwrap();
    let held = consumer.next(PATIENCE).await.unwrap().unwrap();
    assert_eq!(held.envelope().data()["n"], 1);
    drop(held); // in flight, never settled

    // Another process opens the file with a 1 ms retention: opening prunes.
    let short = LogConfig {
        max_age: ConfigDuration::from_millis(1),
        ..keep.clone()
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let pruner = LogBus::open(&short).await.unwrap();
        let left = stored_events(&pruner).await;
        pruner.close().await;
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} events never expired"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The expired in-flight event and the expired one behind it are gone;
    // the consumer is not stuck on them and gets what comes next, published
    // through another bus value on the same file.
    let other = LogBus::open(&keep).await.unwrap();
    let fresh = event(3);
    other.publish(&fresh).await.unwrap();
    let delivery = consumer.next(PATIENCE).await.unwrap().unwrap();
    assert_eq!(delivery.envelope(), &fresh);
    assert_eq!(delivery.attempt(), 1);
    delivery.ack().await.unwrap();
    assert!(
        consumer
            .next(Duration::from_millis(500))
            .await
            .unwrap()
            .is_none()
    );
    let info = bus.consumers().await.unwrap();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].pending, info[0].in_flight), (0, 0));
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::at(dir.path().join("nested").join("events.db"));
    let bus = LogBus::open(&config).await.unwrap();
    bus.close().await;
    let url = format!("sqlite://{}", config.path.display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA user_version = 99")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let err = LogBus::open(&config).await.unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// A log written by a build with schema version 1 (one delivery per
/// consumer) is upgraded in place on open: the delivery that was in flight
/// comes again with its attempt count, and the position is kept.
#[tokio::test]
async fn a_version_1_log_is_upgraded_and_its_in_flight_delivery_comes_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::at(dir.path().join("events.db"));
    let url = format!("sqlite://{}?mode=rwc", config.path.display());
    let (old, next) = (event(1), event(2));
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(include_str!("../src/log/schema.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        for (seq, e) in [(1, &old), (2, &next)] {
            sqlx::query(
                "INSERT INTO events (seq, msg_id, event_id, type, subject, envelope, published_at)
                 VALUES ($1, $2, $2, $3, $4, $5, 0)",
            )
            .bind(seq)
            .bind(e.id().to_string())
            .bind(e.event_type().as_str())
            .bind(e.subject())
            .bind(String::from_utf8(e.to_json()).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO consumers (name, filter, position, created_at, updated_at)
                 VALUES ('ops', 'all', 0, 0, 0);
             INSERT INTO deliveries (consumer, seq, attempts, visible_after)
                 VALUES ('ops', 1, 2, 0);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let config = LogConfig {
        max_age: ConfigDuration::from_secs(0),
        ..config
    };
    let bus = LogBus::open(&config).await.unwrap();
    let mut consumer = bus
        .consumer(ConsumerConfig::new("ops", Filter::All).max_in_flight(4))
        .await
        .unwrap();
    let again = consumer.next(PATIENCE).await.unwrap().unwrap();
    assert_eq!(again.envelope(), &old);
    assert_eq!(again.attempt(), 3, "the lease had ended: one more attempt");
    again.ack().await.unwrap();
    let then = consumer.next(PATIENCE).await.unwrap().unwrap();
    assert_eq!(then.envelope(), &next);
    assert_eq!(then.attempt(), 1);
    then.ack().await.unwrap();
    assert!(
        consumer
            .next(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
}
