//! Configuration of the bus, as a service embeds it in its own config
//! (usually under `[<service>.events]`):
//!
//! ```toml
//! [checkout.events]
//! backend = "nats"                # or "log" (the default)
//! log.path = "data/events.db"
//! nats.url = "nats://nats:4222"   # or EMPORIUM_CHECKOUT__EVENTS__NATS__URL_FILE
//! nats.max_age = "168h"
//! ```
//!
//! Every key has a default; [`EventBusConfig`] is read by the chassis config
//! loader like any other section, and the backends validate what they use
//! before connecting.

use std::path::PathBuf;

use emporium_chassis::config::{Duration, Secret};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which backend carries the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded SQLite log: one machine, no broker (`emporium up`).
    #[default]
    Log,
    /// NATS JetStream: the cluster deployment.
    Nats,
}

/// The bus settings: the backend and each backend's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventBusConfig {
    pub backend: BackendKind,
    pub log: LogConfig,
    pub nats: NatsConfig,
}

/// The embedded log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The SQLite file; created (with its directory) if missing. Every
    /// process of one installation names the same file.
    pub path: PathBuf,
    /// Events older than this are deleted (like NATS's limits retention);
    /// `0s` keeps them forever.
    pub max_age: Duration,
    /// How often a waiting consumer looks for events written by another
    /// process. Events published through the same bus value wake it at once.
    pub poll_interval: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("events.db"),
            max_age: Duration::from_secs(7 * 24 * 3600),
            poll_interval: Duration::from_millis(100),
        }
    }
}

impl LogConfig {
    /// A log at `path` with the other settings at their defaults.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(Error::config("events.log.path", "must name a file"));
        }
        let poll = self.poll_interval.get();
        if poll < std::time::Duration::from_millis(1) || poll > std::time::Duration::from_secs(60) {
            return Err(Error::config(
                "events.log.poll_interval",
                "must be between 1ms and 60s",
            ));
        }
        Ok(())
    }
}

/// NATS JetStream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:4222`; may carry credentials, so it is a secret.
    pub url: Secret,
    /// The event stream; created or updated at connect.
    pub stream: String,
    /// The dead-letter stream.
    pub dlq_stream: String,
    /// First subject token: events go to `<prefix>.<type>`, dead letters to
    /// `<prefix>-dlq.<consumer>`. Tests use a unique prefix (and stream
    /// names) each, so they never see each other's events.
    pub subject_prefix: String,
    /// Events older than this are removed from the stream; `0s` = never.
    pub max_age: Duration,
    /// Window in which a second publish with the same envelope id is dropped.
    pub duplicate_window: Duration,
    /// Stream replicas: 1 on a single server, 3 in a cluster.
    pub replicas: usize,
    pub connect_timeout: Duration,
    /// Deadline of every JetStream request, publish acknowledgements included.
    pub request_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("nats://127.0.0.1:4222"),
            stream: "EMPORIUM".into(),
            dlq_stream: "EMPORIUM_DLQ".into(),
            subject_prefix: "emporium".into(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let stream_name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !stream_name_ok(&self.stream) {
            return Err(Error::config(
                "events.nats.stream",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
        if !stream_name_ok(&self.dlq_stream) || self.dlq_stream == self.stream {
            return Err(Error::config(
                "events.nats.dlq_stream",
                "must be a valid stream name other than `stream`",
            ));
        }
        let prefix_ok = !self.subject_prefix.is_empty()
            && self.subject_prefix.len() <= 32
            && self
                .subject_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !prefix_ok {
            return Err(Error::config(
                "events.nats.subject_prefix",
                "must be one subject token of 1 to 32 characters of a-z, 0-9, _ and -",
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::config("events.nats.replicas", "must be 1 to 5"));
        }
        for (key, d) in [
            ("events.nats.connect_timeout", self.connect_timeout),
            ("events.nats.request_timeout", self.request_timeout),
        ] {
            if d.get().is_zero() {
                return Err(Error::config(key, "must be more than 0s"));
            }
        }
        if self.duplicate_window.get().is_zero() {
            return Err(Error::config(
                "events.nats.duplicate_window",
                "must be more than 0s",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_are_valid_and_pick_the_log() {
        let config = EventBusConfig::default();
        assert_eq!(config.backend, BackendKind::Log);
        config.log.validate().unwrap();
        config.nats.validate().unwrap();
        assert_eq!(config.nats.stream, "EMPORIUM");
        assert_eq!(config.nats.subject_prefix, "emporium");
    }

    #[test]
    fn reads_from_toml_with_defaults_for_missing_keys() {
        let config: EventBusConfig = toml_from(
            r#"
            backend = "nats"
            nats.url = "nats://broker:4222"
            nats.max_age = "24h"
            "#,
        );
        assert_eq!(config.backend, BackendKind::Nats);
        assert_eq!(config.nats.url.expose(), "nats://broker:4222");
        assert_eq!(config.nats.max_age, Duration::from_secs(86_400));
        assert_eq!(config.nats.stream, "EMPORIUM");
        assert_eq!(config.log, LogConfig::default());
    }

    #[test]
    fn bad_names_are_refused() {
        let mut nats = NatsConfig {
            stream: "has.dot".into(),
            ..NatsConfig::default()
        };
        assert!(nats.validate().is_err());
        nats.stream = "EMPORIUM".into();
        nats.dlq_stream = "EMPORIUM".into();
        assert!(nats.validate().is_err());
        nats.dlq_stream = "EMPORIUM_DLQ".into();
        nats.subject_prefix = "a.b".into();
        assert!(nats.validate().is_err());
        let log = LogConfig {
            poll_interval: Duration::from_millis(0),
            ..LogConfig::default()
        };
        assert!(log.validate().is_err());
    }

    fn toml_from(text: &str) -> EventBusConfig {
        toml::from_str(text).unwrap()
    }
}
