//! Durable named consumers and the deliveries they hand out.
//!
//! A [`Consumer`] is a handle on a durable position in the event stream,
//! identified by its name: every process that opens a consumer with the same
//! name shares that position, and the position survives restarts. The
//! consumer hands out up to `max_in_flight` [`Delivery`]s at a time, at most
//! one per ordering key (the envelope's `subject`); settling one with
//! [`Delivery::ack`], [`Delivery::nack`], [`Delivery::retry`] or
//! [`Delivery::term`] lets the next one through. A delivery that is dropped
//! unsettled (the handler panicked, the process died) is redelivered once
//! its `ack_wait` has passed.
//!
//! Two kinds of failure, two calls:
//! - [`Delivery::retry`] — *transient*: the handler could not run now (its
//!   database or an upstream is unavailable). The event comes again after
//!   the backoff for its retry count (capped by the schedule's last entry)
//!   and the attempt does **not** count toward `max_deliver`: it is retried
//!   for as long as it takes. Only its own key waits meanwhile.
//! - [`Delivery::nack`] — *deterministic* (or unknown): the attempt counts;
//!   the `max_deliver`-th failed attempt moves the event to the dead letters.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use emporium_chassis::{ErrorKind, TraceContext};

use crate::BoxFuture;
use crate::envelope::{Envelope, EventType};
use crate::error::{Error, Result};
use crate::lag::{Outcome, Outcomes};

/// Longest consumer name.
pub const MAX_CONSUMER_NAME_LEN: usize = 64;
/// Most retry delays a backoff schedule may list.
pub const MAX_BACKOFF_STEPS: usize = 16;
/// Longest single retry delay or `ack_wait`.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Most delivery attempts a consumer may allow.
pub const MAX_DELIVER_LIMIT: u32 = 1000;
/// Longest failure reason kept with a dead letter; longer ones are cut.
pub const MAX_REASON_LEN: usize = 1024;
/// Longest single wait of [`Consumer::next`]; longer waits are cut to it.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// Most deliveries one consumer may have outstanding at once.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 256;

/// Which event types a consumer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every event.
    All,
    /// Exactly these types.
    Types(BTreeSet<EventType>),
    /// Every type starting with these dot-separated words, e.g. `order`
    /// matches `order.placed.v1` and `order.cancelled.v1`.
    Prefix(String),
}

impl Filter {
    /// A filter for the given types (e.g. constants from [`crate::events`]).
    pub fn types<I, S>(types: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = types
            .into_iter()
            .map(|t| EventType::parse(t.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() {
            return Err(Error::config("filter", "list at least one event type"));
        }
        Ok(Self::Types(set))
    }

    /// A filter for every type under `prefix` (`order`, `order.placed`).
    pub fn prefix(prefix: &str) -> Result<Self> {
        let ok = !prefix.is_empty()
            && prefix.len() < crate::envelope::MAX_TYPE_LEN
            && prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if ok {
            Ok(Self::Prefix(prefix.to_owned()))
        } else {
            Err(Error::config(
                "filter",
                format!("prefix `{prefix}` must be lowercase words separated by dots"),
            ))
        }
    }

    /// Whether an event of type `ty` passes.
    pub fn matches(&self, ty: &EventType) -> bool {
        match self {
            Self::All => true,
            Self::Types(set) => set.contains(ty),
            Self::Prefix(p) => ty
                .as_str()
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }

    /// The dot-separated words every matching type starts with (empty for
    /// [`Filter::All`] or types with nothing in common). Backends narrow
    /// their server-side selection with it.
    pub fn common_prefix(&self) -> Vec<&str> {
        match self {
            Self::All => Vec::new(),
            Self::Prefix(p) => p.split('.').collect(),
            Self::Types(set) => {
                let mut iter = set.iter();
                let Some(first) = iter.next() else {
                    return Vec::new();
                };
                let mut common: Vec<&str> = first.as_str().split('.').collect();
                for ty in iter {
                    let shared = common
                        .iter()
                        .zip(ty.as_str().split('.'))
                        .take_while(|(a, b)| *a == b)
                        .count();
                    common.truncate(shared);
                }
                common
            }
        }
    }

    /// True when [`Filter::common_prefix`] selects exactly the matching
    /// types, so no event has to be skipped on the client side.
    pub fn is_exact_prefix(&self) -> bool {
        match self {
            Self::All | Self::Prefix(_) => true,
            Self::Types(set) => set.len() == 1,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Prefix(p) => write!(f, "prefix {p}"),
            Self::Types(set) => {
                f.write_str("types ")?;
                for (i, t) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(t.as_str())?;
                }
                Ok(())
            }
        }
    }
}

/// What a durable consumer is and how it retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The durable name, `[a-z0-9_-]`, at most [`MAX_CONSUMER_NAME_LEN`]:
    /// by convention the service's name (`shipping`), with a `-<purpose>`
    /// suffix for a service that needs more than one consumer.
    pub name: String,
    pub filter: Filter,
    /// Delivery attempts before the event is dead-lettered (default 5).
    pub max_deliver: u32,
    /// How long a delivery may stay unsettled before it is handed out again
    /// (default 30 s). Call [`Delivery::in_progress`] to extend it.
    pub ack_wait: Duration,
    /// Delay before retry `n` after a [`Delivery::nack`] without an explicit
    /// delay, and before transient retry `n` after a [`Delivery::retry`]:
    /// entry `n - 1`, the last entry repeating — so it is also the cap
    /// (default 100 ms, 500 ms, 2 s, 10 s, 30 s).
    pub backoff: Vec<Duration>,
    /// Deliveries outstanding at once (handed out, or waiting for a
    /// retry), at most one per ordering key (default 1: strictly one event
    /// at a time). More lets events of other keys pass one that is stuck.
    pub max_in_flight: u32,
}

impl ConsumerConfig {
    /// A consumer with the default retry policy.
    pub fn new(name: impl Into<String>, filter: Filter) -> Self {
        Self {
            name: name.into(),
            filter,
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            backoff: [100, 500, 2_000, 10_000, 30_000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            max_in_flight: 1,
        }
    }

    #[must_use]
    pub fn max_in_flight(mut self, deliveries: u32) -> Self {
        self.max_in_flight = deliveries;
        self
    }

    #[must_use]
    pub fn max_deliver(mut self, attempts: u32) -> Self {
        self.max_deliver = attempts;
        self
    }

    #[must_use]
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    #[must_use]
    pub fn backoff(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.backoff = delays.into_iter().collect();
        self
    }

    /// Checks every bound; backends call it before creating anything.
    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_CONSUMER_NAME_LEN
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(Error::config(
                "consumer.name",
                format!(
                    "`{}` must be 1 to {MAX_CONSUMER_NAME_LEN} characters of a-z, 0-9, - and _",
                    self.name.escape_debug()
                ),
            ));
        }
        if !(1..=MAX_DELIVER_LIMIT).contains(&self.max_deliver) {
            return Err(Error::config(
                "consumer.max_deliver",
                format!("must be 1 to {MAX_DELIVER_LIMIT}"),
            ));
        }
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight) {
            return Err(Error::config(
                "consumer.max_in_flight",
                format!("must be 1 to {MAX_IN_FLIGHT_LIMIT}"),
            ));
        }
        if self.ack_wait < Duration::from_millis(100) || self.ack_wait > MAX_DELAY {
            return Err(Error::config(
                "consumer.ack_wait",
                "must be between 100ms and 1h",
            ));
        }
        if self.backoff.len() > MAX_BACKOFF_STEPS || self.backoff.iter().any(|d| *d > MAX_DELAY) {
            return Err(Error::config(
                "consumer.backoff",
                format!("at most {MAX_BACKOFF_STEPS} delays, each at most 1h"),
            ));
        }
        Ok(())
    }

    /// The retry delay after failed attempt `attempt` (1-based).
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff
            .get(index)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }
}

/// What a [`Delivery::nack`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// The event comes again after this delay.
    Retry { after: Duration },
    /// That was the last allowed attempt: the event is now a dead letter.
    DeadLettered,
    /// A transient failure ([`Delivery::fail`] with a transient kind): the
    /// event comes again after this delay, and no attempt was counted.
    Transient { after: Duration },
}

/// A backend's source of deliveries for one consumer.
pub(crate) trait DeliverySource: Send + fmt::Debug {
    /// The next delivery, waiting at most `wait` for one.
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Option<Delivery>>>;
}

/// How a backend settles one delivery.
pub(crate) trait Settle: Send + Sync + fmt::Debug {
    fn ack(&self) -> BoxFuture<'_, Result<()>>;
    /// Hand the event out again after `delay`; `reason` is kept as the last error.
    fn nack<'a>(&'a self, delay: Duration, reason: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Hand the event out again after `delay` WITHOUT counting this
    /// attempt (a transient failure); its key stays held meanwhile.
    fn retry<'a>(&'a self, delay: Duration, reason: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Write a dead letter for the event, then stop delivering it; the
    /// dead letter must be durable before the original is released.
    fn dead_letter<'a>(
        &'a self,
        envelope: &'a Envelope,
        attempts: u32,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Restart the `ack_wait` clock.
    fn in_progress(&self) -> BoxFuture<'_, Result<()>>;
}

/// A durable named consumer. Obtained from [`crate::EventBus::consumer`].
#[derive(Debug)]
pub struct Consumer {
    config: Arc<ConsumerConfig>,
    source: Box<dyn DeliverySource>,
    outcomes: Option<Arc<Outcomes>>,
}

impl Consumer {
    pub(crate) fn new(config: Arc<ConsumerConfig>, source: Box<dyn DeliverySource>) -> Self {
        Self {
            config,
            source,
            outcomes: None,
        }
    }

    /// Counts how this consumer's deliveries are settled (see
    /// [`crate::lag::Outcomes`]).
    #[must_use]
    pub fn counting(mut self, outcomes: Arc<Outcomes>) -> Self {
        self.outcomes = Some(outcomes);
        self
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The next delivery, or `None` when none arrived within `wait` (at
    /// most [`MAX_WAIT`]).
    ///
    /// Up to `max_in_flight` deliveries are outstanding per consumer name
    /// at a time, and at most one per ordering key (that is how per-subject
    /// order is kept): with all of them handed out, settle one before
    /// asking for the next, or the next call waits for an `ack_wait` to
    /// expire. Cancel-safe in effect: a call dropped mid-wait at worst
    /// leaves an event handed out to nobody, which comes again after
    /// `ack_wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>> {
        let delivery = self.source.next(wait.min(MAX_WAIT)).await?;
        Ok(delivery.map(|mut d| {
            d.outcomes.clone_from(&self.outcomes);
            d
        }))
    }
}

/// One delivery of an event to a consumer. Settle it with exactly one of
/// [`ack`](Self::ack), [`nack`](Self::nack) or [`term`](Self::term);
/// dropping it unsettled means "redeliver after `ack_wait`".
#[derive(Debug)]
pub struct Delivery {
    envelope: Envelope,
    attempt: u32,
    retries: u32,
    sequence: u64,
    config: Arc<ConsumerConfig>,
    settle: Box<dyn Settle>,
    outcomes: Option<Arc<Outcomes>>,
}

impl Delivery {
    pub(crate) fn new(
        envelope: Envelope,
        attempt: u32,
        sequence: u64,
        config: Arc<ConsumerConfig>,
        settle: Box<dyn Settle>,
    ) -> Self {
        Self {
            envelope,
            attempt,
            retries: 0,
            sequence,
            config,
            settle,
            outcomes: None,
        }
    }

    /// Sets how many transient retries came before this delivery.
    pub(crate) fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    fn count(&self, outcome: Outcome) {
        if let Some(outcomes) = &self.outcomes {
            outcomes.count(outcome);
        }
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// 1 for the first delivery of this event to this consumer, 2 after
    /// its first failed attempt (a [`nack`](Self::nack) or an expired
    /// `ack_wait`), and so on. Transient retries ([`retry`](Self::retry))
    /// do not count.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Transient retries ([`retry`](Self::retry)) of this event before this
    /// delivery (0 on the first try). Kept across restarts on the log; on
    /// NATS a retry interrupted by a restart comes back as a failed attempt.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The event's position in the stream (backend-assigned, increasing in
    /// publish order).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Whether a failure now dead-letters the event.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.config.max_deliver
    }

    /// The trace the event was published in, continued as a child span.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.envelope.trace_context().map(|t| t.child())
    }

    /// The event was handled: never deliver it to this consumer again.
    /// Returns once the acknowledgement is stored.
    pub async fn ack(self) -> Result<()> {
        self.settle.ack().await?;
        self.count(Outcome::Acked);
        Ok(())
    }

    /// Handling failed for now: deliver it again after `delay`, or after the
    /// consumer's backoff for this attempt when `None`. On the last allowed
    /// attempt the event becomes a dead letter with `reason` instead.
    pub async fn nack(self, delay: Option<Duration>, reason: impl fmt::Display) -> Result<Nacked> {
        let reason = bounded_reason(reason);
        if self.is_last_attempt() {
            self.settle
                .dead_letter(&self.envelope, self.attempt, &reason)
                .await?;
            tracing::warn!(
                consumer = %self.config.name,
                event_id = %self.envelope.id(),
                event_type = %self.envelope.event_type(),
                attempts = self.attempt,
                reason = %reason,
                "An event failed its last attempt and was moved to the dead letters."
            );
            self.count(Outcome::DeadLettered);
            return Ok(Nacked::DeadLettered);
        }
        let after = delay
            .unwrap_or_else(|| self.config.backoff_for(self.attempt))
            .min(MAX_DELAY);
        self.settle.nack(after, &reason).await?;
        self.count(Outcome::Failed);
        Ok(Nacked::Retry { after })
    }

    /// Handling could not run for a passing reason (the database or an
    /// upstream is unavailable): deliver the event again after the backoff
    /// for its next transient retry — the schedule's entry for
    /// [`retries`](Self::retries)` + 1`, its last entry being the cap — and
    /// do NOT count this attempt toward `max_deliver`. A transient failure
    /// therefore never dead-letters an event; it is retried for as long as
    /// it takes. Events of other keys keep flowing meanwhile (up to
    /// `max_in_flight`); later events of the same key wait behind it.
    /// Returns the delay.
    pub async fn retry(self, reason: impl fmt::Display) -> Result<Duration> {
        let reason = bounded_reason(reason);
        let after = self
            .config
            .backoff_for(self.retries.saturating_add(1))
            .min(MAX_DELAY);
        self.settle.retry(after, &reason).await?;
        self.count(Outcome::Retried);
        tracing::debug!(
            consumer = %self.config.name,
            event_id = %self.envelope.id(),
            retries = self.retries.saturating_add(1),
            retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            reason = %reason,
            "An event could not be handled for now; it will be retried without counting an attempt."
        );
        Ok(after)
    }

    /// Settles a failed handling by what kind of failure it was — the ONE
    /// classification, [`ErrorKind::is_transient`]: a transient kind (a
    /// database or upstream unavailable, a deadline, a rate limit) is
    /// [`retry`](Self::retry) (not counted, never dead-lettered); any other
    /// kind is [`nack`](Self::nack) with the consumer's backoff (counted;
    /// dead-lettered after `max_deliver` attempts).
    pub async fn fail(self, kind: ErrorKind, reason: impl fmt::Display) -> Result<Nacked> {
        if kind.is_transient() {
            let after = self.retry(reason).await?;
            Ok(Nacked::Transient { after })
        } else {
            self.nack(None, reason).await
        }
    }

    /// The event can never be handled (e.g. its payload is unreadable): stop
    /// retrying and move it to the dead letters now, with `reason`.
    pub async fn term(self, reason: impl fmt::Display) -> Result<()> {
        let reason = bounded_reason(reason);
        self.settle
            .dead_letter(&self.envelope, self.attempt, &reason)
            .await?;
        tracing::warn!(
            consumer = %self.config.name,
            event_id = %self.envelope.id(),
            event_type = %self.envelope.event_type(),
            attempts = self.attempt,
            reason = %reason,
            "An event was rejected and moved to the dead letters."
        );
        self.count(Outcome::DeadLettered);
        Ok(())
    }

    /// Still working on it: restart the `ack_wait` clock so the event is not
    /// handed to someone else meanwhile.
    pub async fn in_progress(&self) -> Result<()> {
        self.settle.in_progress().await
    }
}

fn bounded_reason(reason: impl fmt::Display) -> String {
    let mut text = reason.to_string();
    if text.len() > MAX_REASON_LEN {
        let mut cut = MAX_REASON_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    if text.is_empty() {
        text.push_str("(no reason given)");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ty(s: &str) -> EventType {
        EventType::parse(s).unwrap()
    }

    #[test]
    fn prefix_filters_match_whole_words_only() {
        let f = Filter::prefix("order").unwrap();
        assert!(f.matches(&ty("order.placed.v1")));
        assert!(f.matches(&ty("order.cancelled.v1")));
        assert!(!f.matches(&ty("orders.placed.v1")));
        assert!(!f.matches(&ty("stock.low.v1")));
        assert!(Filter::prefix("Order").is_err());
        assert!(Filter::prefix("order.").is_err());
        assert!(Filter::prefix("").is_err());
    }

    #[test]
    fn type_filters_match_exactly_and_know_their_common_prefix() {
        let f = Filter::types(["order.placed.v1", "order.cancelled.v1"]).unwrap();
        assert!(f.matches(&ty("order.placed.v1")));
        assert!(!f.matches(&ty("order.placed.v2")));
        assert_eq!(f.common_prefix(), vec!["order"]);
        assert!(!f.is_exact_prefix());

        let one = Filter::types(["stock.low.v1"]).unwrap();
        assert_eq!(one.common_prefix(), vec!["stock", "low", "v1"]);
        assert!(one.is_exact_prefix());

        let mixed = Filter::types(["order.placed.v1", "stock.low.v1"]).unwrap();
        assert!(mixed.common_prefix().is_empty());
        assert!(Filter::types(Vec::<&str>::new()).is_err());
        assert!(Filter::types(["nope"]).is_err());
    }

    #[test]
    fn config_bounds_are_checked() {
        let ok = ConsumerConfig::new("shipping-orders", Filter::All);
        assert!(ok.validate().is_ok());
        for bad in [
            ConsumerConfig::new("", Filter::All),
            ConsumerConfig::new("has.dot", Filter::All),
            ConsumerConfig::new("UPPER", Filter::All),
            ConsumerConfig::new("x".repeat(65), Filter::All),
            ok.clone().max_deliver(0),
            ok.clone().max_in_flight(0),
            ok.clone().max_in_flight(MAX_IN_FLIGHT_LIMIT + 1),
            ok.clone().ack_wait(Duration::from_millis(5)),
            ok.clone().backoff([Duration::from_secs(7200)]),
            ok.clone().backoff(vec![Duration::from_millis(1); 17]),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_steps_repeat_their_last_entry() {
        let c = ConsumerConfig::new("c", Filter::All)
            .backoff([Duration::from_millis(100), Duration::from_millis(500)]);
        assert_eq!(c.backoff_for(1), Duration::from_millis(100));
        assert_eq!(c.backoff_for(2), Duration::from_millis(500));
        assert_eq!(c.backoff_for(9), Duration::from_millis(500));
        assert_eq!(c.clone().backoff([]).backoff_for(1), Duration::ZERO);
    }

    #[test]
    fn reasons_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = bounded_reason(&long);
        assert!(cut.len() <= MAX_REASON_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(bounded_reason(""), "(no reason given)");
    }
}
