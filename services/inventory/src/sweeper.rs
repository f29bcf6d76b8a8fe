//! The sweeper: returns the units of reservations nobody confirmed in time.
//!
//! Every `sweep_interval` it expires the reservations whose `expires_at` has
//! passed ([`sweep_once`]), one transaction each, so a crash mid-sweep leaves
//! every reservation either untouched or fully expired. It stops when the
//! service shuts down; a sweep cut short that way rolls back its current
//! transaction and the next start picks up the rest. Confirm and release
//! check the expiry themselves, so a late sweep never lets an expired
//! reservation be confirmed.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::error::InventoryError;
use crate::store::Store;

/// Expires every reservation due at `now`; returns how many expired.
/// Tests drive this directly with the time they want.
pub async fn sweep_once(store: &Store, now: OffsetDateTime) -> Result<usize, InventoryError> {
    store.expire_due(now).await
}

/// Sweeps every `interval` until `stop` is cancelled.
pub async fn run(store: Store, interval: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let sweep = tokio::select! {
            () = stop.cancelled() => return,
            result = sweep_once(&store, crate::domain::now()) => result,
        };
        match sweep {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired reservations swept"),
            Err(e) => {
                tracing::warn!(error = %e, "sweeping expired reservations failed; will try again")
            }
        }
    }
}
