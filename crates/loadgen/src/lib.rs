//! An open-loop load generator for Emporium's public API.
//!
//! Journeys (browse, product, currency, cart, add, checkout) arrive at a
//! constant rate or as a Poisson process, whatever the target's answers do:
//! each journey's latency is measured from the moment it was *meant* to
//! start, so a target that stalls shows the wait of every shopper queued
//! behind the stall (no coordinated omission, as in wrk2). A closed-loop
//! mode with virtual users and think time models people instead.
//! Latencies go into HDR histograms per route and per journey; failures are
//! counted by HTTP status or transport failure; SLO gates ([`slo`]) judge the
//! run. A declined card (402) and an out-of-stock answer (409) are business
//! outcomes of a checkout, not failures.
//!
//! Used by `emporium loadgen`, benches and tests:
//! ```text
//! let plan = Plan { arrival: Arrival::Poisson { rate: 50.0 }, ..Plan::new("http://127.0.0.1:8080") };
//! let report = emporium_loadgen::run(&plan, &[Slo::parse("checkout:p99<50ms")?], None).await?;
//! ```

pub mod plan;
pub mod report;
pub mod shop;
pub mod slo;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use plan::{Arrival, Journey, Mix, Plan, Rng, next_start};
pub use report::{Recorder, Report};
pub use slo::{Slo, SloError};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the target {target} cannot be reached: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("the target {target} answered unexpectedly while preparing the run: {reason}")]
    Setup { target: String, reason: String },
    #[error("invalid plan: {0}")]
    Plan(String),
}

/// Runs `plan` against its target and returns the report, judged by
/// `slos`. `progress`, when given, is called about once a second with the
/// requests and failures so far.
pub async fn run(
    plan: &Plan,
    slos: &[Slo],
    progress: Option<&(dyn Fn(Duration, u64, u64) + Sync)>,
) -> Result<Report, Error> {
    check(plan)?;
    for slo in slos {
        let known = slo.scope == "all"
            || Journey::parse(&slo.scope).is_some()
            || shop::ROUTES.contains(&slo.scope.as_str());
        if !known {
            return Err(Error::Plan(format!(
                "SLO `{}`: `{}` is not `all`, a journey ({}) or a route ({})",
                slo.text,
                slo.scope,
                Journey::ALL.map(Journey::name).join(", "),
                shop::ROUTES.join(", ")
            )));
        }
    }
    let shop = Arc::new(shop::Shop::prepare(plan).await?);
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();
    // Journeys start within the window; rates are per second of it.
    let window = std::sync::Mutex::new(None);
    let driving = async {
        match plan.arrival {
            Arrival::VirtualUsers { users, think } => {
                closed_loop(plan, &shop, &recorder, users, think).await;
            }
            Arrival::Constant { rate } | Arrival::Poisson { rate } => {
                open_loop(plan, &shop, &recorder, rate, &window).await;
            }
        }
    };
    match progress {
        None => driving.await,
        Some(report) => {
            tokio::pin!(driving);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tokio::select! {
                    () = &mut driving => break,
                    _ = tick.tick() => {
                        let (requests, failed) = recorder.requests();
                        report(started.elapsed(), requests, failed);
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let window = window
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unwrap_or(elapsed);
    Ok(recorder.report(window, elapsed, slos))
}

fn check(plan: &Plan) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Plan(why.to_owned()));
    match plan.arrival {
        Arrival::Constant { rate } | Arrival::Poisson { rate }
            if !(0.001..=100_000.0).contains(&rate) =>
        {
            return bad("the rate must be from 0.001 to 100000 per second");
        }
        Arrival::VirtualUsers { users, .. } if users == 0 || users > 10_000 => {
            return bad("virtual users must be 1 to 10000");
        }
        _ => {}
    }
    if plan.duration.is_zero() && plan.max_journeys.is_none() {
        return bad("give a duration or a number of journeys");
    }
    if plan.duration > Duration::from_secs(7 * 86_400) || plan.ramp > Duration::from_secs(86_400) {
        return bad("the duration is at most 7 days and the ramp at most one");
    }
    if matches!(plan.arrival, Arrival::VirtualUsers { .. }) && !plan.ramp.is_zero() {
        return bad("a ramp applies to an arrival rate, not to virtual users");
    }
    if plan.mix.total() == 0 {
        return bad("the mix gives every journey weight 0");
    }
    if plan.mix.0.iter().any(|(j, w)| *w > 0 && j.signed_in()) && plan.shoppers == 0 {
        return bad("signed-in journeys need at least one shopper");
    }
    Ok(())
}

/// Starts journeys at their intended times until the duration (or the
/// number of journeys) is reached, then waits for those in flight. `window`
/// gets how long journeys kept starting.
async fn open_loop(
    plan: &Plan,
    shop: &Arc<shop::Shop>,
    recorder: &Arc<Recorder>,
    rate: f64,
    window: &std::sync::Mutex<Option<Duration>>,
) {
    let mut rng = Rng::new(plan.seed);
    let begin = Instant::now();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let poisson = matches!(plan.arrival, Arrival::Poisson { .. });
    let (duration, ramp) = (plan.duration.as_secs_f64(), plan.ramp.as_secs_f64());
    let gap = |rng: &mut Rng| if poisson { rng.exp1() } else { 1.0 };
    let mut at = next_start(0.0, gap(&mut rng), rate, ramp);
    let mut started: u64 = 0;
    while (duration == 0.0 || at < duration) && plan.max_journeys.is_none_or(|max| started < max) {
        let intended = begin + Duration::from_secs_f64(at);
        tokio::time::sleep_until(intended).await;
        // Reap finished journeys so the set stays small.
        while tasks.try_join_next().is_some() {}
        if in_flight.load(Ordering::Relaxed) >= plan.max_in_flight {
            recorder.dropped();
        } else {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let journey = plan.mix.pick(rng.unit());
            let seed = rng.unit();
            let (shop, recorder, in_flight) = (
                Arc::clone(shop),
                Arc::clone(recorder),
                Arc::clone(&in_flight),
            );
            tasks.spawn(async move {
                shop.journey(journey, intended, seed, &recorder).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        started += 1;
        at = next_start(at, gap(&mut rng), rate, ramp);
    }
    *window
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(begin.elapsed());
    // Journeys in flight finish within their requests' timeouts.
    while tasks.join_next().await.is_some() {}
}

/// `users` shoppers, each running journeys one after another with `think`
/// between them, until the duration (or the number of journeys) is reached.
async fn closed_loop(
    plan: &Plan,
    shop: &Arc<shop::Shop>,
    recorder: &Arc<Recorder>,
    users: u32,
    think: Duration,
) {
    let end = Instant::now() + plan.duration;
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(
        plan.max_journeys.unwrap_or(u64::MAX),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..users {
        let (shop, recorder, budget, mix) = (
            Arc::clone(shop),
            Arc::clone(recorder),
            Arc::clone(&budget),
            plan.mix.clone(),
        );
        let mut rng = Rng::new(plan.seed ^ (u64::from(user) << 32));
        let unbounded = plan.duration.is_zero();
        tasks.spawn(async move {
            while (unbounded || Instant::now() < end)
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                let journey = mix.pick(rng.unit());
                shop.journey(journey, Instant::now(), rng.unit(), &recorder)
                    .await;
                tokio::time::sleep(think).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
