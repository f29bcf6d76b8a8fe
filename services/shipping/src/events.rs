//! Shipping's events: it consumes `order.placed.v1` (creating the order's
//! shipment) and produces `shipment.created.v1` through its outbox.
//!
//! The consumer (durable name `shipping`) records each event id in the same
//! transaction that creates the shipment and writes the announcement to the
//! outbox, so a redelivered event changes nothing and a shipment is
//! announced exactly when it is created.
//!
//! Failures are settled by their kind ([`ShippingError::kind`] and the
//! chassis's one [`emporium_chassis::ErrorKind::is_transient`]):
//!
//! | failure | kind | settled with |
//! |---|---|---|
//! | unreadable payload, an address or parcel shipping rejects | invalid argument | `term`: a dead letter at once |
//! | the database unreachable (pool timeout, I/O, failover codes) | unavailable | `retry`: again after a capped backoff (≤ 30 s), never counted, never dead-lettered |
//! | any other database error | internal | `nack`: counted, dead-lettered after 5 attempts |
//!
//! Up to [`MAX_IN_FLIGHT`] orders are handled at once, at most one per order
//! (the bus keeps per-subject order), so an order whose shipment cannot be
//! written now does not hold up the others.

use std::sync::Arc;
use std::time::Duration;

use emporium_eventbus::events::{ORDER_PLACED_V1, OrderPlacedV1, ShipmentCreatedV1, sources};
use emporium_eventbus::lag::Outcomes;
use emporium_eventbus::outbox::{OutboxSource, Pending};
use emporium_eventbus::{BoxFuture, ConsumerConfig, Delivery, Envelope, EventBus, Filter, Nacked};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::{Address, Item, NewShipment, OrderId, Parcel};
use crate::error::ShippingError;
use crate::store::{EventEffect, Store};

/// The consumer's durable name.
pub const CONSUMER: &str = "shipping";

/// Orders handled at once (and deliveries the consumer keeps outstanding).
pub const MAX_IN_FLIGHT: u32 = 32;

/// The consumer shipping opens: `order.placed.v1`, [`MAX_IN_FLIGHT`]
/// deliveries at once, the bus's default retry policy (5 counted attempts;
/// backoff 0.1 s, 0.5 s, 2 s, 10 s, then every 30 s — also the cap for
/// transient retries).
pub fn consumer_config() -> Result<ConsumerConfig, emporium_eventbus::Error> {
    Ok(
        ConsumerConfig::new(CONSUMER, Filter::types([ORDER_PLACED_V1])?)
            .max_in_flight(MAX_IN_FLIGHT),
    )
}

/// Reads order events until `stop` and creates their shipments, up to
/// [`MAX_IN_FLIGHT`] at once; on stop, finishes the ones in hand.
pub async fn consume_orders(
    bus: Arc<dyn EventBus>,
    store: Store,
    outcomes: Arc<Outcomes>,
    stop: CancellationToken,
) {
    let config = match consumer_config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "shipping consumer configuration");
            return;
        }
    };
    let Some(consumer) = emporium_eventbus::lag::open_consumer_until(&*bus, &config, &stop).await
    else {
        return;
    };
    let mut consumer = consumer.counting(outcomes);
    let limit = usize::try_from(MAX_IN_FLIGHT).unwrap_or(1);
    let mut handling = JoinSet::new();
    loop {
        while handling.try_join_next().is_some() {}
        if handling.len() >= limit {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = handling.join_next() => continue,
            }
        }
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = consumer.next(Duration::from_secs(1)) => next,
        };
        match next {
            Ok(Some(delivery)) => {
                let store = store.clone();
                handling.spawn(async move { handle(&store, delivery).await });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "receiving order events failed; retrying");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    while handling.join_next().await.is_some() {}
}

async fn handle(store: &Store, delivery: Delivery) {
    let envelope = delivery.envelope();
    let event_id = envelope.id().to_string();
    let trace = envelope.trace_context();
    let event: OrderPlacedV1 = match envelope.decode() {
        Ok(event) => event,
        Err(e) => {
            let _ = delivery
                .term(format!("not an order.placed.v1 payload: {e}"))
                .await;
            return;
        }
    };
    let new = match shipment_of(&event) {
        Ok(new) => new,
        Err(e) => {
            tracing::error!(order_id = %event.order_id, error = %e, "order cannot be shipped; dead-lettering");
            let _ = delivery.term(e.to_string()).await;
            return;
        }
    };
    let order_id = event.order_id.clone();
    let user_id = event.user_id.clone();
    let announce = move |candidate: &crate::store::Candidate| {
        let created = ShipmentCreatedV1 {
            shipment_id: candidate.id.to_string(),
            order_id: event.order_id.clone(),
            user_id: user_id.clone(),
            tracking_id: candidate.tracking_id.to_string(),
            carrier: Some("Emporium Post".into()),
        };
        let mut envelope = Envelope::for_event(sources::SHIPPING, &created)
            .map_err(|e| ShippingError::Corrupt(e.to_string()))?;
        if let Some(trace) = trace {
            envelope = envelope.with_trace(trace.child());
        }
        let json = String::from_utf8(envelope.to_json())
            .map_err(|e| ShippingError::Corrupt(e.to_string()))?;
        Ok((
            envelope.id().to_string(),
            envelope.event_type().as_str().to_owned(),
            json,
        ))
    };
    let effect = EventEffect {
        consumer: CONSUMER,
        event_id: &event_id,
        announce: &announce,
    };
    match store.create_shipment_for_event(&new, &effect).await {
        Ok(shipment) => {
            tracing::info!(order_id = %shipment.order_id, tracking_id = %shipment.tracking_id, "shipment created for order");
            if let Err(e) = delivery.ack().await {
                tracing::warn!(error = %e, "ack failed; the event will come again and change nothing");
            }
        }
        Err(e) => match delivery.fail(e.kind(), &e).await {
            Ok(Nacked::Transient { after }) => {
                tracing::warn!(%order_id, error = %e, retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX), "creating the shipment failed for now; will retry without counting an attempt");
            }
            Ok(Nacked::Retry { after }) => {
                tracing::warn!(%order_id, error = %e, retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX), "creating the shipment failed; will retry");
            }
            Ok(Nacked::DeadLettered) => {
                tracing::error!(%order_id, error = %e, "creating the shipment failed on its last attempt; dead-lettered");
            }
            Err(bus) => {
                tracing::warn!(%order_id, error = %e, bus_error = %bus, "creating the shipment failed and the retry could not be scheduled; it comes again after its ack wait");
            }
        },
    }
}

fn shipment_of(event: &OrderPlacedV1) -> Result<NewShipment, ShippingError> {
    let a = &event.shipping_address;
    let items = event
        .items
        .iter()
        .map(|i| Item::new(&i.sku, i.quantity, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NewShipment {
        order_id: OrderId::parse(&event.order_id)?,
        address: Address::new(
            &a.name,
            &a.line1,
            &a.line2,
            &a.city,
            &a.postal_code,
            &a.country_code,
        )?,
        parcel: Parcel::new(items)?,
    })
}

/// Shipping's outbox, for the relay.
#[derive(Debug, Clone)]
pub struct Outbox(pub Store);

impl OutboxSource for Outbox {
    fn pending(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Pending>, String>> {
        Box::pin(async move {
            let rows = self
                .0
                .pending_outbox(limit)
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|(id, payload, created_at)| Pending {
                    id,
                    envelope: payload.into_bytes(),
                    created_at,
                })
                .collect())
        })
    }

    fn mark_published<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.mark_published(ids).await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_takes_32_orders_at_once_and_caps_its_retries_at_30_s() {
        let config = consumer_config().unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.name, "shipping");
        assert_eq!(config.max_in_flight, 32);
        assert_eq!(config.backoff_for(100), Duration::from_secs(30));
    }
}
