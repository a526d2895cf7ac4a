//! TLS: an append and a read over https with a client that trusts only the
//! test certificate, and a plain-HTTP request to the TLS port that fails.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Harness;
use serde_json::{json, Value};
use strata_server::{tls_acceptor, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

async fn tls_server(h: &Harness) -> Harness {
    let acceptor = tls_acceptor(&data("localhost.cert.pem"), &data("localhost.key.pem")).unwrap();
    // The same store as `h`, served a second time, over TLS.
    Harness::serve_tls(
        h.store.clone(),
        h.backend,
        ServerConfig::default(),
        Some(acceptor),
        None,
    )
    .await
}

fn client() -> reqwest::Client {
    let pem = std::fs::read(data("localhost.cert.pem")).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

memory_store!(append_and_read_over_https, plain_http_to_the_tls_port_fails);

async fn append_and_read_over_https(h: Harness) {
    let server = tls_server(&h).await;
    let client = client();
    for host in ["localhost", "127.0.0.1"] {
        let base = format!("https://{host}:{}", server.addr.port());
        let r = client
            .post(format!("{base}/streams/orders-1"))
            .json(&json!({"events": [{"type": "Placed", "data": {"host": host}}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert!(v["last_position"].as_u64().unwrap() > 0, "{v}");
    }
    let base = format!("https://localhost:{}", server.addr.port());
    let v: Value = client
        .get(format!("{base}/streams/orders-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["data"], json!({"host": "localhost"}));
    assert_eq!(events[1]["data"], json!({"host": "127.0.0.1"}));

    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{base}/health"))
        .send()
        .await
        .is_err());
}

async fn plain_http_to_the_tls_port_fails(h: Harness) {
    let server = tls_server(&h).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // The server drops the connection (it may first send a TLS alert); it
    // never answers in HTTP.
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer))
        .await
        .expect("the server kept a plain-HTTP connection open");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // And reqwest over http:// fails too.
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health", server.addr.port()))
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    // The TLS server still serves https afterwards.
    let r = client()
        .get(format!("https://localhost:{}/health", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
