//! The registry against a real etcd (`EMPORIUM_TEST_ETCD_URL`, e.g.
//! `http://127.0.0.1:2379`; `.ci/run` starts one). Without it these tests
//! say SKIPPED and pass, except those that need no etcd. Each test works
//! under its own key prefix. The restart test starts its own etcd (the
//! `etcd` binary on PATH) on free ports with a temporary data directory.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use emporium_registry::{Error, Registry, RegistryConfig};
use tokio::sync::watch;

const ETCD_URL_VAR: &str = "EMPORIUM_TEST_ETCD_URL";
/// How long anything a test waits for may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn etcd_url() -> Option<String> {
    let url = std::env::var(ETCD_URL_VAR).ok().filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED (etcd): set {ETCD_URL_VAR} to run this test against etcd");
    }
    url
}

/// A registry at `url` under a prefix no other test uses, retrying soon
/// after a failure so that tests of recovery stay short.
fn registry_at(url: &str) -> anyhow::Result<Registry> {
    let mut config = RegistryConfig::new(url);
    config.prefix = format!("/emporium-test/{}/", uuid::Uuid::new_v4().simple());
    config.max_backoff = Duration::from_millis(500);
    Ok(Registry::connect_lazy_with(&config)?)
}

fn addr(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().with_context(|| format!("parsing {text}"))
}

/// Polls `check` until it holds, failing after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let give_up = Instant::now() + PATIENCE;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > give_up {
            bail!("gave up after {PATIENCE:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until the watched addresses are `expected`.
async fn watched(
    rx: &mut watch::Receiver<Vec<SocketAddr>>,
    expected: &[SocketAddr],
) -> anyhow::Result<()> {
    let waited = tokio::time::timeout(PATIENCE, rx.wait_for(|now| now == expected))
        .await
        .map(|result| result.map(drop));
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(_closed)) => bail!("the watch task ended"),
        Err(_elapsed) => bail!(
            "waited {PATIENCE:?} for the watch to show {expected:?}; it shows {:?}",
            *rx.borrow()
        ),
    }
    Ok(())
}

/// Writes to etcd through its JSON gateway, the way another tool would,
/// bypassing the registry (which only writes addresses). One bounded
/// HTTP/1.1 request.
async fn etcd_gateway(url: &str, path: &str, body: String) -> anyhow::Result<()> {
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(&host)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        ensure!(
            response.starts_with("HTTP/1.1 200"),
            "etcd's gateway answered {path} with {response}"
        );
        Ok(())
    })
    .await?
}

async fn put_raw(url: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = format!(
        r#"{{"key":"{}","value":"{}"}}"#,
        b64.encode(key),
        b64.encode(value)
    );
    etcd_gateway(url, "/v3/kv/put", body).await
}

async fn revoke_raw(url: &str, lease_id: i64) -> anyhow::Result<()> {
    etcd_gateway(url, "/v3/lease/revoke", format!(r#"{{"ID":"{lease_id}"}}"#)).await
}

#[tokio::test]
async fn a_registered_address_is_listed_until_it_is_deregistered() -> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let v4 = addr("127.0.0.2:50051")?;
    let v6 = addr("[::1]:50051")?;

    let first = registry
        .register("catalog", v4, Duration::from_secs(10))
        .await?;
    let second = registry
        .register("catalog", v6, Duration::from_secs(10))
        .await?;
    assert_eq!(
        first.key(),
        format!("{}catalog/127.0.0.2:50051", registry.prefix())
    );
    assert_eq!(registry.list("catalog").await?, vec![v4, v6]);
    assert_eq!(registry.list("cart").await?, vec![]);

    first.deregister().await?;
    assert_eq!(registry.list("catalog").await?, vec![v6]);
    second.deregister().await?;
    assert_eq!(registry.list("catalog").await?, vec![]);
    Ok(())
}

#[tokio::test]
async fn a_watch_sees_a_second_instance_appear_and_a_deregistered_one_go() -> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let a = addr("127.0.0.2:50051")?;
    let b = addr("127.0.0.3:50051")?;
    let first = registry
        .register("orders", a, Duration::from_secs(10))
        .await?;

    let mut rx = registry.watch("orders").await?;
    assert_eq!(*rx.borrow_and_update(), vec![a]);

    let second = registry
        .register("orders", b, Duration::from_secs(10))
        .await?;
    watched(&mut rx, &[a, b]).await?;
    first.deregister().await?;
    watched(&mut rx, &[b]).await?;
    second.deregister().await?;
    watched(&mut rx, &[]).await?;
    Ok(())
}

#[tokio::test]
async fn a_registration_outlives_its_ttl_while_it_is_kept_alive() -> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let a = addr("127.0.0.2:50051")?;
    let registration = registry
        .register("payment", a, Duration::from_secs(2))
        .await?;

    // Three TTLs of looking: a missed keep-alive would let the key expire.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(registry.list("payment").await?, vec![a]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    registration.deregister().await?;
    Ok(())
}

#[tokio::test]
async fn a_registration_dropped_without_deregistering_disappears_when_its_lease_expires()
-> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let a = addr("127.0.0.2:50051")?;
    let registration = registry
        .register("shipping", a, Duration::from_secs(2))
        .await?;
    let mut rx = registry.watch("shipping").await?;
    assert_eq!(*rx.borrow_and_update(), vec![a]);

    // What a crash looks like to etcd: the keep-alives stop.
    drop(registration);
    let dropped = Instant::now();
    assert_eq!(
        registry.list("shipping").await?,
        vec![a],
        "gone before the lease expired"
    );
    watched(&mut rx, &[]).await?;
    assert!(
        dropped.elapsed() >= Duration::from_secs(1),
        "gone after {:?}, before its lease could expire",
        dropped.elapsed()
    );
    assert_eq!(registry.list("shipping").await?, vec![]);
    Ok(())
}

#[tokio::test]
async fn a_value_under_the_prefix_that_is_not_an_address_is_skipped() -> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let a = addr("127.0.0.2:50051")?;
    let b = addr("127.0.0.3:50051")?;
    let prefix = registry.prefix().to_owned();
    put_raw(&url, &format!("{prefix}currency/junk"), "not an address").await?;
    let first = registry
        .register("currency", a, Duration::from_secs(10))
        .await?;

    assert_eq!(registry.list("currency").await?, vec![a]);
    let mut rx = registry.watch("currency").await?;
    assert_eq!(*rx.borrow_and_update(), vec![a]);

    // Junk arriving on the watch, and a valid key overwritten with junk.
    put_raw(&url, &format!("{prefix}currency/more-junk"), "\u{1F600}").await?;
    let second = registry
        .register("currency", b, Duration::from_secs(10))
        .await?;
    watched(&mut rx, &[a, b]).await?;
    put_raw(&url, second.key(), "300.0.0.1:1").await?;
    watched(&mut rx, &[a]).await?;
    assert_eq!(registry.list("currency").await?, vec![a]);

    first.deregister().await?;
    second.deregister().await?;
    Ok(())
}

#[tokio::test]
async fn a_lost_lease_is_replaced_and_the_address_registered_again() -> anyhow::Result<()> {
    let Some(url) = etcd_url() else { return Ok(()) };
    let registry = registry_at(&url)?;
    let a = addr("127.0.0.2:50051")?;
    let registration = registry
        .register("inventory", a, Duration::from_secs(2))
        .await?;
    let mut rx = registry.watch("inventory").await?;
    let lost = registration.lease_id();

    // Someone revokes the lease (as if it had expired during a partition):
    // the key goes, the keep-alive hears the lease is gone, and registers
    // again under a new one.
    revoke_raw(&url, lost).await?;
    eventually("the address is registered under a new lease", || {
        let registry = registry.clone();
        let renewed = registration.lease_id() != lost;
        async move { Ok(renewed && registry.list("inventory").await? == vec![a]) }
    })
    .await?;
    watched(&mut rx, &[a]).await?;

    registration.deregister().await?;
    watched(&mut rx, &[]).await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_etcd_is_unavailable_within_the_deadline_not_a_hang() -> anyhow::Result<()> {
    let mut config = RegistryConfig::new("http://127.0.0.1:1");
    config.deadline = Duration::from_secs(1);
    let registry = Registry::connect_lazy_with(&config)?;
    let a = addr("127.0.0.2:50051")?;
    let bound = Duration::from_secs(3);

    let started = Instant::now();
    let listed = tokio::time::timeout(bound, registry.list("catalog")).await?;
    assert!(
        matches!(listed, Err(Error::Unavailable { .. })),
        "{listed:?}"
    );
    let registered = tokio::time::timeout(
        bound,
        registry.register("catalog", a, Duration::from_secs(2)),
    )
    .await?;
    assert!(
        matches!(registered, Err(Error::Unavailable { .. })),
        "{registered:?}"
    );
    let watched = tokio::time::timeout(bound, registry.watch("catalog")).await?;
    assert!(
        matches!(watched, Err(Error::Unavailable { .. })),
        "{watched:?}"
    );
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn bad_service_names_and_ttls_are_refused_before_calling_etcd() -> anyhow::Result<()> {
    // Nothing listens here: an error other than the validation one would
    // mean a call was made.
    let registry = Registry::connect_lazy("http://127.0.0.1:1", None)?;
    let a = addr("127.0.0.2:50051")?;
    for name in ["", "Catalog", "a/b", &"x".repeat(64)] {
        let listed = registry.list(name).await;
        assert!(
            matches!(listed, Err(Error::BadServiceName { .. })),
            "{listed:?}"
        );
        let watched = registry.watch(name).await;
        assert!(
            matches!(watched, Err(Error::BadServiceName { .. })),
            "{name:?}"
        );
    }
    let short = registry
        .register("catalog", a, Duration::from_millis(500))
        .await;
    assert!(matches!(short, Err(Error::BadTtl { .. })), "{short:?}");
    Ok(())
}

/// An etcd of the test's own, on free loopback ports, killed on drop.
struct OwnEtcd {
    child: tokio::process::Child,
    url: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl OwnEtcd {
    async fn start(data_dir: &std::path::Path, client: u16, peer: u16) -> anyhow::Result<Self> {
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let child = tokio::process::Command::new("etcd")
            .arg("--name=registry-test")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=registry-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting etcd (is it on PATH?)")?;
        let etcd = Self { child, url };
        let probe = Registry::connect_lazy(&etcd.url, None)?;
        eventually("our etcd answers", || {
            let probe = probe.clone();
            async move { Ok(probe.list("probe").await.is_ok()) }
        })
        .await?;
        Ok(etcd)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

#[tokio::test]
async fn after_etcd_restarts_without_its_data_the_address_is_registered_again_and_watches_resume()
-> anyhow::Result<()> {
    if etcd_url().is_none() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (client, peer) = (free_port()?, free_port()?);
    let etcd = OwnEtcd::start(&dir.path().join("first"), client, peer).await?;
    let mut config = RegistryConfig::new(&etcd.url);
    config.deadline = Duration::from_secs(1);
    config.max_backoff = Duration::from_millis(500);
    let registry = Registry::connect_lazy_with(&config)?;
    let a = addr("127.0.0.2:50051")?;
    let b = addr("127.0.0.3:50051")?;

    let registration = registry
        .register("checkout", a, Duration::from_secs(2))
        .await?;
    let mut rx = registry.watch("checkout").await?;
    assert_eq!(*rx.borrow_and_update(), vec![a]);

    // A new, empty etcd in its place: the lease and the key are gone.
    etcd.stop().await?;
    let etcd = OwnEtcd::start(&dir.path().join("second"), client, peer).await?;

    eventually("the keep-alive registers the address again", || {
        let registry = registry.clone();
        async move { Ok(registry.list("checkout").await.unwrap_or_default() == vec![a]) }
    })
    .await?;
    watched(&mut rx, &[a]).await?;
    // The watch follows the new etcd, not only a list taken once.
    let second = registry
        .register("checkout", b, Duration::from_secs(2))
        .await?;
    watched(&mut rx, &[a, b]).await?;
    second.deregister().await?;
    registration.deregister().await?;
    watched(&mut rx, &[]).await?;
    etcd.stop().await?;
    Ok(())
}
