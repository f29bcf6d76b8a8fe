//! `emporium up`: the whole store in one process.
//!
//! Each service keeps its own ports, database file and admin endpoints, just
//! as in a cluster; only the process is shared. Ports default to gateway
//! 8080 (admin 9080) and catalog 50051 (admin 9081); the usual variables
//! (`EMPORIUM_GATEWAY__HTTP_ADDR`, …) move them.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use emporium_catalog::CatalogServer;
use emporium_chassis::config::{Sources, Table};
use emporium_gateway::{GatewayConfig, GatewayServer};

use crate::readiness::{loopback, wait_all};
use crate::{BadConfig, SEED_CATALOG, catalog_config, import_catalog};

fn addr_table(entries: &[(&str, String)]) -> Table {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), toml::Value::String(v.clone())))
        .collect()
}

pub async fn run(sources: Sources<'_>, data_dir: PathBuf, ephemeral: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let temp = if ephemeral {
        Some(tempfile::Builder::new().prefix("emporium-").tempdir()?)
    } else {
        None
    };
    let data_dir = temp.as_ref().map_or(data_dir, |t| t.path().to_owned());

    // `up` gives each service its own admin port unless one was configured.
    let catalog_config = catalog_config(
        sources,
        Some(&data_dir),
        addr_table(&[("admin_addr", "[::]:9081".into())]),
    )?;
    let catalog = CatalogServer::build(catalog_config)
        .await
        .context("starting the catalog")?;
    seed_if_empty(catalog.store()).await?;
    let catalog_grpc = loopback(catalog.grpc_addr());

    let mut gateway_base = addr_table(&[("admin_addr", "[::]:9080".into())]);
    let mut upstream = Table::new();
    upstream.insert("url".into(), format!("http://{catalog_grpc}").into());
    gateway_base.insert("catalog".into(), upstream.into());
    let gateway_config = GatewayConfig::load(gateway_base, sources).map_err(BadConfig)?;
    let gateway = GatewayServer::build(gateway_config).context("starting the gateway")?;

    let rows = [
        (
            "gateway",
            format!("http://{}", display(gateway.http_addr())),
            gateway.admin_addr(),
        ),
        (
            "catalog",
            format!("grpc://{}", display(catalog.grpc_addr())),
            catalog.admin_addr(),
        ),
    ];
    let admins: Vec<_> = rows.iter().map(|r| r.2).collect();
    let public = format!("http://{}", display(gateway.http_addr()));

    let shutdown = emporium_chassis::lifecycle::shutdown_on_signals();
    let mut tasks = tokio::task::JoinSet::new();
    let token = shutdown.clone();
    tasks.spawn(async move { catalog.run(token).await.map(drop).context("catalog") });
    let token = shutdown.clone();
    tasks.spawn(async move { gateway.run(token).await.map(drop).context("gateway") });

    if !wait_all(&admins, Duration::from_secs(30)).await {
        shutdown.cancel();
        anyhow::bail!("services did not become ready within 30s");
    }
    let ready_in = started.elapsed();
    print_table(&rows, &data_dir, ephemeral, ready_in, &public)?;
    tracing::info!(ready_ms = ready_in.as_millis() as u64, "all services ready");

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.context("a service task panicked").and_then(|r| r);
        if let Err(e) = result {
            // One service failing brings the others down: a half-running store is worse.
            tracing::error!(error = %format!("{e:#}"), "service failed; stopping the others");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    drop(temp);
    first_error.map_or(Ok(()), Err)
}

async fn seed_if_empty(store: &emporium_catalog::Store) -> anyhow::Result<()> {
    if store.count_products().await? > 0 || !store.list_categories().await?.is_empty() {
        return Ok(());
    }
    let report = import_catalog(store, SEED_CATALOG)
        .await
        .context("seeding the catalog")?;
    tracing::info!(
        products = report.created,
        categories = report.categories,
        "seeded the empty catalog"
    );
    Ok(())
}

fn display(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn print_table(
    rows: &[(&str, String, std::net::SocketAddr)],
    data_dir: &std::path::Path,
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
    for (name, serves, admin) in rows {
        writeln!(out, "  {name:<10} {serves:<28} http://{}", display(*admin))?;
    }
    writeln!(out, "\n  Try:  curl {public}/api/v1/products")?;
    writeln!(out, "        curl {public}/openapi.json")?;
    writeln!(out, "  Stop: Ctrl-C (drains in-flight requests first)\n")?;
    out.flush()
}
