//! `rehydrate`: what loading costs. One account stream of `--events` events
//! per variant; commands sent one after another for `--duration` seconds
//! through a repository with its cache OFF, so every command loads the
//! aggregate: without snapshots (replays the whole stream) and with a
//! snapshot every 100 events (snapshot + a tail of at most 100 events).
//! Latency per command.

use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;
use strata::bank::{AccountCommand, AccountEvent, BankAccount};
use strata::event::{encode, DEFAULT_SCHEMA_VERSION, SCHEMA_METADATA_KEY};
use strata::{
    CommandMeta, EventStore, ExpectedVersion, MemorySnapshotStore, Metadata, NewEvent, Repository,
    SnapshotPolicy, SnapshotStore,
};

use crate::args::Defaults;
use crate::context::{BenchCtx, Tally};
use crate::report::Measurement;
use crate::BenchError;

/// `rehydrate` defaults: streams of 10,000 events.
pub const DEFAULTS: Defaults = Defaults {
    writers: 1,
    batch: 1,
    events: 10_000,
    streams: 1,
};

/// The snapshot variant's policy: a snapshot every this many events.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 100;
/// Fewest commands measured per variant, however slow they are.
const MIN_COMMANDS: u64 = 3;
/// Most commands measured per variant, however fast they are.
const MAX_COMMANDS: u64 = 100_000;
/// Events per append while filling a stream.
const FILL_BATCH_EVENTS: u64 = 1_000;

type BankRepository = Repository<BankAccount, Arc<dyn EventStore>>;

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let length = ctx.params.events;
    let snapshots: Arc<dyn SnapshotStore> = Arc::new(MemorySnapshotStore::new());
    let policy = SnapshotPolicy::every(SNAPSHOT_EVERY_EVENTS);

    // Without snapshots: the whole stream is written directly.
    let plain_id = format!("r{}plain", ctx.run_id);
    append_account(ctx, &plain_id, length).await?;

    // With snapshots: all but the last snapshot interval written directly,
    // the rest through a snapshotting repository, which takes the snapshot
    // at the last multiple of the interval as commands do.
    let snap_id = format!("r{}snap", ctx.run_id);
    let direct = length.saturating_sub(SNAPSHOT_EVERY_EVENTS).max(1);
    append_account(ctx, &snap_id, direct).await?;
    let filler = BankRepository::new(ctx.store())
        .with_cache(1)
        .with_snapshots(snapshots.clone(), policy);
    for _ in direct..length {
        filler
            .execute(&snap_id, deposit(), CommandMeta::new())
            .await?;
    }
    filler.flush_snapshots().await;

    let plain = BankRepository::new(ctx.store());
    let with_snapshots = BankRepository::new(ctx.store()).with_snapshots(snapshots, policy);
    let mut results = Vec::new();
    for (variant, repo, id) in [
        ("no-snapshots", &plain, &plain_id),
        ("snapshots-every-100", &with_snapshots, &snap_id),
    ] {
        let bar = ctx.progress(ctx.params.duration.as_millis() as u64, variant);
        let mut t = Tally::default();
        let syncs_before = ctx.syncs();
        let started = Instant::now();
        while t.ops < MIN_COMMANDS
            || (started.elapsed() < ctx.params.duration && t.ops < MAX_COMMANDS)
        {
            let t0 = Instant::now();
            repo.execute(id, deposit(), CommandMeta::new()).await?;
            t.latency.record(t0.elapsed());
            t.ops += 1;
            t.events += 1;
            bar.set_position(started.elapsed().as_millis() as u64);
        }
        let elapsed = started.elapsed();
        bar.finish_and_clear();
        repo.flush_snapshots().await;
        results.push(Measurement {
            workload: None,
            variant: Some(variant),
            op: "command",
            writers: 1,
            batch: 1,
            events: t.events,
            ops: t.ops,
            elapsed,
            latency: t.latency,
            syncs: ctx.syncs().zip(syncs_before).map(|(a, b)| a - b),
            errors: t.errors,
            dataset_events: Some(length),
            subscriber: None,
            pipeline: None,
        });
    }
    Ok(results)
}

fn deposit() -> AccountCommand {
    AccountCommand::Deposit {
        amount: Decimal::ONE,
    }
}

/// Writes account `id`'s stream directly: opened, then deposits, `count`
/// events in all, encoded exactly as the framework encodes them.
async fn append_account(ctx: &BenchCtx<'_>, id: &str, count: u64) -> Result<(), BenchError> {
    let store = ctx.store();
    let stream = BankRepository::stream_id(id)?;
    let bar = ctx.progress(count, "fill");
    let mut written = 0u64;
    while written < count {
        let n = FILL_BATCH_EVENTS.min(count - written);
        let mut events = Vec::with_capacity(n as usize);
        for v in written..written + n {
            let event = if v == 0 {
                AccountEvent::Opened {
                    owner: format!("owner-{id}"),
                }
            } else {
                AccountEvent::Deposited {
                    amount: Decimal::ONE,
                }
            };
            events.push(to_new_event(&event)?);
        }
        store.append(&stream, ExpectedVersion::Any, events).await?;
        written += n;
        bar.inc(n);
    }
    bar.finish_and_clear();
    Ok(())
}

fn to_new_event(event: &AccountEvent) -> Result<NewEvent, BenchError> {
    let encoded = encode(event)?;
    let mut new = NewEvent::json_bytes(encoded.event_type, encoded.data);
    if encoded.schema_version != DEFAULT_SCHEMA_VERSION {
        new = new.with_metadata(
            Metadata::default().with(SCHEMA_METADATA_KEY, encoded.schema_version.to_string()),
        );
    }
    Ok(new)
}
