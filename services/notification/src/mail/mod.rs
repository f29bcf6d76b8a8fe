//! Delivering a stored message: composing it as an RFC 5322 e-mail and
//! handing it to the configured [`Mailer`].
//!
//! Both mailers send the same bytes for the same message: `From` (the
//! configured `mail.from`), `To`, `Subject`, `Date` (when the message was
//! created, not when it is sent), `Message-ID: <message id@emporium.local>`,
//! `MIME-Version: 1.0` and `Content-Type: text/plain; charset=utf-8`, the
//! body with CRLF line ends (7bit, or quoted-printable/base64 when it is not
//! plain ASCII). A message sent twice — the sender died between sending and
//! recording it — therefore carries the same `Message-ID` both times, which
//! mail clients use to show it once.
//!
//! - [`file`](mod@file) — `.eml` files written atomically to a directory (local runs);
//! - [`smtp`] — an SMTP server, with optional authentication and TLS.

pub mod file;
pub mod smtp;

use std::str::FromStr;
use std::time::SystemTime;

use lettre::message::{Mailbox, SinglePart};

use crate::config::{MailConfig, MailKind};
use crate::domain::Message;

/// Why a message could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message cannot be made into an e-mail (an address the mail
    /// library refuses); retrying does not help.
    #[error("cannot compose the e-mail: {0}")]
    Compose(String),
    /// The mailer could not be set up (bad TLS parameters, unusable directory).
    #[error("cannot set up the {mailer} mailer: {reason}")]
    Setup {
        mailer: &'static str,
        reason: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("SMTP delivery took longer than {0:?}")]
    Timeout(std::time::Duration),
}

impl MailError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Compose(_) | Self::Setup { .. } => false,
            Self::Smtp(e) => !e.is_permanent(),
            Self::Write { .. } | Self::Timeout(_) => true,
        }
    }
}

/// Delivers composed messages, to files or to an SMTP server.
#[derive(Debug)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Debug)]
enum Transport {
    File(file::FileMailer),
    Smtp(smtp::SmtpMailer),
}

impl Mailer {
    /// The mailer `config` describes. A file mailer creates its directory;
    /// an SMTP mailer connects only when it sends.
    pub fn from_config(config: &MailConfig) -> Result<Self, MailError> {
        let from = Mailbox::from_str(&config.from).map_err(|e| MailError::Setup {
            mailer: "mail",
            reason: format!("mail.from `{}`: {e}", config.from),
        })?;
        let transport = match config.kind {
            MailKind::File => Transport::File(file::FileMailer::new(&config.dir)?),
            MailKind::Smtp => Transport::Smtp(smtp::SmtpMailer::new(&config.smtp)?),
        };
        Ok(Self { from, transport })
    }

    /// `file` or `smtp`.
    pub fn kind(&self) -> MailKind {
        match self.transport {
            Transport::File(_) => MailKind::File,
            Transport::Smtp(_) => MailKind::Smtp,
        }
    }

    /// Delivers `message`; returns once the file is durable or the SMTP
    /// server has accepted it.
    pub async fn send(&self, message: &Message) -> Result<(), MailError> {
        let email = compose(&self.from, message)?;
        match &self.transport {
            Transport::File(f) => f.write(message.id, email.formatted()).await,
            Transport::Smtp(s) => s.send(email).await,
        }
    }
}

/// `message` as an e-mail from `from`.
pub fn compose(from: &Mailbox, message: &Message) -> Result<lettre::Message, MailError> {
    let to = lettre::Address::from_str(message.to.as_str())
        .map_err(|e| MailError::Compose(format!("recipient `{}`: {e}", message.to)))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(message.subject.as_str())
        .date(SystemTime::from(message.created_at))
        .message_id(Some(message.id.header_value()))
        .singlepart(SinglePart::plain(message.body.clone()))
        .map_err(|e| MailError::Compose(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::{Date, Month};
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Email, MessageId, MessageKind, MessageStatus};

    pub(crate) fn sample(to: &str, body: &str) -> Message {
        let created = Date::from_calendar_date(2026, Month::November, 25)
            .unwrap()
            .with_hms(10, 15, 0)
            .unwrap()
            .assume_utc();
        Message {
            id: MessageId::from_uuid(
                Uuid::parse_str("0193a6f4-1c2b-7d3e-8f40-5a6b7c8d9e0f").unwrap(),
            ),
            event_id: Uuid::now_v7(),
            kind: MessageKind::OrderConfirmation,
            to: Email::parse(to).unwrap(),
            subject: "Your Emporium order 9e0f1234 is confirmed".into(),
            body: body.into(),
            status: MessageStatus::Pending,
            attempts: 0,
            last_error: None,
            created_at: created,
            next_attempt_at: created,
            sent_at: None,
        }
    }

    /// The header block of a formatted e-mail, as (lowercased name, value).
    fn headers(bytes: &[u8]) -> Vec<(String, String)> {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let (head, _) = text.split_once("\r\n\r\n").unwrap();
        head.split("\r\n")
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn composed_mail_has_every_required_header_and_a_crlf_body() {
        let from = Mailbox::from_str(crate::config::DEFAULT_FROM).unwrap();
        let message = sample("ada@example.com", "Hello Ada,\n\nline two\n");
        let bytes = compose(&from, &message).unwrap().formatted();
        let h = headers(&bytes);
        let get = |name: &str| {
            h.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        };
        assert_eq!(get("from"), "Emporium <orders@emporium.example>");
        assert_eq!(get("to"), "ada@example.com");
        assert_eq!(get("subject"), "Your Emporium order 9e0f1234 is confirmed");
        assert_eq!(get("date"), "Wed, 25 Nov 2026 10:15:00 +0000");
        assert_eq!(
            get("message-id"),
            "<0193a6f4-1c2b-7d3e-8f40-5a6b7c8d9e0f@emporium.local>"
        );
        assert_eq!(get("mime-version"), "1.0");
        assert_eq!(get("content-type"), "text/plain; charset=utf-8");
        let text = String::from_utf8(bytes).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            body.starts_with("Hello Ada,\r\n\r\nline two\r\n"),
            "{text:?}"
        );
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "every line ends in CRLF: {text:?}"
        );
    }

    #[test]
    fn the_same_message_composes_to_the_same_bytes() {
        let from = Mailbox::from_str("Shop <shop@example.com>").unwrap();
        let message = sample("ada@example.com", "Hello\n");
        assert_eq!(
            compose(&from, &message).unwrap().formatted(),
            compose(&from, &message).unwrap().formatted()
        );
    }
}
