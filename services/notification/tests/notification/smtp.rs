//! The SMTP mailer against a minimal SMTP server written here: it speaks
//! EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP and QUIT, records
//! what it receives, and can refuse the first messages with a temporary
//! error to exercise retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use emporium_chassis::config::{Secret, Table};
use emporium_notification::config::{MailConfig, MailKind, SmtpConfig, SmtpTls};
use emporium_notification::domain::{Email, Message, MessageId, MessageKind, MessageStatus, now};
use emporium_notification::mail::{MailError, Mailer};
use emporium_testkit::{Backend, TestDb, table};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::{
    Eml, eventually, log_bus, metrics_show, new_order_id, order_placed, placed_envelope, producer,
    spawn,
};

/// One message as the sink accepted it.
#[derive(Debug)]
struct Received {
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

/// A local SMTP server on 127.0.0.1:0; stops when dropped.
struct Sink {
    port: u16,
    received: mpsc::Receiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// A sink that answers the DATA of the first `refuse` messages with
    /// `451` (try again later), and accepts every message after that.
    async fn start(refuse: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, received) = mpsc::channel(16);
        let refusals = Arc::new(AtomicUsize::new(refuse));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(session(stream, tx.clone(), refusals.clone()));
            }
        });
        Self {
            port,
            received,
            task,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(crate::support::PATIENCE, self.received.recv())
            .await
            .expect("the sink received a message in time")
            .expect("the sink is running")
    }
}

/// One SMTP conversation. Returns when the client quits or hangs up.
async fn session(stream: TcpStream, tx: mpsc::Sender<Received>, refusals: Arc<AtomicUsize>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut reply = async |text: &str| write.write_all(text.as_bytes()).await.is_ok();
    if !reply("220 sink.test ESMTP ready\r\n").await {
        return;
    }
    let (mut auth, mut mail_from, mut rcpt_to) = (None, String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n"
        } else if upper.starts_with("AUTH PLAIN ") {
            auth = Some(line["AUTH PLAIN ".len()..].to_owned());
            "235 2.7.0 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = line["MAIL FROM:".len()..].trim().to_owned();
            rcpt_to.clear();
            "250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(line["RCPT TO:".len()..].trim().to_owned());
            "250 2.1.5 ok\r\n"
        } else if upper == "DATA" {
            if !reply("354 end data with <CR><LF>.<CR><LF>\r\n").await {
                return;
            }
            let mut data = String::new();
            loop {
                match lines.next_line().await {
                    Ok(Some(l)) if l == "." => break,
                    Ok(Some(l)) => {
                        // Undo dot-stuffing (RFC 5321 4.5.2).
                        data.push_str(l.strip_prefix('.').unwrap_or(&l));
                        data.push_str("\r\n");
                    }
                    _ => return,
                }
            }
            let refuse = refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                "451 4.3.0 try again later\r\n"
            } else {
                let received = Received {
                    auth: auth.clone(),
                    mail_from: mail_from.clone(),
                    rcpt_to: rcpt_to.clone(),
                    data,
                };
                if tx.send(received).await.is_err() {
                    return;
                }
                "250 2.0.0 queued\r\n"
            }
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n"
        } else if upper == "QUIT" {
            let _ = reply("221 2.0.0 bye\r\n").await;
            return;
        } else {
            "502 5.5.2 command not implemented\r\n"
        };
        if !reply(answer).await {
            return;
        }
    }
}

fn smtp_config(port: u16) -> MailConfig {
    MailConfig {
        kind: MailKind::Smtp,
        smtp: SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            timeout: emporium_chassis::config::Duration::from_secs(10),
            ..SmtpConfig::default()
        },
        ..MailConfig::default()
    }
}

fn message(to: &str) -> Message {
    let created = now();
    Message {
        id: MessageId::generate(),
        event_id: uuid::Uuid::now_v7(),
        kind: MessageKind::OrderShipped,
        to: Email::parse(to).unwrap(),
        subject: "Your Emporium order 55667788 has shipped".into(),
        body: "Hello Ada,\n\nTracking number:  EMP0123456789AB\n.\n..and a line with dots\n".into(),
        status: MessageStatus::Pending,
        attempts: 0,
        last_error: None,
        created_at: created,
        next_attempt_at: created,
        sent_at: None,
    }
}

#[tokio::test]
async fn the_smtp_mailer_delivers_with_the_right_envelope_and_headers() {
    let mut sink = Sink::start(0).await;
    let mut config = smtp_config(sink.port);
    config.from = "Emporium Shop <shop@emporium.example>".into();
    config.smtp.username = Some(Secret::new("shop"));
    config.smtp.password = Some(Secret::new("s3cret"));
    let mailer = Mailer::from_config(&config).unwrap();
    let m = message("ada@example.com");
    mailer.send(&m).await.unwrap();

    let got = sink.next().await;
    let auth = base64::engine::general_purpose::STANDARD
        .decode(got.auth.expect("the mailer authenticated"))
        .unwrap();
    assert_eq!(auth, b"\0shop\0s3cret");
    assert_eq!(got.mail_from, "<shop@emporium.example>");
    assert_eq!(got.rcpt_to, ["<ada@example.com>"]);
    let mail = Eml::parse("smtp".into(), got.data.as_bytes());
    assert_eq!(
        mail.header("from"),
        "\"Emporium Shop\" <shop@emporium.example>"
    );
    assert_eq!(mail.header("to"), "ada@example.com");
    assert_eq!(
        mail.header("subject"),
        "Your Emporium order 55667788 has shipped"
    );
    assert_eq!(
        mail.header("message-id"),
        format!("<{}@emporium.local>", m.id),
        "the same Message-ID as the file mailer"
    );
    assert_eq!(mail.header("mime-version"), "1.0");
    assert_eq!(mail.header("content-type"), "text/plain; charset=utf-8");
    assert!(mail.headers.contains_key("date"));
    assert!(
        mail.body.starts_with(
            "Hello Ada,\r\n\r\nTracking number:  EMP0123456789AB\r\n.\r\n..and a line with dots\r\n"
        ),
        "lines starting with dots survive: {:?}",
        mail.body
    );
}

#[tokio::test]
async fn a_refused_or_unreachable_delivery_is_an_error() {
    let sink = Sink::start(1).await;
    let mailer = Mailer::from_config(&smtp_config(sink.port)).unwrap();
    let err = mailer.send(&message("ada@example.com")).await.unwrap_err();
    assert!(matches!(err, MailError::Smtp(_)), "{err}");
    assert!(err.is_transient(), "451 is temporary: {err}");
    drop(sink);

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mailer = Mailer::from_config(&smtp_config(port)).unwrap();
    assert!(mailer.send(&message("ada@example.com")).await.is_err());
}

#[tokio::test]
async fn starttls_is_required_when_configured_and_nothing_is_sent_without_it() {
    let mut sink = Sink::start(0).await;
    let mut config = smtp_config(sink.port);
    config.smtp.tls = SmtpTls::Starttls;
    config.smtp.username = Some(Secret::new("shop"));
    config.smtp.password = Some(Secret::new("s3cret"));
    let mailer = Mailer::from_config(&config).unwrap();
    let err = mailer.send(&message("ada@example.com")).await.unwrap_err();
    assert!(matches!(err, MailError::Smtp(_)), "{err}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sink.received.recv())
            .await
            .is_err(),
        "the sink offers no STARTTLS, so no message reached it"
    );
    config.smtp.tls = SmtpTls::Tls;
    assert!(
        Mailer::from_config(&config).is_ok(),
        "implicit TLS sets up without connecting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_retries_a_refused_e_mail_until_the_server_takes_it() {
    let mut sink = Sink::start(1).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = log_bus(dir.path());
    let mut smtp = Table::new();
    smtp.insert("host".into(), "127.0.0.1".into());
    smtp.insert("port".into(), i64::from(sink.port).into());
    let mut mail = Table::new();
    mail.insert("kind".into(), "smtp".into());
    mail.insert("smtp".into(), smtp.into());
    let mut overrides = table(&[("retry_backoff", "50ms"), ("send_interval", "20ms")]);
    overrides.insert("mail".into(), mail.into());
    let (service, store) = spawn(&db, &events, &dir.path().join("unused"), overrides).await;
    let bus = producer(&events).await;

    let order_id = new_order_id();
    bus.publish(&placed_envelope(&order_placed(
        &order_id,
        Some("ada@example.com"),
    )))
    .await
    .unwrap();
    let got = sink.next().await;
    assert_eq!(got.rcpt_to, ["<ada@example.com>"]);
    let mail = Eml::parse("smtp".into(), got.data.as_bytes());
    assert!(mail.header("subject").ends_with("is confirmed"));

    let sent = eventually("the message is marked sent", || async {
        let messages = store.messages().await.ok()?;
        let m = messages.into_iter().next()?;
        (m.status == MessageStatus::Sent).then_some(m)
    })
    .await;
    assert_eq!(sent.attempts, 2, "one refused attempt, one accepted");
    assert!(
        sent.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("451"),
        "{:?}",
        sent.last_error
    );
    assert_eq!(
        mail.header("message-id"),
        format!("<{}@emporium.local>", sent.id)
    );
    metrics_show(
        &service,
        &[
            r#"notification_send_failures_total{service="notification"} 1"#,
            r#"notification_messages_sent_total{service="notification",kind="order_confirmation"} 1"#,
        ],
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sink.received.recv())
            .await
            .is_err(),
        "nothing is delivered twice"
    );
    service.stop().await.unwrap();
}
