//! The whole store in one test process: every service on its own loopback
//! ports and its own database, wired like `emporium up` wires them, plus
//! helpers to act as its users.
//!
//! ```text
//! let system = spawn_system(SystemOptions::default()).await?.unwrap();
//! reqwest::get(system.gateway.url("/api/v1/products")).await?;
//! ```

use emporium_chassis::config::Table;
use emporium_chassis::jwt::{Claims, SigningKey};

use crate::checkout::{CheckoutUpstreams, spawn_checkout};
use crate::outage::DatabaseOutage;
use crate::{
    Backend, Running, SEED_CATALOG, TestDb, seed_catalog, spawn_catalog, spawn_gateway_with, table,
};

/// What to vary between runs.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// The database engine of every service.
    pub backend: Backend,
    /// Extra checkout settings (e.g. `saga.halt_after`).
    pub checkout: Table,
    /// Extra payment settings (e.g. fault injection).
    pub payment: Table,
    /// The event bus every service uses; by default an embedded log of the
    /// system's own (see [`crate::events_log`], [`nats_events`]).
    pub events: Option<Table>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            checkout: Table::new(),
            payment: Table::new(),
            events: None,
        }
    }
}

/// A running store. Dropping it stops every service.
#[derive(Debug)]
pub struct System {
    pub gateway: Running,
    pub checkout: Running,
    pub cart: Running,
    pub accounts: Running,
    pub catalog: Running,
    pub currency: Running,
    pub inventory: Running,
    pub payment: Running,
    pub shipping: Running,
    /// Takes shipping's database away and gives it back.
    pub shipping_database: DatabaseOutage,
    pub notification: Running,
    /// Where notification writes its e-mails (`.eml` files).
    pub mail_dir: std::path::PathBuf,
    checkout_db: TestDb,
    upstreams: CheckoutUpstreams,
    /// The event-bus settings every service shares (an embedded log).
    pub events: Table,
    _events_dir: tempfile::TempDir,
    signing_key: SigningKey,
    _databases: Vec<TestDb>,
}

/// Starts every service (seeded catalog and stock), or `None` when the
/// backend is not configured on this machine.
pub async fn spawn_system(options: SystemOptions) -> anyhow::Result<Option<System>> {
    let backend = options.backend;
    let mut databases = Vec::new();
    macro_rules! db {
        () => {{
            match TestDb::new(backend).await? {
                Some(db) => db,
                None => return Ok(None),
            }
        }};
    }
    let catalog_db = db!();
    seed_catalog(&catalog_db, SEED_CATALOG).await?;
    let catalog = spawn_catalog(&catalog_db).await?;
    databases.push(catalog_db);

    let signing_key = SigningKey::generate()?;
    let accounts_db = db!();
    let accounts = crate::accounts::spawn_accounts_with(
        &accounts_db,
        table(&[("signing_key", &signing_key.to_pem()?)]),
    )
    .await?;
    databases.push(accounts_db);

    let currency = crate::currency::spawn_currency().await?;

    let inventory_db = db!();
    crate::inventory::seed_stock(&inventory_db, crate::inventory::SEED_STOCK).await?;
    let inventory = crate::inventory::spawn_inventory(&inventory_db).await?;
    databases.push(inventory_db);

    let payment_db = db!();
    let payment = crate::payment::spawn_payment_with(&payment_db, options.payment.clone()).await?;
    databases.push(payment_db);

    // One event log for the whole store, as `emporium up` has.
    let events_dir = tempfile::tempdir()?;
    let events = options
        .events
        .clone()
        .unwrap_or_else(|| crate::events_log(&events_dir.path().join("events.db")));

    // Shipping's database can be taken away (`shipping_database`): through a
    // proxy on PostgreSQL, by the store's test switch on SQLite.
    let shipping_db = db!();
    let (shipping, shipping_database) = match backend {
        Backend::Postgres => {
            let (url, proxy) = crate::outage::proxied(shipping_db.url()).await?;
            let (running, _) = crate::shipping::spawn_shipping_at(&url, events.clone()).await?;
            (running, DatabaseOutage::Proxy(proxy))
        }
        Backend::Sqlite => {
            let (running, switch) =
                crate::shipping::spawn_shipping_at(shipping_db.url(), events.clone()).await?;
            (running, DatabaseOutage::Switch(switch))
        }
    };
    databases.push(shipping_db);

    // The cart keeps carts in Redis in a cluster (PostgreSQL runs use it when
    // configured) and in SQLite locally.
    let redis = if backend == Backend::Postgres {
        crate::cart::CartBackend::redis()
    } else {
        None
    };
    let cart = match redis {
        Some(redis) => crate::cart::spawn_cart(redis, &catalog.base_url()).await?,
        None => {
            let cart_db = TestDb::new(Backend::Sqlite)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no SQLite"))?;
            let cart = crate::cart::spawn_cart(&cart_db, &catalog.base_url()).await?;
            databases.push(cart_db);
            cart
        }
    };

    let upstreams = CheckoutUpstreams {
        cart: cart.base_url(),
        catalog: catalog.base_url(),
        currency: currency.base_url(),
        inventory: inventory.base_url(),
        payment: payment.base_url(),
        shipping: shipping.base_url(),
    };
    let checkout_db = db!();
    let notification_db = db!();
    let bus: emporium_eventbus::EventBusConfig = events
        .get("events")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("events settings without [events]"))?
        .try_into()?;
    let mail_dir = events_dir.path().join("mail");
    let notification =
        crate::notification::spawn_notification(&notification_db, bus, &mail_dir).await?;
    databases.push(notification_db);

    let mut checkout_settings = events.clone();
    emporium_chassis::config::merge(&mut checkout_settings, options.checkout.clone());
    let checkout = spawn_checkout(&checkout_db, &upstreams, None, checkout_settings).await?;

    let gateway = spawn_gateway_with(
        &catalog.base_url(),
        table(&[
            ("accounts.url", &accounts.base_url()),
            ("cart.url", &cart.base_url()),
            ("currency.url", &currency.base_url()),
            ("checkout.url", &checkout.base_url()),
        ]),
    )
    .await?;

    Ok(Some(System {
        gateway,
        checkout,
        cart,
        accounts,
        catalog,
        currency,
        inventory,
        payment,
        shipping,
        shipping_database,
        notification,
        mail_dir,
        checkout_db,
        upstreams,
        events,
        _events_dir: events_dir,
        signing_key,
        _databases: databases,
    }))
}

impl System {
    /// Stops checkout (draining it) and starts a fresh instance on the same
    /// database and port, as after a crash and restart.
    pub async fn restart_checkout(&mut self, overrides: Table) -> anyhow::Result<()> {
        let port = self.checkout.addr.port();
        self.checkout.stop_in_place().await?;
        self.checkout =
            spawn_checkout(&self.checkout_db, &self.upstreams, Some(port), overrides).await?;
        Ok(())
    }

    /// An access token signed with accounts' own key, valid from now for
    /// `ttl_seconds` (negative: already expired).
    pub fn sign_token(
        &self,
        user_id: &str,
        role: &str,
        ttl_seconds: i64,
    ) -> anyhow::Result<String> {
        Ok(self.sign_token_with(&self.signing_key, user_id, role, ttl_seconds))
    }

    /// A token signed with any key (e.g. one accounts never published).
    pub fn sign_token_with(
        &self,
        key: &SigningKey,
        user_id: &str,
        role: &str,
        ttl_seconds: i64,
    ) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let issued = if ttl_seconds < 0 {
            now + ttl_seconds - 900
        } else {
            now
        };
        key.sign(&Claims {
            iss: "emporium".into(),
            aud: "emporium-api".into(),
            sub: user_id.into(),
            role: role.into(),
            iat: issued,
            nbf: issued,
            exp: now + ttl_seconds,
            jti: uuid::Uuid::new_v4().to_string(),
            email: None,
        })
    }
}

/// Event-bus settings for NATS at `url`, with streams and subjects of this
/// test's own (so parallel tests never see each other's events).
pub fn nats_events(url: &str) -> Table {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    table(&[
        ("events.backend", "nats"),
        ("events.nats.url", url),
        ("events.nats.stream", &format!("T{unique}")),
        ("events.nats.dlq_stream", &format!("T{unique}_DLQ")),
        ("events.nats.subject_prefix", &format!("t{}", &unique[..16])),
        ("events.nats.connect_timeout", "1s"),
        ("events.nats.request_timeout", "1s"),
    ])
}
