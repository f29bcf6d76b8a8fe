//! Spawning the shipping service in tests.
//!
//! ```text
//! let db = TestDb::new(Backend::Sqlite).await?.unwrap();
//! let shipping = spawn_shipping(&db).await?;
//! ```

use emporium_chassis::config::{Secret, Table};
use emporium_shipping::{ShippingConfig, ShippingServer};

use crate::{Running, TestDb, test_config};

/// Starts shipping on `db`, migrated, on ephemeral loopback ports.
pub async fn spawn_shipping(db: &TestDb) -> anyhow::Result<Running> {
    spawn_shipping_with(db, Table::new()).await
}

/// Like [`spawn_shipping`], with extra settings (e.g. `faults.latency`, or
/// `events` to share an event bus; by default it gets an event log of its own).
pub async fn spawn_shipping_with(db: &TestDb, overrides: Table) -> anyhow::Result<Running> {
    Ok(spawn_shipping_at(db.url(), overrides).await?.0)
}

/// Like [`spawn_shipping_with`], on the database at `url` (e.g. a test
/// database reached through a proxy), also returning the store's test
/// outage switch ([`emporium_storage::Outage`]).
pub async fn spawn_shipping_at(
    url: &str,
    overrides: Table,
) -> anyhow::Result<(Running, emporium_storage::Outage)> {
    let own_log = if overrides.contains_key("events") {
        None
    } else {
        Some(tempfile::tempdir()?)
    };
    let mut base = own_log
        .as_ref()
        .map(|dir| crate::events_log(&dir.path().join("events.db")))
        .unwrap_or_default();
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: ShippingConfig = test_config(ShippingConfig::load, base)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.database.url = Some(Secret::new(url.to_owned()));
    let server = ShippingServer::build(config).await?;
    let outage = server.store().outage().clone();
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    let running = Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await?;
    Ok((running.keeping(own_log), outage))
}
