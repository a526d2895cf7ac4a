//! Fault injection: failing fsync, ENOSPC, short and torn writes. Each shows
//! that no acknowledged event is lost, that the store stops accepting writes
//! after a failure it cannot retry, and that reopening recovers cleanly.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use strata_core::{Error, EventStore, ExpectedVersion};
use strata_log::io::Faults;
use strata_log::LogStore;

/// Arms a fault, makes one append fail, and checks the aftermath.
async fn fault_then_recover(arm: impl FnOnce(&Faults)) {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    *faults.file_filter.lock() = ".seg".into();
    let store = LogStore::open(faulty_config(dir.path(), faults.clone()))
        .await
        .unwrap();
    let mut acked = Vec::new();
    append_some(&store, 50, 5, &mut acked).await;
    let head = store.head_position().await.unwrap();
    assert_eq!(
        store.health().unwrap(),
        Some(head),
        "a sound store is healthy"
    );

    arm(&faults);
    let failing = event(999);
    let failing_id = failing.id.unwrap();
    let r = store
        .append(&stream(0), ExpectedVersion::Any, vec![failing])
        .await;
    assert!(r.is_err(), "the faulty append must fail, got {r:?}");

    // The store now refuses writes and says why; reads still work.
    let again = store
        .append(&stream(1), ExpectedVersion::Any, vec![event(1000)])
        .await;
    assert!(
        matches!(again, Err(Error::Poisoned { .. })),
        "writes after a failure must be refused, got {again:?}"
    );
    // Health says so too, without touching the disk.
    assert!(
        matches!(store.health(), Err(Error::Poisoned { .. })),
        "a store refusing writes is not healthy"
    );
    if !faults.crashed.load(Ordering::SeqCst) {
        check_acked(&store, &acked).await;
    }
    drop(store);

    // Reopen on healthy storage: every acknowledged append is there, nothing
    // partial, and the failed append is either wholly there or absent.
    let store = LogStore::open(config(dir.path())).await.unwrap();
    check_acked(&store, &acked).await;
    let s0 = store
        .read_stream(&stream(0), 1, 1000, strata_core::Direction::Forward)
        .await
        .unwrap();
    let failed_present = s0.iter().filter(|e| e.id == failing_id).count();
    assert!(failed_present <= 1);
    // Writes work again after reopening.
    store
        .append(&stream(2), ExpectedVersion::Any, vec![event(2000)])
        .await
        .unwrap();
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_fsync_stops_writes_and_loses_nothing_acknowledged() {
    fault_then_recover(|f| f.fail_next_sync.store(true, Ordering::SeqCst)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enospc_stops_writes_and_loses_nothing_acknowledged() {
    fault_then_recover(|f| f.enospc_after_bytes.store(100, Ordering::SeqCst)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_write_stops_writes_and_loses_nothing_acknowledged() {
    fault_then_recover(|f| f.short_write_bytes.store(37, Ordering::SeqCst)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_write_then_crash_is_cut_on_reopen() {
    fault_then_recover(|f| f.torn_write_bytes.store(61, Ordering::SeqCst)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = LogStore::open(faulty_config(dir.path(), faults.clone()))
        .await
        .unwrap();
    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let err = store
        .append(&stream(0), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("fsync") && msg.contains(".seg"), "{msg}");
}
