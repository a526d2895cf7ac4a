//! A run from start to end: prepare the store's place, probe fdatasync,
//! open, run the workload, close, clean up, and report. A workload gets a
//! [`BenchCtx`] and returns [`Measurement`]s; this adds what every result
//! line shares (store, durability, memory, the machine's fdatasync rate).

use std::path::Path;
use std::time::Duration;

use strata_stores::{OpenStore, StoreSpec};

use crate::args::{BenchArgs, Params, WorkloadName};
use crate::bench_store::BenchStore;
use crate::context::BenchCtx;
use crate::fsync::{self, FsyncRate};
use crate::host::{Console, Host};
use crate::report::{self, BenchResult, Measurement};
use crate::workload::{self, dcb, http_append, raw_insert, scale};
use crate::{payload, BenchError};

/// Runs the workload `args` name, as `strata bench` does: its results go to
/// the host's console as a table (or JSON lines), its notes beside them.
pub async fn run(args: BenchArgs, host: &Host<'_>) -> Result<(), BenchError> {
    if args.workload == WorkloadName::HttpAppend {
        return http_append::run(&args, host).await;
    }
    if args.workload == WorkloadName::HttpGroups {
        return http_append::groups::run(&args, host).await;
    }
    if args.workload == WorkloadName::Dcb && args.server.is_some() {
        return dcb::http::run(&args, host).await;
    }
    let console = host.console;
    let place = BenchStore::prepare(&args)?;
    announce(console, &place);
    let probe = probe_fsync(place.probe_dir(), args.fsync_probe_ms).await?;
    let open = place.open(args.durability, args.compress).await?;
    let outcome = measure(&args, &place, &open, probe.as_ref(), host).await;
    let stored_events = match open.log_store() {
        Some(log) => log.disk_usage().ok().map(|u| u.events),
        None => None,
    };
    let closed = open.close().await;
    if let (Some(dir), Some(events)) = (place.log_dir(), stored_events) {
        note_log_usage(console, dir, events, args.compress);
    }
    let reopened = match (args.workload, place.log_dir(), &outcome) {
        (WorkloadName::Scale, Some(dir), Ok(_)) => {
            Some(scale::reopen(dir, args.durability, host).await)
        }
        _ => None,
    };
    let spec = place.spec().to_string();
    let kept = place.finish(args.keep).await;
    let mut results = outcome?;
    closed?;
    if let Some(reopened) = reopened {
        for m in reopened? {
            results.push(BenchResult::new(
                args.workload.as_str(),
                spec.clone(),
                &args.durability.to_string(),
                m,
                probe.as_ref(),
            ));
        }
    }
    report::print(console, &results, probe.as_ref(), args.json);
    note_kept(console, kept);
    Ok(())
}

/// Says which store is benchmarked where.
fn announce(console: &dyn Console, place: &BenchStore) {
    if let Some(dir) = place.log_dir() {
        console.note(&format!("benchmarking the log store in {}", dir.display()));
    }
    if let Some(schema) = place.pg_schema() {
        console.note(&format!(
            "benchmarking the PostgreSQL store {} in schema {schema}",
            place.spec()
        ));
    }
}

/// Notes the log store's bytes per event in segments and on disk.
fn note_log_usage(console: &dyn Console, dir: &Path, events: u64, compress: bool) {
    let Ok(u) = strata_log::store::dir_usage(dir) else {
        return;
    };
    if events > 0 {
        console.note(&format!(
            "log store: {events} events, {:.1} bytes/event in segments, {:.1} bytes/event on disk{}; {} segment bytes, {} index and tag file bytes, {} stream checkpoint bytes",
            u.segment_bytes as f64 / events as f64,
            u.segment_bytes_on_disk as f64 / events as f64,
            if compress { " (sealed segments compressed)" } else { "" },
            u.segment_bytes_on_disk,
            u.index_bytes,
            u.checkpoint_bytes,
        ));
    }
}

/// Notes where the kept data is, or why it could not be removed.
pub(crate) fn note_kept(console: &dyn Console, kept: Result<Option<String>, String>) {
    match kept {
        Ok(Some(place)) => console.note(&format!("kept the benchmark's data in {place}")),
        Ok(None) => {}
        Err(e) => console.note(&format!("warning: {e}")),
    }
}

/// Measures the fdatasync rate in `dir` for `budget_ms` (`None` for 0).
pub(crate) async fn probe_fsync(
    dir: &Path,
    budget_ms: u64,
) -> Result<Option<FsyncRate>, BenchError> {
    if budget_ms == 0 {
        return Ok(None);
    }
    let dir = dir.to_path_buf();
    let budget = Duration::from_millis(budget_ms);
    let rate = tokio::task::spawn_blocking(move || fsync::measure(&dir, budget))
        .await
        .map_err(|e| format!("the fdatasync probe failed: {e}"))??;
    Ok(Some(rate))
}

async fn measure(
    args: &BenchArgs,
    place: &BenchStore,
    open: &OpenStore,
    probe: Option<&FsyncRate>,
    host: &Host<'_>,
) -> Result<Vec<BenchResult>, BenchError> {
    let store = open.store();
    let params = Params::resolve(args, store.as_ref())?;
    drop(store);
    let ctx = BenchCtx {
        open,
        params,
        run_id: payload::run_id(),
        show_progress: host.console.show_progress()
            && (!args.json || std::io::IsTerminal::is_terminal(&std::io::stderr())),
        host,
    };
    let measurements = workload::run(args.workload, &ctx).await?;
    let durability = match place.spec() {
        StoreSpec::Log(_) => args.durability.to_string(),
        _ => "n/a".to_string(),
    };
    let mut results: Vec<BenchResult> = measurements
        .into_iter()
        .map(|m: Measurement| {
            BenchResult::new(
                args.workload.as_str(),
                place.spec().to_string(),
                &durability,
                m,
                probe,
            )
        })
        .collect();
    add_raw_insert_ratio(host.console, &mut results);
    Ok(results)
}

/// When a run has `append` and `raw-insert` lines (`append` on PostgreSQL),
/// records the append rate as a multiple of the raw-insert rate and notes it.
fn add_raw_insert_ratio(console: &dyn Console, results: &mut [BenchResult]) {
    let Some((raw_rate, raw_writers)) = results
        .iter()
        .find(|r| r.workload() == raw_insert::WORKLOAD)
        .map(|r| (r.events_per_sec(), r.writers()))
    else {
        return;
    };
    if raw_rate <= 0.0 {
        return;
    }
    for r in results
        .iter_mut()
        .filter(|r| r.workload() == WorkloadName::Append.as_str())
    {
        let ratio = r.events_per_sec() / raw_rate;
        r.set_ratio_to_raw_insert(ratio);
        console.note(&format!(
            "ratio: append {:.0} events/s = {ratio:.2}x the raw single-row INSERT rate ({raw_rate:.0} rows/s, {raw_writers} connections)",
            r.events_per_sec()
        ));
    }
}
