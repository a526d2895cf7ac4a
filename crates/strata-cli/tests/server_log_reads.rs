//! Reads of the log store under the server never hold an async worker for
//! long: a read of 100,000 events neither stops `/health` from answering
//! nor escapes the request timeout. The runtime has one worker, so a read
//! that held it would hold every other request too.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_client::{AllFilter, Client};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_log::{Durability, LogConfig, LogStore};
use strata_server::{router, serve_with, ServerConfig};

/// Events in the store: enough that reading 100,000 of them takes far longer
/// than a health check.
const EVENTS: usize = 150_000;

/// Every event: the log store reads them in pieces, in place.
fn everything() -> AllFilter {
    AllFilter::default()
}

async fn filled_store(dir: &std::path::Path) -> Arc<LogStore> {
    let config = LogConfig::new(dir).durability(Durability::None);
    let store = LogStore::open(config).await.unwrap();
    for batch in 0..EVENTS / 500 {
        let stream = StreamId::new(format!("ev-{batch}")).unwrap();
        let events = (0..500)
            .map(|i| NewEvent::json("Filled", &serde_json::json!({ "i": i })).unwrap())
            .collect();
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
    Arc::new(store)
}

async fn serve(store: Arc<LogStore>, config: ServerConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(store as Arc<dyn EventStore>, config.clone());
    tokio::spawn(
        async move { serve_with(listener, app, &config, None, std::future::pending()).await },
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn health_answers_while_long_reads_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path()).await;
    let url = serve(store, ServerConfig::default()).await;
    let client = Client::new(&url).unwrap();
    let started = Instant::now();
    let reads: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let page = client.read_all(0, 100_000, &everything()).await.unwrap();
                assert!(!page.events.is_empty());
                started.elapsed()
            })
        })
        .collect();
    // Let the reads reach the store before asking.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let head = client.head_position().await.unwrap();
    let health_done = started.elapsed();
    assert!(head > 0);
    let mut first_read_done = Duration::MAX;
    for read in reads {
        first_read_done = first_read_done.min(read.await.unwrap());
    }
    assert!(
        health_done < first_read_done,
        "/health answered after {health_done:?}, only once a read had ended ({first_read_done:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_long_read_is_cut_by_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled_store(dir.path()).await;
    let config = ServerConfig {
        request_timeout_ms: 5,
        ..ServerConfig::default()
    };
    let url = serve(store, config).await;
    let client = Client::new(&url).unwrap();
    let e = client
        .read_all(0, 100_000, &everything())
        .await
        .unwrap_err();
    assert_eq!(e.api_kind(), Some("timeout"), "{e}");
}
