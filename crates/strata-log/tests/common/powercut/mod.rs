//! The power-cut test's machinery: a seed draws a store configuration, a
//! few rounds of workload each ended by a power cut at a seeded moment, and
//! the checks run on every disk image the cuts leave.

pub mod check;
pub mod model;
pub mod workload;

use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{ContentType, EventId, EventStore, ExpectedVersion, NewEvent};
use strata_log::io::Storage;
use strata_log::powercut::image::mix;
use strata_log::powercut::planted::{PlantedBug, PlantedStorage};
use strata_log::powercut::{PowerCut, PowerCutDisk};
use strata_log::verify::verify;

use check::check_all;
use model::Model;
use workload::{draw_step, open_stores, run_step, Outcome, Setup, Stores, BACKGROUND_THREADS};

/// Why a round or a check stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The power went off: not a failure.
    PowerOff,
    /// Something the store promised does not hold.
    Bug(String),
}

impl Stop {
    pub fn bug(msg: impl Into<String>) -> Stop {
        Stop::Bug(msg.into())
    }
    pub fn from_read(e: strata_core::Error) -> Stop {
        Stop::Bug(format!("a read failed: {e}"))
    }
}

/// The kind of planted bug a seed runs with (its details drawn per round).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// `PlantedBug::SkipSegmentSync`, the sync drawn per round.
    SkippedSync,
    /// `PlantedBug::AckBeforeSync`.
    EarlyAck,
    /// `PlantedBug::RenameWithoutDirSync`.
    UnsyncedRename,
}

/// What one seed did, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedStats {
    pub rounds: u64,
    /// Rounds whose power went off in the middle of the work.
    pub cut_mid_round: u64,
    pub steps: u64,
    pub ops: u64,
    /// Appends acknowledged (or found whole after a cut).
    pub acked: u64,
    /// Files of the images in which a later unsynced write survived an
    /// earlier lost one.
    pub reordered_files: u64,
    /// Compactions of snapshot and checkpoint files, over the rounds.
    pub compactions: u64,
}

/// Waits for the writer while background threads are held, then lets them
/// finish and holds them again: every step's operations happen in one order.
async fn settle(stores: &Stores, disk: &PowerCutDisk) -> strata_core::Result<()> {
    let flushed = stores.log.wait_writer().await;
    disk.release_threads();
    let settled = stores.log.settle().await;
    disk.hold_threads(&BACKGROUND_THREADS);
    flushed.and(settled)
}

fn storage_for(disk: &PowerCutDisk, plant: Option<Plant>, rng: &mut StdRng) -> Arc<dyn Storage> {
    let inner: Arc<dyn Storage> = Arc::new(disk.clone());
    let bug = match plant {
        None => return inner,
        Some(Plant::SkippedSync) => PlantedBug::SkipSegmentSync {
            nth: rng.gen_range(1..=12),
        },
        Some(Plant::EarlyAck) => PlantedBug::AckBeforeSync,
        Some(Plant::UnsyncedRename) => PlantedBug::RenameWithoutDirSync,
    };
    Arc::new(PlantedStorage::new(inner, bug))
}

/// One round on `disk` (whose power goes off after `budget` operations):
/// open, check what the last cut left, run `steps` steps.
async fn round(
    steps: usize,
    setup: &Setup,
    disk: &PowerCutDisk,
    storage: Arc<dyn Storage>,
    model: &mut Model,
    rng: &mut StdRng,
    stats: &mut SeedStats,
) -> Result<(), String> {
    disk.hold_threads(&BACKGROUND_THREADS);
    let stores = match open_stores(setup, storage).await {
        Ok(s) => s,
        Err(_) if disk.is_off() => return Ok(()),
        Err(e) => return Err(format!("the stores did not open: {e}")),
    };
    let checked = match settle(&stores, disk).await {
        Ok(()) => check_all(&stores, model).await,
        Err(_) => Err(Stop::PowerOff),
    };
    match checked {
        Ok(()) => {}
        Err(_) if disk.is_off() => return Ok(()),
        Err(Stop::Bug(msg)) => return Err(msg),
        Err(Stop::PowerOff) => return Err("an operation failed with the power on".into()),
    }
    let worked = work(steps, &stores, disk, model, rng, stats).await;
    stats.compactions +=
        stores.snapshots.stats().compactions + stores.checkpoints.stats().compactions;
    if !worked? {
        return Ok(());
    }
    // The work is done before the power goes: shut down cleanly, or not.
    if rng.gen_bool(0.5) {
        disk.release_threads();
        let Stores { log, .. } = stores;
        if let Err(e) = log.close().await {
            if !disk.is_off() {
                return Err(format!("closing failed with the power on: {e}"));
            }
        }
    } else {
        disk.power_off();
    }
    Ok(())
}

/// Runs `steps` steps; `Ok(false)` when the power went off on the way.
async fn work(
    steps: usize,
    stores: &Stores,
    disk: &PowerCutDisk,
    model: &mut Model,
    rng: &mut StdRng,
    stats: &mut SeedStats,
) -> Result<bool, String> {
    for i in 0..steps {
        let step = draw_step(rng, model);
        let described = format!("{step:?}");
        stats.steps += 1;
        let failed = match run_step(stores, step, model).await {
            Outcome::Done => settle(stores, disk).await.err(),
            Outcome::Failed(e) => Some(e),
        };
        if let Some(e) = failed {
            if disk.is_off() {
                stats.cut_mid_round += 1;
                return Ok(false);
            }
            let short: String = described.chars().take(300).collect();
            return Err(format!("step {i} ({short}) failed with the power on: {e}"));
        }
    }
    Ok(true)
}

/// Opens the last image with the power on for good: everything must check,
/// take a new append, close, and verify clean.
async fn final_check(
    setup: &Setup,
    disk: &PowerCutDisk,
    model: &mut Model,
    seed: u64,
) -> Result<(), String> {
    let stores = open_stores(setup, Arc::new(disk.clone()))
        .await
        .map_err(|e| format!("the store does not reopen: {e}"))?;
    stores
        .log
        .settle()
        .await
        .map_err(|e| format!("settling failed: {e}"))?;
    match check_all(&stores, model).await {
        Ok(()) => {}
        Err(Stop::Bug(msg)) => return Err(msg),
        Err(Stop::PowerOff) => return Err("the power went off on the final disk".into()),
    }
    let e = NewEvent::new("After", vec![7; 100], ContentType::Binary)
        .with_id(EventId(uuid::Uuid::from_u128(u128::from(seed) << 64 | 1)));
    stores
        .log
        .append(&workload::stream(0), ExpectedVersion::Any, vec![e])
        .await
        .map_err(|e| format!("an append after reopening failed: {e}"))?;
    let Stores { log, .. } = stores;
    log.close()
        .await
        .map_err(|e| format!("closing failed: {e}"))?;
    let report = verify(&setup.root, disk).map_err(|e| format!("verify did not run: {e}"))?;
    if !report.is_clean() {
        return Err(format!("verify found problems: {:#?}", report.problems));
    }
    Ok(())
}

/// Runs seed `seed` with power cuts of `mode` (and `plant`, if any) in the
/// data directory `root` (which must exist on the real file system with
/// `snapshots/` and `checkpoints/` in it, for the lock files).
pub async fn run_seed(
    seed: u64,
    mode: PowerCut,
    plant: Option<Plant>,
    root: &Path,
) -> Result<SeedStats, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let setup = Setup::draw(root, &mut rng);
    let rounds = rng.gen_range(1..=3);
    let mut disk = PowerCutDisk::new();
    let mut model = Model {
        always: setup.always,
        ..Model::default()
    };
    let mut stats = SeedStats::default();
    for r in 0..rounds {
        // Most rounds lose power in the middle of their work; some finish.
        let steps = rng.gen_range(5..=60);
        let budget = rng.gen_range(0..=steps as u64 * 3 + 20);
        disk.power_off_after(budget);
        let storage = storage_for(&disk, plant, &mut rng);
        round(
            steps, &setup, &disk, storage, &mut model, &mut rng, &mut stats,
        )
        .await
        .map_err(|e| format!("round {r} ({setup:?}, power off after {budget} operations): {e}"))?;
        stats.rounds += 1;
        stats.ops += disk.stats().ops;
        disk = disk.cut(mix(seed, r), mode);
        stats.reordered_files += disk.stats().reordered_files as u64;
    }
    final_check(&setup, &disk, &mut model, seed)
        .await
        .map_err(|e| format!("after the last power cut ({setup:?}): {e}"))?;
    stats.acked = model.acked.len() as u64;
    Ok(stats)
}
