//! Password hashing: argon2id with a random salt, kept as a PHC string.
//!
//! Hashing is deliberately slow, so it never runs on the async runtime: every
//! hash and verification goes to `tokio::task::spawn_blocking`, at most
//! `max_concurrent` at once (each holds `memory_kib` of memory; a burst of
//! sign-ins queues instead of exhausting the memory limit). Verifying
//! uses the parameters stored in the hash, so raising the cost later keeps
//! old hashes valid. [`Passwords::verify`] with no stored hash (an unknown
//! email) checks against a dummy hash of the same cost, so a sign-in takes as
//! long whether or not the account exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordHashing;
use crate::domain::{Password, PasswordHash};
use crate::error::AccountsError;

/// Hashes and verifies passwords off the runtime; cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password with `params`, for unknown accounts.
    dummy: Arc<PasswordHash>,
    /// One permit per hash allowed to run.
    permits: Arc<Semaphore>,
    /// Requests waiting for a permit, and the most allowed to.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Hashes running now, and the most that ever ran at once.
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("memory_kib", &self.params.m_cost())
            .field("iterations", &self.params.t_cost())
            .finish_non_exhaustive()
    }
}

/// The argon2 parameters of `settings` (validated at configuration load).
pub fn params(settings: &PasswordHashing) -> Result<Params, argon2::Error> {
    Params::new(
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        None,
    )
}

/// Hashes `password` with a fresh random salt. Blocking: CPU- and memory-heavy.
pub fn hash_blocking(params: Params, password: &str) -> Result<PasswordHash, AccountsError> {
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    hasher
        .hash_password(password.as_bytes())
        .map(|hash| PasswordHash::new(hash.to_string()))
        .map_err(|e| AccountsError::Hashing(e.to_string()))
}

/// Whether `password` matches `stored`. A malformed stored hash matches
/// nothing. Blocking: CPU- and memory-heavy.
pub fn verify_blocking(password: &str, stored: &PasswordHash) -> bool {
    let Ok(parsed) = argon2::PasswordHash::new(stored.as_str()) else {
        tracing::error!("a stored password hash is not a PHC string");
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AccountsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AccountsError::Hashing(format!("hashing task failed: {e}")))
}

/// Counts one running hash for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(running: &Arc<AtomicUsize>, peak: &AtomicUsize) -> Self {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        Self(running.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Passwords {
    /// Prepares hashing with `settings`; computes the dummy hash once.
    pub async fn new(settings: &PasswordHashing) -> Result<Self, AccountsError> {
        let params = params(settings).map_err(|e| AccountsError::Hashing(e.to_string()))?;
        // Its password is never used: `verify` reports no match for it anyway.
        let dummy_password = uuid::Uuid::new_v4().simple().to_string();
        let for_dummy = params.clone();
        let dummy = blocking(move || hash_blocking(for_dummy, &dummy_password)).await??;
        let max = usize::try_from(settings.max_concurrent.max(1)).unwrap_or(1);
        Ok(Self {
            params,
            dummy: Arc::new(dummy),
            permits: Arc::new(Semaphore::new(max)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: usize::try_from(settings.max_waiting).unwrap_or(usize::MAX),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` on the blocking pool once a permit is free; refuses at once
    /// ([`AccountsError::Busy`]) when no permit is free and `max_waiting`
    /// requests already wait for one.
    async fn limited<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountsError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(AccountsError::Hashing("hashing is shut down".into()));
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                // Counted as waiting until it holds a permit (or gives up).
                let queued = Running::start(&self.waiting, &AtomicUsize::new(0));
                if self.waiting.load(Ordering::SeqCst) > self.max_waiting {
                    return Err(AccountsError::Busy);
                }
                let permit = self.permits.clone().acquire_owned().await;
                drop(queued);
                permit.map_err(|e| AccountsError::Hashing(format!("hashing is shut down: {e}")))?
            }
        };
        let (running, peak) = (self.running.clone(), self.peak.clone());
        blocking(move || {
            let _permit = permit;
            let _running = Running::start(&running, &peak);
            f()
        })
        .await
    }

    /// The most hashes that ever ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, AccountsError> {
        let params = self.params.clone();
        let password = password.clone();
        self.limited(move || hash_blocking(params, password.expose()))
            .await?
    }

    /// Whether `password` matches `stored`; with `None`, a verification that
    /// fails but costs the same.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<PasswordHash>,
    ) -> Result<bool, AccountsError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| (*self.dummy).clone());
        let password = password.to_owned();
        let matches = self
            .limited(move || verify_blocking(&password, &stored))
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cheap() -> Params {
        Params::new(1024, 1, 1, None).unwrap()
    }

    #[test]
    fn hashes_are_salted_argon2id_phc_strings_never_the_password() {
        let password = "correct horse battery staple";
        let a = hash_blocking(cheap(), password).unwrap();
        let b = hash_blocking(cheap(), password).unwrap();
        assert!(
            a.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{}",
            a.as_str()
        );
        assert!(!a.as_str().contains(password));
        assert_ne!(a, b, "a fresh salt every time");
    }

    #[test]
    fn verification_accepts_the_password_and_rejects_anything_else() {
        let hash = hash_blocking(cheap(), "correct horse battery staple").unwrap();
        assert!(verify_blocking("correct horse battery staple", &hash));
        assert!(!verify_blocking("correct horse battery stapler", &hash));
        assert!(!verify_blocking("", &hash));
        assert!(!verify_blocking(
            "correct horse battery staple",
            &PasswordHash::new("not a hash")
        ));
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify_even_with_the_dummy_password() {
        let settings = PasswordHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 4,
            max_waiting: 64,
        };
        let passwords = Passwords::new(&settings).await.unwrap();
        let password = Password::parse("whatever-it-is").unwrap();
        assert!(!passwords.verify(password.expose(), None).await.unwrap());
        let stored = passwords.hash(&password).await.unwrap();
        assert!(
            passwords
                .verify(password.expose(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("whatever-it-isn't", Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_allowed() {
        let settings = PasswordHashing {
            memory_kib: 8 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 2,
            max_waiting: 64,
        };
        let passwords = Passwords::new(&settings).await.unwrap();
        let password = Password::parse("a burst of sign-ups").unwrap();
        let burst: Vec<_> = (0..12)
            .map(|i| {
                let (passwords, password) = (passwords.clone(), password.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        passwords.hash(&password).await.map(|_| ())
                    } else {
                        passwords.verify("nobody", None).await.map(|_| ())
                    }
                })
            })
            .collect();
        for task in burst {
            task.await.unwrap().unwrap();
        }
        let peak = passwords.peak_concurrency();
        assert!(
            (1..=2).contains(&peak),
            "at most 2 hashes at once, saw {peak}"
        );
    }
}
