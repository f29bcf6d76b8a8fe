//! Consuming events: the durable consumer [`CONSUMER`] receives
//! `order.placed.v1` and `shipment.created.v1` — ONE consumer for both, so
//! an order's shipment arrives after its order (both have the order id as
//! subject, and the bus keeps per-subject order within a consumer).
//!
//! [`handle`] decides what an event means and writes its effects; [`run`]
//! settles each delivery by that decision ([`Verdict`]):
//!
//! | event | effect (one transaction, with the event id) | then |
//! |---|---|---|
//! | `order.placed.v1` with a usable e-mail | the order's contact + a pending confirmation | ack |
//! | `order.placed.v1` without one | the contact (no address); warn | ack |
//! | `shipment.created.v1`, contact known | a pending "has shipped" e-mail (none if the contact has no address) | ack |
//! | `shipment.created.v1`, contact unknown | nothing | nack with backoff: retried, dead-lettered after [`MAX_DELIVER`] attempts |
//! | an event id already recorded | nothing | ack |
//! | unreadable or invalid payload | nothing | term (dead letter at once) |
//! | database unreachable (a transient [`NotificationError::kind`]) | nothing | retry: again after a capped backoff (≤ 60 s), never counted, never dead-lettered |
//! | any other database error | nothing (the transaction rolled back) | nack with backoff (see [`consumer_config`]) |
//!
//! Failures are sorted by the chassis's one classification
//! ([`emporium_chassis::ErrorKind::is_transient`], through
//! [`emporium_eventbus::Delivery::fail`]). Up to [`MAX_IN_FLIGHT`] events
//! of different orders are outstanding at once, so an order whose event is
//! being retried does not hold up the others; an order's own events stay in
//! order.
//!
//! An event is acknowledged only after its transaction has committed, so a
//! crash in between means a redelivery, which the recorded id turns into a
//! no-op. Shutdown: the loop stops asking for events once the stop token is
//! cancelled and finishes the delivery in hand first.

use std::sync::Arc;
use std::time::Duration;

use emporium_chassis::ErrorKind;
use emporium_eventbus::events::{
    ORDER_PLACED_V1, OrderPlacedV1, SHIPMENT_CREATED_V1, ShipmentCreatedV1,
};
use emporium_eventbus::{Consumer, ConsumerConfig, Delivery, Envelope, Filter, Nacked};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::order::Totals;
use crate::domain::{
    Address, Currency, Email, Invalid, Line, Money, OrderContact, OrderId, PlacedOrder, Shipped,
    render,
};
use crate::error::NotificationError;
use crate::store::{Handled, Recorded, Store};
use crate::telemetry::{EventOutcome, Telemetry};

/// The durable consumer name; its position is shared by every replica.
pub const CONSUMER: &str = "notification";

/// The longest one wait for the next event lasts; also the longest a stop
/// waits for the consumer loop when no event is in hand.
const NEXT_WAIT: Duration = Duration::from_millis(500);

/// Delivery attempts before an event is dead-lettered.
pub const MAX_DELIVER: u32 = 10;

/// Deliveries of different orders outstanding at once.
pub const MAX_IN_FLIGHT: u32 = 32;

/// The consumer this service opens: both event types; up to
/// [`MAX_DELIVER`] attempts, retried after 0.1 s, 0.5 s, 2 s, 10 s, 30 s and
/// then every 60 s — about 4½ minutes in all, so a short database outage
/// delays events instead of dead-lettering them.
/// The event types the consumer reads.
pub const CONSUMED_TYPES: [&str; 2] = [ORDER_PLACED_V1, SHIPMENT_CREATED_V1];

pub fn consumer_config() -> Result<ConsumerConfig, emporium_eventbus::Error> {
    Ok(
        ConsumerConfig::new(CONSUMER, Filter::types(CONSUMED_TYPES)?)
            .max_deliver(MAX_DELIVER)
            .max_in_flight(MAX_IN_FLIGHT)
            .backoff(
                [100, 500, 2_000, 10_000, 30_000, 60_000]
                    .into_iter()
                    .map(Duration::from_millis),
            ),
    )
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Handled, now or before: acknowledge.
    Done(Done),
    /// Not possible yet (the order is unknown): retry later, counting the
    /// attempt.
    Retry(String),
    /// Failed with an error of this kind: settled by the kind (a transient
    /// one is retried without counting, see [`Delivery::fail`]).
    Failed(ErrorKind, String),
    /// Can never be handled: dead-letter it now.
    Reject(String),
}

/// How an event counted as handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Its effects were written now; `message` says whether an e-mail is
    /// among them.
    Applied { message: bool },
    /// It had been handled before; nothing was written.
    Duplicate,
    /// A type this service does not act on.
    Ignored,
}

/// Handles one event: validates it and writes its effects with its id in
/// one transaction (see the module docs for the table).
pub async fn handle(store: &Store, envelope: &Envelope, now: OffsetDateTime) -> Verdict {
    match envelope.event_type().as_str() {
        ORDER_PLACED_V1 => order_placed(store, envelope, now).await,
        SHIPMENT_CREATED_V1 => shipment_created(store, envelope, now).await,
        _ => Verdict::Done(Done::Ignored),
    }
}

async fn order_placed(store: &Store, envelope: &Envelope, now: OffsetDateTime) -> Verdict {
    let payload: OrderPlacedV1 = match envelope.decode() {
        Ok(p) => p,
        Err(e) => return Verdict::Reject(e.to_string()),
    };
    let order = match placed_order(&payload) {
        Ok(order) => order,
        Err(e) => return Verdict::Reject(format!("invalid {ORDER_PLACED_V1}: {e}")),
    };
    let email = match payload.email.as_deref().map(Email::parse) {
        Some(Ok(email)) => Some(email),
        Some(Err(e)) => {
            tracing::warn!(order_id = %order.order_id, error = %e, "The order's e-mail address is unusable; no confirmation is sent.");
            None
        }
        None => {
            tracing::warn!(order_id = %order.order_id, "The order carries no e-mail address; no confirmation is sent.");
            None
        }
    };
    let contact = OrderContact::of(&order, email.clone());
    let message = email.map(|to| render::confirmation_message(envelope.id(), to, &order, now));
    record(
        store,
        &Handled {
            consumer: CONSUMER,
            event_id: envelope.id(),
            event_type: ORDER_PLACED_V1,
            contact: Some(&contact),
            message: message.as_ref(),
            at: now,
        },
    )
    .await
}

async fn shipment_created(store: &Store, envelope: &Envelope, now: OffsetDateTime) -> Verdict {
    let payload: ShipmentCreatedV1 = match envelope.decode() {
        Ok(p) => p,
        Err(e) => return Verdict::Reject(e.to_string()),
    };
    let shipped = match OrderId::parse(&payload.order_id)
        .and_then(|id| Shipped::new(id, &payload.tracking_id, payload.carrier.as_deref()))
    {
        Ok(shipped) => shipped,
        Err(e) => return Verdict::Reject(format!("invalid {SHIPMENT_CREATED_V1}: {e}")),
    };
    let contact = match store.contact(&shipped.order_id).await {
        Ok(Some(contact)) => contact,
        Ok(None) => {
            return Verdict::Retry(format!(
                "no {ORDER_PLACED_V1} has been handled for order {} yet",
                shipped.order_id
            ));
        }
        Err(e) => return failed(&e),
    };
    let message = match &contact.email {
        Some(to) => Some(render::shipped_message(
            envelope.id(),
            to.clone(),
            &shipped,
            &contact,
            now,
        )),
        None => {
            tracing::warn!(order_id = %shipped.order_id, "The order has no e-mail address; no shipment e-mail is sent.");
            None
        }
    };
    record(
        store,
        &Handled {
            consumer: CONSUMER,
            event_id: envelope.id(),
            event_type: SHIPMENT_CREATED_V1,
            contact: None,
            message: message.as_ref(),
            at: now,
        },
    )
    .await
}

async fn record(store: &Store, handled: &Handled<'_>) -> Verdict {
    match store.record(handled).await {
        Ok(Recorded::Applied) => Verdict::Done(Done::Applied {
            message: handled.message.is_some(),
        }),
        Ok(Recorded::AlreadyProcessed) => Verdict::Done(Done::Duplicate),
        Err(e) => failed(&e),
    }
}

fn failed(e: &NotificationError) -> Verdict {
    Verdict::Failed(e.kind(), e.to_string())
}

/// The domain's view of an `order.placed.v1` payload.
pub fn placed_order(p: &OrderPlacedV1) -> Result<PlacedOrder, Invalid> {
    let currency = Currency::parse(&p.currency)?;
    let money = |minor| Money::new(minor, currency);
    let lines = p
        .items
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Line::new(&l.name, &l.sku, l.quantity, money(l.unit_price))
                .map_err(|e| e.within(format!("items[{i}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let a = &p.shipping_address;
    let address = Address::new(
        &a.name,
        &a.line1,
        &a.line2,
        &a.city,
        &a.postal_code,
        &a.country_code,
    )
    .map_err(|e| e.within("shipping_address"))?;
    PlacedOrder::new(
        OrderId::parse(&p.order_id)?,
        &p.user_id,
        lines,
        Totals {
            items: money(p.items_total),
            shipping: money(p.shipping_cost),
            total: money(p.total),
        },
        address,
    )
}

/// Consumes until `stop` is cancelled: each delivery is handled and then
/// settled by its [`Verdict`]. A new pending message wakes the sender.
/// Bus errors are logged and retried with a growing pause (up to 5 s).
pub async fn run(
    mut consumer: Consumer,
    store: Store,
    telemetry: Telemetry,
    wake_sender: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let delivery = match consumer.next(NEXT_WAIT).await {
            Ok(Some(delivery)) => delivery,
            Ok(None) => continue,
            Err(e) => {
                failures = failures.saturating_add(1);
                let pause = Duration::from_millis(100)
                    .saturating_mul(1 << failures.min(6))
                    .min(Duration::from_secs(5));
                tracing::warn!(consumer = CONSUMER, error = %e, retry_in_ms = millis(pause), "Cannot receive events; trying again.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        failures = 0;
        let envelope = delivery.envelope();
        let trace = delivery.trace_context();
        let span = tracing::info_span!(
            "event",
            consumer = CONSUMER,
            event_id = %envelope.id(),
            event_type = %envelope.event_type(),
            order_id = %envelope.subject(),
            attempt = delivery.attempt(),
            trace_id = trace.map(|t| t.trace_id()).unwrap_or_default(),
        );
        settle(delivery, &store, &telemetry, &wake_sender)
            .instrument(span)
            .await;
    }
}

async fn settle(delivery: Delivery, store: &Store, telemetry: &Telemetry, wake_sender: &Notify) {
    let event_type = delivery.envelope().event_type().as_str().to_owned();
    let verdict = handle(store, delivery.envelope(), crate::domain::now()).await;
    let outcome = match verdict {
        Verdict::Done(done) => {
            if let Err(e) = delivery.ack().await {
                // The effects are committed; the event comes again and is
                // then recognised as a duplicate.
                tracing::warn!(error = %e, "Cannot acknowledge a handled event; it will be delivered again and skipped.");
            }
            match done {
                Done::Applied { message } => {
                    if message {
                        wake_sender.notify_one();
                    }
                    tracing::info!(message, "Event handled.");
                    EventOutcome::Applied
                }
                Done::Duplicate => {
                    tracing::info!("Event was handled before; skipped.");
                    EventOutcome::Duplicate
                }
                Done::Ignored => EventOutcome::Ignored,
            }
        }
        Verdict::Retry(reason) => match delivery.nack(None, &reason).await {
            Ok(Nacked::Retry { after }) => {
                tracing::warn!(reason = %reason, retry_in_ms = millis(after), "Event cannot be handled yet; it will be delivered again.");
                EventOutcome::Retried
            }
            Ok(Nacked::DeadLettered) => EventOutcome::Rejected,
            Ok(Nacked::Transient { .. }) => EventOutcome::Deferred,
            Err(e) => {
                tracing::warn!(reason = %reason, error = %e, "Event cannot be handled yet, and the retry could not be scheduled; it comes again after its ack wait.");
                EventOutcome::Retried
            }
        },
        Verdict::Failed(kind, reason) => match delivery.fail(kind, &reason).await {
            Ok(Nacked::Transient { after }) => {
                tracing::warn!(reason = %reason, retry_in_ms = millis(after), "Event cannot be handled for now; it will be retried without counting an attempt.");
                EventOutcome::Deferred
            }
            Ok(Nacked::Retry { after }) => {
                tracing::warn!(reason = %reason, retry_in_ms = millis(after), "Event handling failed; it will be delivered again.");
                EventOutcome::Retried
            }
            Ok(Nacked::DeadLettered) => EventOutcome::Rejected,
            Err(e) => {
                tracing::warn!(reason = %reason, error = %e, "Event handling failed, and the retry could not be scheduled; it comes again after its ack wait.");
                EventOutcome::Retried
            }
        },
        Verdict::Reject(reason) => {
            if let Err(e) = delivery.term(&reason).await {
                tracing::error!(reason = %reason, error = %e, "Cannot dead-letter an event that can never be handled; it comes again after its ack wait.");
            }
            EventOutcome::Rejected
        }
    };
    telemetry.event_settled(&event_type, outcome);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_is_valid_and_takes_minutes_before_dead_lettering() {
        let config = consumer_config().unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.name, "notification");
        assert_eq!(
            config.max_in_flight, 32,
            "orders do not wait for each other"
        );
        assert_eq!(
            config.filter.to_string(),
            "types order.placed.v1,shipment.created.v1"
        );
        let patience: Duration = (1..MAX_DELIVER).map(|n| config.backoff_for(n)).sum();
        assert!(patience > Duration::from_secs(240), "{patience:?}");
    }
}
