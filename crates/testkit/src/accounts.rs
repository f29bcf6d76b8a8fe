//! Spawning the accounts service in tests.
//!
//! Accounts signs with a fresh in-memory key unless a test passes its own
//! (`signing_key`) or a place to keep one (`signing_key_path`); passwords are
//! hashed with argon2id at a test-sized cost.
//!
//! ```text
//! let accounts = spawn_accounts(&db).await?;
//! let me = client.get_me(request_as(&who, GetMeRequest {})).await?;
//! ```

use emporium_accounts::{AccountsConfig, AccountsServer};
use emporium_chassis::config::{Secret, Table};
use emporium_chassis::jwt::SigningKey;

use crate::{Running, TestDb, test_config};

/// Password hashing settings for tests: argon2id still, but with little
/// memory and one pass, so a test signs up in milliseconds.
pub fn fast_password_hashing() -> Table {
    let mut hashing = Table::new();
    hashing.insert("memory_kib".into(), toml::Value::Integer(1024));
    hashing.insert("iterations".into(), toml::Value::Integer(1));
    let mut settings = Table::new();
    settings.insert("password_hashing".into(), hashing.into());
    settings
}

/// Starts accounts on `db`, migrated, on ephemeral loopback ports, signing
/// with a fresh in-memory key.
pub async fn spawn_accounts(db: &TestDb) -> anyhow::Result<Running> {
    spawn_accounts_with(db, Table::new()).await
}

/// Like [`spawn_accounts`], with extra settings (e.g. `token.ttl`).
pub async fn spawn_accounts_with(db: &TestDb, overrides: Table) -> anyhow::Result<Running> {
    let mut base = fast_password_hashing();
    let key = SigningKey::generate()?;
    let mut signing = Table::new();
    signing.insert("signing_key".into(), key.to_pem()?.into());
    emporium_chassis::config::merge(&mut base, signing);
    emporium_chassis::config::merge(&mut base, overrides);
    let mut config: AccountsConfig = test_config(AccountsConfig::load, base)?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.database.url = Some(Secret::new(db.url()));
    let server = AccountsServer::build(config).await?;
    let (addr, admin_addr) = (server.grpc_addr(), server.admin_addr());
    Running::start(addr, admin_addr, |token| async move {
        Ok(server.run(token).await?)
    })
    .await
}
