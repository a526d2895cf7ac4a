//! Appends through `strata serve --grpc` with the KurrentDB Rust client,
//! against the same appends through the HTTP API, in one run.
//!
//! `cargo bench -p strata-interop --bench grpc_append` runs, each on a
//! fresh durable log store in a temporary directory: 1, 16 and 64
//! concurrent appenders of one ~200-byte JSON event per append, then 16
//! appenders of 100-event appends; each first over gRPC (the client), then
//! over HTTP (`POST /streams/{stream}`, one keep-alive connection per
//! appender, as `strata bench http-append` does). Both servers run in this
//! process over the same kind of store, so the ratio compares the
//! protocols, not the machines.
//!
//! `GRPC_BENCH_EVENTS` sets the events per case (default 20,000);
//! `GRPC_BENCH_CASES` picks cases, as `WRITERSxBATCH` separated by commas
//! (default `1x1,16x1,64x1,16x100`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kurrentdb::{AppendToStreamOptions, Client, EventData};
use strata_core::EventStore;
use strata_stores::OpenStore;
use tokio::net::TcpListener;

/// Streams the appends spread over.
const STREAMS: u64 = 1_000;

/// Events per case unless `GRPC_BENCH_EVENTS` says otherwise.
const DEFAULT_EVENTS: u64 = 20_000;

/// The cases unless `GRPC_BENCH_CASES` says otherwise.
const DEFAULT_CASES: &str = "1x1,16x1,64x1,16x100";

/// What one protocol did in one case.
struct Outcome {
    events: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// ~200 bytes of JSON, numbered.
fn data(seq: u64) -> serde_json::Value {
    serde_json::json!({
        "seq": seq,
        "account": format!("acct-{:08}", seq % 100_000),
        "amount": seq % 10_000,
        "currency": "EUR",
        "note": "benchmark event payload, padded to about two hundred bytes of JSON text....",
    })
}

fn stream_of(seq: u64) -> String {
    format!("bench-{}", seq.wrapping_mul(7_919) % STREAMS)
}

async fn log_store(dir: &std::path::Path) -> OpenStore {
    OpenStore::log(dir, strata_log::Durability::default())
        .await
        .unwrap()
}

/// Runs `writers` tasks until `total` events are appended; each task calls
/// `append(seq)` for its next block of `batch` events.
async fn drive<F, Fut>(writers: u64, batch: u64, total: u64, append: F) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let append = Arc::new(append);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (next, append) = (Arc::clone(&next), Arc::clone(&append));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let seq = next.fetch_add(batch, Ordering::Relaxed);
                if seq >= total {
                    return latencies;
                }
                let t = Instant::now();
                append(seq).await;
                latencies.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.unwrap());
    }
    Outcome {
        events: total.div_ceil(batch) * batch,
        elapsed: began.elapsed(),
        latencies_us,
    }
}

async fn over_grpc(writers: u64, batch: u64, total: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let open = log_store(dir.path()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = strata_grpc::Services::new(open.store());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(strata_grpc::serve(listener, services, async {
        let _ = stopped.await;
    }));
    let settings = format!("kurrentdb://{addr}?tls=false").parse().unwrap();
    let client = Client::new(settings).unwrap();
    // The client connects (and asks the server's features) on its first
    // call: not part of the measurement.
    client
        .append_to_stream(
            "warm-up",
            &AppendToStreamOptions::default(),
            vec![EventData::json("WarmUp", &data(0)).unwrap()],
        )
        .await
        .unwrap();
    let outcome = drive(writers, batch, total, move |seq| {
        let client = client.clone();
        async move {
            let events: Vec<EventData> = (seq..seq + batch)
                .map(|s| EventData::json("BenchEvent", &data(s)).unwrap())
                .collect();
            client
                .append_to_stream(stream_of(seq), &AppendToStreamOptions::default(), events)
                .await
                .unwrap();
        }
    })
    .await;
    let _ = stop.send(());
    let _ = server.await;
    open.close().await.unwrap();
    outcome
}

async fn over_http(writers: u64, batch: u64, total: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let open = log_store(dir.path()).await;
    let store: Arc<dyn EventStore> = open.store();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = strata_server::ServerConfig::default();
    let router = strata_server::router(store, config.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        strata_server::serve_with(listener, router, &config, None, async {
            let _ = stopped.await;
        })
        .await
    });
    // One client (one keep-alive connection) per appender.
    let clients: Arc<Vec<reqwest::Client>> =
        Arc::new((0..writers).map(|_| reqwest::Client::new()).collect());
    let outcome = drive(writers, batch, total, move |seq| {
        let clients = Arc::clone(&clients);
        async move {
            let client = &clients[(seq / batch % clients.len() as u64) as usize];
            let events: Vec<serde_json::Value> = (seq..seq + batch)
                .map(|s| serde_json::json!({ "type": "BenchEvent", "data": data(s) }))
                .collect();
            let body = serde_json::json!({ "expected_version": "any", "events": events });
            let answer = client
                .post(format!("http://{addr}/streams/{}", stream_of(seq)))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
        }
    })
    .await;
    let _ = stop.send(());
    let _ = server.await;
    open.close().await.unwrap();
    outcome
}

fn cases() -> Vec<(u64, u64)> {
    let spec = std::env::var("GRPC_BENCH_CASES").unwrap_or_else(|_| DEFAULT_CASES.into());
    spec.split(',')
        .map(|c| {
            let (w, b) = c.trim().split_once('x').expect("a case is WRITERSxBATCH");
            (w.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

fn main() {
    let total: u64 = std::env::var("GRPC_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:>8} {:>6} {:>6} {:>12} {:>10} {:>10} {:>8}",
        "protocol", "writers", "batch", "events/s", "p50 ms", "p99 ms", "ratio"
    );
    for (writers, batch) in cases() {
        let grpc = runtime.block_on(over_grpc(writers, batch, total));
        let http = runtime.block_on(over_http(writers, batch, total));
        for (name, o) in [("grpc", &grpc), ("http", &http)] {
            println!(
                "{:>8} {:>6} {:>6} {:>12.0} {:>10.2} {:>10.2} {:>8.2}",
                name,
                writers,
                batch,
                o.rate(),
                o.percentile(0.5),
                o.percentile(0.99),
                o.rate() / http.rate()
            );
        }
    }
}
