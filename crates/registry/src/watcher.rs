//! The background task behind [`crate::Registry::watch`]: keeps a
//! `watch::Receiver` equal to the addresses registered for one service.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use crate::Error;
use crate::backoff::Backoff;
use crate::etcd::Etcd;
use crate::proto::mvccpb::{KeyValue, event::EventType};

/// The registered addresses by key.
type Members = BTreeMap<Vec<u8>, SocketAddr>;

/// Starts following the keys under `prefix`, listed as `kvs` at `revision`.
/// The task ends when every receiver is dropped.
pub(crate) fn spawn(
    etcd: Etcd,
    prefix: Vec<u8>,
    kvs: Vec<KeyValue>,
    revision: i64,
    max_backoff: Duration,
) -> watch::Receiver<Vec<SocketAddr>> {
    let members = members(kvs);
    let (tx, rx) = watch::channel(addresses(&members));
    let mut watcher = Watcher {
        etcd,
        prefix,
        members,
        backoff: Backoff::new(max_backoff),
    };
    tokio::spawn(async move {
        tokio::select! {
            () = tx.closed() => {}
            never = watcher.run(&tx, revision) => match never {},
        }
    });
    rx
}

/// The addresses among `kvs`; a value that is not a socket address is
/// skipped with a warning.
pub(crate) fn members(kvs: Vec<KeyValue>) -> Members {
    kvs.into_iter()
        .filter_map(|kv| {
            let addr = parse(&kv)?;
            Some((kv.key, addr))
        })
        .collect()
}

/// Sorted and deduplicated (two keys may name one address).
pub(crate) fn addresses(members: &Members) -> Vec<SocketAddr> {
    let mut addresses: Vec<SocketAddr> = members.values().copied().collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

fn parse(kv: &KeyValue) -> Option<SocketAddr> {
    let parsed = std::str::from_utf8(&kv.value)
        .ok()
        .and_then(|value| value.parse().ok());
    if parsed.is_none() {
        let error = Error::BadValue {
            key: String::from_utf8_lossy(&kv.key).into_owned(),
            value: String::from_utf8_lossy(&kv.value).into_owned(),
        };
        tracing::warn!(%error, "skipping a registry entry that is not a socket address");
    }
    parsed
}

struct Watcher {
    etcd: Etcd,
    prefix: Vec<u8>,
    members: Members,
    backoff: Backoff,
}

/// Why a watch stream ended.
enum Broke {
    /// The revision to watch from was compacted away.
    Compacted {
        revision: i64,
    },
    Canceled {
        reason: String,
    },
    Failed(Error),
}

impl fmt::Display for Broke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compacted { revision } => write!(f, "etcd compacted up to revision {revision}"),
            Self::Canceled { reason } => write!(f, "etcd canceled the watch: {reason}"),
            Self::Failed(error) => error.fmt(f),
        }
    }
}

impl Watcher {
    async fn run(&mut self, tx: &watch::Sender<Vec<SocketAddr>>, mut revision: i64) -> Infallible {
        loop {
            let broke = self.follow(tx, revision + 1).await;
            let prefix = String::from_utf8_lossy(&self.prefix).into_owned();
            tracing::warn!(prefix = %prefix, reason = %broke, "the registry watch broke; listing again");
            // Changes during the gap are not replayed but listed: the new
            // list replaces the old one, and the next watch starts after it.
            loop {
                self.backoff.wait().await;
                match self.etcd.range_prefix(&self.prefix).await {
                    Ok((kvs, listed_at)) => {
                        self.members = members(kvs);
                        publish(tx, &self.members);
                        revision = listed_at;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(prefix = %prefix, %error, "listing the registry failed; retrying");
                    }
                }
            }
        }
    }

    /// Applies the changes from `start_revision` on until the stream ends.
    /// Waiting for the next change has no deadline (a quiet service sends
    /// none); a dead connection is noticed by the HTTP/2 pings.
    async fn follow(&mut self, tx: &watch::Sender<Vec<SocketAddr>>, start_revision: i64) -> Broke {
        let mut stream = match self.etcd.watch_prefix(&self.prefix, start_revision).await {
            Ok(stream) => stream,
            Err(error) => return Broke::Failed(error),
        };
        loop {
            let response = match stream.responses.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    return Broke::Failed(Error::Unavailable {
                        operation: "watch",
                        status: tonic::Status::unavailable("etcd ended the watch stream"),
                    });
                }
                Err(status) => return Broke::Failed(Error::from_status("watch", status)),
            };
            if response.canceled {
                return if response.compact_revision > 0 {
                    Broke::Compacted {
                        revision: response.compact_revision,
                    }
                } else {
                    Broke::Canceled {
                        reason: response.cancel_reason,
                    }
                };
            }
            if response.created {
                self.backoff.reset();
            }
            for event in response.events {
                let kind = event.r#type();
                let Some(kv) = event.kv else { continue };
                let addr = match kind {
                    EventType::Put => parse(&kv),
                    EventType::Delete => None,
                };
                match addr {
                    Some(addr) => self.members.insert(kv.key, addr),
                    None => self.members.remove(&kv.key),
                };
            }
            publish(tx, &self.members);
        }
    }
}

fn publish(tx: &watch::Sender<Vec<SocketAddr>>, members: &Members) {
    let now = addresses(members);
    tx.send_if_modified(|current| {
        if *current == now {
            false
        } else {
            *current = now;
            true
        }
    });
}
