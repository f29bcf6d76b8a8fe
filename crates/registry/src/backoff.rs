//! Capped, jittered exponential backoff for the background tasks.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

const INITIAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            next: INITIAL.min(max),
            max,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = INITIAL.min(self.max);
    }

    /// Sleeps between half and all of the current delay, then doubles it
    /// (up to the cap). The jitter keeps many clients that lost etcd at the
    /// same moment from coming back in lockstep.
    pub(crate) async fn wait(&mut self) {
        let delay = jitter(self.next);
        self.next = self.next.saturating_mul(2).min(self.max);
        tokio::time::sleep(delay).await;
    }
}

fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let random = RandomState::new().hash_one(std::time::Instant::now());
    half + Duration::from_nanos(random.checked_rem(nanos.saturating_add(1)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(800));
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(300));
        assert_eq!(backoff.next, Duration::from_millis(100));
        backoff.wait().await;
        assert_eq!(backoff.next, Duration::from_millis(200));
        backoff.wait().await;
        backoff.wait().await;
        assert_eq!(backoff.next, Duration::from_millis(300));
        backoff.reset();
        assert_eq!(backoff.next, Duration::from_millis(100));
    }
}
