//! The seeded workload: stores opened on a storage, and steps (appends,
//! snapshots, checkpoints) drawn from a seeded generator, each recorded in
//! the model once acknowledged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::Rng;
use strata_core::{
    CheckpointStore, ContentType, Error, EventId, EventStore, ExpectedVersion, NewEvent, Position,
    Snapshot, SnapshotStore, StreamAppend, StreamId,
};
use strata_log::checkpoint::CheckpointStoreOptions;
use strata_log::compress::Compression;
use strata_log::io::Storage;
use strata_log::snapshot::SnapshotStoreOptions;
use strata_log::{Durability, LogCheckpointStore, LogConfig, LogSnapshotStore, LogStore};

use super::model::{Doubt, Model};
use crate::common::Acked;

/// Name prefixes of the log store's background threads, held while the
/// writer works so operations happen in one order.
pub const BACKGROUND_THREADS: [&str; 3] = ["strata-seal-", "strata-compress-", "strata-reindex-"];

/// How the stores of one seed are configured.
#[derive(Clone, Debug)]
pub struct Setup {
    pub root: PathBuf,
    pub max_segment_bytes: u64,
    pub compression: bool,
    pub checkpoint_every: u32,
    /// `Durability::Always`, or `Durability::None` with flushes.
    pub always: bool,
}

impl Setup {
    /// A configuration drawn from `rng`.
    pub fn draw(root: &Path, rng: &mut StdRng) -> Setup {
        let always = rng.gen_bool(0.6);
        // Without `Always`, larger segments leave more unsynced frames
        // for a cut to reorder.
        let sizes = if always {
            [4096, 8192, 16384]
        } else {
            [8192, 16384, 65536]
        };
        Setup {
            root: root.to_path_buf(),
            max_segment_bytes: sizes[rng.gen_range(0..3)],
            compression: rng.gen_bool(0.5),
            checkpoint_every: [1, 2, 4][rng.gen_range(0..3)],
            always,
        }
    }
}

/// The three stores of a data directory.
pub struct Stores {
    pub log: LogStore,
    pub snapshots: LogSnapshotStore,
    pub checkpoints: LogCheckpointStore,
}

/// Opens the log, snapshot and checkpoint stores of `setup` on `storage`.
pub async fn open_stores(setup: &Setup, storage: Arc<dyn Storage>) -> strata_core::Result<Stores> {
    let mut config = LogConfig::new(&setup.root)
        .durability(if setup.always {
            Durability::Always
        } else {
            Durability::None
        })
        .max_segment_bytes(setup.max_segment_bytes)
        .storage(storage.clone())
        .compression(setup.compression.then(Compression::default));
    config.stream_checkpoint_every_segments = setup.checkpoint_every;
    let log = LogStore::open(config).await?;
    let snapshot_options = SnapshotStoreOptions {
        max_file_bytes: 4096,
        compact_min_reclaimable_bytes: 512,
        compact_reclaimable_percent: 25,
    };
    let snapshots =
        LogSnapshotStore::open_with_options(&setup.root, storage.clone(), snapshot_options)?;
    let checkpoint_options = CheckpointStoreOptions {
        compact_at_bytes: 4096,
    };
    let checkpoints =
        LogCheckpointStore::open_with_options(&setup.root, storage, checkpoint_options)?;
    Ok(Stores {
        log,
        snapshots,
        checkpoints,
    })
}

/// The streams the workload writes.
pub fn stream(i: usize) -> StreamId {
    StreamId::new(format!("account-{i}")).expect("stream id")
}
const STREAMS: usize = 5;

/// The checkpoint names (long, so the checkpoint file compacts soon).
pub fn checkpoint_name(i: usize) -> String {
    format!("projection-{i}-{}", "p".repeat(150))
}
const CHECKPOINTS: usize = 3;

/// The state of a snapshot of `stream` at `version`: the same bytes every
/// time, so any surviving snapshot can be checked.
pub fn snapshot_state(stream: &StreamId, version: u64) -> Vec<u8> {
    let unit = format!("{stream}@{version};");
    let len = 40 + (version as usize * 131 + stream.as_str().len() * 17) % 1200;
    unit.bytes().cycle().take(len).collect()
}

/// One step of the workload.
#[derive(Clone, Debug)]
pub enum Step {
    /// Appends: each part's stream, expected version and events.
    Append(Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)>),
    /// An append whose expected version is wrong: refused, nothing written.
    WrongVersion(StreamId, u64),
    SnapshotSave(StreamId, u64),
    SnapshotDelete(StreamId),
    CheckpointSave(String),
    CheckpointReset(String),
    /// `LogStore::flush`: everything acknowledged before is durable.
    Flush,
}

/// An event of up to `max_len` data bytes (an append must fit in a 4 KiB
/// segment).
fn new_event(rng: &mut StdRng, stream: &StreamId, max_len: usize) -> NewEvent {
    let len = rng.gen_range(10..max_len);
    let unit = format!("{stream} moved {} coins;", rng.gen_range(1..1000));
    let data: Vec<u8> = unit.bytes().cycle().take(len).collect();
    let kind = ["Deposited", "Withdrawn"][rng.gen_range(0..2)];
    let mut e = NewEvent::new(kind, data, ContentType::Binary)
        .with_id(EventId(uuid::Uuid::from_u128(rng.gen())));
    if rng.gen_bool(0.3) {
        e.metadata.correlation_id = Some(format!("corr-{}", rng.gen_range(0..4)));
    }
    e
}

fn expected(rng: &mut StdRng, version: u64) -> ExpectedVersion {
    match rng.gen_range(0..5) {
        0 => ExpectedVersion::Any,
        1 if version == 0 => ExpectedVersion::NoStream,
        1 => ExpectedVersion::StreamExists,
        _ => ExpectedVersion::Exact(version),
    }
}

/// Draws the next step.
pub fn draw_step(rng: &mut StdRng, model: &Model) -> Step {
    let mut roll = rng.gen_range(0..100);
    let s = stream(rng.gen_range(0..STREAMS));
    // No snapshot of an empty stream, and fewer without `Always` (each
    // flushes first): append instead.
    if (65..=78).contains(&roll) && (model.version(&s) == 0 || (!model.always && roll > 68)) {
        roll = 0;
    }
    let name = checkpoint_name(rng.gen_range(0..CHECKPOINTS));
    match roll {
        0..=47 => {
            let n = rng.gen_range(1..=3);
            let events = (0..n).map(|_| new_event(rng, &s, 450)).collect();
            Step::Append(vec![(s.clone(), expected(rng, model.version(&s)), events)])
        }
        48..=62 => {
            let first = rng.gen_range(0..STREAMS);
            let parts = (0..rng.gen_range(2..=3))
                .map(|k| stream((first + k) % STREAMS))
                .map(|s| {
                    let events = (0..rng.gen_range(1..=2))
                        .map(|_| new_event(rng, &s, 250))
                        .collect();
                    (s.clone(), expected(rng, model.version(&s)), events)
                })
                .collect();
            Step::Append(parts)
        }
        63..=64 => Step::WrongVersion(s.clone(), model.version(&s) + 5),
        65..=78 => Step::SnapshotSave(s.clone(), model.version(&s)),
        79..=80 => Step::SnapshotDelete(s),
        81..=93 => Step::CheckpointSave(name),
        94..=95 => Step::CheckpointReset(name),
        _ => Step::Flush,
    }
}

/// How a step ended.
pub enum Outcome {
    /// Acknowledged (and recorded in the model).
    Done,
    /// It failed: the power is off (checked by the caller). The model
    /// holds it as the operation in doubt.
    Failed(Error),
}

/// Runs `step`, recording it in `model` if acknowledged or as the doubt if
/// not.
pub async fn run_step(stores: &Stores, step: Step, model: &mut Model) -> Outcome {
    match step {
        Step::Append(parts) => append(stores, parts, model).await,
        Step::WrongVersion(s, v) => {
            let r = stores
                .log
                .append(
                    &s,
                    ExpectedVersion::Exact(v),
                    vec![NewEvent::new("X", vec![1], ContentType::Binary)],
                )
                .await;
            match r {
                Err(Error::WrongExpectedVersion { .. }) => Outcome::Done,
                Ok(_) => Outcome::Failed(Error::Backend(format!(
                    "an append to {s} expecting version {v} was accepted"
                ))),
                Err(e) => Outcome::Failed(e),
            }
        }
        Step::SnapshotSave(s, v) => {
            // Without `Always`, a snapshot is taken of flushed events only,
            // or it could outlive the events it covers.
            if !model.always {
                if let Err(e) = flush(stores, model).await {
                    return Outcome::Failed(e);
                }
            }
            let snap = Snapshot {
                stream: s.clone(),
                aggregate_type: "Account".into(),
                version: v,
                schema_version: 1,
                state: snapshot_state(&s, v).into(),
                taken_at: chrono::Utc::now(),
            };
            let r = stores.snapshots.save(snap).await;
            settle_snapshot(r, model, s, Some(v))
        }
        Step::SnapshotDelete(s) => {
            let r = stores.snapshots.delete(&s).await;
            settle_snapshot(r, model, s, None)
        }
        Step::CheckpointSave(name) => {
            let p = model.head;
            let r = stores.checkpoints.save(&name, p).await;
            settle_checkpoint(r, model, name, Some(p))
        }
        Step::CheckpointReset(name) => {
            let r = stores.checkpoints.reset(&name).await;
            settle_checkpoint(r, model, name, None)
        }
        Step::Flush => match flush(stores, model).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
    }
}

/// Flushes the log: every append acknowledged before is durable now.
async fn flush(stores: &Stores, model: &mut Model) -> strata_core::Result<()> {
    stores.log.flush().await?;
    let flushed = std::mem::take(&mut model.unflushed);
    model.acked.extend(flushed);
    Ok(())
}

async fn append(
    stores: &Stores,
    parts: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)>,
    model: &mut Model,
) -> Outcome {
    let ids: Vec<(StreamId, Vec<EventId>)> = parts
        .iter()
        .map(|(s, _, evs)| (s.clone(), evs.iter().filter_map(|e| e.id).collect()))
        .collect();
    let appends: Vec<StreamAppend> = parts
        .into_iter()
        .map(|(s, x, evs)| StreamAppend::new(s, x, evs))
        .collect();
    let r = if appends.len() == 1 {
        let a = appends.into_iter().next().expect("one part");
        stores
            .log
            .append(&a.stream, a.expected, a.events)
            .await
            .map(|r| vec![r])
    } else {
        stores.log.append_multi(appends).await
    };
    match r {
        Ok(results) => {
            for ((s, ids), r) in ids.into_iter().zip(results) {
                let first_version = r.next_expected_version + 1 - ids.len() as u64;
                model.versions.insert(s.clone(), r.next_expected_version);
                model.head = model.head.max(r.last_position);
                let a = Acked {
                    stream: s,
                    first_version,
                    ids,
                    first_position: r.first_position,
                    last_position: r.last_position,
                };
                if model.always {
                    model.acked.push(a);
                } else {
                    model.unflushed.push(a);
                }
            }
            Outcome::Done
        }
        Err(e) => {
            model.doubt = Some(Doubt::Append(ids));
            Outcome::Failed(e)
        }
    }
}

fn settle_snapshot(
    r: strata_core::Result<()>,
    model: &mut Model,
    s: StreamId,
    effect: Option<u64>,
) -> Outcome {
    match r {
        Ok(()) => {
            model.snapshots.insert(s, effect);
            Outcome::Done
        }
        Err(e) => {
            model.doubt = Some(Doubt::Snapshot(s, effect));
            Outcome::Failed(e)
        }
    }
}

fn settle_checkpoint(
    r: strata_core::Result<()>,
    model: &mut Model,
    name: String,
    effect: Option<Position>,
) -> Outcome {
    match r {
        Ok(()) => {
            model.checkpoints.insert(name, effect);
            Outcome::Done
        }
        Err(e) => {
            model.doubt = Some(Doubt::Checkpoint(name, effect));
            Outcome::Failed(e)
        }
    }
}
