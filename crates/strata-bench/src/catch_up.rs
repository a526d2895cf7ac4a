//! The projection measurements behind `strata bench project` and the
//! `project_throughput` example: catch-up throughput of a counting
//! projection, and the speed-up of the event processor's parallel mode on a
//! handler that does real work.
//!
//! Benchmarks are programs, never timed asserts: this module only measures
//! and reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strata_core::{
    EventStore, ExpectedVersion, MemoryCheckpointStore, NewEvent, RecordedEvent, StreamAppend,
    StreamId,
};

use strata::processor::{BatchFailure, HandlerError};
use strata::{
    CatchUpReport, EventHandler, EventProcessor, ProcessorConfig, ProcessorError, Projection,
    ProjectionError, ProjectionRunner, RunnerConfig,
};

/// Streams the seeded events are spread over.
pub const BENCH_STREAMS: usize = 1_000;
/// Streams written by one seeding append (an `append_multi`).
pub const BENCH_STREAMS_PER_APPEND: usize = 100;
/// Events per stream in one seeding append.
pub const BENCH_EVENTS_PER_STREAM_PER_APPEND: usize = 10;
/// Rounds of mixing the benchmark handler does per event (a few
/// microseconds of CPU work).
pub const WORK_ROUNDS_PER_EVENT: u32 = 400;
/// Page size of the benchmark's catch-up reads.
pub const BENCH_PAGE_EVENTS: usize = 8_192;
/// Batch size of the benchmark's processors.
pub const BENCH_BATCH_EVENTS: usize = 256;

/// What `strata bench project` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectBenchReport {
    /// Events in the store when measured.
    pub events: u64,
    /// Events the benchmark appended first (0 when the store had enough).
    pub seeded: u64,
    /// How long seeding took.
    pub seed_elapsed: std::time::Duration,
    /// A counting projection catching up from the start, single-threaded.
    pub catch_up: CatchUpReport,
    /// The processor with one worker over the working handler.
    pub sequential: CatchUpReport,
    /// The processor with `workers` workers over the same handler.
    pub parallel: CatchUpReport,
    /// Workers of the parallel run.
    pub workers: usize,
}

impl ProjectBenchReport {
    /// How much faster the parallel run was than the sequential one.
    pub fn speedup(&self) -> f64 {
        let p = self.parallel.elapsed.as_secs_f64();
        if p > 0.0 {
            self.sequential.elapsed.as_secs_f64() / p
        } else {
            0.0
        }
    }
}

/// Why the measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_core::Error),
    /// The projection failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The processor failed.
    #[error(transparent)]
    Processor(#[from] ProcessorError),
}

/// Counts events: the cheapest possible projection.
#[derive(Debug, Default)]
pub struct CountingProjection {
    /// Events folded in.
    pub events: u64,
}

impl Projection for CountingProjection {
    fn name(&self) -> &str {
        "bench-count"
    }

    fn update(&mut self, _event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.events += 1;
        Ok(())
    }

    fn reset(&mut self) {
        self.events = 0;
    }
}

/// A handler that does CPU work per event (mixes its bytes
/// [`WORK_ROUNDS_PER_EVENT`] times).
#[derive(Debug, Default)]
pub struct WorkHandler {
    sink: AtomicU64,
}

/// The work itself, kept separate so it can be measured alone.
pub fn work(event: &RecordedEvent) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ event.position.0;
    for b in event.data.iter() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for _ in 0..WORK_ROUNDS_PER_EVENT {
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    std::hint::black_box(h)
}

#[strata_core::async_trait]
impl EventHandler for WorkHandler {
    fn name(&self) -> &str {
        "bench-work"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.sink.fetch_xor(work(event), Ordering::Relaxed);
        Ok(())
    }

    async fn handle_batch(&self, events: &[&RecordedEvent]) -> Result<(), BatchFailure> {
        let mut h = 0;
        for e in events {
            h ^= work(e);
        }
        self.sink.fetch_xor(h, Ordering::Relaxed);
        Ok(())
    }
}

/// Appends small JSON events over [`BENCH_STREAMS`] streams, interleaved,
/// until the store holds at least `events`; returns how many it appended.
pub async fn seed<S: EventStore>(store: &S, events: u64) -> Result<u64, strata_core::Error> {
    let have = store.head_position().await?.0;
    let mut appended = 0u64;
    let mut round = 0usize;
    let streams: Vec<StreamId> = (0..BENCH_STREAMS)
        .map(|i| StreamId::new(format!("bench-{i}")))
        .collect::<Result<_, _>>()?;
    while have + appended < events {
        let left = events - have - appended;
        let mut parts = Vec::with_capacity(BENCH_STREAMS_PER_APPEND);
        let mut in_call = 0u64;
        for k in 0..BENCH_STREAMS_PER_APPEND {
            if in_call >= left {
                break;
            }
            let n = (BENCH_EVENTS_PER_STREAM_PER_APPEND as u64).min(left - in_call);
            let stream = streams[(round * BENCH_STREAMS_PER_APPEND + k) % BENCH_STREAMS].clone();
            let batch = (0..n)
                .map(|i| {
                    NewEvent::json_bytes(
                        "BenchEvent",
                        format!("{{\"n\":{}}}", appended + in_call + i).into_bytes(),
                    )
                })
                .collect();
            parts.push(StreamAppend::new(stream, ExpectedVersion::Any, batch));
            in_call += n;
        }
        store.append_multi(parts).await?;
        appended += in_call;
        round += 1;
    }
    Ok(appended)
}

/// Seeds the store up to `events`, then measures a counting projection's
/// catch-up and the processor with 1 and with `workers` workers over
/// [`WorkHandler`]. Parallel speed-up needs a multi-threaded runtime.
pub async fn project<S: EventStore + Clone>(
    store: S,
    events: u64,
    workers: usize,
) -> Result<ProjectBenchReport, CatchUpError> {
    let started = Instant::now();
    let seeded = seed(&store, events).await?;
    let seed_elapsed = started.elapsed();
    let total = store.head_position().await?.0;

    let mut runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        CountingProjection::default(),
    )
    .with_config(RunnerConfig {
        page_events: BENCH_PAGE_EVENTS,
        checkpoint_every_events: u64::MAX,
        ..RunnerConfig::default()
    });
    let catch_up = runner.catch_up().await?;

    let run = |workers: usize| {
        let store = store.clone();
        async move {
            let mut processor = EventProcessor::new(
                format!("bench-work-{workers}"),
                store,
                Arc::new(MemoryCheckpointStore::new()),
            )
            .with_config(ProcessorConfig {
                workers,
                batch_events: BENCH_BATCH_EVENTS,
                page_events: BENCH_PAGE_EVENTS,
                checkpoint_every_events: u64::MAX,
                ..ProcessorConfig::default()
            })
            .on_any(WorkHandler::default());
            processor.catch_up().await
        }
    };
    let sequential = run(1).await?;
    let parallel = run(workers.max(1)).await?;
    Ok(ProjectBenchReport {
        events: total,
        seeded,
        seed_elapsed,
        catch_up,
        sequential,
        parallel,
        workers: workers.max(1),
    })
}
