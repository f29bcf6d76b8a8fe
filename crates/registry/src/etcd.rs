//! The etcd calls the registry makes, each under the configured deadline,
//! each failure sorted into [`Error::Unavailable`] or [`Error::Rejected`].
//! The generated protobuf types stay in this module and the tasks that
//! drive the two streams ([`crate::registration`], [`crate::watcher`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::Error;
use crate::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
    PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse, kv_client::KvClient,
    lease_client::LeaseClient, watch_client::WatchClient, watch_request::RequestUnion,
};
use crate::proto::mvccpb::KeyValue;

#[derive(Debug, Clone)]
pub(crate) struct Etcd {
    kv: KvClient<Channel>,
    lease: LeaseClient<Channel>,
    watch: WatchClient<Channel>,
    deadline: Duration,
}

/// A lease as etcd granted it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease {
    pub(crate) id: i64,
    pub(crate) ttl_secs: i64,
}

/// An open LeaseKeepAlive stream for one lease. The request sender is kept
/// for as long as the stream: closing it would end the stream.
#[derive(Debug)]
pub(crate) struct KeepAliveStream {
    lease: i64,
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

/// An open Watch stream. Holds the request sender for the same reason.
#[derive(Debug)]
pub(crate) struct WatchStream {
    _requests: mpsc::Sender<WatchRequest>,
    pub(crate) responses: Streaming<WatchResponse>,
}

impl Etcd {
    pub(crate) fn new(channel: Channel, deadline: Duration) -> Self {
        Self {
            kv: KvClient::new(channel.clone()),
            lease: LeaseClient::new(channel.clone()),
            watch: WatchClient::new(channel),
            deadline,
        }
    }

    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// A request that tells etcd our deadline too (`grpc-timeout`), so it
    /// stops working on an answer nobody waits for.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.deadline);
        request
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.deadline, call).await {
            Err(_elapsed) => Err(Error::deadline(operation, self.deadline)),
            Ok(Err(status)) => Err(Error::from_status(operation, status)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// Every key under `prefix`, and the revision they were read at.
    pub(crate) async fn range_prefix(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), Error> {
        let request = self.request(RangeRequest {
            key: prefix.to_vec(),
            range_end: prefix_end(prefix),
            ..RangeRequest::default()
        });
        let mut kv = self.kv.clone();
        let response = self.call("range", kv.range(request)).await?;
        let revision = response.header.map_or(0, |h| h.revision);
        Ok((response.kvs, revision))
    }

    pub(crate) async fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), Error> {
        let request = self.request(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            lease,
            ..PutRequest::default()
        });
        let mut kv = self.kv.clone();
        self.call("put", kv.put(request)).await.map(drop)
    }

    pub(crate) async fn grant(&self, ttl_secs: i64) -> Result<Lease, Error> {
        let request = self.request(LeaseGrantRequest {
            ttl: ttl_secs,
            id: 0,
        });
        let mut lease = self.lease.clone();
        let response = self.call("lease grant", lease.lease_grant(request)).await?;
        if !response.error.is_empty() {
            return Err(Error::Rejected {
                operation: "lease grant",
                code: tonic::Code::Unknown,
                message: response.error,
            });
        }
        Ok(Lease {
            id: response.id,
            ttl_secs: response.ttl,
        })
    }

    pub(crate) async fn revoke(&self, id: i64) -> Result<(), Error> {
        let request = self.request(LeaseRevokeRequest { id });
        let mut lease = self.lease.clone();
        self.call("lease revoke", lease.lease_revoke(request))
            .await
            .map(drop)
    }

    /// Opens a keep-alive stream and sends the first keep-alive, whose
    /// answer comes from [`KeepAliveStream::next`].
    pub(crate) async fn keep_alive(&self, lease: i64) -> Result<KeepAliveStream, Error> {
        let (requests, rx) = mpsc::channel(1);
        // The channel is new and empty: room for one.
        requests
            .try_send(LeaseKeepAliveRequest { id: lease })
            .map_err(|_| Error::deadline("lease keep-alive", self.deadline))?;
        let mut client = self.lease.clone();
        let responses = self
            .call(
                "lease keep-alive",
                client.lease_keep_alive(ReceiverStream::new(rx)),
            )
            .await?;
        Ok(KeepAliveStream {
            lease,
            requests,
            responses,
        })
    }

    /// Opens a watch over every key under `prefix`, from `start_revision`.
    pub(crate) async fn watch_prefix(
        &self,
        prefix: &[u8],
        start_revision: i64,
    ) -> Result<WatchStream, Error> {
        let (requests, rx) = mpsc::channel(1);
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.to_vec(),
                range_end: prefix_end(prefix),
                start_revision,
                ..WatchCreateRequest::default()
            })),
        };
        requests
            .try_send(create)
            .map_err(|_| Error::deadline("watch", self.deadline))?;
        let mut client = self.watch.clone();
        let responses = self
            .call("watch", client.watch(ReceiverStream::new(rx)))
            .await?;
        Ok(WatchStream {
            _requests: requests,
            responses,
        })
    }
}

impl KeepAliveStream {
    /// The TTL etcd reports for the lease after the keep-alive sent last
    /// (0 or less: the lease is gone), within the deadline.
    pub(crate) async fn answer(&mut self, deadline: Duration) -> Result<i64, Error> {
        const OPERATION: &str = "lease keep-alive";
        match tokio::time::timeout(deadline, self.responses.message()).await {
            Err(_elapsed) => Err(Error::deadline(OPERATION, deadline)),
            Ok(Err(status)) => Err(Error::from_status(OPERATION, status)),
            Ok(Ok(None)) => Err(Error::Unavailable {
                operation: OPERATION,
                status: Status::unavailable("etcd ended the keep-alive stream"),
            }),
            Ok(Ok(Some(response))) => Ok(response.ttl),
        }
    }

    /// Sends the next keep-alive. One is outstanding at a time (each is
    /// answered before the next is sent), so the channel has room.
    pub(crate) fn send(&mut self) -> Result<(), Error> {
        self.requests
            .try_send(LeaseKeepAliveRequest { id: self.lease })
            .map_err(|_| Error::Unavailable {
                operation: "lease keep-alive",
                status: Status::unavailable("the keep-alive stream is closed"),
            })
    }
}

/// The end of the range of keys that start with `prefix` (etcd's
/// convention: the prefix with its last byte below 0xff incremented).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_range_ends_after_the_last_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/a/b/"), b"/a/b0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
