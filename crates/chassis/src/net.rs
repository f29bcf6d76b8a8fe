//! Listeners.
//!
//! Services bind `[::]` by default: one dual-stack socket that accepts IPv6
//! and IPv4 (as mapped addresses), which is what a dual-stack Kubernetes pod
//! needs. `IPV6_V6ONLY` is cleared explicitly rather than trusting the
//! host's `net.ipv6.bindv6only`. On a host without IPv6 the same port is
//! bound on `0.0.0.0` instead.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Binds `addr` (e.g. `"[::]:8080"`, `"127.0.0.1:0"`) for a server.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    match bind_exact(addr) {
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() && ipv6_unsupported(&e) => {
            tracing::warn!(%addr, error = %e, "IPv6 is not available; listening on IPv4 only");
            bind_exact(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port()))
        }
        other => other,
    }
}

fn bind_exact(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

fn ipv6_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(97 /* EAFNOSUPPORT */) | Some(99 /* EADDRNOTAVAIL */)
    )
}

/// Parses a listen address from configuration.
pub fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, crate::config::ConfigError> {
    value.parse().map_err(|_| {
        crate::config::ConfigError::invalid(
            key,
            format!("`{value}` is not a socket address like \"[::]:8080\""),
        )
    })
}

/// A listener that could not be bound, naming the setting that chooses it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the {what} ({source}); choose another address with {key}")]
pub struct BindError {
    pub what: String,
    pub key: String,
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// Binds `addr` for `what` (e.g. "catalog gRPC port"); `key` is the
/// configuration key that sets the address.
pub fn bind_named(what: &str, key: &str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    bind(addr).map_err(|source| BindError {
        what: what.to_owned(),
        key: key.to_owned(),
        addr,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dual_stack_listener_accepts_ipv4_and_ipv6() {
        let listener = bind("[::]:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                listener.accept().await.unwrap();
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        if tokio::net::TcpStream::connect(("::1", port)).await.is_err() {
            // No IPv6 loopback on this host: the IPv4 path is what we can check.
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
        }
        accept.await.unwrap();
    }
}
