#![allow(clippy::unwrap_used)] // Tests fail loudly by design.
//! The client stack against real gRPC servers on several loopback
//! addresses behind one name (resolved by an injected table, not
//! `/etc/hosts`): balancing, ejection, probing, retries and their budget,
//! deadlines.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use emporium_chassis::client::{
    CallContext, CallError, Channel, Client, Deadline, RETRY_AFTER_KEY, Resolver, StaticResolver,
    Upstream,
};
use emporium_chassis::config::Duration as ConfigDuration;
use emporium_chassis::{Metrics, TraceContext};
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::Service;

const NAME: &str = "catalog.test";

/// What a test can see of and do to one server.
#[derive(Debug, Default)]
struct Knobs {
    calls: AtomicUsize,
    failing: AtomicBool,
    delay_ms: AtomicU64,
    last_timeout: Mutex<Option<String>>,
}

/// The health service behind a switch: counts calls, answers UNAVAILABLE
/// while failing, waits a while when told to.
#[derive(Clone)]
struct Switched<S> {
    inner: S,
    knobs: Arc<Knobs>,
}

impl<S> NamedService for Switched<S> {
    const NAME: &'static str = "grpc.health.v1.Health";
}

impl<S> Service<http::Request<Body>> for Switched<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let knobs = Arc::clone(&self.knobs);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            knobs.calls.fetch_add(1, Ordering::SeqCst);
            *knobs.last_timeout.lock().unwrap() = request
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let delay = knobs.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if knobs.failing.load(Ordering::SeqCst) {
                return Ok(tonic::Status::unavailable("switched off").into_http());
            }
            inner.call(request).await
        })
    }
}

struct Server {
    addr: SocketAddr,
    knobs: Arc<Knobs>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn calls(&self) -> usize {
        self.knobs.calls.load(Ordering::SeqCst)
    }

    /// Stops serving (the listener closes; connections are told to go away).
    async fn kill(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn serve_on(addr: SocketAddr) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    let knobs = Arc::new(Knobs::default());
    let service = Switched {
        inner: health,
        knobs: Arc::clone(&knobs),
    };
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await;
    });
    Ok(Server {
        addr,
        knobs,
        stop,
        task,
    })
}

/// Servers on 127.0.0.2, 127.0.0.3, … all on one port (as pods of one
/// Service are), the port picked by the first.
async fn servers(n: u8) -> (u16, Vec<Server>) {
    for _ in 0..20 {
        let first = serve_on("127.0.0.2:0".parse().unwrap()).await.unwrap();
        let port = first.addr.port();
        let mut all = vec![first];
        for i in 1..n {
            match serve_on(SocketAddr::new(ip(i), port)).await {
                Ok(server) => all.push(server),
                Err(_) => break,
            }
        }
        if all.len() == usize::from(n) {
            return (port, all);
        }
        for server in all {
            server.kill().await;
        }
    }
    panic!("no port free on every test address");
}

fn ip(i: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, 2 + i])
}

fn upstream(port: u16, table: &StaticResolver) -> Upstream {
    let mut upstream =
        Upstream::new(format!("http://{NAME}:{port}")).resolved_by(Resolver::new(table.clone()));
    upstream.resolve_interval = ConfigDuration::from_millis(200);
    upstream.timeout = ConfigDuration::from_secs(2);
    upstream.breaker.ejection_min = ConfigDuration::from_millis(300);
    upstream.breaker.ejection_max = ConfigDuration::from_secs(2);
    upstream
}

fn client(upstream: &Upstream) -> (Client<HealthClient<Channel>>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new("test"));
    let client = Client::new("test.catalog", upstream, &metrics, HealthClient::new).unwrap();
    (client, metrics)
}

fn context() -> CallContext {
    CallContext::new(TraceContext::new_root(), None)
}

async fn check(client: &Client<HealthClient<Channel>>) -> Result<(), CallError> {
    client
        .call_idempotent(
            &context(),
            HealthCheckRequest::default(),
            |mut c, r| async move { c.check(r).await },
        )
        .await
        .map(drop)
}

async fn check_once(client: &Client<HealthClient<Channel>>) -> Result<(), CallError> {
    client
        .call(
            &context(),
            HealthCheckRequest::default(),
            |mut c, r| async move { c.check(r).await },
        )
        .await
        .map(drop)
}

/// `n` calls, four at a time (traffic, as opposed to one caller in a loop).
async fn traffic(client: &Client<HealthClient<Channel>>, n: usize) {
    let calls = (0..4).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..n / 4 {
                check(&client).await.unwrap();
            }
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
}

/// Polls `ok` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok()
}

fn metric(metrics: &Metrics, line_start: &str) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_endpoints_behind_one_name_each_get_a_fair_share_of_1000_calls() {
    let (port, servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0), ip(1)]);
    let (client, metrics) = client(&upstream(port, &table));
    // Eight callers at a time, as a busy gateway has.
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..125 {
                check(&client).await.unwrap();
            }
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    let (a, b) = (servers[0].calls(), servers[1].calls());
    assert_eq!(a + b, 1000);
    for n in [a, b] {
        assert!((250..=750).contains(&n), "split {a}/{b}");
    }
    assert_eq!(
        metric(&metrics, "grpc_client_requests_total{"),
        1000.0,
        "per-endpoint metrics count every call"
    );
    assert!(metrics.render().contains("grpc_client_endpoints{"));
}

#[tokio::test]
async fn a_killed_endpoint_stops_getting_calls_and_no_idempotent_call_fails() {
    let (port, mut servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0), ip(1)]);
    let (client, _) = client(&upstream(port, &table));
    for _ in 0..50 {
        check(&client).await.unwrap();
    }
    let survivor_before = servers[0].calls();
    servers.pop().unwrap().kill().await;
    // Every call still succeeds: a refused connection never sent the
    // request, so it is retried on the other endpoint.
    for _ in 0..200 {
        check(&client).await.expect("no idempotent call fails");
    }
    assert_eq!(servers[0].calls() - survivor_before, 200);
    assert!(
        client
            .channel()
            .endpoints()
            .iter()
            .any(|(a, ready)| a.ip() == ip(1) && !ready),
        "the dead endpoint is out of rotation: {:?}",
        client.channel().endpoints()
    );
}

#[tokio::test]
async fn a_new_endpoint_gets_calls_within_one_refresh_interval() {
    let (port, servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let up = upstream(port, &table);
    let (client, _) = client(&up);
    for _ in 0..20 {
        check(&client).await.unwrap();
    }
    assert_eq!(servers[1].calls(), 0, "not resolved yet");
    table.set(NAME, [ip(0), ip(1)]);
    let added = Instant::now();
    let mut seen = None;
    while added.elapsed() < Duration::from_secs(5) {
        traffic(&client, 8).await;
        if servers[1].calls() > 0 {
            seen = Some(added.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = seen.expect("the new endpoint never got a call");
    // One interval, plus the scheduling slack of a loaded test machine.
    assert!(
        seen <= up.resolve_interval.get() + Duration::from_millis(300),
        "first call after {seen:?}"
    );
}

#[tokio::test]
async fn an_endpoint_answering_unavailable_is_ejected_and_comes_back_after_a_probe() {
    let (port, servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0), ip(1)]);
    let (client, metrics) = client(&upstream(port, &table));
    servers[1].knobs.failing.store(true, Ordering::SeqCst);
    // Idempotent calls retry on the other endpoint: none fails.
    for _ in 0..100 {
        check(&client).await.expect("retried elsewhere");
    }
    let failing_calls = servers[1].calls();
    assert!(
        failing_calls <= 7 + 2,
        "ejected after 7 consecutive failures (saw {failing_calls} calls)"
    );
    assert!(metric(&metrics, "grpc_client_ejections_total{") >= 1.0);
    assert_eq!(metric(&metrics, "grpc_client_breaker_state{"), 1.0);
    // Healed: after its ejection (≤ 300 ms here) one probe brings it back.
    servers[1].knobs.failing.store(false, Ordering::SeqCst);
    // The probe is the next call after the ejection ends, so keep calling.
    let mut healed = false;
    let end = Instant::now() + Duration::from_secs(5);
    while !healed && Instant::now() < end {
        traffic(&client, 4).await;
        healed = client.channel().endpoints().iter().all(|(_, ready)| *ready);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        healed,
        "the endpoint came back: {:?}",
        client.channel().endpoints()
    );
    let before = servers[1].calls();
    traffic(&client, 100).await;
    assert!(
        servers[1].calls() > before,
        "back in rotation, it gets calls again"
    );
}

#[tokio::test]
async fn when_every_endpoint_is_ejected_calls_fail_at_once_with_unavailable_and_retry_after() {
    let (port, servers) = servers(1).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let mut up = upstream(port, &table);
    up.breaker.ejection_min = ConfigDuration::from_secs(5);
    up.breaker.ejection_max = ConfigDuration::from_secs(10);
    let (client, metrics) = client(&up);
    servers[0].knobs.failing.store(true, Ordering::SeqCst);
    for _ in 0..7 {
        let _ = check_once(&client).await;
    }
    assert_eq!(servers[0].calls(), 7);
    let started = Instant::now();
    let Err(CallError::Status(status)) = check(&client).await else {
        panic!("expected UNAVAILABLE");
    };
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "fails at once"
    );
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(servers[0].calls(), 7, "nothing sent to an ejected endpoint");
    let retry_after: u64 = status
        .metadata()
        .get(RETRY_AFTER_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a retry-after hint");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(metric(&metrics, "grpc_client_breaker_state{"), 2.0);
    assert!(metric(&metrics, "grpc_client_fail_fast_total{") >= 1.0);
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_on_unavailable() {
    let (port, servers) = servers(1).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let (client, _) = client(&upstream(port, &table));
    servers[0].knobs.failing.store(true, Ordering::SeqCst);
    let Err(CallError::Status(status)) = check_once(&client).await else {
        panic!("expected a failure");
    };
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(servers[0].calls(), 1);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let (port, servers) = servers(1).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let mut up = upstream(port, &table);
    // Never eject, retry at once: only the budget limits retries here.
    up.breaker.failures = 1_000_000;
    up.retry.backoff_base = ConfigDuration::from_millis(0);
    up.retry.backoff_max = ConfigDuration::from_millis(0);
    up.retry.budget_min_per_second = 0;
    let (client, metrics) = client(&up);
    servers[0].knobs.failing.store(true, Ordering::SeqCst);
    for _ in 0..100 {
        assert!(check(&client).await.is_err());
    }
    let attempts = servers[0].calls();
    // Without a budget: 300 attempts (3 each). With 20 %: about 120.
    assert!(
        (101..=130).contains(&attempts),
        "attempts {attempts} for 100 calls"
    );
    assert!(metric(&metrics, "grpc_client_retry_budget_exhausted_total{") >= 50.0);
    assert!(metric(&metrics, "grpc_client_retries_total{") >= 1.0);
}

#[tokio::test]
async fn the_callers_remaining_time_travels_as_grpc_timeout_and_bounds_the_call() {
    let (port, servers) = servers(1).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let (client, _) = client(&upstream(port, &table));
    servers[0].knobs.delay_ms.store(1_000, Ordering::SeqCst);
    let ctx = context().with_deadline(Deadline::after(Duration::from_millis(150)));
    let started = Instant::now();
    let result = client
        .call_idempotent(&ctx, HealthCheckRequest::default(), |mut c, r| async move {
            c.check(r).await
        })
        .await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(CallError::DeadlineExceeded)),
        "{result:?}"
    );
    assert!(took < Duration::from_millis(400), "took {took:?}");
    let sent = servers[0]
        .knobs
        .last_timeout
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    let sent = emporium_chassis::client::parse_grpc_timeout(&sent).unwrap();
    assert!(
        sent <= Duration::from_millis(150) && sent >= Duration::from_millis(50),
        "grpc-timeout {sent:?}"
    );
    // No time left: nothing is sent at all.
    let calls = servers[0].calls();
    let spent = context().with_deadline(Deadline::after(Duration::ZERO));
    let result = client
        .call_idempotent(
            &spent,
            HealthCheckRequest::default(),
            |mut c, r| async move { c.check(r).await },
        )
        .await;
    assert!(matches!(result, Err(CallError::DeadlineExceeded)));
    assert_eq!(servers[0].calls(), calls);
}

#[tokio::test]
async fn a_slow_endpoint_gets_fewer_calls_than_a_fast_one() {
    let (port, servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0), ip(1)]);
    let (client, _) = client(&upstream(port, &table));
    servers[1].knobs.delay_ms.store(30, Ordering::SeqCst);
    let calls = (0..4).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                check(&client).await.unwrap();
            }
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    let (fast, slow) = (servers[0].calls(), servers[1].calls());
    assert!(fast > 3 * slow, "fast {fast}, slow {slow}");
}

#[tokio::test]
async fn a_name_that_stops_resolving_keeps_its_last_endpoints() {
    let (port, servers) = servers(1).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0)]);
    let (client, metrics) = client(&upstream(port, &table));
    check(&client).await.unwrap();
    table.remove(NAME);
    let failed = eventually(Duration::from_secs(3), || {
        metric(&metrics, "grpc_client_resolve_errors_total{") >= 1.0
    })
    .await;
    assert!(failed, "the resolver was asked again and failed");
    check(&client).await.expect("the last endpoints are kept");
    assert_eq!(servers[0].calls(), 2);
}

#[tokio::test]
async fn a_name_that_never_resolved_fails_with_unavailable() {
    let table = StaticResolver::new();
    let (client, _) = client(&upstream(50051, &table));
    let Err(CallError::Status(status)) = check(&client).await else {
        panic!("an unknown name cannot be called");
    };
    assert_eq!(status.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn a_static_address_list_is_balanced_like_a_resolved_name() {
    let (port, servers) = servers(2).await;
    let mut up = Upstream::new(format!("http://catalog:{port}"));
    up.endpoints = vec![SocketAddr::new(ip(0), port), SocketAddr::new(ip(1), port)];
    let (client, _) = client(&up);
    traffic(&client, 400).await;
    let (a, b) = (servers[0].calls(), servers[1].calls());
    assert_eq!(a + b, 400);
    assert!((100..=300).contains(&a), "split {a}/{b}");
}

#[tokio::test]
async fn an_endpoint_dropped_from_the_name_finishes_its_calls_and_gets_no_more() {
    let (port, servers) = servers(2).await;
    let table = StaticResolver::new();
    table.set(NAME, [ip(0), ip(1)]);
    let (client, _) = client(&upstream(port, &table));
    traffic(&client, 40).await;
    // Slow calls are in flight on both endpoints when the name drops one.
    servers[1].knobs.delay_ms.store(300, Ordering::SeqCst);
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move { traffic(&client, 40).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    table.set(NAME, [ip(0)]);
    client.channel().refresh_now();
    in_flight.await.expect("no call in flight failed");
    let gone = eventually(Duration::from_secs(3), || {
        client
            .channel()
            .endpoints()
            .iter()
            .all(|(a, _)| a.ip() == ip(0))
    })
    .await;
    assert!(gone, "{:?}", client.channel().endpoints());
    let before = servers[1].calls();
    traffic(&client, 40).await;
    assert_eq!(
        servers[1].calls(),
        before,
        "a dropped endpoint gets no calls"
    );
}
