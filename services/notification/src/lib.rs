//! # Notification service
//!
//! Sends the customer e-mails of an order: the **order confirmation** when
//! an order is placed, and **"your order has shipped"** with the tracking
//! id when its shipment is created. It has no API: it consumes events and
//! delivers mail, and serves only the admin port (`/livez`, `/readyz`,
//! `/metrics`).
//!
//! Owns three tables, and no other service reads them: `processed_events`
//! (event ids it has handled), `order_contacts` (order id → user, e-mail,
//! name, remembered from the order for the e-mails that follow) and
//! `messages` (every e-mail with its subject, body, status `pending` or
//! `sent`, attempts and last error). Calls no other service; emits no
//! events.
//!
//! ## Events consumed
//!
//! One durable consumer, [`events::CONSUMER`] (`notification`), filtered
//! to `order.placed.v1` and `shipment.created.v1`: both carry the order id
//! as subject, so through one consumer an order's shipment always arrives
//! after the order itself. Each event's id is recorded in the same
//! transaction as its effects, so redeliveries change nothing; the event is
//! acknowledged only after that transaction commits. An event met by an
//! unreachable database is retried with a capped backoff for as long as it
//! takes, without counting attempts; a shipment whose order is unknown, or
//! an event met by another database error, is retried with backoff and
//! dead-lettered after [`events::MAX_DELIVER`] attempts (about 4½
//! minutes); an unreadable event is dead-lettered at once;
//! an order without a (usable) e-mail address is recorded without an
//! e-mail, with a warning. [`events`] has the full table.
//!
//! ## Sending
//!
//! A separate loop ([`sender`]) delivers pending messages in bounded
//! batches every `send_interval` (1 s), or at once when the consumer has
//! stored one. Mailers ([`mail`]): `file` writes `<mail.dir>/<message
//! id>.eml` atomically (local runs); `smtp` delivers to `mail.smtp.host`
//! with optional credentials and STARTTLS or implicit TLS. Every e-mail is
//! `text/plain; charset=utf-8` from `mail.from`, with the `Message-ID`
//! `<message id@emporium.local>` on every attempt. A failed attempt keeps
//! the message pending with one more attempt and a doubling backoff
//! (`retry_backoff` 10 s … `retry_backoff_max` 1 h). Delivery is
//! at-least-once: a crash between sending and recording sends again, with
//! the same `Message-ID`. Claims keep two replicas from sending one message
//! at the same time.
//!
//! Metrics: `notification_messages_sent_total{kind}`,
//! `notification_send_failures_total`, `notification_events_total{type,outcome}`
//! ([`telemetry`]).
//!
//! Storage is SQLite (embedded default, `sqlite://notification.db`) or
//! PostgreSQL, chosen by the database URL; migrations are embedded in the
//! binary. Settings are listed in `docs/notification.md`.
//!
//! ## Layout
//! - [`config`] — settings (`[notification]`, `EMPORIUM_NOTIFICATION__…`)
//! - [`domain`] — addresses, money, orders, messages and their texts; no I/O
//! - [`store`] — the database, all SQL in one place
//! - [`events`] — the consumer: events → contacts and pending messages
//! - [`sender`] — the sending loop: pending messages → mailer
//! - [`mail`] — composing e-mails; the file and SMTP mailers
//! - [`telemetry`] — metrics and the log events that go with them
//! - [`error`] — the service's error type

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod mail;
pub mod sender;
pub mod store;
pub mod telemetry;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use emporium_chassis::lifecycle::{self, Stopped};
use emporium_chassis::net::{BindError, bind_named};
use emporium_chassis::{Health, Metrics};
use emporium_eventbus::ConsumerConfig;
use emporium_eventbus::lag::{ConsumerLag, Outcomes, open_consumer_until};
use emporium_eventbus::outbox::connect_until;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::NotificationConfig;
pub use error::NotificationError;
pub use store::Store;

use crate::mail::{MailError, Mailer};
use crate::sender::SenderSettings;

/// Why notification could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("notification database: {0}")]
    Database(#[from] NotificationError),
    #[error("notification event bus: {0}")]
    Events(#[from] emporium_eventbus::Error),
    #[error("notification mailer: {0}")]
    Mail(#[from] MailError),
}

/// A notification service with its admin port bound, its database ready
/// and its mailer set up; not yet running. The event bus is connected when
/// it runs, in the background: while the bus is away the service stays up
/// (and keeps sending what is already pending) and keeps trying.
#[derive(Debug)]
pub struct NotificationServer {
    config: NotificationConfig,
    store: Store,
    consumer: ConsumerConfig,
    mailer: Mailer,
    admin: TcpListener,
}

impl NotificationServer {
    /// Connects to the database (running migrations if configured to), sets
    /// up the mailer, then binds the admin port (port 0 picks a free one).
    pub async fn build(config: NotificationConfig) -> Result<Self, StartError> {
        let store = Store::connect(
            config.database_url().expose(),
            config.database.max_connections,
        )?;
        if config.database.migrate_on_start {
            store.migrate().await?;
        }
        let mailer = Mailer::from_config(&config.mail)?;
        let consumer = events::consumer_config()?;
        let admin = bind_named(
            "notification admin port",
            "EMPORIUM_NOTIFICATION__ADMIN_ADDR",
            config.admin_addr,
        )?;
        Ok(Self {
            config,
            store,
            consumer,
            mailer,
            admin,
        })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_addr)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Consumes and sends until `shutdown` is cancelled, then lets the event
    /// and the message in hand finish (see
    /// [`emporium_chassis::lifecycle::run`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<Stopped, Infallible> {
        let Self {
            config,
            store,
            consumer,
            mailer,
            admin,
        } = self;
        let health = Health::new();
        let metrics = Arc::new(Metrics::new("notification"));
        let telemetry = telemetry::Telemetry::register(&metrics);
        let settings = SenderSettings {
            interval: config.send_interval.get(),
            batch: config.send_batch,
            retry: config.retry_policy(),
            lease: sender::MIN_LEASE.max(config.mail.smtp.timeout.get().saturating_mul(2)),
        };
        let service = lifecycle::Service {
            name: "notification",
            health,
            metrics: metrics.clone(),
            admin,
            drain_timeout: config.shutdown.drain_timeout.get(),
        };
        let work_store = store.clone();
        let result = lifecycle::run(service, shutdown, move |stop| async move {
            let wake = Arc::new(Notify::new());
            let consuming = {
                let (store, telemetry, wake, stop) = (
                    work_store.clone(),
                    telemetry.clone(),
                    wake.clone(),
                    stop.clone(),
                );
                let lag = ConsumerLag::new(events::CONSUMER, &metrics);
                let outcomes = Outcomes::new(events::CONSUMER, &metrics);
                async move {
                    let Some(bus) = connect_until(&config.events, &stop).await else {
                        return;
                    };
                    let Some(consumer) = open_consumer_until(&*bus, &consumer, &stop).await else {
                        return;
                    };
                    let consumer = consumer.counting(outcomes);
                    tokio::join!(
                        events::run(consumer, store, telemetry, wake, stop.clone()),
                        lag.run(bus, stop)
                    );
                }
            };
            let sending = sender::run(work_store, mailer, telemetry, settings, wake, stop);
            tokio::join!(consuming, sending);
            Ok::<(), Infallible>(())
        })
        .await;
        store.close().await;
        result
    }
}
