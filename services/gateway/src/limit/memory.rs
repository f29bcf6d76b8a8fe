//! Limit state in the process: right for one replica (`emporium up`).
//!
//! One mutex over two maps; each decision is a few arithmetic operations
//! under it, so it is atomic per key and never waits on I/O. Keys whose
//! state is worth nothing any more (a TAT in the past, an expired sign-in
//! window) are swept whenever a map has doubled since the last sweep, so
//! memory follows the number of clients active within a period.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt};

use super::{
    Backend, BackendError, Decision, LoginOp, LoginPolicy, LoginState, LoginVerdict, Millis, Quota,
    gcra, login_step,
};

/// Sweeps do not start below this many keys.
const MIN_SWEEP: usize = 1024;

#[derive(Debug, Default)]
struct Maps {
    tats: HashMap<String, Millis>,
    logins: HashMap<String, (LoginState, Millis)>,
    sweep_tats_at: usize,
    sweep_logins_at: usize,
}

/// In-process limit state; one per gateway.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    maps: Mutex<Maps>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keys held (for tests of the sweep).
    pub fn len(&self) -> usize {
        let maps = self.lock();
        maps.tats.len() + maps.logins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn acquire_now(&self, key: &str, quota: Quota, now: Millis) -> Decision {
        let mut maps = self.lock();
        let (decision, tat) = gcra(maps.tats.get(key).copied(), now, quota);
        if let Some(tat) = tat {
            maps.tats.insert(key.to_owned(), tat);
            if maps.tats.len() >= maps.sweep_tats_at.max(MIN_SWEEP) {
                maps.tats.retain(|_, tat| *tat > now);
                maps.sweep_tats_at = maps.tats.len() * 2;
            }
        }
        decision
    }

    fn login_now(&self, key: &str, op: LoginOp, policy: LoginPolicy, now: Millis) -> LoginVerdict {
        let mut maps = self.lock();
        let state = maps.logins.get(key).map(|(state, _)| *state);
        let (verdict, state) = login_step(state, op, now, policy);
        match state {
            Some(state) => {
                maps.logins
                    .insert(key.to_owned(), (state, state.expires_at(policy)));
                if maps.logins.len() >= maps.sweep_logins_at.max(MIN_SWEEP) {
                    maps.logins.retain(|_, (_, expires)| *expires > now);
                    maps.sweep_logins_at = maps.logins.len() * 2;
                }
            }
            None => {
                maps.logins.remove(key);
            }
        }
        verdict
    }
}

impl Backend for MemoryBackend {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: Millis,
    ) -> BoxFuture<'a, Result<Decision, BackendError>> {
        let decision = self.acquire_now(key, quota, now);
        async move { Ok(decision) }.boxed()
    }

    fn login<'a>(
        &'a self,
        key: &'a str,
        op: LoginOp,
        policy: LoginPolicy,
        now: Millis,
    ) -> BoxFuture<'a, Result<LoginVerdict, BackendError>> {
        let verdict = self.login_now(key, op, policy, now);
        async move { Ok(verdict) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rested_keys_are_swept_once_the_map_doubles() {
        let backend = MemoryBackend::new();
        let quota = Quota::new(10, Duration::from_secs(10));
        for i in 0..MIN_SWEEP - 1 {
            backend.acquire_now(&format!("k{i}"), quota, 0);
        }
        assert_eq!(backend.len(), MIN_SWEEP - 1);
        // Much later every key has rested: the next insert sweeps them.
        backend.acquire_now("late", quota, 1_000_000);
        assert_eq!(backend.len(), 1);
    }
}
