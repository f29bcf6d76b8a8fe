//! Event-bus benchmark (not a test): for each backend, publish throughput
//! (sequential and with concurrent publishers), consume throughput (one
//! durable consumer, ack per event), and publish→consume latency p50/p99,
//! both idle (one event in flight) and under a steady publish rate below the
//! measured consume capacity. Prints a Markdown table. Run through
//! `bench/events.sh`.
//!
//! ```text
//! eventbench [--backend log|nats|both] [--events N] [--rate EVENTS_PER_S]
//!            [--idle N] [--concurrency N] [--nats-url URL]
//! ```
//!
//! Everything it creates is its own: a temporary directory for the log, and
//! streams named `EMPORIUM_BENCH_<random>` (deleted at the end) on NATS.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use emporium_chassis::config::Secret;
use emporium_eventbus::events::{self, OrderLine, OrderPlacedV1, ShippingAddress};
use emporium_eventbus::log::LogBus;
use emporium_eventbus::nats::NatsBus;
use emporium_eventbus::{
    ConsumerConfig, Envelope, EventBus, EventType, Filter, LogConfig, NatsConfig,
};
use tokio::task::JoinSet;

/// The longest any single wait in the benchmark may take.
const STALL: Duration = Duration::from_secs(30);
/// The longest the loaded-latency run publishes.
const LOADED_FOR: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
struct Options {
    backends: Vec<String>,
    events: usize,
    rate: u32,
    idle: usize,
    concurrency: usize,
    nats_url: String,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        backends: vec!["log".into(), "nats".into()],
        events: 20_000,
        rate: 1_000,
        idle: 1_000,
        concurrency: 16,
        nats_url: "nats://127.0.0.1:4222".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--backend" => {
                o.backends = match value()?.as_str() {
                    "both" => vec!["log".into(), "nats".into()],
                    b @ ("log" | "nats") => vec![b.to_owned()],
                    other => bail!("unknown backend `{other}`"),
                }
            }
            "--events" => o.events = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--idle" => o.idle = value()?.parse()?,
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--nats-url" => o.nats_url = value()?,
            other => bail!("unknown flag `{other}`"),
        }
    }
    if o.events == 0 || o.events > 1_000_000 || o.rate == 0 || o.concurrency == 0 {
        bail!("--events must be 1..=1000000, --rate and --concurrency positive");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let mut rows = Vec::new();
    for backend in &o.backends {
        let row = match backend.as_str() {
            "log" => {
                let dir = tempfile::tempdir()?;
                let bus = LogBus::open(&LogConfig::at(dir.path().join("events.db"))).await?;
                let row = measure("log (SQLite)", Arc::new(bus.clone()), &o).await;
                bus.close().await;
                row?
            }
            _ => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let config = NatsConfig {
                    url: Secret::new(o.nats_url.clone()),
                    stream: format!("EMPORIUM_BENCH_{}", &id[..12]),
                    dlq_stream: format!("EMPORIUM_BENCH_{}_DLQ", &id[..12]),
                    subject_prefix: format!("bench{}", &id[..12]),
                    ..NatsConfig::default()
                };
                let bus = NatsBus::connect(&config)
                    .await
                    .context("connecting to NATS (is nats-server running with -js?)")?;
                let row = measure("NATS JetStream", Arc::new(bus.clone()), &o).await;
                bus.delete_streams().await?;
                row?
            }
        };
        rows.push(row);
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} events of `order.placed.v1` (~{} bytes each) per publish run; {} concurrent \
         publishers; consume = one durable consumer draining the {} stored events with an ack \
         each; idle latency over {} events sent one at a time; loaded latency while publishing \
         at the rate shown (at most {} events/s, and at most 40 % of the backend's end-to-end capacity \
         1 / (1/publish + 1/consume)).\n",
        o.events,
        sample_envelope(0, Instant::now())?.to_json().len(),
        o.concurrency,
        2 * o.events,
        o.idle,
        o.rate
    )?;
    writeln!(
        out,
        "| backend | publish, sequential | publish, {} concurrent | consume + ack | publish→consume idle, p50 / p99 | publish→consume under load, p50 / p99 |",
        o.concurrency
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {:.0} ev/s | {:.0} ev/s | {:.0} ev/s | {} / {} | {} / {} ({} events at {} ev/s) |",
            r.name,
            r.publish_sequential,
            r.publish_concurrent,
            r.consume,
            ms(r.idle.0),
            ms(r.idle.1),
            ms(r.loaded.0),
            ms(r.loaded.1),
            r.loaded_count,
            r.rate
        )?;
    }
    Ok(())
}

struct Row {
    name: &'static str,
    publish_sequential: f64,
    publish_concurrent: f64,
    consume: f64,
    idle: (Duration, Duration),
    loaded: (Duration, Duration),
    rate: u32,
    loaded_count: usize,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// A realistic order event carrying its send time (µs since `epoch`).
fn sample_envelope(n: usize, epoch: Instant) -> anyhow::Result<Envelope> {
    let placed = OrderPlacedV1 {
        order_id: uuid::Uuid::now_v7().to_string(),
        user_id: format!("user-{}", n % 1000),
        email: Some("customer@example.com".into()),
        currency: "EUR".into(),
        items: vec![
            OrderLine {
                product_id: "0193a000-0000-7000-8000-000000000001".into(),
                sku: "LAMP-001".into(),
                name: "Brass desk lamp".into(),
                quantity: 1,
                unit_price: 4_900,
            },
            OrderLine {
                product_id: "0193a000-0000-7000-8000-000000000002".into(),
                sku: "MUG-004".into(),
                name: "Stoneware mug".into(),
                quantity: 2,
                unit_price: 1_250,
            },
        ],
        items_total: 7_400,
        shipping_cost: 495,
        total: 7_895,
        shipping_address: ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: String::new(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country_code: "GB".into(),
        },
        charge_id: format!("ch_{n:08}"),
    };
    let mut data = serde_json::to_value(&placed)?;
    let sent = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    data["bench_sent_us"] = sent.into();
    Ok(Envelope::new(
        events::sources::CHECKOUT,
        EventType::parse(events::ORDER_PLACED_V1)?,
        &placed.order_id,
        data,
    )?)
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

async fn measure(name: &'static str, bus: Arc<dyn EventBus>, o: &Options) -> anyhow::Result<Row> {
    let epoch = Instant::now();
    let n = o.events;
    eprintln!("[{name}] publishing {n} events one after another…");
    let started = Instant::now();
    for i in 0..n {
        bus.publish(&sample_envelope(i, epoch)?).await?;
    }
    let publish_sequential = per_second(n, started.elapsed());

    eprintln!(
        "[{name}] publishing {n} events from {} tasks…",
        o.concurrency
    );
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for t in 0..o.concurrency {
        let bus = Arc::clone(&bus);
        let share = n / o.concurrency + usize::from(t < n % o.concurrency);
        tasks.spawn(async move {
            for i in 0..share {
                bus.publish(&sample_envelope(i, epoch)?).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let publish_concurrent = per_second(n, started.elapsed());

    eprintln!("[{name}] consuming the {} stored events…", 2 * n);
    let mut consumer = bus
        .consumer(ConsumerConfig::new("bench-drain", Filter::All))
        .await?;
    let started = Instant::now();
    for _ in 0..2 * n {
        let delivery = consumer.next(STALL).await?.context("the drain stalled")?;
        delivery.ack().await?;
    }
    let consume = per_second(2 * n, started.elapsed());

    eprintln!("[{name}] idle latency over {} events…", o.idle);
    let idle = latency(&bus, "bench-idle", o.idle, None, epoch).await?;
    // Latency under load is only meaningful below capacity (above it the
    // queue, and so the latency, grows without bound): publish at 40 % of
    // the end-to-end capacity at most, for at most LOADED_FOR.
    let rate = o.rate.min(sustainable_rate(publish_sequential, consume));
    let count = n.min(rate as usize * LOADED_FOR.as_secs() as usize);
    eprintln!("[{name}] latency over {count} events at {rate} events/s…");
    let loaded = latency(&bus, "bench-loaded", count, Some(rate), epoch).await?;
    Ok(Row {
        name,
        publish_sequential,
        publish_concurrent,
        consume,
        idle,
        loaded,
        rate,
        loaded_count: count,
    })
}

/// 40 % of the end-to-end capacity — publishing and consuming each event
/// one after the other, 1 / (1/publish + 1/consume) events/s — rounded down
/// to a multiple of 50, at least 50.
fn sustainable_rate(publish: f64, consume: f64) -> u32 {
    let capacity = 1.0 / (1.0 / publish + 1.0 / consume);
    let rate = (capacity * 0.4) as u32;
    (rate / 50 * 50).max(50)
}

/// Publish→receive latency over `count` new events: one at a time (each
/// waits for the previous to arrive) when `rate` is `None`, else published
/// at `rate` per second while a consumer task receives them.
async fn latency(
    bus: &Arc<dyn EventBus>,
    consumer_name: &str,
    count: usize,
    rate: Option<u32>,
    epoch: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    // A fresh consumer starts at the oldest event: skip what is there.
    let mut consumer = bus
        .consumer(ConsumerConfig::new(consumer_name, Filter::All))
        .await?;
    while let Some(old) = consumer.next(Duration::from_millis(200)).await? {
        old.ack().await?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(count);
        while samples.len() < count {
            let delivery = consumer.next(STALL).await?.context("a delivery stalled")?;
            let sent = delivery.envelope().data()["bench_sent_us"]
                .as_u64()
                .context("no send time")?;
            let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
            samples.push(Duration::from_micros(now.saturating_sub(sent)));
            delivery.ack().await?;
            // Bounded channel; the idle publisher waits on it.
            let _ = tx.try_send(());
        }
        anyhow::Ok(samples)
    });
    match rate {
        None => {
            for i in 0..count {
                bus.publish(&sample_envelope(i, epoch)?).await?;
                tokio::time::timeout(STALL, rx.recv())
                    .await
                    .context("a delivery stalled")?;
            }
        }
        Some(rate) => {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for i in 0..count {
                tick.tick().await;
                bus.publish(&sample_envelope(i, epoch)?).await?;
            }
        }
    }
    let samples = receiver.await??;
    Ok(percentiles(samples))
}
