//! Start, drain, stop.
//!
//! [`shutdown_on_signals`] turns SIGTERM and SIGINT into a cancelled
//! [`CancellationToken`]; a second signal exits at once. [`run`] drives one
//! service: it serves the admin port, marks the service ready, and when the
//! token is cancelled it makes readiness false, tells the servers to stop
//! accepting, and gives in-flight requests until the drain deadline to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Health, Metrics};

/// A token cancelled by the first SIGTERM or SIGINT. A second signal ends the
/// process immediately with status 130.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(signal, "shutdown requested; draining");
        trigger.cancel();
        let signal = wait_for_signal().await;
        tracing::warn!(signal, "second signal; exiting without draining");
        std::process::exit(130);
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "cannot install signal handlers; only the process manager can stop this process"
        );
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}

/// What [`run`] needs besides the server itself.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub health: Health,
    pub metrics: Arc<Metrics>,
    pub admin: TcpListener,
    pub drain_timeout: Duration,
}

/// How a service's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished before the deadline.
    Drained,
    /// The drain deadline passed with work still in flight; it was abandoned.
    DeadlineExceeded,
}

/// Runs a service until `shutdown` is cancelled, then drains it.
///
/// `server` receives a token that is cancelled when the server must stop
/// accepting; the future it returns must then finish its in-flight requests
/// and resolve. An error from the server ends the run early with that error.
pub async fn run<F, Fut, E>(
    service: Service,
    shutdown: CancellationToken,
    server: F,
) -> Result<Stopped, E>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let Service {
        name,
        health,
        metrics,
        admin,
        drain_timeout,
    } = service;
    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(crate::admin::serve(
        admin,
        health.clone(),
        metrics,
        admin_stop.clone(),
    ));

    let stop_accepting = CancellationToken::new();
    let mut server = tokio::spawn(server(stop_accepting.clone()));
    health.set_ready();
    tracing::info!(service = name, "ready");

    let early = tokio::select! {
        _ = shutdown.cancelled() => None,
        joined = &mut server => Some(joined),
    };
    let outcome = match early {
        Some(joined) => {
            health.set_draining();
            admin_stop.cancel();
            let _ = admin_task.await;
            return match joined {
                Ok(result) => result.map(|()| Stopped::Drained),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            };
        }
        None => {
            health.set_draining();
            stop_accepting.cancel();
            match tokio::time::timeout(drain_timeout, &mut server).await {
                Ok(Ok(result)) => result.map(|()| Stopped::Drained),
                Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
                Err(_) => {
                    tracing::warn!(service = name, timeout = ?drain_timeout, "drain deadline passed; abandoning in-flight requests");
                    server.abort();
                    Ok(Stopped::DeadlineExceeded)
                }
            }
        }
    };
    admin_stop.cancel();
    let _ = admin_task.await;
    tracing::info!(service = name, "stopped");
    outcome
}

/// Errors a service's binary reports before exiting non-zero.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The whole `main` of a service binary: reads `--config FILE` (or
/// `EMPORIUM_CONFIG`), sets up logging, lets `configure` load and validate the
/// configuration *before* any runtime starts (a bad configuration exits with
/// [`crate::config::EXIT_BAD_CONFIG`], naming the key), then runs the service
/// until SIGTERM/SIGINT and exits 0 once it has drained.
pub fn main<C, F>(name: &str, configure: C) -> std::process::ExitCode
where
    C: FnOnce(
        Option<&std::path::Path>,
        &dyn crate::config::Env,
    ) -> Result<F, crate::config::ConfigError>,
    F: AsyncFnOnce(CancellationToken) -> Result<(), BoxError>,
{
    use std::process::ExitCode;

    use crate::config::{EXIT_BAD_CONFIG, ProcessEnv};

    let env = ProcessEnv;
    let mut args = std::env::args().skip(1);
    let mut file = crate::config::file_from_env(&env);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(path)) => file = Some(path.into()),
            _ => {
                eprintln!(
                    "usage: emporium-{name} [--config FILE]\n\nSettings come from FILE (section [{name}]) and EMPORIUM_{}__* variables.",
                    name.to_ascii_uppercase()
                );
                return ExitCode::from(EXIT_BAD_CONFIG as u8);
            }
        }
    }
    let bad_config = |e: &dyn std::fmt::Display| {
        eprintln!("emporium-{name}: {e}");
        ExitCode::from(EXIT_BAD_CONFIG as u8)
    };
    let settings = match crate::telemetry::LogSettings::from_env(&env) {
        Ok(s) => s,
        Err(e) => return bad_config(&e),
    };
    crate::telemetry::init_logging(&settings);
    let service = match configure(file.as_deref(), &env) {
        Ok(service) => service,
        Err(e) => return bad_config(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("emporium-{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = shutdown_on_signals();
        service(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = crate::error::describe(e.as_ref());
            tracing::error!(error = %e, "service failed");
            eprintln!("emporium-{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
