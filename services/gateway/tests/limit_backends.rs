//! One suite for every rate-limit backend: the in-process maps and Redis
//! (the Lua scripts), in plain text and over TLS. Each test is a generic function of the backend,
//! instantiated once per backend below; time is passed in, so refills and
//! waits are exact. Redis tests need EMPORIUM_TEST_REDIS_URL (else they print
//! SKIPPED; over TLS also the variables of
//! `emporium_testkit::cart::test_redis_tls`) and write under a key prefix of their own, so they run in
//! parallel on one server.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use emporium_gateway::limit::{
    Backend, Decision, LoginOp, LoginPolicy, LoginVerdict, MemoryBackend, Quota, RedisBackend,
    gcra, login_step,
};

/// A fixed starting time (ms since the epoch), as a wall clock would give.
const T0: u64 = 1_765_000_000_000;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Memory,
    Redis,
    /// Redis over TLS (`rediss://`), trusting a private CA as a managed Redis needs.
    RedisTls,
}

fn backend(kind: Kind) -> Option<Arc<dyn Backend>> {
    match kind {
        Kind::Memory => Some(Arc::new(MemoryBackend::new())),
        Kind::Redis => {
            let url = emporium_testkit::cart::test_redis_url()?;
            Some(redis_backend(&url, None))
        }
        Kind::RedisTls => {
            let (url, ca_cert) = emporium_testkit::cart::test_redis_tls()?;
            Some(redis_backend(&url, Some(&ca_cert)))
        }
    }
}

/// A Redis backend writing under a key prefix of its own.
fn redis_backend(url: &str, ca_cert: Option<&str>) -> Arc<dyn Backend> {
    let prefix = format!("test:ratelimit:{}:", uuid::Uuid::new_v4().simple());
    let client = emporium_gateway::limit::redis::redis_client(url, ca_cert).unwrap();
    Arc::new(RedisBackend::connect(client, &prefix, Duration::from_secs(2)).unwrap())
}

async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(backend) = backend(kind) {
        test(backend).await;
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $test() { super::run(super::Kind::Memory, super::$test).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $test() { super::run(super::Kind::Redis, super::$test).await })*
        }
        mod redis_tls {
            $(#[tokio::test] async fn $test() { super::run(super::Kind::RedisTls, super::$test).await })*
        }
    };
}

conformance!(
    a_burst_is_allowed_then_refused_with_the_exact_wait,
    units_come_back_one_interval_at_a_time,
    clients_do_not_share_a_budget,
    concurrent_requests_never_take_more_than_the_burst,
    decisions_match_the_gcra_model_step_by_step,
    failures_lock_an_account_for_the_lockout,
    a_success_clears_and_a_refund_gives_an_attempt_back,
    old_failures_are_forgotten_after_the_window,
    parallel_sign_ins_cannot_overtake_the_count,
);

/// 5 per 10 s: one unit every 2 s.
fn quota() -> Quota {
    Quota::new(5, Duration::from_secs(10))
}

const POLICY: LoginPolicy = LoginPolicy {
    max_failures: 3,
    window: 60_000,
    lockout: 30_000,
};

async fn acquire(b: &dyn Backend, key: &str, now: u64) -> Decision {
    b.acquire(key, quota(), now).await.unwrap()
}

async fn login(b: &dyn Backend, key: &str, op: LoginOp, now: u64) -> LoginVerdict {
    b.login(key, op, POLICY, now).await.unwrap()
}

async fn a_burst_is_allowed_then_refused_with_the_exact_wait(b: Arc<dyn Backend>) {
    for left in (0..5).rev() {
        let d = acquire(&*b, "read:a:192.0.2.1", T0).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, left);
    }
    let d = acquire(&*b, "read:a:192.0.2.1", T0 + 500).await;
    assert_eq!(
        d,
        Decision {
            allowed: false,
            remaining: 0,
            reset: 9_500,
            retry_after: 1_500
        }
    );
}

async fn units_come_back_one_interval_at_a_time(b: Arc<dyn Backend>) {
    for _ in 0..5 {
        assert!(acquire(&*b, "k", T0).await.allowed);
    }
    assert!(!acquire(&*b, "k", T0 + 1_999).await.allowed);
    let d = acquire(&*b, "k", T0 + 2_000).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.remaining, 0);
    assert!(!acquire(&*b, "k", T0 + 2_001).await.allowed);
    // A whole period of rest gives the whole burst back.
    let d = acquire(&*b, "k", T0 + 12_000).await;
    assert_eq!((d.allowed, d.remaining, d.reset), (true, 4, 2_000));
}

async fn clients_do_not_share_a_budget(b: Arc<dyn Backend>) {
    for _ in 0..5 {
        assert!(acquire(&*b, "write:u:ann", T0).await.allowed);
    }
    assert!(!acquire(&*b, "write:u:ann", T0).await.allowed);
    assert_eq!(acquire(&*b, "write:u:bob", T0).await.remaining, 4);
    assert_eq!(acquire(&*b, "read:u:ann", T0).await.remaining, 4);
}

async fn concurrent_requests_never_take_more_than_the_burst(b: Arc<dyn Backend>) {
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.acquire("hot", quota(), T0).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    assert_eq!(allowed, 5);
}

async fn decisions_match_the_gcra_model_step_by_step(b: Arc<dyn Backend>) {
    // Uneven arrivals: bursts, pauses, arrivals exactly on the boundaries.
    let gaps = [
        0, 0, 1, 0, 1_999, 1, 0, 4_000, 0, 0, 0, 0, 0, 0, 333, 1_667, 10_000, 1,
    ];
    let quota = Quota::new(4, Duration::from_secs(6));
    let (mut now, mut tat) = (T0, None);
    for (i, gap) in gaps.into_iter().enumerate() {
        now += gap;
        let (expected, next) = gcra(tat, now, quota);
        tat = next.or(tat);
        let got = b.acquire("model", quota, now).await.unwrap();
        assert_eq!(got, expected, "step {i} at +{} ms", now - T0);
    }
}

async fn failures_lock_an_account_for_the_lockout(b: Arc<dyn Backend>) {
    let key = "login:ann";
    for _ in 0..3 {
        assert_eq!(
            login(&*b, key, LoginOp::Attempt, T0).await,
            LoginVerdict::Allowed
        );
    }
    assert_eq!(
        login(&*b, key, LoginOp::Attempt, T0 + 1_000).await,
        LoginVerdict::Locked {
            retry_after: 29_000
        }
    );
    // Another account is not affected.
    assert_eq!(
        login(&*b, "login:bob", LoginOp::Attempt, T0 + 1_000).await,
        LoginVerdict::Allowed
    );
    // After the lockout one more try, which locks again.
    assert_eq!(
        login(&*b, key, LoginOp::Attempt, T0 + 30_000).await,
        LoginVerdict::Allowed
    );
    assert_eq!(
        login(&*b, key, LoginOp::Attempt, T0 + 30_001).await,
        LoginVerdict::Locked {
            retry_after: 29_999
        }
    );
}

async fn a_success_clears_and_a_refund_gives_an_attempt_back(b: Arc<dyn Backend>) {
    for _ in 0..3 {
        login(&*b, "login:a", LoginOp::Attempt, T0).await;
    }
    login(&*b, "login:a", LoginOp::Refund, T0 + 1).await;
    assert_eq!(
        login(&*b, "login:a", LoginOp::Attempt, T0 + 2).await,
        LoginVerdict::Allowed
    );
    assert!(matches!(
        login(&*b, "login:a", LoginOp::Attempt, T0 + 3).await,
        LoginVerdict::Locked { .. }
    ));
    login(&*b, "login:a", LoginOp::Succeeded, T0 + 4).await;
    for _ in 0..2 {
        assert_eq!(
            login(&*b, "login:a", LoginOp::Attempt, T0 + 5).await,
            LoginVerdict::Allowed
        );
    }
}

async fn old_failures_are_forgotten_after_the_window(b: Arc<dyn Backend>) {
    let (mut model, key) = (None, "login:c");
    let steps = [
        (LoginOp::Attempt, 0),
        (LoginOp::Attempt, 10_000),
        (LoginOp::Attempt, 60_000),
        (LoginOp::Attempt, 61_000),
        (LoginOp::Refund, 61_500),
        (LoginOp::Attempt, 62_000),
        (LoginOp::Attempt, 63_000),
        (LoginOp::Attempt, 64_000),
        (LoginOp::Attempt, 200_000),
    ];
    for (i, (op, at)) in steps.into_iter().enumerate() {
        let (expected, next) = login_step(model, op, T0 + at, POLICY);
        model = next;
        assert_eq!(
            login(&*b, key, op, T0 + at).await,
            expected,
            "step {i} ({op:?} at +{at} ms)"
        );
    }
}

async fn parallel_sign_ins_cannot_overtake_the_count(b: Arc<dyn Backend>) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                b.login("login:target", LoginOp::Attempt, POLICY, T0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap() == LoginVerdict::Allowed);
    }
    assert_eq!(allowed, 3);
}
