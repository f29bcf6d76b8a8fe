//! Spawning the payment service in tests.
//!
//! ```text
//! let db = TestDb::new(Backend::Sqlite).await?.unwrap();
//! let payment = spawn_payment(&db).await?;
//! let flaky = spawn_payment_with(&db, table(&[("faults.error_rate", "0.5")])).await?;
//! ```
//!
//! Test cards: `4242424242424242` succeeds, `4000000000000002` is declined
//! (`card_declined`), `4000000000009995` is declined (`insufficient_funds`).

use emporium_chassis::config::{Secret, Table};
use emporium_payment::{PaymentConfig, PaymentServer};

use crate::{Running, TestDb, test_config};

/// Starts payment on `db`, migrated, on ephemeral loopback ports.
pub async fn spawn_payment(db: &TestDb) -> anyhow::Result<Running> {
    spawn_payment_with(db, Table::new()).await
}

/// Like [`spawn_payment`], with extra settings (e.g. `faults.error_rate`,
/// `faults.latency`).
pub async fn spawn_payment_with(db: &TestDb, overrides: Table) -> anyhow::Result<Running> {
    let mut config: PaymentConfig = test_config(PaymentConfig::load, overrides)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.database.url = Some(Secret::new(db.url()));
    let server = PaymentServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
