//! `emporium`: the launcher.
//!
//! - `emporium up`: every service in this one process, each on its own
//!   ports, with embedded storage in a data directory; the public API on
//!   http://localhost:8080.
//! - `emporium serve <service>`: one service, as its own binary would run it.
//! - `emporium migrate [service…]`: apply database migrations.
//! - `emporium import catalog|stock FILE`: load a data file (also what the
//!   Kubernetes import Jobs run).
//! - `emporium events streams|consumers|dead-letters|replay ID`: inspect the
//!   event bus and replay dead letters.
//! - `emporium report sales [--since 24h]`: the sales report from the
//!   checkout database (also what the daily Kubernetes CronJob runs).
//! - `emporium accounts grant-admin|revoke-admin EMAIL`: the operator's way to
//!   make (and unmake) admins; nobody becomes one by signing up.
//! - `emporium loadgen [--target URL] [--rate N] [--slo GATE]…`: drive the
//!   public API with shoppers' journeys, open loop, and judge SLO gates.
//!
//! Configuration is the services' own (file + `EMPORIUM_<SERVICE>__…`
//! variables); `up`, `migrate` and `import` add one default: databases live in
//! the data directory.

mod loadgen;
mod readiness;
mod up;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use emporium_chassis::config::{ConfigError, EXIT_BAD_CONFIG, Env, ProcessEnv, Sources, Table};
use emporium_chassis::error::describe;
use tokio_util::sync::CancellationToken;

/// The seed catalog shipped with the repository (`data/catalog.json`).
pub const SEED_CATALOG: &str = include_str!("../../../data/catalog.json");
/// The seed stock, one level per catalog SKU (`data/stock.json`).
pub const SEED_STOCK: &str = include_str!("../../../data/stock.json");

#[derive(Debug, Parser)]
#[command(
    name = "emporium",
    version,
    about = "Emporium: an online store as Rust microservices"
)]
struct Cli {
    /// Configuration file (TOML, one table per service).
    #[arg(long, global = true, env = "EMPORIUM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, clap::Args)]
struct DataDir {
    /// Where embedded databases are kept.
    #[arg(
        long,
        global = true,
        env = "EMPORIUM_DATA_DIR",
        default_value = "emporium-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in this process (public API on port 8080).
    Up {
        #[command(flatten)]
        data: DataDir,
        /// Use a temporary data directory, deleted on exit.
        #[arg(long, conflicts_with = "data_dir")]
        ephemeral: bool,
    },
    /// Run one service, as its own binary does.
    Serve { service: Service },
    /// Apply database migrations (every service with a database if none is named).
    Migrate {
        #[command(flatten)]
        data: DataDir,
        services: Vec<Service>,
    },
    /// Inspect the event bus: streams, consumers and their lag, dead letters.
    Events {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        what: EventsWhat,
    },
    /// Load data into a service.
    Import {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Reports from the services' databases (read only).
    Report {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Manage accounts in the accounts database (roles are granted by an
    /// operator, never at sign-up).
    Accounts {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        what: AccountsWhat,
    },
    /// Drive the public API with shoppers' journeys (open loop by default),
    /// print per-route and per-journey percentiles, judge SLO gates (exit
    /// status 3 when one fails).
    Loadgen(Box<loadgen::Args>),
}

#[derive(Debug, Subcommand)]
enum ReportWhat {
    /// Orders created in a time window: per currency placed, pending and
    /// failed orders and revenue; failures by kind; best-selling products.
    Sales {
        /// Length of the window ending at `--until`, e.g. `24h`, `7d`, `90m`.
        #[arg(long, default_value = "24h")]
        since: emporium_chassis::config::Duration,
        /// End of the window (exclusive), RFC 3339; default: now.
        #[arg(long, value_parser = parse_time)]
        until: Option<time::OffsetDateTime>,
        /// How many best-selling products to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// A table for people.
    Text,
    /// One JSON document (for log pipelines and scripts).
    Json,
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2026-11-25T06:00:00Z): {e}"))
}

#[derive(Debug, Subcommand)]
enum AccountsWhat {
    /// Give the account with this e-mail the admin role; its tokens carry it
    /// from its next sign-in.
    GrantAdmin { email: String },
    /// Take the admin role back; tokens issued before keep it until they
    /// expire (accounts.token.ttl, 15 min by default).
    RevokeAdmin { email: String },
}

#[derive(Debug, Subcommand)]
enum ImportWhat {
    /// A catalog data file (JSON, see data/catalog.json); upserts by SKU.
    Catalog { file: PathBuf },
    /// A stock file (JSON, see data/stock.json); sets the available units per SKU.
    Stock { file: PathBuf },
}

#[derive(Debug, Subcommand)]
enum EventsWhat {
    /// The event and dead-letter streams with their sizes.
    Streams,
    /// Every durable consumer with its lag.
    Consumers,
    /// Dead letters, oldest first.
    DeadLetters {
        /// Only this consumer's.
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Publishes a dead letter again (same event id) and removes it.
    Replay { id: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Service {
    Gateway,
    Catalog,
    Accounts,
    Cart,
    Currency,
    Inventory,
    Payment,
    Shipping,
    Checkout,
    Notification,
}

/// A configuration problem: exit 64 with the message, before anything runs.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct BadConfig(#[from] ConfigError);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = ProcessEnv;
    let settings = match emporium_chassis::telemetry::LogSettings::from_env(&env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("emporium: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG as u8);
        }
    };
    emporium_chassis::telemetry::init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("emporium: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<loadgen::SloBreached>() => {
            eprintln!("emporium: {e}");
            ExitCode::from(loadgen::EXIT_SLO_BREACHED)
        }
        Err(e) if e.is::<BadConfig>() => {
            eprintln!("emporium: {}", describe(e.as_ref()));
            ExitCode::from(EXIT_BAD_CONFIG as u8)
        }
        Err(e) => {
            eprintln!("emporium: {}", describe(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Loads a service's configuration over `base`.
pub fn load<T>(
    loader: fn(Table, Sources<'_>) -> Result<T, ConfigError>,
    sources: Sources<'_>,
    base: Table,
) -> anyhow::Result<T> {
    Ok(loader(base, sources).map_err(BadConfig)?)
}

/// Defaults for a tool command: the service's database is a SQLite file in
/// the data directory. Returns the table and that default URL.
fn data_dir_base(dir: &Path, service: &str) -> (Table, String) {
    let url = format!("sqlite://{}", dir.join(format!("{service}.db")).display());
    let mut database = Table::new();
    database.insert("url".into(), url.clone().into());
    let mut base = Table::new();
    base.insert("database".into(), database.into());
    (base, url)
}

/// The event bus settings of local runs: the embedded log in the data directory.
pub fn events_base(dir: &Path) -> Table {
    let mut log = Table::new();
    log.insert(
        "path".into(),
        dir.join("events.db").display().to_string().into(),
    );
    let mut events = Table::new();
    events.insert("log".into(), log.into());
    let mut t = Table::new();
    t.insert("events".into(), events.into());
    t
}

/// The event bus as tools see it: section `[events]` / `EMPORIUM_EVENTS__…`
/// (e.g. `EMPORIUM_EVENTS__BACKEND=nats`, `EMPORIUM_EVENTS__NATS__URL`),
/// defaulting to the data directory's embedded log.
fn events_config(
    sources: Sources<'_>,
    dir: &Path,
) -> anyhow::Result<emporium_eventbus::EventBusConfig> {
    let mut base = events_base(dir)
        .remove("events")
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    base.insert("backend".into(), "log".into());
    Ok(emporium_chassis::config::load("events", base, sources).map_err(BadConfig)?)
}

async fn events(
    what: EventsWhat,
    config: &emporium_eventbus::EventBusConfig,
) -> anyhow::Result<()> {
    use std::io::Write;
    let bus = emporium_eventbus::connect(config)
        .await
        .context("connecting to the event bus")?;
    let mut out = std::io::stdout().lock();
    match what {
        EventsWhat::Streams => {
            writeln!(
                out,
                "{:<24} {:<12} {:>10} {:>12} {:>10}",
                "STREAM", "ROLE", "MESSAGES", "BYTES", "LAST SEQ"
            )?;
            for s in bus.streams().await? {
                writeln!(
                    out,
                    "{:<24} {:<12} {:>10} {:>12} {:>10}",
                    s.name,
                    format!("{:?}", s.role),
                    s.messages,
                    s.bytes,
                    s.last_sequence
                )?;
            }
        }
        EventsWhat::Consumers => {
            writeln!(
                out,
                "{:<20} {:>8} {:>10} {:>10}  FILTER",
                "CONSUMER", "LAG", "IN FLIGHT", "ACKED SEQ"
            )?;
            for c in bus.consumers().await? {
                writeln!(
                    out,
                    "{:<20} {:>8} {:>10} {:>10}  {}",
                    c.name, c.pending, c.in_flight, c.acked_sequence, c.filter
                )?;
            }
        }
        EventsWhat::DeadLetters { consumer, limit } => {
            writeln!(
                out,
                "{:>6} {:<16} {:<22} {:>8}  {:<38} ERROR",
                "ID", "CONSUMER", "TYPE", "ATTEMPTS", "EVENT"
            )?;
            for d in bus.dead_letters(consumer.as_deref(), limit).await? {
                writeln!(
                    out,
                    "{:>6} {:<16} {:<22} {:>8}  {:<38} {}",
                    d.id.0,
                    d.consumer,
                    d.envelope.event_type().as_str(),
                    d.attempts,
                    d.envelope.id(),
                    d.error
                )?;
            }
        }
        EventsWhat::Replay { id } => {
            let published = bus
                .replay_dead_letter(emporium_eventbus::DeadLetterId(id))
                .await?;
            writeln!(out, "replayed dead letter {id}: {published:?}")?;
        }
    }
    Ok(())
}

/// Creates the data directory only when the configured URL is its default one.
fn ensure_data_dir(dir: &Path, default_url: &str, url: &str) -> anyhow::Result<()> {
    if url == default_url {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(())
}

/// The database URL of a service as configured (`[<service>.database]`,
/// `EMPORIUM_<SERVICE>__DATABASE__URL[_FILE]`), by default a SQLite file in
/// the data directory (created then). The whole section is read, so a
/// misspelt key is still an error, but only its shape is checked: what the
/// running service alone needs (a signing key for accounts) is not asked for.
macro_rules! database_url {
    ($krate:ident, $config:ident, $name:literal, $sources:expr, $dir:expr) => {{
        let (base, default_url) = data_dir_base($dir, $name);
        let config: $krate::$config =
            emporium_chassis::config::load($name, base, $sources).map_err(BadConfig)?;
        let url = config.database_url().expose().to_owned();
        ensure_data_dir($dir, &default_url, &url)?;
        url
    }};
}

/// Connects to a service's database as configured (data-directory default)
/// and applies its migrations; returns the store.
macro_rules! open_store {
    ($krate:ident, $config:ident, $name:literal, $sources:expr, $dir:expr) => {{
        let store = connect_store!($krate, $config, $name, $sources, $dir);
        store
            .migrate()
            .await
            .context(concat!($name, " migrations"))?;
        store
    }};
}

/// Connects to a service's database as configured (data-directory default),
/// without touching its schema.
macro_rules! connect_store {
    ($krate:ident, $config:ident, $name:literal, $sources:expr, $dir:expr) => {{
        let url = database_url!($krate, $config, $name, $sources, $dir);
        $krate::Store::connect(&url, 2)?
    }};
}

async fn run(cli: Cli, env: &dyn Env) -> anyhow::Result<()> {
    let sources = Sources {
        file: cli.config.as_deref(),
        env,
    };
    match cli.command {
        Command::Up { data, ephemeral } => up::run(sources, data.data_dir, ephemeral).await,
        Command::Serve { service } => serve(service, sources).await,
        Command::Loadgen(args) => loadgen::run(*args).await,
        Command::Accounts { data, what } => {
            let (email, role) = match &what {
                AccountsWhat::GrantAdmin { email } => {
                    (email, emporium_accounts::domain::Role::Admin)
                }
                AccountsWhat::RevokeAdmin { email } => {
                    (email, emporium_accounts::domain::Role::Customer)
                }
            };
            let email = emporium_accounts::domain::Email::parse(email)
                .map_err(|e| anyhow::anyhow!("`{email}` is not an e-mail address: {}", e.reason))?;
            let store = connect_store!(
                emporium_accounts,
                AccountsConfig,
                "accounts",
                sources,
                data.data_dir.as_path()
            );
            let result = store.set_role(&email, role).await;
            store.close().await;
            let action = match what {
                AccountsWhat::GrantAdmin { .. } => "grant-admin",
                AccountsWhat::RevokeAdmin { .. } => "revoke-admin",
            };
            // The audit record, also for attempts that fail; written whatever
            // the log level. `operator` is the process's $USER: the account
            // the command ran as (in a cluster, the API server's audit log
            // names who created the Job).
            let record = serde_json::json!({
                "timestamp": time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                "target": "emporium::audit",
                "action": action,
                "email": email.to_string(),
                "changed": matches!(result, Ok(true)),
                "outcome": match &result {
                    Ok(true) => "changed",
                    Ok(false) => "unchanged",
                    Err(emporium_accounts::AccountsError::UserNotFound(_)) => "no such account",
                    Err(_) => "failed",
                },
                "operator": std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
            });
            eprintln!("{record}");
            let changed = match result {
                Err(emporium_accounts::AccountsError::UserNotFound(_)) => {
                    anyhow::bail!("no account has the e-mail {email}")
                }
                other => other.context(
                    "updating the accounts database (is it migrated? `emporium migrate accounts`)",
                )?,
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match (role, changed) {
                (emporium_accounts::domain::Role::Admin, true) => {
                    writeln!(out, "{email} is now an admin (from the next sign-in)")?
                }
                (emporium_accounts::domain::Role::Admin, false) => {
                    writeln!(out, "{email} was an admin already")?
                }
                (_, true) => writeln!(
                    out,
                    "{email} is no longer an admin (tokens issued before keep the role until they expire)"
                )?,
                (_, false) => writeln!(out, "{email} was not an admin")?,
            }
            Ok(())
        }
        Command::Events { data, what } => {
            events(what, &events_config(sources, &data.data_dir)?).await
        }
        Command::Migrate { data, services } => {
            let dir = data.data_dir.as_path();
            let wanted = |s| services.is_empty() || services.contains(&s);
            macro_rules! migrate {
                ($service:expr, $krate:ident, $config:ident, $name:literal) => {
                    if wanted($service) {
                        open_store!($krate, $config, $name, sources, dir)
                            .close()
                            .await;
                        eprintln!(concat!($name, ": migrations applied"));
                    }
                };
            }
            migrate!(Service::Catalog, emporium_catalog, CatalogConfig, "catalog");
            migrate!(
                Service::Accounts,
                emporium_accounts,
                AccountsConfig,
                "accounts"
            );
            migrate!(Service::Cart, emporium_cart, CartConfig, "cart");
            migrate!(
                Service::Inventory,
                emporium_inventory,
                InventoryConfig,
                "inventory"
            );
            migrate!(Service::Payment, emporium_payment, PaymentConfig, "payment");
            migrate!(
                Service::Shipping,
                emporium_shipping,
                ShippingConfig,
                "shipping"
            );
            migrate!(
                Service::Checkout,
                emporium_checkout,
                CheckoutConfig,
                "checkout"
            );
            migrate!(
                Service::Notification,
                emporium_notification,
                NotificationConfig,
                "notification"
            );
            for s in [Service::Gateway, Service::Currency] {
                if services.contains(&s) {
                    eprintln!("{s:?}: has no database");
                }
            }
            Ok(())
        }
        Command::Import {
            data,
            what: ImportWhat::Catalog { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let store = open_store!(
                emporium_catalog,
                CatalogConfig,
                "catalog",
                sources,
                data.data_dir.as_path()
            );
            let report = import_catalog(&store, &text)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            store.close().await;
            eprintln!(
                "catalog: imported {} categories; products: {} created, {} updated, {} unchanged",
                report.categories, report.created, report.updated, report.unchanged
            );
            Ok(())
        }
        Command::Import {
            data,
            what: ImportWhat::Stock { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let store = open_store!(
                emporium_inventory,
                InventoryConfig,
                "inventory",
                sources,
                data.data_dir.as_path()
            );
            let n = import_stock(&store, &text)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            store.close().await;
            eprintln!("inventory: set stock of {n} SKUs");
            Ok(())
        }
        Command::Report {
            data,
            what:
                ReportWhat::Sales {
                    since,
                    until,
                    top,
                    format,
                },
        } => {
            let until = until.unwrap_or_else(time::OffsetDateTime::now_utc);
            let from = until
                .checked_sub(time::Duration::try_from(since.get()).context("--since is too long")?)
                .context("--since reaches before year -9999")?;
            let store = connect_store!(
                emporium_checkout,
                CheckoutConfig,
                "checkout",
                sources,
                data.data_dir.as_path()
            );
            let report = emporium_checkout::report::sales(&store, from, until, top).await;
            store.close().await;
            let report = report.context(
                "reading the checkout database (is it migrated? `emporium migrate checkout`)",
            )?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match format {
                ReportFormat::Text => write!(out, "{report}")?,
                ReportFormat::Json => {
                    serde_json::to_writer(&mut out, &report)?;
                    writeln!(out)?;
                }
            }
            out.flush()?;
            Ok(())
        }
    }
}

async fn serve(service: Service, sources: Sources<'_>) -> anyhow::Result<()> {
    let shutdown: CancellationToken = emporium_chassis::lifecycle::shutdown_on_signals();
    macro_rules! serve {
        ($krate:ident, $config:ident, $server:ident) => {{
            let config = load($krate::$config::load, sources, Table::new())?;
            $krate::$server::build(config).await?.run(shutdown).await?;
        }};
    }
    match service {
        Service::Gateway => {
            let config = load(emporium_gateway::GatewayConfig::load, sources, Table::new())?;
            emporium_gateway::GatewayServer::build(config)?
                .run(shutdown)
                .await?;
        }
        Service::Catalog => serve!(emporium_catalog, CatalogConfig, CatalogServer),
        Service::Accounts => serve!(emporium_accounts, AccountsConfig, AccountsServer),
        Service::Cart => serve!(emporium_cart, CartConfig, CartServer),
        Service::Currency => serve!(emporium_currency, CurrencyConfig, CurrencyServer),
        Service::Inventory => serve!(emporium_inventory, InventoryConfig, InventoryServer),
        Service::Payment => serve!(emporium_payment, PaymentConfig, PaymentServer),
        Service::Shipping => serve!(emporium_shipping, ShippingConfig, ShippingServer),
        Service::Checkout => serve!(emporium_checkout, CheckoutConfig, CheckoutServer),
        Service::Notification => serve!(
            emporium_notification,
            NotificationConfig,
            NotificationServer
        ),
    }
    Ok(())
}

pub async fn import_catalog(
    store: &emporium_catalog::Store,
    text: &str,
) -> anyhow::Result<emporium_catalog::store::ImportReport> {
    let data = emporium_catalog::import::parse(text)?;
    Ok(store.import(&data.categories, &data.products).await?)
}

pub async fn import_stock(store: &emporium_inventory::Store, text: &str) -> anyhow::Result<usize> {
    Ok(emporium_inventory::import_stock(store, text).await?)
}
