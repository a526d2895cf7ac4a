//! Throughput and subscription latency of the PostgreSQL store, against a
//! raw-insert baseline measured in the same run.
//!
//! ```text
//! cargo run --release -p strata-bench --example pg_throughput -- \
//!     [--url postgres://postgres@127.0.0.1:5432/test] [--seconds 10]
//! ```
//!
//! 1. 64 concurrent single-event appenders through one `PostgresStore`
//!    (group commit), then 64 connections doing single-row `INSERT`s into an
//!    equivalent table (same columns and indexes, plain bigserial), and the ratio.
//! 2. 8 writers appending 100-event batches, with a subscriber on a second
//!    store (woken by LISTEN/NOTIFY) measuring delivery latency: the time from
//!    the event's `recorded_at` (taken at position assignment, before commit)
//!    to its arrival.
//!
//! Everything happens in a fresh schema (`bench_<pid>`), dropped at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use strata_core::{
    EventStore, ExpectedVersion, NewEvent, ReadFilter, StreamId, SubscribeFrom, SubscriptionMessage,
};
use strata_postgres::{PgConfig, PostgresStore};

const SINGLE_APPENDERS: usize = 64;
const BATCH_WRITERS: usize = 8;
const BATCH_EVENTS: usize = 100;
const STORE_POOL_SIZE: usize = 8;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    url: String,
    seconds: u64,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        url: std::env::var("STRATA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--url" => out.url = it.next().ok_or("--url needs a value")?,
            "--seconds" => {
                out.seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds needs a number")?
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(out)
}

fn payload(i: u64) -> String {
    format!(
        "{{\"amount\":\"{}.00\",\"note\":\"benchmark event\"}}",
        i % 1000
    )
}

/// 64 tasks, each appending one event at a time to its own stream.
async fn single_appenders(store: &PostgresStore, run_for: Duration) -> Result<f64, BoxError> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for a in 0..SINGLE_APPENDERS {
        let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("single-{a}"))?;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![NewEvent::json_bytes("Deposited", payload(i))],
                    )
                    .await?;
                i += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, BoxError>(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// 64 connections, each inserting one row at a time (autocommit) into a
/// table shaped like the events table.
async fn raw_inserts(url: &str, schema: &str, run_for: Duration) -> Result<f64, BoxError> {
    let (setup, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    strata_bench::baseline::create_raw_events_table(&setup, schema).await?;
    let sql = strata_bench::baseline::raw_insert_sql(schema)?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for a in 0..SINGLE_APPENDERS {
        let (stop, count) = (stop.clone(), count.clone());
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let sql = sql.clone();
        tasks.push(tokio::spawn(async move {
            let stmt = client.prepare(&sql).await?;
            let stream = format!("raw-{a}");
            let mut version = 0i64;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                let data = payload(version as u64).into_bytes();
                client
                    .execute(
                        &stmt,
                        &[
                            &uuid::Uuid::now_v7(),
                            &stream,
                            &version,
                            &"Deposited",
                            &0i16,
                            &data,
                        ],
                    )
                    .await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, BoxError>(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// 8 writers appending 100-event batches; a subscriber on another store
/// measures delivery latency. Returns events/s and latencies in µs.
async fn batch_writers(
    store: &PostgresStore,
    reader: &PostgresStore,
    run_for: Duration,
) -> Result<(f64, Vec<u64>), BoxError> {
    let mut sub = reader
        .subscribe(SubscribeFrom::End, ReadFilter::all())
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(2), sub.next()).await {
                    Ok(Some(Ok(SubscriptionMessage::Event(e)))) => {
                        let lag = (Utc::now() - e.recorded_at).num_microseconds().unwrap_or(0);
                        latencies.push(lag.max(0) as u64);
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => eprintln!("subscription error: {e}"),
                    Ok(None) => break,
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            latencies
        })
    };
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..BATCH_WRITERS {
        let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("batch-{w}"))?;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<NewEvent> = (0..BATCH_EVENTS as u64)
                    .map(|k| NewEvent::json_bytes("Deposited", payload(i + k)))
                    .collect();
                store.append(&stream, ExpectedVersion::Any, events).await?;
                i += BATCH_EVENTS as u64;
                count.fetch_add(BATCH_EVENTS as u64, Ordering::Relaxed);
            }
            Ok::<_, BoxError>(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let latencies = follower.await?;
    Ok((rate, latencies))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(args: Args) -> Result<(), BoxError> {
    let schema = format!("bench_{}", std::process::id());
    let run_for = Duration::from_secs(args.seconds);
    let config = PgConfig::new(&args.url)
        .schema(&schema)
        .pool_size(STORE_POOL_SIZE);
    let store = PostgresStore::connect_with(config.clone()).await?;
    let reader = PostgresStore::connect_with(config).await?;
    println!("schema {schema}, {}s per scenario", args.seconds);

    let before = store.stats();
    let single = single_appenders(&store, run_for).await?;
    let after = store.stats();
    let per_tx =
        (after.appends - before.appends) as f64 / (after.batches - before.batches).max(1) as f64;
    println!(
        "64 single-event appenders:      {single:>9.0} events/s  ({per_tx:.1} appends per transaction)"
    );
    let raw = raw_inserts(&args.url, &schema, run_for).await?;
    println!("64 raw single-row INSERTs:      {raw:>9.0} rows/s");
    println!("store / raw:                    {:>9.2}x", single / raw);

    let (batch, mut latencies) = batch_writers(&store, &reader, run_for).await?;
    latencies.sort_unstable();
    println!("8 writers x 100-event batches:  {batch:>9.0} events/s");
    println!(
        "subscription latency under that load ({} events): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );

    reader.close().await?;
    store.close().await?;
    let (client, conn) = tokio_postgres::connect(&args.url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: pg_throughput [--url URL] [--seconds N]");
            return std::process::ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
