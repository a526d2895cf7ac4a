//! `scavenge` (log store only): fill `--events` events over `--streams`
//! streams, delete half the streams, then measure `--writers` appenders
//! (`--batch` events per append) and one `$all` reader for `--duration`
//! seconds without a scavenge, and again while a scavenge runs; report the
//! scavenge's time and the segment bytes on disk before and after. Then back
//! the store up (next to it, so sealed segments are hard-linked), append
//! [`INCREMENT_EVENTS`] more events and back up again, incrementally, into
//! the same directory; report both backups' time and size.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strata_core::{ExpectedVersion, Position, ReadFilter, ScavengeOptions};

use super::fill;
use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::{payload, BenchError};

/// `scavenge` defaults: 4 writers of 100-event appends, 1,000,000 events
/// over 10,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 4,
    batch: 100,
    events: 1_000_000,
    streams: 10_000,
};

/// Concurrent deletes while deleting half the streams.
const DELETERS: usize = 64;
/// Events per page of the `$all` reader.
const READ_PAGE: usize = 10_000;
/// Events appended between the full and the incremental backup.
pub const INCREMENT_EVENTS: u64 = 100_000;

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let log = ctx
        .open
        .log_store()
        .ok_or("the scavenge workload runs on the log store")?;
    let p = ctx.params;
    fill::random_streams(ctx, 0, p.events).await?;
    delete_half(ctx).await?;
    let before = strata_log::store::dir_usage(log.dir())?.segment_bytes_on_disk;
    ctx.note(&format!(
        "filled {} events over {} streams, deleted {}; segments take {} bytes on disk",
        p.events,
        p.streams,
        p.streams / 2,
        before
    ));
    let baseline = load(ctx, None).await?;
    let scavenging = load(ctx, Some(log)).await?;
    let after = strata_log::store::dir_usage(log.dir())?.segment_bytes_on_disk;
    ctx.note(&format!(
        "segments on disk: {before} bytes before the scavenge, {after} after ({:.1}% of before)",
        after as f64 * 100.0 / before.max(1) as f64
    ));
    backups(ctx, log).await?;
    let mut out = baseline;
    out.extend(scavenging);
    Ok(out)
}

/// A full backup, [`INCREMENT_EVENTS`] more events, an incremental one.
async fn backups(ctx: &BenchCtx<'_>, log: &strata_log::LogStore) -> Result<(), BenchError> {
    let parent = log.dir().parent().unwrap_or(log.dir());
    let dest = tempfile::tempdir_in(parent)?;
    let full = log.backup_to(dest.path()).await?;
    ctx.note(&format!(
        "full backup: {} files, {} bytes ({} copied, the rest hard-linked), {:.2} s",
        full.files,
        full.bytes,
        full.bytes_copied,
        full.millis as f64 / 1000.0
    ));
    fill::random_streams(ctx, ctx.params.events, INCREMENT_EVENTS).await?;
    let more = log.backup_to(dest.path()).await?;
    ctx.note(&format!(
        "incremental backup after {INCREMENT_EVENTS} more events: {} of {} files, {} bytes copied, {:.2} s",
        more.files_copied,
        more.files,
        more.bytes_copied,
        more.millis as f64 / 1000.0
    ));
    Ok(())
}

/// Deletes the first half of the streams.
async fn delete_half(ctx: &BenchCtx<'_>) -> Result<(), BenchError> {
    let half = ctx.params.streams / 2;
    let bar = ctx.progress(half as u64, "delete");
    run_tasks(DELETERS, |task| {
        let store = ctx.store();
        let run_id = ctx.run_id.clone();
        let bar = bar.clone();
        async move {
            for k in (task..half).step_by(DELETERS) {
                let s = payload::stream(&run_id, k)?;
                match store.delete_stream(&s, ExpectedVersion::Any).await {
                    Ok(()) | Err(strata_core::Error::StreamNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                bar.inc(1);
            }
            Ok(Tally::default())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(())
}

/// Appenders and a reader for `--duration` seconds, or, with `log`, for as
/// long as a scavenge of it takes (at least `--duration`).
async fn load(
    ctx: &BenchCtx<'_>,
    log: Option<&strata_log::LogStore>,
) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let variant = if log.is_some() {
        "while scavenging"
    } else {
        "baseline"
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writers = {
        let stop = stop.clone();
        run_tasks(p.writers, move |w| {
            let store = ctx.store();
            let stop = stop.clone();
            let run_id = format!("{}{variant}", ctx.run_id);
            let batch = p.batch;
            async move {
                let mut t = Tally::default();
                let s = payload::stream(&run_id.replace(' ', "-"), w)?;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    store
                        .append(&s, ExpectedVersion::Any, payload::events(t.events, batch))
                        .await?;
                    t.latency.record(t0.elapsed());
                    t.ops += 1;
                    t.events += batch as u64;
                }
                Ok(t)
            }
        })
    };
    let reader = {
        let stop = stop.clone();
        run_tasks(1, move |_| {
            let store = ctx.store();
            let stop = stop.clone();
            async move {
                let mut t = Tally::default();
                let mut from = Position::START;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let page = store.read_all(from, READ_PAGE, &ReadFilter::all()).await?;
                    t.latency.record(t0.elapsed());
                    t.ops += 1;
                    t.events += page.len() as u64;
                    from = match page.last() {
                        Some(e) if page.len() == READ_PAGE => e.position.next(),
                        _ => Position::START,
                    };
                }
                Ok(t)
            }
        })
    };
    let timer = async {
        let report = match log {
            Some(log) => Some(log.scavenge(ScavengeOptions::default()).await),
            None => None,
        };
        if let Some(rest) = p.duration.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        stop.store(true, Ordering::Relaxed);
        report
    };
    let (w, r, report) = tokio::join!(writers, reader, timer);
    let elapsed = started.elapsed();
    if let Some(report) = report {
        let r = report?;
        ctx.note(&format!(
            "scavenge: {} of {} segments rewritten, {} events removed, {} -> {} bytes, {:.1} s",
            r.segments_rewritten,
            r.segments_scanned,
            r.events_removed,
            r.bytes_before,
            r.bytes_after,
            r.millis as f64 / 1000.0
        ));
    }
    let row = |op, t: Tally, writers, batch| Measurement {
        workload: None,
        variant: Some(variant),
        op,
        writers,
        batch,
        events: t.events,
        ops: t.ops,
        elapsed,
        latency: t.latency,
        syncs: None,
        errors: t.errors,
        dataset_events: None,
        subscriber: None,
        pipeline: None,
    };
    Ok(vec![
        row("append", w?, p.writers, p.batch),
        row("page", r?, 1, READ_PAGE),
    ])
}
