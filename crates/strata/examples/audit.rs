//! Audit trail (seed §6.3): user actions and system events written to a few
//! hash-chained audit logs, queried by user, by resource and by time from
//! secondary indexes, and (with `--verify`) every chain checked and a
//! tampered copy caught.
//!
//! ```text
//! cargo run -p strata --release --example audit -- --verify                # memory:, 20,000 actions
//! cargo run -p strata --release --example audit -- --verify --store log:./audit-data
//! ```
//!
//! Options: `--store memory:|log:DIR`, `--actions N`, `--logs L` (chains,
//! written concurrently, each by one writer), `--batch B` (records per
//! command: one atomic append, so one fsync on `log:`; 1 writes each record
//! alone), `--verify`, `--seed S`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::scenarios::audit::{
    verify_audit_chain, verify_events, AuditCommand, AuditIndex, AuditLog, MAX_BATCH_RECORDS,
};
use strata::{
    Bytes, CommandMeta, Direction, EventStore, MemoryCheckpointStore, MemoryStore,
    ProjectionRunner, RecordedEvent, Repository, Typed,
};
use strata_log::{LogConfig, LogStore};

const USAGE: &str = "usage: audit [--store memory: | --store log:DIR] [--actions N] [--logs L] \
                     [--batch B] [--verify] [--seed S]";
const USERS: usize = 100;
const RESOURCES: usize = 500;
const ACTIONS: [&str; 4] = ["read", "update", "delete", "share"];

struct Args {
    store: String,
    actions: usize,
    logs: usize,
    batch: usize,
    verify: bool,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        store: "memory:".to_owned(),
        actions: 20_000,
        logs: 4,
        batch: 50,
        verify: false,
        seed: 1,
    };
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value\n{USAGE}"))
        };
        let number = |v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{key}: {e}\n{USAGE}"))
        };
        match key.as_str() {
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--store" => out.store = value()?,
            "--actions" => out.actions = number(value()?)? as usize,
            "--logs" => out.logs = (number(value()?)? as usize).max(1),
            "--batch" => out.batch = (number(value()?)? as usize).clamp(1, MAX_BATCH_RECORDS),
            "--verify" => out.verify = true,
            "--seed" => out.seed = number(value()?)?,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    if out.store != "memory:" && !out.store.starts_with("log:") {
        return Err(format!(
            "unknown store `{}`: use `memory:` or `log:DIR`\n{USAGE}",
            out.store
        ));
    }
    Ok(out)
}

type Repo = Repository<AuditLog, Arc<dyn EventStore>>;

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Writes `n` records to log `log`: mostly user actions, a system event
/// every 100th, `batch` per command. Timestamps advance about a second
/// per record.
async fn write_log(
    repo: &Repo,
    log: &str,
    n: usize,
    batch: usize,
    seed: u64,
) -> Result<u64, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = 0;
    let mut pending = Vec::with_capacity(batch);
    for i in 0..n {
        let timestamp = base_time()
            + chrono::Duration::milliseconds(rng.gen_range(0..2_000) + i as i64 * 1_000);
        let command = if i % 100 == 99 {
            AuditCommand::SystemEvent {
                event_type: "config-reload".into(),
                details: serde_json::json!({ "log": log, "record": i }),
                timestamp,
            }
        } else {
            AuditCommand::UserAction {
                user_id: format!("user-{:03}", rng.gen_range(0..USERS)),
                action: ACTIONS[rng.gen_range(0..ACTIONS.len())].into(),
                resource: format!("doc-{:03}", rng.gen_range(0..RESOURCES)),
                timestamp,
            }
        };
        pending.push(command);
        if pending.len() == batch || i + 1 == n {
            let command = if pending.len() == 1 {
                pending.remove(0)
            } else {
                AuditCommand::Batch {
                    records: std::mem::take(&mut pending),
                }
            };
            let done = repo
                .execute(
                    log,
                    command,
                    CommandMeta::new().with_source("audit-example"),
                )
                .await
                .map_err(|e| format!("log {log}: {e}"))?;
            events += done.events.len() as u64;
        }
    }
    Ok(events)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn open_store(spec: &str) -> Result<(Arc<dyn EventStore>, String), String> {
    match spec.strip_prefix("log:") {
        None => Ok((Arc::new(MemoryStore::new()), "run".to_owned())),
        Some(dir) => {
            let dir = if dir.is_empty() { "./audit-data" } else { dir };
            let log = LogStore::open(LogConfig::new(dir))
                .await
                .map_err(|e| format!("cannot open `{spec}`: {e}"))?;
            Ok((
                Arc::new(log),
                format!("r{}", chrono::Utc::now().timestamp_millis()),
            ))
        }
    }
}

fn doctor(e: &RecordedEvent, field: &str, value: serde_json::Value) -> RecordedEvent {
    let mut json: serde_json::Value = serde_json::from_slice(&e.data).unwrap_or_default();
    json[field] = value;
    let mut out = e.clone();
    out.data = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
    out
}

async fn main_inner(args: Args) -> Result<(), String> {
    let (store, run) = open_store(&args.store).await?;
    println!(
        "audit example on `{}`: {} records over {} logs, {} per command, run `{run}`",
        args.store, args.actions, args.logs, args.batch
    );
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(args.logs));
    let logs: Vec<String> = (0..args.logs).map(|l| format!("{run}_svc{l}")).collect();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (l, log) in logs.iter().enumerate() {
        let (repo, log) = (Arc::clone(&repo), log.clone());
        let n = args.actions / args.logs + usize::from(l < args.actions % args.logs);
        let (seed, batch) = (args.seed ^ (l as u64) << 32, args.batch);
        tasks.push(tokio::spawn(async move {
            write_log(&repo, &log, n, batch, seed).await
        }));
    }
    let mut events = 0;
    for t in tasks {
        events += t.await.map_err(|e| e.to_string())??;
    }
    let wrote = started.elapsed();
    println!(
        "\nwrite: {events} chained records in {wrote:.2?}: {:.0} records/s (SHA-256 per record, \
         one writer per chain)",
        rate(events, wrote)
    );

    // The indexes.
    let mut runner = ProjectionRunner::new(
        Arc::clone(&store),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AuditIndex::new()),
    );
    let report = runner.catch_up().await.map_err(|e| e.to_string())?;
    println!(
        "index: {} events in {:.2?} ({:.0} events/s)",
        report.events,
        report.elapsed,
        report.events_per_second()
    );
    let index = runner.projection();

    println!("\nqueries (index vs full scan of every record):");
    let user = "user-042";
    let (found, t_index, scan, t_scan) = index
        .read(|ix| {
            let t = Instant::now();
            let found = ix.by_user(user).len();
            let t_index = t.elapsed();
            let t = Instant::now();
            let scan = ix
                .records()
                .iter()
                .filter(|r| r.user_id() == Some(user))
                .count();
            (found, t_index, scan, t.elapsed())
        })
        .await;
    println!(
        "  actions of {user}: {found} (index {t_index:.2?}; scan found {scan} in {t_scan:.2?})"
    );
    if found != scan {
        return Err("the user index differs from a full scan".into());
    }
    let resource = "doc-007";
    let (lines, scan) = index
        .read(|ix| {
            let lines: Vec<String> = ix
                .by_resource(resource)
                .iter()
                .take(3)
                .map(|r| match &r.event {
                    strata::scenarios::audit::AuditEvent::UserAction {
                        user_id,
                        action,
                        timestamp,
                        seq,
                        ..
                    } => format!("{timestamp} {user_id} {action} (#{seq} of {})", r.stream),
                    other => format!("{other:?}"),
                })
                .collect();
            let total = ix.by_resource(resource).len();
            let scan = ix
                .records()
                .iter()
                .filter(|r| r.resource() == Some(resource))
                .count();
            ((total, lines), scan)
        })
        .await;
    println!(
        "  actions on {resource}: {} (scan: {scan}); first:",
        lines.0
    );
    for l in &lines.1 {
        println!("    {l}");
    }
    if lines.0 != scan {
        return Err("the resource index differs from a full scan".into());
    }
    // One minute in the middle of the run (records are about a second apart).
    let middle = (args.actions / args.logs / 2) as i64;
    let from = base_time() + chrono::Duration::seconds(middle);
    let to = from + chrono::Duration::minutes(1);
    let (found, t_index, scan, t_scan) = index
        .read(|ix| {
            let t = Instant::now();
            let found = ix.in_range(from, to).len();
            let t_index = t.elapsed();
            let t = Instant::now();
            let scan = ix
                .records()
                .iter()
                .filter(|r| (from..to).contains(&r.event.timestamp()))
                .count();
            (found, t_index, scan, t.elapsed())
        })
        .await;
    println!(
        "  events in [{from}, {to}): {found} (index {t_index:.2?}; scan found {scan} in {t_scan:.2?})"
    );
    if found != scan {
        return Err("the time index differs from a full scan".into());
    }

    if !args.verify {
        println!("\n(run with --verify to check every chain and see tampering caught)");
        return Ok(());
    }
    println!("\nverify:");
    for log in &logs {
        let stream = Repo::stream_id(log).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let head = verify_audit_chain(&*store, &stream)
            .await
            .map_err(|e| e.to_string())?;
        let took = t.elapsed();
        println!(
            "  {stream}: {} events intact, head {}… ({took:.2?}, {:.0} events/s)",
            head.count,
            &head.hash[..16],
            rate(head.count, took)
        );
    }
    // Tampering, on a copy read from the store (the store itself has no
    // way to change a recorded event).
    let stream = Repo::stream_id(&logs[0]).map_err(|e| e.to_string())?;
    let events = store
        .read_stream(&stream, 1, 1_000, Direction::Forward)
        .await
        .map_err(|e| e.to_string())?;
    if events.len() >= 3 {
        let k = events.len() / 2;
        let mut modified = events.clone();
        modified[k] = doctor(&events[k], "resource", "doc-secret".into());
        let mut removed = events.clone();
        removed.remove(k);
        let mut reordered = events.clone();
        reordered.swap(k, k + 1);
        for (what, seq) in [
            ("modified", &modified),
            ("removed", &removed),
            ("reordered", &reordered),
        ] {
            match verify_events(seq.iter()) {
                Err(report) => println!("  one event {what}: {report}"),
                Ok(_) => return Err(format!("a {what} event went unnoticed")),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match main_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit example failed: {e}");
            ExitCode::FAILURE
        }
    }
}
