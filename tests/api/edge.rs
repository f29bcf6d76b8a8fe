//! The public port's connection limits, seen from raw sockets: a client that
//! never finishes its request head, idles on a keep-alive connection, stalls
//! its body, sends a huge head or opens too many connections.

use std::time::{Duration, Instant};

use emporium_testkit::{Running, spawn_gateway_with, table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway with short connection limits; no upstream is needed for
/// `/openapi.json`. `counts` are whole-number settings of `connections`.
async fn gateway(extra: &[(&str, &str)], counts: &[(&str, i64)]) -> Running {
    spawn_gateway_with("http://127.0.0.1:9", settings(extra, counts))
        .await
        .unwrap()
}

fn settings(extra: &[(&str, &str)], counts: &[(&str, i64)]) -> emporium_chassis::config::Table {
    let mut settings = vec![
        ("connections.header_read_timeout", "300ms"),
        ("connections.idle_timeout", "400ms"),
        ("connections.body_read_timeout", "300ms"),
    ];
    settings.extend_from_slice(extra);
    let mut t = table(&settings);
    let connections = t["connections"].as_table_mut().unwrap();
    for (key, value) in counts {
        connections.insert((*key).into(), (*value).into());
    }
    t
}

/// Reads until the server closes the connection (or 5 s pass); returns what
/// was read and how long the close took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for 5 s"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_request_head_never_finished_is_closed_at_the_header_timeout() {
    let gateway = gateway(&[], &[]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_answer() {
    let gateway = gateway(&[], &[]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert!(
        took < Duration::from_secs(2),
        "idle connection open for {took:?}"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_gets_goaway() {
    let gateway = gateway(&[], &[]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    // The client preface and an empty SETTINGS frame, then nothing.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let started = Instant::now();
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    let mut received = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server kept an idle HTTP/2 connection open for 5 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        // Frame headers: 3 bytes length, 1 byte type.
        while received.len() >= 9 {
            let len = usize::from(received[0]) << 16
                | usize::from(received[1]) << 8
                | usize::from(received[2]);
            if received.len() < 9 + len {
                break;
            }
            frames.push(received[3]);
            received.drain(..9 + len);
        }
        if frames.contains(&7) {
            break;
        }
    }
    let took = started.elapsed();
    assert!(frames.contains(&7), "no GOAWAY, frames {frames:?}");
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "GOAWAY after {took:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_is_cut_at_the_body_timeout() {
    let gateway = gateway(&[], &[]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream).await;
    assert!(
        took < Duration::from_secs(2),
        "stalled body held for {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer:.300}");
}

#[tokio::test]
async fn an_oversized_request_head_is_431() {
    let gateway = gateway(&[], &[("max_header_bytes", 8192)]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let big = "a".repeat(10_000);
    let request = format!("GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let (answer, _) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.300}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let gateway = gateway(
        &[
            ("connections.idle_timeout", "10s"),
            ("connections.header_read_timeout", "10s"),
        ],
        &[("max_connections", 2)],
    )
    .await;
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
    let first = TcpStream::connect(gateway.addr).await.unwrap();
    let _second = TcpStream::connect(gateway.addr).await.unwrap();
    // Both held open (accepted, idle); the third is in the backlog.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(gateway.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were open"
    );
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn limits_that_make_no_sense_are_refused_naming_the_key() {
    for (key, value) in [
        ("connections.max_connections", "0"),
        ("connections.header_read_timeout", "0s"),
        ("connections.max_header_bytes", "100"),
        ("connections.max_concurrent_streams", "0"),
    ] {
        let err = spawn_gateway_with("http://127.0.0.1:9", table(&[(key, value)]))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("gateway.{key}")),
            "{key}: {err}"
        );
    }
}

#[tokio::test]
async fn requests_beyond_the_in_flight_bound_are_shed_at_once_with_retry_after() {
    use emporium_testkit::{Backend, SEED_CATALOG, TestDb, seed_catalog, spawn_catalog_with};
    let db = TestDb::new(Backend::Sqlite).await.unwrap().unwrap();
    seed_catalog(&db, SEED_CATALOG).await.unwrap();
    // Every catalog call takes 400 ms; the gateway lets 2 requests in at once.
    let catalog = spawn_catalog_with(&db, table(&[("faults.latency", "400ms")]))
        .await
        .unwrap();
    let mut overrides = table(&[("overload.mode", "fixed")]);
    overrides["overload"]
        .as_table_mut()
        .unwrap()
        .insert("max_in_flight".into(), 2.into());
    let gateway = spawn_gateway_with(&catalog.base_url(), overrides)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = gateway.url("/api/v1/products?limit=1");
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..10).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), started.elapsed(), response)
        }
    }))
    .await;
    let mut served = 0;
    for (status, took, response) in answers {
        match status {
            200 => {
                served += 1;
                assert!(took >= Duration::from_millis(350), "{took:?}");
            }
            503 => {
                // Shed without waiting for the catalog.
                assert!(took < Duration::from_millis(300), "shed after {took:?}");
                assert_eq!(response.headers()["retry-after"], "1");
                let problem = crate::assert_problem(response, 503).await;
                assert!(
                    problem["detail"].as_str().unwrap().contains("busy"),
                    "{problem}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(served, 2, "exactly the bound was served");
    let shed = gateway
        .metric("http_server_shed_requests_total")
        .await
        .unwrap();
    assert_eq!(shed, 8.0);
}
