//! The public HTTP server: an axum [`Router`] on hyper, with the connection
//! limits a server facing the internet needs and `axum::serve` does not set.
//!
//! - **Header read timeout**: a connection that has not sent a request's
//!   whole head within [`ConnectionLimits::header_read_timeout`] is closed.
//!   The clock starts whenever the connection waits for a request, so an
//!   HTTP/1.1 keep-alive connection left idle is closed after the same time.
//! - **Idle timeout**: a connection (HTTP/1.1 or HTTP/2) with no request in
//!   flight and no request started for [`ConnectionLimits::idle_timeout`] is
//!   closed gracefully (an HTTP/2 client gets GOAWAY).
//! - **Body read timeout**: a request body that sends nothing for
//!   [`ConnectionLimits::body_read_timeout`] fails; the handler answers with
//!   its body error and the connection is not reused.
//! - **Connection cap**: at most [`ConnectionLimits::max_connections`] are
//!   served at once; beyond it the server stops accepting (new connections
//!   wait in the kernel's backlog) until one closes.
//! - **Header size**: heads above [`ConnectionLimits::max_header_bytes`] are
//!   answered 431 (HTTP/1.1) or refused (HTTP/2's header list size).
//! - **HTTP/2 streams**: at most [`ConnectionLimits::max_concurrent_streams`]
//!   per connection.
//!
//! Each request carries [`axum::extract::ConnectInfo`] with the peer address.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::{ConfigError, Duration};

/// Limits on the connections of a public HTTP port (`[<service>.connections]`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Time to receive a request's head, counted from when the connection
    /// starts waiting for it (also an idle HTTP/1.1 keep-alive's limit).
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Longest pause between two pieces of a request body.
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Largest request head (start line and headers), in bytes.
    pub max_header_bytes: usize,
    /// HTTP/2 streams open at once per connection.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            max_concurrent_streams: 100,
        }
    }
}

impl ConnectionLimits {
    /// Checks that every limit makes sense; `section` names the table in
    /// errors (e.g. `gateway.connections`).
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let positive = |key: &str, d: Duration| {
            if d.get().is_zero() {
                Err(ConfigError::invalid(
                    format!("{section}.{key}"),
                    "must be above 0",
                ))
            } else {
                Ok(())
            }
        };
        positive("header_read_timeout", self.header_read_timeout)?;
        positive("idle_timeout", self.idle_timeout)?;
        positive("body_read_timeout", self.body_read_timeout)?;
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::invalid(
                format!("{section}.max_connections"),
                "must be 1 to 1000000",
            ));
        }
        if !(8192..=1024 * 1024).contains(&self.max_header_bytes) {
            return Err(ConfigError::invalid(
                format!("{section}.max_header_bytes"),
                "must be 8192 to 1048576",
            ));
        }
        if !(1..=10_000).contains(&self.max_concurrent_streams) {
            return Err(ConfigError::invalid(
                format!("{section}.max_concurrent_streams"),
                "must be 1 to 10000",
            ));
        }
        Ok(())
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then stops
/// accepting, asks every connection to finish its in-flight requests
/// (HTTP/1.1: close after the current answer; HTTP/2: GOAWAY) and returns
/// once all have closed. The caller bounds that wait (the drain deadline).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.get())
        // A head that does not fit the read buffer is answered 431.
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before
                    // accept: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(StdDuration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (builder, router, stop) = (Arc::clone(&builder), router.clone(), stop.clone());
        connections.spawn(async move {
            serve_connection(&builder, stream, peer, router, limits, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// What a connection is doing, for its idle watchdog.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last request start or end.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the connection becomes idle for too long if nothing happens.
    fn idle_deadline(&self, idle: StdDuration) -> Instant {
        self.started + StdDuration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }
}

/// Decrements the in-flight count when a request's handling ends, however.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

async fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity {
        started: Instant::now(),
        last: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let body_timeout = limits.body_read_timeout.get();
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            activity.touch();
            let guard = InFlight(Arc::clone(&activity));
            let mut request = request.map(|body| Body::new(TimedBody::new(body, body_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(guard);
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let idle = limits.idle_timeout.get();
    let mut closing = false;
    loop {
        let deadline = activity.idle_deadline(idle);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline), if !closing => {
                let quiet = activity.in_flight.load(Ordering::Relaxed) == 0
                    && Instant::now() >= activity.idle_deadline(idle);
                if quiet {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A request body that fails when the client sends nothing for `limit`
/// while it is being read (the clock runs only while the reader waits).
struct TimedBody {
    inner: Incoming,
    limit: StdDuration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: StdDuration) -> Self {
        Self {
            inner,
            limit,
            sleep: None,
        }
    }
}

/// The error a [`TimedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for more than {0:?}")]
pub struct BodyReadTimeout(StdDuration);

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(limit))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
