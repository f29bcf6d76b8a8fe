//! Sending: the loop that delivers pending messages through the [`Mailer`].
//!
//! Each round takes up to `send_batch` due messages, oldest due first, and
//! for each one: claims it (so no other replica sends it meanwhile), sends
//! it, and records the result — `sent`, or one more attempt with the error
//! and a retry time from the [`RetryPolicy`] (doubling, capped). A round
//! starts when the consumer has stored a new message, every `send_interval`
//! otherwise, and at once again after a full batch.
//!
//! Delivery is at-least-once: a sender that dies after sending but before
//! recording it leaves a claimed message that is claimed again once its
//! lease has passed, and sent again with the same `Message-ID`. Shutdown
//! finishes the message in hand and stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{Message, RetryPolicy, now};
use crate::error::NotificationError;
use crate::mail::Mailer;
use crate::store::Store;
use crate::telemetry::Telemetry;

/// The shortest claim: how long a claimed message is reserved for its
/// sender (longer when the mailer's own deadline is longer).
pub const MIN_LEASE: Duration = Duration::from_secs(300);

/// How the sender paces itself.
#[derive(Debug, Clone, Copy)]
pub struct SenderSettings {
    pub interval: Duration,
    pub batch: u32,
    pub retry: RetryPolicy,
    /// How long a claim keeps a message from other senders; longer than
    /// any send can take.
    pub lease: Duration,
}

/// Sends until `stop` is cancelled.
pub async fn run(
    store: Store,
    mailer: Mailer,
    telemetry: Telemetry,
    settings: SenderSettings,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let full_batch = match round(&store, &mailer, &telemetry, &settings, &stop).await {
            Ok(taken) => taken >= settings.batch as usize,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the pending e-mails; trying again later.");
                false
            }
        };
        if full_batch {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

/// One round: returns how many due messages it found.
async fn round(
    store: &Store,
    mailer: &Mailer,
    telemetry: &Telemetry,
    settings: &SenderSettings,
    stop: &CancellationToken,
) -> Result<usize, NotificationError> {
    let due = store.due_messages(now(), settings.batch).await?;
    let found = due.len();
    for message in due {
        if stop.is_cancelled() {
            break;
        }
        let at = now();
        if !store.claim(message.id, at, at + settings.lease).await? {
            continue;
        }
        deliver(store, mailer, telemetry, settings, &message).await;
    }
    Ok(found)
}

/// Sends one claimed message and records the outcome. Errors recording it
/// are logged: the claim then lapses and the message is tried again.
async fn deliver(
    store: &Store,
    mailer: &Mailer,
    telemetry: &Telemetry,
    settings: &SenderSettings,
    message: &Message,
) {
    let attempt = message.attempts.saturating_add(1);
    match mailer.send(message).await {
        Ok(()) => {
            telemetry.message_sent(message.id, message.kind, attempt);
            if let Err(e) = store.mark_sent(message.id, now()).await {
                tracing::error!(
                    message_id = %message.id,
                    error = %e,
                    "An e-mail was delivered but could not be marked sent; it will be sent again (same Message-ID) when its claim lapses."
                );
            }
        }
        Err(error) => {
            // Every earlier attempt failed, or the message would not be pending.
            let retry_in = settings.retry.delay_after(attempt);
            telemetry.send_failed(message.id, message.kind, attempt, retry_in, &error);
            if let Err(e) = store
                .mark_failed(message.id, &error.to_string(), now() + retry_in)
                .await
            {
                tracing::error!(
                    message_id = %message.id,
                    error = %e,
                    "A failed delivery could not be recorded; the message is retried when its claim lapses."
                );
            }
        }
    }
}
