//! Taking a service's database away and giving it back, for tests of what
//! clients see during and after an outage.
//!
//! - PostgreSQL: the service reaches its server through a [`TcpProxy`] on
//!   loopback. Cutting it closes every open connection (the service's
//!   sessions end mid-use, as in a failover) and refuses new ones until it is
//!   restored — the service meets real I/O errors and pool timeouts.
//! - SQLite: an embedded file has no connection to cut, so the store's test
//!   switch ([`emporium_storage::Outage`]) makes it answer as an unreachable
//!   database does (`PoolTimedOut`).
//!
//! ```text
//! let outage = &system.shipping_database;
//! outage.begin();   // … the service's database is gone …
//! outage.end();
//! ```

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One service's database, which a test can make unavailable.
#[derive(Debug)]
pub enum DatabaseOutage {
    /// PostgreSQL through a proxy that is cut and restored.
    Proxy(TcpProxy),
    /// SQLite: the store's test switch.
    Switch(emporium_storage::Outage),
}

impl DatabaseOutage {
    /// The database becomes unreachable for the service.
    pub fn begin(&self) {
        match self {
            Self::Proxy(proxy) => proxy.cut(),
            Self::Switch(switch) => switch.begin(),
        }
    }

    /// The database is back.
    pub fn end(&self) {
        match self {
            Self::Proxy(proxy) => proxy.restore(),
            Self::Switch(switch) => switch.end(),
        }
    }
}

/// A TCP proxy on `127.0.0.1:0` to one target, which can be cut (open
/// connections closed, new ones accepted and closed at once) and restored.
/// Stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding connections to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, _) = watch::channel(true);
        let watch = up.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*watch.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(client, target, watch.subscribe()));
            }
        });
        Ok(Self { addr, up, accept })
    }

    /// Where clients connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.accept.abort();
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

/// A proxy to the server `url` (`postgres://user@host:port/db?…`) names
/// (port 5432 when absent), and `url` with its host and port replaced by the
/// proxy's.
pub async fn proxied(url: &str) -> anyhow::Result<(String, TcpProxy)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("no scheme in the database URL"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let target = tokio::net::lookup_host(&host_port)
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host_port} does not resolve"))?;
    let proxy = TcpProxy::start(target).await?;
    let url = format!("{scheme}://{userinfo}{}{tail}", proxy.addr());
    Ok((url, proxy))
}
