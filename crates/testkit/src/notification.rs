//! Spawning the notification service in tests.
//!
//! Notification has no API port: [`Running::addr`] and
//! [`Running::admin_addr`] are both its admin port (`/readyz`, `/metrics`).
//! It consumes from the bus described by `events` and writes each e-mail
//! as `<mail_dir>/<message id>.eml`.
//!
//! ```text
//! let db = TestDb::new(Backend::Sqlite).await?.unwrap();
//! let events = EventBusConfig { log: LogConfig::at(dir.join("events.db")), ..Default::default() };
//! let notification = spawn_notification(&db, events, &dir.join("mail")).await?;
//! ```

use std::path::Path;

use emporium_chassis::config::{Secret, Table};
use emporium_eventbus::EventBusConfig;
use emporium_notification::{NotificationConfig, NotificationServer};

use crate::{Running, TestDb, test_config};

/// Starts notification on `db`, migrated, consuming from `events` and
/// writing `.eml` files to `mail_dir`, with its admin port on 127.0.0.1:0.
pub async fn spawn_notification(
    db: &TestDb,
    events: EventBusConfig,
    mail_dir: &Path,
) -> anyhow::Result<Running> {
    spawn_notification_with(db, events, mail_dir, Table::new()).await
}

/// Like [`spawn_notification`], with extra settings (e.g. `send_interval`,
/// or `mail.kind = "smtp"` with `mail.smtp.host`/`port`).
pub async fn spawn_notification_with(
    db: &TestDb,
    events: EventBusConfig,
    mail_dir: &Path,
    overrides: Table,
) -> anyhow::Result<Running> {
    let mut config: NotificationConfig = test_config(NotificationConfig::load, overrides)?;
    config.database.url = Some(Secret::new(db.url()));
    config.events = events;
    config.mail.dir = mail_dir.to_owned();
    let server = NotificationServer::build(config).await?;
    let admin_addr = server.admin_addr();
    Running::start(admin_addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
