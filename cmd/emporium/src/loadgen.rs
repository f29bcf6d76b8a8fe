//! `emporium loadgen`: drives the public API with user journeys and judges
//! the run against SLO gates (see the `emporium-loadgen` crate).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use emporium_chassis::config::Duration as Span;
use emporium_loadgen::{Arrival, Mix, Plan, Slo};

/// Exit status of a run that completed but breached an SLO gate.
pub const EXIT_SLO_BREACHED: u8 = 3;

/// One or more SLO gates failed (the report says which).
#[derive(Debug, thiserror::Error)]
#[error("{0} of the SLO gates failed")]
pub struct SloBreached(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalKind {
    /// Exponential gaps between journeys (open loop).
    Poisson,
    /// Evenly spaced journeys (open loop).
    Constant,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The public API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    target: String,
    /// Journeys started per second (open loop).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How journeys arrive in open loop.
    #[arg(long, value_enum, default_value_t = ArrivalKind::Poisson)]
    arrival: ArrivalKind,
    /// Closed loop instead: this many virtual users, each waiting --think
    /// between journeys (models people; not for latency measurements).
    #[arg(long, conflicts_with_all = ["rate", "arrival"])]
    users: Option<u32>,
    /// Virtual users' pause between journeys.
    #[arg(long, default_value = "1s", requires = "users")]
    think: Span,
    /// How long journeys keep starting.
    #[arg(long, default_value = "30s")]
    duration: Span,
    /// The rate grows from zero to --rate over this long.
    #[arg(long, default_value = "0s", conflicts_with = "users")]
    ramp: Span,
    /// Stop after starting this many journeys.
    #[arg(long, value_name = "N")]
    max_journeys: Option<u64>,
    /// Journey weights, e.g. `browse=10,product=10,currency=2,cart=3,add=2,checkout=1`.
    #[arg(long, value_parser = Mix::parse)]
    mix: Option<Mix>,
    /// Shoppers signed up before the run for the signed-in journeys.
    #[arg(long, default_value_t = 10)]
    shoppers: u32,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bound on each request.
    #[arg(long, default_value = "10s")]
    timeout: Span,
    /// An SLO gate, e.g. `checkout:p99<50ms`, `errors<0.1%`, `rps>=100`; repeatable.
    #[arg(long = "slo", value_parser = Slo::parse, value_name = "GATE")]
    slos: Vec<Slo>,
    /// Also write the report as JSON to this file (`-`: standard output,
    /// and the table goes to standard error).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

impl Args {
    fn plan(&self) -> Plan {
        let arrival = match (self.users, self.arrival) {
            (Some(users), _) => Arrival::VirtualUsers {
                users,
                think: self.think.get(),
            },
            (None, ArrivalKind::Poisson) => Arrival::Poisson { rate: self.rate },
            (None, ArrivalKind::Constant) => Arrival::Constant { rate: self.rate },
        };
        Plan {
            arrival,
            duration: self.duration.get(),
            ramp: self.ramp.get(),
            max_journeys: self.max_journeys,
            mix: self.mix.clone().unwrap_or_default(),
            shoppers: self.shoppers,
            seed: self.seed,
            request_timeout: self.timeout.get(),
            ..Plan::new(self.target.clone())
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let plan = args.plan();
    let terminal = std::io::stderr().is_terminal();
    let progress = move |elapsed: Duration, requests: u64, failed: u64| {
        let line = format!(
            "{:>5.0}s  {requests} requests, {failed} failed",
            elapsed.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        // On a terminal the line rewrites itself; in a log, one per 10 s.
        if terminal {
            let _ = write!(err, "\r{line}  ");
        } else if elapsed.as_secs().is_multiple_of(10) {
            let _ = writeln!(err, "{line}");
        }
    };
    let report = emporium_loadgen::run(&plan, &args.slos, Some(&progress)).await?;
    if terminal {
        eprintln!();
    }
    // With the JSON report on standard output, the table goes to standard
    // error, so `--json - | jq` reads JSON only.
    let json_to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if json_to_stdout {
        std::io::stderr()
            .lock()
            .write_all(report.table().as_bytes())?;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        out.flush()?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(report.table().as_bytes())?;
        out.flush()?;
    }
    if let Some(path) = args.json.as_ref().filter(|_| !json_to_stdout) {
        let text = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, text)
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    let failed = report.slos.iter().filter(|v| !v.ok).count();
    if failed > 0 {
        return Err(SloBreached(failed).into());
    }
    Ok(())
}
