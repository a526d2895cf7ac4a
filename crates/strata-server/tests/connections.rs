//! Connection limits: a slow request head is cut off, an idle keep-alive
//! connection is closed, and shutdown gives in-flight requests a bounded
//! grace before the server stops anyway.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{GatedStore, Harness};
use serde_json::json;
use strata_core::Limits;
use strata_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_READ_TIMEOUT_MS: u64 = 300;

fn config() -> ServerConfig {
    ServerConfig {
        header_read_timeout_ms: HEADER_READ_TIMEOUT_MS,
        ..ServerConfig::default()
    }
}

/// Reads until the server closes; `None` if it is still open after `wait`.
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(wait, tcp.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

memory_store!(
    max_connections_holds_back_new_ones,
    oversized_request_head_is_431,
    slow_header_is_cut_off,
    idle_keep_alive_connection_is_closed,
    shutdown_grace_bounds_in_flight_requests,
    a_client_that_stops_reading_is_disconnected,
    pipelined_requests_are_answered_in_order
);

async fn max_connections_holds_back_new_ones(h: Harness) {
    let server = h
        .like(
            Limits::default(),
            ServerConfig {
                max_connections: 1,
                ..ServerConfig::default()
            },
        )
        .await;
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // The first connection is served and kept open (keep-alive).
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The second waits in the accept queue: no answer while the first is open.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the second connection was served over the limit"
    );
    // Once the first closes, the second is served.
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
        .await
        .expect("the second connection was never served")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

async fn oversized_request_head_is_431(h: Harness) {
    let server = h
        .like(
            Limits::default(),
            ServerConfig {
                max_request_head_bytes: 16 * 1024,
                ..ServerConfig::default()
            },
        )
        .await;
    let big = "a".repeat(32 * 1024);
    let r = server.get_with("/health", &[("X-Big", &big)]).await;
    assert_eq!(r.status, 431);
    let fits = "a".repeat(8 * 1024);
    let r = server.get_with("/health", &[("X-Big", &fits)]).await;
    assert_eq!(r.status, 200);
}

async fn slow_header_is_cut_off(h: Harness) {
    let server = h.like(Limits::default(), config()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut = false;
    // One byte every 50 ms: the head would take ~4 s, far over the limit.
    for b in head.iter() {
        if tcp.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_millis(HEADER_READ_TIMEOUT_MS * 4) {
            break;
        }
    }
    if !cut {
        let got = closed_within(&mut tcp, Duration::from_secs(10))
            .await
            .expect("the slow connection was not closed");
        // Cut off: no answer to the request (hyper may send a 408 first).
        let text = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || text.starts_with("HTTP/1.1 408"),
            "unexpected answer {text:?}"
        );
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off after {elapsed:?}, the limit is {HEADER_READ_TIMEOUT_MS} ms"
    );
    assert!(elapsed >= Duration::from_millis(HEADER_READ_TIMEOUT_MS));
    // A prompt client is served as usual.
    assert_eq!(server.get("/health").await.status, 200);
}

async fn idle_keep_alive_connection_is_closed(h: Harness) {
    let server = h.like(Limits::default(), config()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let got = closed_within(&mut tcp, Duration::from_secs(10))
        .await
        .expect("the idle keep-alive connection was not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn shutdown_grace_bounds_in_flight_requests(h: Harness) {
    // The gate never opens: the append can only end by the grace running out.
    let gated = GatedStore::new(h.store.clone());
    let mut server = Harness::serve(
        gated.clone(),
        h.backend,
        ServerConfig {
            shutdown_grace_ms: 200,
            ..ServerConfig::default()
        },
        None,
    )
    .await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let body = serde_json::to_vec(&json!({"events": [{"type": "A", "data": {}}]})).unwrap();
        let head = format!(
            "POST /streams/s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&body).await.unwrap();
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got).await;
        got
    });
    gated.entered.notified().await;
    let started = Instant::now();
    server.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(10), server.finished())
        .await
        .expect("serve did not return after the grace");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    // The dropped request got no answer: the client may retry it.
    let got = in_flight.await.unwrap();
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // New connections are refused.
    assert!(TcpStream::connect(addr).await.is_err());
}

async fn a_client_that_stops_reading_is_disconnected(h: Harness) {
    let server = h
        .like(
            Limits::default(),
            ServerConfig {
                write_timeout_ms: 200,
                ..ServerConfig::default()
            },
        )
        .await;
    // ~40 MB of events: far more than the socket buffers hold, so the
    // server's writes wait on the client.
    let blob = "x".repeat(900_000);
    for i in 0..45 {
        let r = server
            .post(
                "/streams/big",
                &json!({"events": [{"type": "Big", "data": {"i": i, "blob": blob}}]}),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let request = b"GET /all?limit=1000 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    // Read nothing for well past the write timeout...
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // ...then what arrives ends early: the server gave up on the client.
    let mut got = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open");
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // A whole page is ~16 MB (the page byte budget); far less arrived.
    assert!(got.len() < 15_000_000, "{} bytes arrived", got.len());
    // The server itself is fine.
    assert_eq!(server.get("/health").await.status, 200);
}

/// HTTP/1.1 pipelining: three requests written at once (two appends with
/// expected versions that only hold in order, then a read) get three
/// answers, in the order sent.
async fn pipelined_requests_are_answered_in_order(h: Harness) {
    let server = h.like(Limits::default(), config()).await;
    let request = |method: &str, body: &str| {
        format!(
            "{method} /streams/piped HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let first = json!({"expected_version": "no_stream", "events": [{"type": "First", "data": 1}]});
    let second = json!({"expected_version": 1, "events": [{"type": "Second", "data": 2}]});
    let all = format!(
        "{}{}{}",
        request("POST", &first.to_string()),
        request("POST", &second.to_string()),
        request("GET", "")
    );
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(all.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !third_answer_complete(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, tcp.read(&mut buf))
            .await
            .expect("three answers within 10 s")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "200"], "{text}");
    let read = &text[text.rfind("HTTP/1.1 ").unwrap()..];
    let (f, s) = (read.find("First").unwrap(), read.find("Second").unwrap());
    assert!(f < s, "{read}");
}

/// Whether `got` holds three whole answers (the third's body read to its
/// `content-length`).
fn third_answer_complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((third, _)) = text.match_indices("HTTP/1.1 ").nth(2) else {
        return false;
    };
    let answer = &text[third..];
    let Some(head_end) = answer.find("\r\n\r\n") else {
        return false;
    };
    let length: usize = answer[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("the read's answer has a content-length");
    answer.len() >= head_end + 4 + length
}
