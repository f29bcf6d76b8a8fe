//! [`Registration`]: one address kept registered under a lease by a
//! background task, until it is deregistered or dropped.

use std::convert::Infallible;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::backoff::Backoff;
use crate::etcd::{Etcd, Lease};

/// An address registered under a lease that a background task keeps alive.
///
/// [`Registration::deregister`] removes the key at once. Dropping the
/// registration instead stops the keep-alive only, so the key disappears
/// when the lease expires, as it would if the process had crashed.
#[derive(Debug)]
pub struct Registration {
    key: String,
    lease: watch::Receiver<i64>,
    // Dropping the sender (with the registration) stops the task.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    etcd: Etcd,
}

impl Registration {
    /// Starts keeping `lease` (to which `key` = `value` is attached) alive.
    pub(crate) fn start(
        etcd: Etcd,
        key: String,
        value: String,
        lease: Lease,
        ttl_secs: i64,
        max_backoff: Duration,
    ) -> Self {
        let (lease_tx, lease_rx) = watch::channel(lease.id);
        let (stop, stopped) = oneshot::channel::<()>();
        let keeper = KeepAlive {
            etcd: etcd.clone(),
            key: key.clone(),
            value,
            ttl_secs,
            lease_tx,
            backoff: Backoff::new(max_backoff),
        };
        let task = tokio::spawn(async move {
            // Cancelling `run` at any await point is safe: a new lease is
            // published before a key is put under it, so deregister always
            // revokes the lease the key may be attached to.
            tokio::select! {
                _ = stopped => {}
                never = keeper.run(lease) => match never {},
            }
        });
        Self {
            key,
            lease: lease_rx,
            stop,
            task,
            etcd,
        }
    }

    /// The key this registration keeps in etcd.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lease the key is attached to now (it changes when a lost lease
    /// is replaced).
    pub fn lease_id(&self) -> i64 {
        *self.lease.borrow()
    }

    /// Stops the keep-alive and revokes the lease, which deletes the key at
    /// once. If etcd cannot be reached, the error says so and the key
    /// disappears when the lease expires (the keep-alive has stopped).
    pub async fn deregister(self) -> Result<(), Error> {
        let Self {
            key,
            lease,
            stop,
            task,
            etcd,
        } = self;
        drop(stop);
        // The task ends at its next await point; wait for it so that it
        // cannot grant and put again after the revoke below.
        let abort = task.abort_handle();
        if tokio::time::timeout(etcd.deadline(), task).await.is_err() {
            abort.abort();
        }
        let lease_id = *lease.borrow();
        match etcd.revoke(lease_id).await {
            Ok(()) => {
                tracing::info!(key = %key, lease_id, "deregistered");
                Ok(())
            }
            // The lease already expired, and the key with it.
            Err(Error::Rejected {
                code: tonic::Code::NotFound,
                ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The state of the keep-alive task.
struct KeepAlive {
    etcd: Etcd,
    key: String,
    value: String,
    ttl_secs: i64,
    lease_tx: watch::Sender<i64>,
    backoff: Backoff,
}

enum Ended {
    /// etcd answered that the lease does not exist (expired, revoked, or
    /// etcd lost its data).
    LeaseLost,
    Failed(Error),
}

impl KeepAlive {
    async fn run(mut self, mut lease: Lease) -> Infallible {
        let mut lost = false;
        loop {
            if lost {
                match self.register_again().await {
                    Ok(new) => {
                        tracing::info!(key = %self.key, lease_id = new.id, "registered again under a new lease");
                        lease = new;
                        lost = false;
                    }
                    Err(error) => {
                        tracing::warn!(key = %self.key, %error, "registering again failed; retrying");
                        self.backoff.wait().await;
                        continue;
                    }
                }
            }
            match self.keep_alive(lease).await {
                Ended::LeaseLost => {
                    tracing::warn!(key = %self.key, lease_id = lease.id, "the lease is gone; registering again");
                    lost = true;
                }
                Ended::Failed(error) => {
                    tracing::warn!(key = %self.key, lease_id = lease.id, %error, "keep-alive failed; retrying");
                    self.backoff.wait().await;
                }
            }
        }
    }

    /// Keeps `lease` alive until that fails.
    async fn keep_alive(&mut self, lease: Lease) -> Ended {
        let interval = Duration::from_secs(lease.ttl_secs.max(1).unsigned_abs()) / 3;
        let deadline = self.etcd.deadline();
        let mut stream = match self.etcd.keep_alive(lease.id).await {
            Ok(stream) => stream,
            Err(error) => return Ended::Failed(error),
        };
        loop {
            match stream.answer(deadline).await {
                Err(error) => return Ended::Failed(error),
                Ok(ttl) if ttl <= 0 => return Ended::LeaseLost,
                Ok(_) => self.backoff.reset(),
            }
            tokio::time::sleep(interval).await;
            if let Err(error) = stream.send() {
                return Ended::Failed(error);
            }
        }
    }

    async fn register_again(&mut self) -> Result<Lease, Error> {
        let lease = self.etcd.grant(self.ttl_secs).await?;
        // Published before the put: see the note in `Registration::start`.
        self.lease_tx.send_replace(lease.id);
        self.etcd.put(&self.key, &self.value, lease.id).await?;
        Ok(lease)
    }
}
