//! Filling a store before a read benchmark (untimed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{Direction, ExpectedVersion, Position, ReadFilter, StreamId};

use crate::context::{run_tasks, BenchCtx, Tally};
use crate::{payload, BenchError};

/// Concurrent writers that fill a store.
pub const FILL_WRITERS: usize = 4;
/// Events per append while filling.
pub const FILL_BATCH_EVENTS: usize = 1_000;

/// Appends `count` events to random streams among `--streams`, numbered from
/// `first_seq`, with [`FILL_WRITERS`] writers in batches of [`FILL_BATCH_EVENTS`].
pub async fn random_streams(
    ctx: &BenchCtx<'_>,
    first_seq: u64,
    count: u64,
) -> Result<(), BenchError> {
    random_streams_by(ctx, first_seq, count, batch_for(ctx)).await
}

/// [`random_streams`] with `batch` events per append, so that streams
/// interleave in `$all` in runs of `batch` events.
pub async fn random_streams_by(
    ctx: &BenchCtx<'_>,
    first_seq: u64,
    count: u64,
    batch: u64,
) -> Result<(), BenchError> {
    let batch = batch.clamp(1, batch_for(ctx));
    let appends = count.div_ceil(batch);
    let next = Arc::new(AtomicU64::new(0));
    let bar = ctx.progress(count, "fill");
    run_tasks(FILL_WRITERS, |writer| {
        let store = ctx.store();
        let next = next.clone();
        let bar = bar.clone();
        let run_id = ctx.run_id.clone();
        let streams = ctx.params.streams;
        async move {
            let mut rng = StdRng::seed_from_u64(writer as u64 + 1_000);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= appends {
                    break;
                }
                let n = batch.min(count - i * batch);
                let stream = payload::stream(&run_id, rng.gen_range(0..streams))?;
                let events = payload::events(first_seq + i * batch, n as usize);
                store.append(&stream, ExpectedVersion::Any, events).await?;
                bar.inc(n);
            }
            Ok(Tally::default())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(())
}

/// Appends `count` events to `stream`, in order, in batches of [`FILL_BATCH_EVENTS`].
pub async fn one_stream(
    ctx: &BenchCtx<'_>,
    stream: &StreamId,
    count: u64,
) -> Result<(), BenchError> {
    let batch = batch_for(ctx);
    let store = ctx.store();
    let bar = ctx.progress(count, "fill");
    let mut written = 0;
    while written < count {
        let n = batch.min(count - written);
        store
            .append(
                stream,
                ExpectedVersion::Any,
                payload::events(written, n as usize),
            )
            .await?;
        written += n;
        bar.inc(n);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Counts the events in `$all` by reading it whole (which also warms caches).
pub async fn count_all(ctx: &BenchCtx<'_>, page: usize, label: &str) -> Result<u64, BenchError> {
    let store = ctx.store();
    let head = store.head_position().await?;
    if head == Position::START {
        return Ok(0);
    }
    let bar = ctx.progress(ctx.params.events, label);
    let mut from = Position::START;
    let mut count = 0u64;
    loop {
        let events = store.read_all(from, page, &ReadFilter::all()).await?;
        let Some(last) = events.last() else { break };
        from = last.position.next();
        count += events.len() as u64;
        bar.inc(events.len() as u64);
        if events.len() < page {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(count)
}

/// Reads all of `stream`, forward, in pages the store allows; returns the
/// number of events.
pub async fn read_whole_stream(
    store: &dyn strata_core::EventStore,
    stream: &StreamId,
    expected: u64,
) -> Result<u64, BenchError> {
    let page = store.limits().max_read_count.max(1);
    let mut from = 1;
    let mut count = 0u64;
    loop {
        let events = store
            .read_stream(stream, from, page, Direction::Forward)
            .await?;
        let Some(last) = events.last() else { break };
        from = last.version + 1;
        count += events.len() as u64;
        if events.len() < page || count >= expected {
            break;
        }
    }
    Ok(count)
}

fn batch_for(ctx: &BenchCtx<'_>) -> u64 {
    FILL_BATCH_EVENTS
        .min(ctx.store().limits().max_events_per_append)
        .max(1) as u64
}
