//! `emporium up`: the whole store in one process.
//!
//! Each service keeps its own ports, database file and admin endpoints, just
//! as in a cluster; only the process is shared. Services start leaves first
//! (those that call nobody), then cart, checkout and the gateway, each
//! pointed at the addresses its upstreams actually bound. Default ports:
//! gateway 8080, catalog 50051, cart 50052, currency 50053, inventory 50054,
//! payment 50055, shipping 50056, accounts 50057, checkout 50058; admin
//! ports 9080–9089 (notification has only its admin port; its e-mails are
//! `.eml` files in `<data dir>/mail`). Services with events share the
//! embedded log `<data dir>/events.db`. Every port is bound to loopback
//! (127.0.0.1): the internal gRPC and admin ports trust whoever can reach
//! them, so nobody else on the network may. The usual variables
//! (`EMPORIUM_<SERVICE>__GRPC_ADDR`, `EMPORIUM_GATEWAY__HTTP_ADDR`, …) move
//! any of them, e.g. `EMPORIUM_GATEWAY__HTTP_ADDR=[::]:8080` publishes the API.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use emporium_chassis::config::{Sources, Table};

use crate::readiness::{loopback, wait_all};
use crate::{SEED_CATALOG, SEED_STOCK, import_catalog, import_stock, load};

/// Where `up` binds by default: loopback only.
const LOCAL: &str = "127.0.0.1";

/// Local defaults for one service: its API port (`grpc_addr = 50051`, or the
/// gateway's `http_addr`) and admin port on loopback, its SQLite file in the
/// data directory, and where its upstreams listen.
fn base(
    listen: Option<(&str, u16)>,
    admin_port: u16,
    database: Option<String>,
    upstreams: &[(&str, SocketAddr)],
) -> Table {
    let mut t = Table::new();
    if let Some((key, port)) = listen {
        t.insert(key.into(), format!("{LOCAL}:{port}").into());
    }
    t.insert("admin_addr".into(), format!("{LOCAL}:{admin_port}").into());
    if let Some(url) = database {
        let mut db = Table::new();
        db.insert("url".into(), url.into());
        t.insert("database".into(), db.into());
    }
    for (name, addr) in upstreams {
        let mut u = Table::new();
        u.insert("url".into(), format!("http://{}", loopback(*addr)).into());
        t.insert((*name).into(), u.into());
    }
    t
}

/// Puts a service's event bus on the shared embedded log in the data directory.
fn with_events(mut t: Table, dir: &Path) -> Table {
    emporium_chassis::config::merge(&mut t, crate::events_base(dir));
    t
}

fn sqlite(dir: &Path, name: &str) -> Option<String> {
    Some(format!(
        "sqlite://{}",
        dir.join(format!("{name}.db")).display()
    ))
}

/// One running service: its row in the table, and its task.
struct Row {
    name: &'static str,
    serves: String,
    admin: SocketAddr,
}

pub async fn run(sources: Sources<'_>, data_dir: PathBuf, ephemeral: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let temp = if ephemeral {
        Some(tempfile::Builder::new().prefix("emporium-").tempdir()?)
    } else {
        None
    };
    let dir = temp.as_ref().map_or(data_dir, |t| t.path().to_owned());
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;

    // Every configuration is checked before anything is bound or written, so
    // a bad setting fails fast (exit 64) and names its key.
    load(emporium_catalog::CatalogConfig::load, sources, Table::new())?;
    load(emporium_accounts::AccountsConfig::load, sources, {
        let mut t = Table::new();
        t.insert(
            "signing_key_path".into(),
            dir.join("accounts-signing-key.pem")
                .display()
                .to_string()
                .into(),
        );
        t
    })?;
    load(
        emporium_currency::CurrencyConfig::load,
        sources,
        Table::new(),
    )?;
    load(
        emporium_inventory::InventoryConfig::load,
        sources,
        Table::new(),
    )?;
    load(emporium_payment::PaymentConfig::load, sources, Table::new())?;
    load(
        emporium_shipping::ShippingConfig::load,
        sources,
        Table::new(),
    )?;
    load(
        emporium_notification::NotificationConfig::load,
        sources,
        Table::new(),
    )?;
    load(emporium_cart::CartConfig::load, sources, Table::new())?;
    load(
        emporium_checkout::CheckoutConfig::load,
        sources,
        Table::new(),
    )?;
    load(emporium_gateway::GatewayConfig::load, sources, Table::new())?;

    // Services that call nobody.
    let catalog = emporium_catalog::CatalogServer::build(load(
        emporium_catalog::CatalogConfig::load,
        sources,
        base(
            Some(("grpc_addr", 50051)),
            9081,
            sqlite(&dir, "catalog"),
            &[],
        ),
    )?)
    .await
    .context("starting the catalog")?;
    if catalog.store().count_products().await? == 0
        && catalog.store().list_categories().await?.is_empty()
    {
        let report = import_catalog(catalog.store(), SEED_CATALOG)
            .await
            .context("seeding the catalog")?;
        tracing::info!(
            products = report.created,
            categories = report.categories,
            "seeded the empty catalog"
        );
    }
    let mut accounts_base = base(
        Some(("grpc_addr", 50057)),
        9082,
        sqlite(&dir, "accounts"),
        &[],
    );
    accounts_base.insert(
        "signing_key_path".into(),
        dir.join("accounts-signing-key.pem")
            .display()
            .to_string()
            .into(),
    );
    let accounts = emporium_accounts::AccountsServer::build(load(
        emporium_accounts::AccountsConfig::load,
        sources,
        accounts_base,
    )?)
    .await
    .context("starting accounts")?;
    let currency = emporium_currency::CurrencyServer::build(load(
        emporium_currency::CurrencyConfig::load,
        sources,
        base(Some(("grpc_addr", 50053)), 9084, None, &[]),
    )?)
    .await
    .context("starting currency")?;
    let inventory = emporium_inventory::InventoryServer::build(load(
        emporium_inventory::InventoryConfig::load,
        sources,
        base(
            Some(("grpc_addr", 50054)),
            9085,
            sqlite(&dir, "inventory"),
            &[],
        ),
    )?)
    .await
    .context("starting inventory")?;
    if inventory.store().count_skus().await? == 0 {
        let n = import_stock(inventory.store(), SEED_STOCK)
            .await
            .context("seeding the stock")?;
        tracing::info!(skus = n, "seeded the empty inventory");
    }
    let payment = emporium_payment::PaymentServer::build(load(
        emporium_payment::PaymentConfig::load,
        sources,
        base(
            Some(("grpc_addr", 50055)),
            9086,
            sqlite(&dir, "payment"),
            &[],
        ),
    )?)
    .await
    .context("starting payment")?;
    let shipping = emporium_shipping::ShippingServer::build(load(
        emporium_shipping::ShippingConfig::load,
        sources,
        with_events(
            base(
                Some(("grpc_addr", 50056)),
                9087,
                sqlite(&dir, "shipping"),
                &[],
            ),
            &dir,
        ),
    )?)
    .await
    .context("starting shipping")?;

    let mut notification_base =
        with_events(base(None, 9089, sqlite(&dir, "notification"), &[]), &dir);
    let mut mail = Table::new();
    mail.insert("dir".into(), dir.join("mail").display().to_string().into());
    notification_base.insert("mail".into(), mail.into());
    let notification = emporium_notification::NotificationServer::build(load(
        emporium_notification::NotificationConfig::load,
        sources,
        notification_base,
    )?)
    .await
    .context("starting notification")?;

    // Services that call others, pointed at where those actually listen.
    let cart = emporium_cart::CartServer::build(load(
        emporium_cart::CartConfig::load,
        sources,
        base(
            Some(("grpc_addr", 50052)),
            9083,
            sqlite(&dir, "cart"),
            &[("catalog", catalog.grpc_addr())],
        ),
    )?)
    .await
    .context("starting the cart")?;
    let checkout = emporium_checkout::CheckoutServer::build(load(
        emporium_checkout::CheckoutConfig::load,
        sources,
        with_events(
            base(
                Some(("grpc_addr", 50058)),
                9088,
                sqlite(&dir, "checkout"),
                &[
                    ("cart", cart.grpc_addr()),
                    ("catalog", catalog.grpc_addr()),
                    ("currency", currency.grpc_addr()),
                    ("inventory", inventory.grpc_addr()),
                    ("payment", payment.grpc_addr()),
                    ("shipping", shipping.grpc_addr()),
                ],
            ),
            &dir,
        ),
    )?)
    .await
    .context("starting checkout")?;
    let gateway = emporium_gateway::GatewayServer::build(load(
        emporium_gateway::GatewayConfig::load,
        sources,
        base(
            Some(("http_addr", 8080)),
            9080,
            None,
            &[
                ("catalog", catalog.grpc_addr()),
                ("accounts", accounts.grpc_addr()),
                ("cart", cart.grpc_addr()),
                ("currency", currency.grpc_addr()),
                ("checkout", checkout.grpc_addr()),
            ],
        ),
    )?)
    .context("starting the gateway")?;

    let public = format!("http://{}", display(gateway.http_addr()));
    let grpc = |name, addr: SocketAddr, admin| Row {
        name,
        serves: format!("grpc://{}", display(addr)),
        admin,
    };
    let rows = vec![
        Row {
            name: "gateway",
            serves: public.clone(),
            admin: gateway.admin_addr(),
        },
        grpc("catalog", catalog.grpc_addr(), catalog.admin_addr()),
        grpc("accounts", accounts.grpc_addr(), accounts.admin_addr()),
        grpc("cart", cart.grpc_addr(), cart.admin_addr()),
        grpc("currency", currency.grpc_addr(), currency.admin_addr()),
        grpc("inventory", inventory.grpc_addr(), inventory.admin_addr()),
        grpc("payment", payment.grpc_addr(), payment.admin_addr()),
        grpc("shipping", shipping.grpc_addr(), shipping.admin_addr()),
        grpc("checkout", checkout.grpc_addr(), checkout.admin_addr()),
        Row {
            name: "notification",
            serves: format!("e-mail to {}", dir.join("mail").display()),
            admin: notification.admin_addr(),
        },
    ];

    let shutdown = emporium_chassis::lifecycle::shutdown_on_signals();
    let mut tasks = tokio::task::JoinSet::new();
    macro_rules! spawn {
        ($name:literal, $server:expr) => {{
            let token = shutdown.clone();
            let server = $server;
            tasks.spawn(async move { server.run(token).await.map(drop).context($name) });
        }};
    }
    spawn!("catalog", catalog);
    spawn!("accounts", accounts);
    spawn!("currency", currency);
    spawn!("inventory", inventory);
    spawn!("payment", payment);
    spawn!("shipping", shipping);
    spawn!("cart", cart);
    spawn!("checkout", checkout);
    spawn!("notification", notification);
    spawn!("gateway", gateway);

    let admins: Vec<_> = rows.iter().map(|r| r.admin).collect();
    if !wait_all(&admins, Duration::from_secs(30)).await {
        shutdown.cancel();
        anyhow::bail!("services did not become ready within 30s");
    }
    let ready_in = started.elapsed();
    print_table(&rows, &dir, ephemeral, ready_in, &public)?;
    tracing::info!(ready_ms = ready_in.as_millis() as u64, "all services ready");

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a service task panicked").and_then(|r| r);
        if let Err(e) = result {
            // One service failing brings the others down: a half-running store is worse.
            let error = emporium_chassis::error::describe(e.as_ref());
            tracing::error!(%error, "service failed; stopping the others");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    drop(temp);
    first_error.map_or(Ok(()), Err)
}

fn display(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn print_table(
    rows: &[Row],
    data_dir: &Path,
    ephemeral: bool,
    ready_in: Duration,
    public: &str,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let data = if ephemeral {
        format!("{} (ephemeral)", data_dir.display())
    } else {
        data_dir.display().to_string()
    };
    writeln!(
        out,
        "\nEmporium is up in {} ms. Data: {data}\n",
        ready_in.as_millis()
    )?;
    writeln!(
        out,
        "  {:<10} {:<28} ADMIN (/livez /readyz /metrics)",
        "SERVICE", "SERVES"
    )?;
    for row in rows {
        writeln!(
            out,
            "  {:<10} {:<28} http://{}",
            row.name,
            row.serves,
            display(row.admin)
        )?;
    }
    writeln!(out, "\n  Try:  curl {public}/api/v1/products")?;
    writeln!(out, "        curl {public}/openapi.json")?;
    writeln!(out, "  Stop: Ctrl-C (drains in-flight requests first)\n")?;
    out.flush()
}
