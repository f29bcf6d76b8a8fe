//! Spawning the inventory service in tests, and seeding its stock.
//!
//! ```text
//! let db = TestDb::new(Backend::Sqlite).await?.unwrap();
//! seed_stock(&db, SEED_STOCK).await?;
//! let inventory = spawn_inventory(&db).await?;
//! ```

use anyhow::Context;
use emporium_chassis::config::{Secret, Table};
use emporium_inventory::{InventoryConfig, InventoryServer};

use crate::{Running, TestDb, test_config};

/// The seed stock shipped in `data/stock.json` (one entry per catalog SKU).
pub const SEED_STOCK: &str = include_str!("../../../data/stock.json");

/// Starts the inventory on `db`, migrated, on ephemeral loopback ports.
pub async fn spawn_inventory(db: &TestDb) -> anyhow::Result<Running> {
    spawn_inventory_with(db, Table::new()).await
}

/// Like [`spawn_inventory`], with extra settings (e.g. a short
/// `reservation_ttl` and `sweep_interval`).
pub async fn spawn_inventory_with(db: &TestDb, overrides: Table) -> anyhow::Result<Running> {
    let mut config: InventoryConfig = test_config(InventoryConfig::load, overrides)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.database.url = Some(Secret::new(db.url()));
    let server = InventoryServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}

/// Loads a stock data file (JSON) into `db`, migrating it first; returns how
/// many SKUs it set.
pub async fn seed_stock(db: &TestDb, json: &str) -> anyhow::Result<usize> {
    let store = emporium_inventory::Store::connect(db.url(), 2)?;
    store.migrate().await?;
    let count = emporium_inventory::import_stock(&store, json)
        .await
        .context("importing stock")?;
    store.close().await;
    Ok(count)
}
