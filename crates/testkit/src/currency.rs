//! Spawning the currency service in tests.
//!
//! ```text
//! let currency = spawn_currency().await?;                      // built-in rates
//! let watched = spawn_currency_with(table(&[
//!     ("rates_path", path), ("reload_interval", "20ms"),
//! ])).await?;                                                  // a rates file, reloaded
//! ```

use emporium_chassis::config::Table;
use emporium_currency::{CurrencyConfig, CurrencyServer};

use crate::{Running, test_config};

/// Starts the currency service with the built-in rates on ephemeral
/// loopback ports.
pub async fn spawn_currency() -> anyhow::Result<Running> {
    spawn_currency_with(Table::new()).await
}

/// Like [`spawn_currency`], with extra settings (e.g. `rates_path` and a
/// short `reload_interval`).
pub async fn spawn_currency_with(overrides: Table) -> anyhow::Result<Running> {
    let mut config: CurrencyConfig = test_config(CurrencyConfig::load, overrides)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    let server = CurrencyServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
