//! `emporium`: the launcher.
//!
//! - `emporium up`: every service in this one process, each on its own
//!   ports, with embedded storage in a data directory; the public API on
//!   http://localhost:8080.
//! - `emporium serve <service>`: one service, as its own binary would run it.
//! - `emporium migrate [service…]`: apply database migrations.
//! - `emporium import catalog FILE`: load a catalog data file (also what the
//!   Kubernetes import Job runs).
//!
//! Configuration is the services' own (file + `EMPORIUM_<SERVICE>__…`
//! variables); `up`, `migrate` and `import` add one default: databases live in
//! the data directory.

mod readiness;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use emporium_catalog::CatalogConfig;
use emporium_chassis::config::{EXIT_BAD_CONFIG, Env, ProcessEnv, Sources, Table};
use emporium_gateway::GatewayConfig;

/// The seed catalog shipped with the repository (`data/catalog.json`).
pub const SEED_CATALOG: &str = include_str!("../../../data/catalog.json");

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
        env = "EMPORIUM_DATA_DIR",
        default_value = "emporium-data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in this process (ports: gateway 8080, catalog 50051).
    Up {
        #[command(flatten)]
        data: DataDir,
        /// Use a temporary data directory, deleted on exit.
        #[arg(long, conflicts_with = "data_dir")]
        ephemeral: bool,
    },
    /// Run one service, as its own binary does.
    Serve { service: Service },
    /// Apply database migrations (all services if none is named).
    Migrate {
        #[command(flatten)]
        data: DataDir,
        services: Vec<Service>,
    },
    /// Load data into a service.
    Import {
        #[command(flatten)]
        data: DataDir,
        #[command(subcommand)]
        what: ImportWhat,
    },
}

#[derive(Debug, Subcommand)]
enum ImportWhat {
    /// A catalog data file (JSON, see data/catalog.json); upserts by SKU.
    Catalog { file: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Service {
    Gateway,
    Catalog,
}

/// A configuration problem: exit 64 with the message, before anything runs.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct BadConfig(#[from] emporium_chassis::config::ConfigError);

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
        Err(e) if e.is::<BadConfig>() => {
            eprintln!("emporium: {e:#}");
            ExitCode::from(EXIT_BAD_CONFIG as u8)
        }
        Err(e) => {
            eprintln!("emporium: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, env: &dyn Env) -> anyhow::Result<()> {
    let sources = Sources {
        file: cli.config.as_deref(),
        env,
    };
    match cli.command {
        Command::Up { data, ephemeral } => up::run(sources, data.data_dir, ephemeral).await,
        Command::Serve { service } => serve(service, sources).await,
        Command::Migrate { data, services } => {
            let all = services.is_empty();
            if all || services.contains(&Service::Catalog) {
                let config = catalog_config(sources, Some(&data.data_dir), Table::new())?;
                let store = emporium_catalog::Store::connect(config.database_url().expose(), 1)?;
                store.migrate().await.context("catalog migrations")?;
                store.close().await;
                eprintln!("catalog: migrations applied");
            }
            if services.contains(&Service::Gateway) {
                eprintln!("gateway: has no database");
            }
            Ok(())
        }
        Command::Import {
            data,
            what: ImportWhat::Catalog { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let config = catalog_config(sources, Some(&data.data_dir), Table::new())?;
            let store = emporium_catalog::Store::connect(config.database_url().expose(), 2)?;
            store.migrate().await.context("catalog migrations")?;
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
    }
}

async fn serve(service: Service, sources: Sources<'_>) -> anyhow::Result<()> {
    let shutdown = emporium_chassis::lifecycle::shutdown_on_signals();
    match service {
        Service::Catalog => {
            let config = catalog_config(sources, None, Table::new())?;
            emporium_catalog::CatalogServer::build(config)
                .await?
                .run(shutdown)
                .await?;
        }
        Service::Gateway => {
            let config = GatewayConfig::load(Table::new(), sources).map_err(BadConfig)?;
            emporium_gateway::GatewayServer::build(config)?
                .run(shutdown)
                .await?;
        }
    }
    Ok(())
}

/// The catalog's configuration; with a data directory, its database defaults
/// to a SQLite file there (the directory is created only when that default
/// is used). `base` holds a caller's further defaults.
fn catalog_config(sources: Sources<'_>, data_dir: Option<&std::path::Path>, mut base: Table) -> anyhow::Result<CatalogConfig> {
    let default_url = data_dir.map(|dir| format!("sqlite://{}", dir.join("catalog.db").display()));
    if let Some(url) = &default_url {
        let mut database = Table::new();
        database.insert("url".into(), url.clone().into());
        base.insert("database".into(), database.into());
    }
    let config = CatalogConfig::load(base, sources).map_err(BadConfig)?;
    if let (Some(dir), Some(url)) = (data_dir, &default_url)
        && config.database_url().expose() == url
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    Ok(config)
}

async fn import_catalog(
    store: &emporium_catalog::Store,
    text: &str,
) -> anyhow::Result<emporium_catalog::store::ImportReport> {
    let data = emporium_catalog::import::parse(text)?;
    Ok(store.import(&data.categories, &data.products).await?)
}
