//! `scale`: many events over many streams, then the store's behaviour at that
//! size — the append rate at the end against the start, memory, and how long
//! a reopen takes after a clean close and after a SIGKILL.
//!
//! The append phase is the `append` workload with a rate sampled as it goes,
//! paused once after the first 10% for a `read-stream` probe that is taken
//! again at the end; the reopen phases run after the store is closed (see
//! [`reopen`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{Direction, ExpectedVersion, StreamId};
use strata_log::{Durability, LogConfig, LogStore};

use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::host::Host;
use crate::latency::Latency;
use crate::report::Measurement;
use crate::{payload, BenchError};

/// `scale` defaults: 10,000,000 events over 1,000,000 streams, 64 writers
/// appending 10 events at a time.
pub const DEFAULTS: Defaults = Defaults {
    writers: 64,
    batch: 10,
    events: 10_000_000,
    streams: 1_000_000,
};

/// How often the append rate is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The share of events at the start and at the end whose rates are compared.
const WINDOW_FRACTION: f64 = 0.1;
/// How long the killed writer runs before SIGKILL.
const KILLED_WRITER_RUN: Duration = Duration::from_secs(3);

/// Streams read whole by each read-stream probe.
const READ_PROBE_STREAMS: usize = 2_000;
/// Most events one probe read asks for (streams here hold a few dozen).
const READ_PROBE_MAX_EVENTS: usize = 10_000;

/// Runs the append phase: overall, first-10% and last-10% rates; and
/// `read-stream` latency (whole streams, chosen at random among those
/// written) once the first 10% are in and again at the end.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let batch = p.batch as u64;
    let total = p.events;
    let appends = total.div_ceil(batch);
    let feed = Feed {
        next: Arc::new(AtomicU64::new(0)),
        done: Arc::new(AtomicU64::new(0)),
        bar: ctx.progress(total, "scale"),
    };
    let started = Instant::now();
    let sampler = {
        let done = feed.done.clone();
        tokio::spawn(async move {
            let mut samples = vec![(Duration::ZERO, 0u64)];
            loop {
                tokio::time::sleep(SAMPLE_EVERY).await;
                let n = done.load(Ordering::Relaxed);
                samples.push((started.elapsed(), n));
                if n >= total {
                    return samples;
                }
            }
        })
    };
    let window = ((total as f64) * WINDOW_FRACTION) as u64;
    // The probe after the first window pauses the appends; the rate
    // windows are timed from samples taken while appends ran.
    let first_appends = window.div_ceil(batch).min(appends);
    let mut tally = append_until(ctx, &feed, first_appends).await?;
    let paused = Instant::now();
    let early = feed.done.load(Ordering::Relaxed);
    let (early_probe, found) =
        read_probe(ctx, probe_streams(ctx, early)?, early, "read at 10%").await?;
    let pause = paused.elapsed();
    tally.merge(append_until(ctx, &feed, appends).await?);
    let elapsed = started.elapsed() - pause;
    feed.bar.finish_and_clear();
    // The streams the first probe found, again: the two probes differ by
    // the store's size (and what those streams gained since), not by which
    // streams they read.
    let (late_probe, _) = read_probe(ctx, found, total, "read at end").await?;
    let samples = sampler
        .await
        .map_err(|e| format!("the rate sampler failed: {e}"))?;
    let start_rate = window_rate(&samples, 0, window);
    let end_rate = window_rate(&samples, total.saturating_sub(window), total);
    let mut out = vec![Measurement {
        workload: None,
        variant: Some("all"),
        op: "append",
        writers: p.writers,
        batch: p.batch,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: None,
        errors: tally.errors,
        dataset_events: None,
        subscriber: None,
        pipeline: None,
    }];
    for (variant, r) in [("first 10%", start_rate), ("last 10%", end_rate)] {
        if let Some((events, secs)) = r {
            out.push(Measurement {
                workload: None,
                variant: Some(variant),
                op: "append",
                writers: p.writers,
                batch: p.batch,
                events,
                ops: events / batch.max(1),
                elapsed: Duration::from_secs_f64(secs),
                latency: Latency::default(),
                syncs: None,
                errors: 0,
                dataset_events: Some(total),
                subscriber: None,
                pipeline: None,
            });
        }
    }
    out.extend([early_probe, late_probe]);
    Ok(out)
}

/// The appends' shared progress: the next append to take, events done.
struct Feed {
    next: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    bar: indicatif::ProgressBar,
}

/// Runs the writers until `until` appends (of `batch` events each) were
/// taken in all.
async fn append_until(ctx: &BenchCtx<'_>, feed: &Feed, until: u64) -> Result<Tally, BenchError> {
    let p = ctx.params;
    let (batch, total) = (p.batch as u64, p.events);
    run_tasks(p.writers, |writer| {
        let store = ctx.store();
        let (next, done, bar) = (feed.next.clone(), feed.done.clone(), feed.bar.clone());
        let run_id = ctx.run_id.clone();
        let streams = p.streams;
        async move {
            // Seeded by writer and phase, so phases pick different streams.
            let mut rng = StdRng::seed_from_u64(writer as u64 + 7 + until);
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= until {
                    // Taken past this phase's end: give it back to the next.
                    next.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                let first = i * batch;
                let n = batch.min(total - first);
                let events = payload::events(first, n as usize);
                let stream = payload::stream(&run_id, rng.gen_range(0..streams))?;
                let t0 = Instant::now();
                store.append(&stream, ExpectedVersion::Any, events).await?;
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += n;
                done.fetch_add(n, Ordering::Relaxed);
                bar.inc(n);
            }
            Ok(t)
        }
    })
    .await
}

/// [`READ_PROBE_STREAMS`] streams among those the first `written`
/// events can have reached, picked at random: some may not exist yet.
fn probe_streams(ctx: &BenchCtx<'_>, written: u64) -> Result<Vec<StreamId>, BenchError> {
    let mut rng = StdRng::seed_from_u64(written);
    let reachable = ctx.params.streams.min(written.max(1) as usize).max(1);
    (0..READ_PROBE_STREAMS)
        .map(|_| Ok(payload::stream(&ctx.run_id, rng.gen_range(0..reachable))?))
        .collect()
}

/// Reads each of `streams` whole, one at a time, with `written` events in
/// the store; returns the latency of the reads that found events, and the
/// streams they found.
async fn read_probe(
    ctx: &BenchCtx<'_>,
    streams: Vec<StreamId>,
    written: u64,
    variant: &'static str,
) -> Result<(Measurement, Vec<StreamId>), BenchError> {
    let store = ctx.store();
    let mut t = Tally::default();
    let mut found = Vec::with_capacity(streams.len());
    let started = Instant::now();
    for stream in streams {
        let t0 = Instant::now();
        // A stream no append reached yet reads empty.
        let read = match store
            .read_stream(&stream, 1, READ_PROBE_MAX_EVENTS, Direction::Forward)
            .await
        {
            Ok(events) => events.len() as u64,
            Err(strata_core::Error::StreamNotFound { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        // Only reads that found events are timed, in both probes.
        if read > 0 {
            t.latency.record(t0.elapsed());
            t.ops += 1;
            t.events += read;
            found.push(stream);
        }
    }
    let m = Measurement {
        workload: None,
        variant: Some(variant),
        op: "read-stream",
        writers: 1,
        batch: 1,
        events: t.events,
        ops: t.ops,
        elapsed: started.elapsed(),
        latency: t.latency,
        syncs: None,
        errors: t.errors,
        dataset_events: Some(written),
        subscriber: None,
        pipeline: None,
    };
    Ok((m, found))
}

/// Events and seconds between the moments `lo` and `hi` events were done,
/// interpolated between samples.
fn window_rate(samples: &[(Duration, u64)], lo: u64, hi: u64) -> Option<(u64, f64)> {
    let at = |target: u64| -> Option<f64> {
        let i = samples.iter().position(|(_, n)| *n >= target)?;
        if i == 0 {
            return Some(0.0);
        }
        let (t0, n0) = samples[i - 1];
        let (t1, n1) = samples[i];
        let f = if n1 > n0 {
            (target - n0) as f64 / (n1 - n0) as f64
        } else {
            1.0
        };
        Some(t0.as_secs_f64() + f * (t1 - t0).as_secs_f64())
    };
    let secs = at(hi)? - at(lo)?;
    (secs > 0.0).then_some((hi - lo, secs))
}

/// After the store is closed: times a reopen after the clean close, then runs
/// a writer in a child process, SIGKILLs it, and times the reopen after that.
pub async fn reopen(
    dir: &Path,
    durability: Durability,
    host: &Host<'_>,
) -> Result<Vec<Measurement>, BenchError> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let store = LogStore::open(LogConfig::new(dir).durability(durability)).await?;
    let clean = t0.elapsed();
    let events = store.disk_usage()?.events;
    store.close().await?;
    out.push(reopen_measurement("after clean close", clean, events));

    let exe = host.strata_program("start the writer it kills")?;
    let mut child = std::process::Command::new(exe)
        .args([
            "bench",
            "append",
            "--in-place",
            "--json",
            "--fsync-probe-ms",
            "0",
        ])
        .arg("--store")
        .arg(format!("log:{}", dir.display()))
        .args(["--writers", "64", "--batch", "10", "--events", "100000000"])
        .args([
            "--streams",
            "1000000",
            "--durability",
            &durability.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(KILLED_WRITER_RUN).await;
    child.kill()?; // SIGKILL
    child.wait()?;
    let t0 = Instant::now();
    let store = LogStore::open(LogConfig::new(dir).durability(durability)).await?;
    let killed = t0.elapsed();
    let events = store.disk_usage()?.events;
    store.close().await?;
    out.push(reopen_measurement("after SIGKILL", killed, events));
    Ok(out)
}

fn reopen_measurement(variant: &'static str, elapsed: Duration, events: u64) -> Measurement {
    let mut latency = Latency::default();
    latency.record(elapsed);
    Measurement {
        workload: None,
        variant: Some(variant),
        op: "reopen",
        writers: 1,
        batch: 1,
        events: 0,
        ops: 1,
        elapsed,
        latency,
        syncs: None,
        errors: 0,
        dataset_events: Some(events),
        subscriber: None,
        pipeline: None,
    }
}
