//! The SMTP mailer: delivers through a configured server with `lettre`
//! (one connection per message; the volume is a few e-mails per order).
//!
//! `mail.smtp.tls` chooses plain text (`none`, for a relay next to the
//! service), `starttls` (upgrade required: nothing, credentials included,
//! is sent if the server does not offer it) or `tls` (implicit TLS, SMTPS).
//! Certificates are checked against the WebPKI roots. Credentials, when
//! set, are offered with the mechanisms the server announces (PLAIN or
//! LOGIN). `mail.smtp.timeout` bounds every step and the whole delivery.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::MailError;
use crate::config::{SmtpConfig, SmtpTls};

/// Sends e-mails to one SMTP server.
#[derive(Debug)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    deadline: Duration,
}

impl SmtpMailer {
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let host = config.host.trim();
        let tls_parameters = || {
            TlsParameters::new(host.to_owned()).map_err(|e| MailError::Setup {
                mailer: "smtp",
                reason: format!("TLS for `{host}`: {e}"),
            })
        };
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let deadline = config.timeout.get();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(deadline));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.expose().to_owned(),
                password.expose().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            deadline,
        })
    }

    /// Delivers `email`; returns once the server has accepted it (`250`
    /// after the data).
    pub async fn send(&self, email: lettre::Message) -> Result<(), MailError> {
        match tokio::time::timeout(self.deadline, self.transport.send(email)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(MailError::Smtp(e)),
            Err(_) => Err(MailError::Timeout(self.deadline)),
        }
    }
}
