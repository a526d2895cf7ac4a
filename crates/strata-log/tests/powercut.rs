//! The power-cut simulator against the log, snapshot and checkpoint stores.
//!
//! For each seed: the stores are opened on a simulated disk
//! (`strata_log::powercut`) with small segments, files and thresholds, a
//! seeded workload appends (single and multi-stream, with ids and expected
//! versions), saves and deletes snapshots and saves and resets checkpoints,
//! and the power goes off after a seeded number of storage operations. The
//! stores are reopened on what the cut left, and every acknowledged append
//! must be there with its ids, versions and positions, nothing partial,
//! versions contiguous, acknowledged snapshots and checkpoints readable (or
//! the one in doubt), and `verify` clean. Each seed runs one to three such
//! rounds. `docs/testing-durability.md` describes the simulator and how to
//! run millions of seeds.
//!
//! `STRATA_POWERCUT_SEEDS` seeds per mode (default 300),
//! `STRATA_POWERCUT_FIRST_SEED` the first (default 0), `STRATA_POWERCUT_SEED`
//! one seed alone.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/powercut/mod.rs"]
mod sim;

use std::time::Instant;

use sim::{run_seed, Plant, SeedStats};
use strata_log::powercut::PowerCut;

/// Default seeds per mode: enough to run in a few seconds.
const DEFAULT_SEEDS: u64 = 300;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got `{v}`"))
    })
}

/// The seeds to run: one alone, or a count from a first one.
fn seeds(default_count: u64) -> std::ops::Range<u64> {
    if let Some(one) = env_u64("STRATA_POWERCUT_SEED") {
        return one..one + 1;
    }
    let first = env_u64("STRATA_POWERCUT_FIRST_SEED").unwrap_or(0);
    first..first + env_u64("STRATA_POWERCUT_SEEDS").unwrap_or(default_count)
}

/// A real directory for the stores' lock files (the data lives on the
/// simulated disk under the same path).
fn lock_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("snapshots")).unwrap();
    std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn rerun(seed: u64, test: &str) -> String {
    format!(
        "rerun it alone: STRATA_POWERCUT_SEED={seed} cargo test -p strata-log --test powercut {test} -- --nocapture"
    )
}

/// Runs every seed in `mode`; panics on the first failure, naming the seed.
fn run_mode(mode: PowerCut, default_count: u64, test: &str) {
    let root = lock_root();
    let rt = runtime();
    let started = Instant::now();
    let mut total = SeedStats::default();
    let range = seeds(default_count);
    let count = range.end - range.start;
    for seed in range {
        match rt.block_on(run_seed(seed, mode, None, root.path())) {
            Ok(s) => {
                total.rounds += s.rounds;
                total.cut_mid_round += s.cut_mid_round;
                total.steps += s.steps;
                total.ops += s.ops;
                total.reordered_files += s.reordered_files;
                total.compactions += s.compactions;
            }
            Err(msg) => panic!(
                "power-cut seed {seed} ({mode}) failed: {msg}\n{}",
                rerun(seed, test)
            ),
        }
        if (seed + 1) % 10_000 == 0 {
            eprintln!(
                "{mode}: seed {seed} passed ({:.0?} so far)",
                started.elapsed()
            );
        }
    }
    eprintln!(
        "{mode}: {count} seeds passed in {:.2?}: {} rounds ({} cut in the middle of the work), {} steps, {} storage operations, {} files with a later write kept and an earlier one lost, {} snapshot and checkpoint compactions",
        started.elapsed(),
        total.rounds,
        total.cut_mid_round,
        total.steps,
        total.ops,
        total.reordered_files,
        total.compactions
    );
}

#[test]
fn in_order_power_cuts_lose_nothing_acknowledged() {
    run_mode(PowerCut::InOrder, DEFAULT_SEEDS, "in_order_power_cuts");
}

#[test]
fn reordered_power_cuts_lose_nothing_acknowledged() {
    run_mode(PowerCut::Reordered, DEFAULT_SEEDS, "reordered_power_cuts");
}

#[test]
fn synced_only_power_cuts_lose_nothing_acknowledged() {
    run_mode(
        PowerCut::SyncedOnly,
        DEFAULT_SEEDS / 3,
        "synced_only_power_cuts",
    );
}

#[test]
fn process_crashes_lose_nothing_acknowledged() {
    run_mode(PowerCut::KeepAll, DEFAULT_SEEDS / 3, "process_crashes");
}

#[test]
fn a_seed_replays_the_same_run() {
    let root = lock_root();
    let rt = runtime();
    for seed in 0..20 {
        for mode in [PowerCut::InOrder, PowerCut::Reordered] {
            let a = rt
                .block_on(run_seed(seed, mode, None, root.path()))
                .unwrap();
            let b = rt
                .block_on(run_seed(seed, mode, None, root.path()))
                .unwrap();
            assert_eq!(a, b, "seed {seed} ({mode}) ran differently twice");
        }
    }
}

/// Runs seeds with `plant` until one fails; returns it.
fn first_catch(plant: Plant, mode: PowerCut, max_seeds: u64) -> u64 {
    let root = lock_root();
    let rt = runtime();
    let started = Instant::now();
    for seed in 0..max_seeds {
        if let Err(msg) = rt.block_on(run_seed(seed, mode, Some(plant), root.path())) {
            eprintln!(
                "planted {plant:?} caught by seed {seed} ({mode}) after {:.2?}: {msg}",
                started.elapsed()
            );
            return seed;
        }
    }
    panic!("planted {plant:?} was not caught in {max_seeds} seeds ({mode})");
}

#[test]
fn a_skipped_segment_fdatasync_is_caught() {
    for mode in [PowerCut::InOrder, PowerCut::Reordered] {
        first_catch(Plant::SkippedSync, mode, 2000);
    }
}

#[test]
fn an_acknowledgement_before_the_sync_is_caught() {
    for mode in [PowerCut::InOrder, PowerCut::Reordered] {
        first_catch(Plant::EarlyAck, mode, 500);
    }
}

#[test]
fn a_rename_without_a_directory_sync_is_caught() {
    for mode in [PowerCut::InOrder, PowerCut::Reordered] {
        first_catch(Plant::UnsyncedRename, mode, 2000);
    }
}
