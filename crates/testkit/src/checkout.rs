//! Spawning the checkout service in tests.

use emporium_chassis::config::{Secret, Table};
use emporium_checkout::{CheckoutConfig, CheckoutServer};

use crate::{Running, TestDb, table, test_config};

/// Where checkout's upstreams listen (`http://host:port`).
#[derive(Debug, Clone)]
pub struct CheckoutUpstreams {
    pub cart: String,
    pub catalog: String,
    pub currency: String,
    pub inventory: String,
    pub payment: String,
    pub shipping: String,
}

/// Starts checkout on `db` with `upstreams`, on a loopback port (or `port`
/// when restarting in place), with `overrides` (e.g. `saga.halt_after`).
pub async fn spawn_checkout(
    db: &TestDb,
    upstreams: &CheckoutUpstreams,
    port: Option<u16>,
    overrides: Table,
) -> anyhow::Result<Running> {
    let mut base = table(&[
        ("cart.url", &upstreams.cart),
        ("catalog.url", &upstreams.catalog),
        ("currency.url", &upstreams.currency),
        ("inventory.url", &upstreams.inventory),
        ("payment.url", &upstreams.payment),
        ("shipping.url", &upstreams.shipping),
        // Recover quickly in tests; a lease just above the slowest deadline.
        ("saga.recovery_interval", "100ms"),
    ]);
    let own_log = if overrides.contains_key("events") {
        None
    } else {
        Some(tempfile::tempdir()?)
    };
    if let Some(dir) = &own_log {
        emporium_chassis::config::merge(
            &mut base,
            crate::events_log(&dir.path().join("events.db")),
        );
    }
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: CheckoutConfig = test_config(CheckoutConfig::load, base)?;
    config.grpc_addr = format!("127.0.0.1:{}", port.unwrap_or(0)).parse()?;
    config.database.url = Some(Secret::new(db.url()));
    let server = CheckoutServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
