//! Notification's settings (section `[notification]`, variables
//! `EMPORIUM_NOTIFICATION__…`). `docs/notification.md` lists every key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources,
};
use emporium_eventbus::EventBusConfig;
use serde::{Deserialize, Serialize};

use crate::domain::RetryPolicy;

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "notification";

/// The database notification uses when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://notification.db";

/// The sender address when none is configured.
pub const DEFAULT_FROM: &str = "Emporium <orders@emporium.example>";

/// Most messages the sender takes in one round.
pub const MAX_SEND_BATCH: u32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationConfig {
    /// `/livez`, `/readyz`, `/metrics` (the service has no other port).
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    /// The event bus (`emporium_eventbus::EventBusConfig`).
    pub events: EventBusConfig,
    pub mail: MailConfig,
    /// How often the sender looks for due messages when nothing wakes it.
    pub send_interval: Duration,
    /// Most messages sent per round.
    pub send_batch: u32,
    /// Wait after a message's first failed attempt; doubles per failure.
    pub retry_backoff: Duration,
    /// Longest wait between attempts.
    pub retry_backoff_max: Duration,
    pub shutdown: ShutdownConfig,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            events: EventBusConfig::default(),
            mail: MailConfig::default(),
            send_interval: Duration::from_secs(1),
            send_batch: 50,
            retry_backoff: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(3600),
            shutdown: ShutdownConfig::default(),
        }
    }
}

/// How e-mails leave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub kind: MailKind,
    /// The `From` mailbox, e.g. `Emporium <orders@emporium.example>`.
    pub from: String,
    /// `file`: the directory that receives `<message id>.eml` files
    /// (created if missing).
    pub dir: PathBuf,
    pub smtp: SmtpConfig,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            kind: MailKind::File,
            from: DEFAULT_FROM.to_owned(),
            dir: PathBuf::from("mail"),
            smtp: SmtpConfig::default(),
        }
    }
}

/// Which mailer delivers messages.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailKind {
    /// `.eml` files in `mail.dir` (local runs).
    #[default]
    File,
    /// An SMTP server (`mail.smtp`).
    Smtp,
}

/// The SMTP server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// Set both or neither; usually from `…_FILE` secrets.
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    pub tls: SmtpTls,
    /// Deadline of one delivery (connect, every command, the whole send).
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 25,
            username: None,
            password: None,
            tls: SmtpTls::None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Transport security towards the SMTP server.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the same host or inside the cluster).
    #[default]
    None,
    /// Connect in plain text and upgrade with STARTTLS; refuse to send if
    /// the server does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl NotificationConfig {
    /// Loads and validates the configuration.
    pub fn load(
        base: emporium_chassis::config::Table,
        sources: Sources<'_>,
    ) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{SECTION}.{k}");
        if let Some(url) = &self.database.url
            && crate::store::Backend::of_url(url.expose()).is_none()
        {
            return Err(ConfigError::invalid(
                key("database.url"),
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                key("database.max_connections"),
                "must be at least 1",
            ));
        }
        let interval = self.send_interval.get();
        if interval < std::time::Duration::from_millis(10)
            || interval > std::time::Duration::from_secs(3600)
        {
            return Err(ConfigError::invalid(
                key("send_interval"),
                "must be between 10ms and 1h",
            ));
        }
        if !(1..=MAX_SEND_BATCH).contains(&self.send_batch) {
            return Err(ConfigError::invalid(
                key("send_batch"),
                format!("must be 1 to {MAX_SEND_BATCH}"),
            ));
        }
        if self.retry_backoff.get().is_zero() {
            return Err(ConfigError::invalid(
                key("retry_backoff"),
                "must be more than 0s",
            ));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(ConfigError::invalid(
                key("retry_backoff_max"),
                "must not be less than retry_backoff",
            ));
        }
        if let Err(e) = lettre::message::Mailbox::from_str(&self.mail.from) {
            return Err(ConfigError::invalid(
                key("mail.from"),
                format!(
                    "`{}` is not a mailbox like \"Emporium <orders@example.com>\": {e}",
                    self.mail.from
                ),
            ));
        }
        match self.mail.kind {
            MailKind::File if self.mail.dir.as_os_str().is_empty() => {
                return Err(ConfigError::invalid(
                    key("mail.dir"),
                    "must name a directory",
                ));
            }
            MailKind::Smtp => self.mail.smtp.validate()?,
            MailKind::File => {}
        }
        Ok(())
    }

    pub fn database_url(&self) -> Secret {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL))
    }

    /// The retry schedule of failed messages.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            first: self.retry_backoff.get(),
            max: self.retry_backoff_max.get(),
        }
    }
}

impl SmtpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{SECTION}.mail.smtp.{k}");
        if self.host.trim().is_empty() {
            return Err(ConfigError::invalid(
                key("host"),
                "must name the SMTP server",
            ));
        }
        if self.port == 0 {
            return Err(ConfigError::invalid(key("port"), "must not be 0"));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    key("password"),
                    "is required when mail.smtp.username is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    key("username"),
                    "is required when mail.smtp.password is set",
                ));
            }
            _ => {}
        }
        if self.timeout.get().is_zero() {
            return Err(ConfigError::invalid(key("timeout"), "must be more than 0s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use emporium_chassis::config::{MapEnv, Table};
    use emporium_eventbus::BackendKind;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<NotificationConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        NotificationConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = load(&[]).unwrap();
        assert_eq!(c, NotificationConfig::default());
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.events.backend, BackendKind::Log);
        assert_eq!(c.mail.kind, MailKind::File);
        assert_eq!(c.mail.from, DEFAULT_FROM);
        assert_eq!(c.mail.dir, PathBuf::from("mail"));
        assert_eq!(c.mail.smtp.port, 25);
        assert_eq!(c.mail.smtp.tls, SmtpTls::None);
        assert_eq!(c.send_interval, Duration::from_secs(1));
        assert_eq!(c.shutdown.drain_timeout, Duration::from_secs(20));
    }

    #[test]
    fn reads_events_mail_and_smtp_secrets_from_the_environment() {
        let mut password = tempfile::NamedTempFile::new().unwrap();
        writeln!(password, "s3cret").unwrap();
        let c = load(&[
            (
                "EMPORIUM_NOTIFICATION__DATABASE__URL",
                "postgres://db/notification",
            ),
            ("EMPORIUM_NOTIFICATION__EVENTS__BACKEND", "nats"),
            (
                "EMPORIUM_NOTIFICATION__EVENTS__NATS__URL",
                "nats://nats:4222",
            ),
            ("EMPORIUM_NOTIFICATION__MAIL__KIND", "smtp"),
            (
                "EMPORIUM_NOTIFICATION__MAIL__FROM",
                "Shop <shop@example.com>",
            ),
            ("EMPORIUM_NOTIFICATION__MAIL__SMTP__HOST", "mail.internal"),
            ("EMPORIUM_NOTIFICATION__MAIL__SMTP__PORT", "587"),
            ("EMPORIUM_NOTIFICATION__MAIL__SMTP__TLS", "starttls"),
            ("EMPORIUM_NOTIFICATION__MAIL__SMTP__USERNAME", "shop"),
            (
                "EMPORIUM_NOTIFICATION__MAIL__SMTP__PASSWORD_FILE",
                password.path().to_str().unwrap(),
            ),
            ("EMPORIUM_NOTIFICATION__SEND_INTERVAL", "250ms"),
        ])
        .unwrap();
        assert_eq!(c.database_url().expose(), "postgres://db/notification");
        assert_eq!(c.events.backend, BackendKind::Nats);
        assert_eq!(c.events.nats.url.expose(), "nats://nats:4222");
        assert_eq!(c.mail.kind, MailKind::Smtp);
        assert_eq!(c.mail.smtp.host, "mail.internal");
        assert_eq!(c.mail.smtp.port, 587);
        assert_eq!(c.mail.smtp.tls, SmtpTls::Starttls);
        assert_eq!(c.mail.smtp.password.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(
            format!("{:?}", c.mail.smtp.password),
            "Some([redacted])",
            "passwords never print"
        );
        assert_eq!(c.send_interval, Duration::from_millis(250));
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        for (vars, key) in [
            (
                vec![("EMPORIUM_NOTIFICATION__DATABASE__URL", "mysql://x")],
                "notification.database.url",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__SEND_INTERVAL", "0s")],
                "notification.send_interval",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__SEND_BATCH", "0")],
                "notification.send_batch",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__RETRY_BACKOFF_MAX", "1s")],
                "notification.retry_backoff_max",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__MAIL__FROM", "not a mailbox")],
                "notification.mail.from",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__MAIL__KIND", "pigeon")],
                "notification.mail.kind",
            ),
            (
                vec![
                    ("EMPORIUM_NOTIFICATION__MAIL__KIND", "smtp"),
                    ("EMPORIUM_NOTIFICATION__MAIL__SMTP__USERNAME", "shop"),
                ],
                "notification.mail.smtp.password",
            ),
            (
                vec![
                    ("EMPORIUM_NOTIFICATION__MAIL__KIND", "smtp"),
                    ("EMPORIUM_NOTIFICATION__MAIL__SMTP__HOST", " "),
                ],
                "notification.mail.smtp.host",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__MAIL__SMTP__TLS", "ssl")],
                "notification.mail.smtp.tls",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__EVENTS__BACKEND", "kafka")],
                "notification.events.backend",
            ),
            (
                vec![("EMPORIUM_NOTIFICATION__GRPC_ADDR", "[::]:1")],
                "notification",
            ),
        ] {
            let err = load(&vars).unwrap_err().to_string();
            assert!(err.contains(key), "{vars:?}: {err}");
        }
    }
}
