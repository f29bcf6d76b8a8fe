//! Logs, traces and metrics.
//!
//! - [`init_logging`] installs the process-wide `tracing` subscriber: JSON lines
//!   (with every enclosing span's fields, so each line carries `trace_id`) or a
//!   pretty format on a terminal.
//! - [`trace`] is W3C Trace Context: parsed from `traceparent` on every HTTP
//!   and gRPC request, continued into outgoing gRPC calls.
//! - [`metrics`] is the per-service Prometheus registry with RED metrics.

pub mod metrics;
pub mod trace;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::Env;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
    /// Pretty on a terminal, JSON otherwise.
    Auto,
}

/// Process-wide log settings, read from `EMPORIUM_LOG` (a filter such as
/// `info,emporium_catalog=debug`; `RUST_LOG` is honoured as a fallback) and
/// `EMPORIUM_LOG_FORMAT` (`json`, `pretty` or `auto`).
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

impl LogSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, crate::config::ConfigError> {
        let filter = env
            .var("EMPORIUM_LOG")
            .or_else(|| env.var("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        let format = match env.var("EMPORIUM_LOG_FORMAT").as_deref().unwrap_or("auto") {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            "auto" => LogFormat::Auto,
            other => {
                return Err(crate::config::ConfigError::invalid(
                    "EMPORIUM_LOG_FORMAT",
                    format!("`{other}` is not one of json, pretty, auto"),
                ));
            }
        };
        EnvFilter::try_new(&filter)
            .map_err(|e| crate::config::ConfigError::invalid("EMPORIUM_LOG", e))?;
        Ok(Self { filter, format })
    }
}

/// Installs the global subscriber. Logs go to stderr, so stdout stays free for
/// a command's own output. Calling it twice keeps the first subscriber.
pub fn init_logging(settings: &LogSettings) {
    init_logging_to(settings, std::io::stderr);
}

/// Like [`init_logging`], writing to `writer` (tests capture logs this way).
pub fn init_logging_to<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // Every enclosing span's fields go on each line, so a line logged deep
    // inside a request still carries its `trace_id` and `request_id`.
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_target(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // An already-installed subscriber (tests, a launcher) is fine.
    drop(result);
}
