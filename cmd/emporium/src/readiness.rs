//! Waiting for services to report ready on their admin ports, the same
//! `/readyz` a Kubernetes probe reads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One `GET /readyz`; true on a 200.
async fn is_ready(addr: SocketAddr) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), probe).await,
        Ok(Ok(true))
    )
}

/// Polls every admin address until all are ready or `limit` passes.
pub async fn wait_all(admin_addrs: &[SocketAddr], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pending: Vec<SocketAddr> = admin_addrs.iter().map(|a| loopback(*a)).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for addr in pending {
            if !is_ready(addr).await {
                still.push(addr);
            }
        }
        pending = still;
        if pending.is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Where to reach a listener bound on a wildcard address from this host.
pub fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}
