//! The audit demo: user actions and system events written to a
//! few hash-chained audit logs at once, queried by user, by resource and by
//! time from the secondary indexes (each answer checked against a full
//! scan), and, with [`DemoOptions::verify`], every chain of the store
//! checked with [`verify_all_audit_chains`] and tampering with a copy of one
//! chain (one event modified, removed, swapped with the next) caught.
//!
//! Log `l` of run `run` is stream `audit-{run}_svc{l}`. A tampered chain in
//! the store does not fail the run: it is in the report
//! ([`DemoReport::first_tampered`]), for the caller to act on (`strata demo
//! audit --verify` exits non-zero naming the first bad event). With
//! `actions: 0` nothing is written and only the verification runs.
//!
//! ```
//! use std::sync::Arc;
//! use strata_scenarios::audit::demo::{run, DemoOptions};
//! use strata::{EventStore, MemoryStore};
//!
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//! let report = rt.block_on(async {
//!     let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
//!     run(store, &DemoOptions { actions: 500, verify: true, ..DemoOptions::default() }).await
//! }).unwrap();
//! assert_eq!(report.events, 500);
//! assert!(report.first_tampered().is_none());
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{Bytes, Direction, EventStore, MemoryCheckpointStore, RecordedEvent, StreamId};

use super::{
    verify_all_audit_chains, verify_events, AuditCommand, AuditEvent, AuditIndex, AuditLog,
    StoreVerification, TamperReport, MAX_BATCH_RECORDS,
};
use crate::demo::{check_range, fresh_run_id, per_second, CatchUp, DemoError};
use strata::command::CommandMeta;
use strata::projection::Typed;
use strata::repository::Repository;
use strata::runner::ProjectionRunner;

/// How many users act (`user-000` ..).
pub const USERS: usize = 100;
/// How many resources they act on (`doc-000` ..).
pub const RESOURCES: usize = 500;
/// What they do.
pub const ACTIONS: [&str; 4] = ["read", "update", "delete", "share"];
/// Every this many records of a log, one is a system event.
pub const SYSTEM_EVENT_EVERY: usize = 100;
/// Most records one run may write.
pub const MAX_DEMO_ACTIONS: usize = 10_000_000;
/// Most logs (chains) one run writes, each by its own task.
pub const MAX_DEMO_LOGS: usize = 1_024;
/// Records of the resource query the report lists.
pub const LISTED_RECORDS: usize = 3;
/// Intact chains the report lists by name (every tampered one is listed).
pub const LISTED_INTACT_CHAINS: usize = 8;
/// Most events of one chain read for the tampering demonstration.
pub const TAMPER_COPY_EVENTS: usize = 1_000;
/// The user whose actions are queried.
pub const QUERY_USER: &str = "user-042";
/// The resource whose actions are queried.
pub const QUERY_RESOURCE: &str = "doc-007";
/// The width of the time-range query, in seconds (records are about a
/// second apart in each log).
pub const QUERY_WINDOW_SECONDS: i64 = 60;

/// How to run the audit demo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Records to write over all logs (0 ..= [`MAX_DEMO_ACTIONS`]; 0 only
    /// verifies).
    pub actions: usize,
    /// Logs (chains), written concurrently, each by one writer (1 ..=
    /// [`MAX_DEMO_LOGS`]).
    pub logs: usize,
    /// Records per command (1 ..= [`MAX_BATCH_RECORDS`]): one atomic append,
    /// so one sync on a durable store.
    pub batch: usize,
    /// Check every audit chain of the store, and show tampering with a copy
    /// caught.
    pub verify: bool,
    /// Seed of the generated records.
    pub seed: u64,
    /// Names this run's streams; must hold no `-`.
    pub run: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            actions: 20_000,
            logs: 4,
            batch: 50,
            verify: false,
            seed: 1,
            run: fresh_run_id(),
        }
    }
}

/// A query answered from an index and by a full scan (they agreed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryAnswer {
    /// What was asked.
    pub question: String,
    /// How many records answer it.
    pub found: usize,
    /// How long the index took.
    pub index_elapsed: Duration,
    /// How long the full scan took.
    pub scan_elapsed: Duration,
    /// The first few answers, one line each.
    pub first: Vec<String>,
}

/// Every chain of the store verified, with the timing, and tampering with a
/// copy caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedVerification {
    /// Every chain of the store.
    pub store: StoreVerification,
    /// How long it took.
    pub elapsed: Duration,
    /// What tampering with a copy of one of this run's chains showed: each
    /// kind of tampering and the detector's report (empty if the run wrote
    /// fewer than three events to its first log).
    pub copy_tampering: Vec<(String, TamperReport)>,
}

/// What the audit demo did.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoReport {
    /// The run id.
    pub run: String,
    /// Records asked for.
    pub actions: usize,
    /// Logs written.
    pub logs: usize,
    /// Records per command.
    pub batch: usize,
    /// Events written.
    pub events: u64,
    /// Time spent writing.
    pub write_elapsed: Duration,
    /// The index's catch-up (every audit event of the store).
    pub indexed: CatchUp,
    /// The queries (empty when nothing was written).
    pub queries: Vec<QueryAnswer>,
    /// The verification, when asked for.
    pub verification: Option<TimedVerification>,
}

impl DemoReport {
    /// Records per second of writing.
    pub fn records_per_second(&self) -> f64 {
        per_second(self.events, self.write_elapsed)
    }

    /// The first tampered chain of the store and its first bad event.
    pub fn first_tampered(&self) -> Option<(&StreamId, &TamperReport)> {
        self.verification
            .as_ref()
            .and_then(|v| v.store.first_tampered())
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "audit: {} records over {} logs, {} per command, run `{}`",
            self.actions, self.logs, self.batch, self.run
        )?;
        writeln!(
            f,
            "write: {} chained records in {:.2?}: {:.0} records/s (SHA-256 per record, one \
             writer per chain)",
            self.events,
            self.write_elapsed,
            self.records_per_second()
        )?;
        write!(f, "index: {}", self.indexed)?;
        if !self.queries.is_empty() {
            write!(f, "\nqueries (index vs full scan of every record):")?;
        }
        for q in &self.queries {
            write!(
                f,
                "\n  {}: {} (index {:.2?}; scan found the same in {:.2?})",
                q.question, q.found, q.index_elapsed, q.scan_elapsed
            )?;
            for line in &q.first {
                write!(f, "\n    {line}")?;
            }
        }
        let Some(v) = &self.verification else {
            return write!(
                f,
                "\n(run with --verify to check every chain and see tampering caught)"
            );
        };
        let chains = v.store.chains.len();
        let tampered = v.store.tampered().count();
        write!(
            f,
            "\nverify: {chains} chains, {} events intact, {tampered} tampered, in {:.2?} ({:.0} \
             events/s)",
            v.store.intact_events(),
            v.elapsed,
            per_second(v.store.intact_events(), v.elapsed)
        )?;
        let mut intact_listed = 0;
        for c in &v.store.chains {
            match &c.outcome {
                Ok(_) if intact_listed == LISTED_INTACT_CHAINS => {}
                Ok(head) => {
                    intact_listed += 1;
                    write!(
                        f,
                        "\n  {}: {} events intact, head {}…",
                        c.stream,
                        head.count,
                        head.hash.get(..16).unwrap_or(&head.hash)
                    )?;
                }
                Err(report) => write!(f, "\n  {}: TAMPERED: {report}", c.stream)?,
            }
        }
        if chains - tampered > intact_listed {
            write!(
                f,
                "\n  ... and {} more intact chains",
                chains - tampered - intact_listed
            )?;
        }
        if !v.copy_tampering.is_empty() {
            write!(f, "\ntampering with a copy of a chain is caught:")?;
        }
        for (what, report) in &v.copy_tampering {
            write!(f, "\n  one event {what}: {report}")?;
        }
        Ok(())
    }
}

type Repo = Repository<AuditLog, Arc<dyn EventStore>>;

/// The records' clock starts here (a fixed date, so runs are repeatable).
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Writes `n` records to log `log`: mostly user actions, a system event
/// every [`SYSTEM_EVENT_EVERY`]th, `batch` per command. Timestamps advance
/// about a second per record.
async fn write_log(
    repo: &Repo,
    log: &str,
    n: usize,
    batch: usize,
    seed: u64,
) -> Result<u64, DemoError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = 0;
    let mut pending = Vec::with_capacity(batch);
    for i in 0..n {
        let timestamp = base_time()
            + chrono::Duration::milliseconds(rng.gen_range(0..2_000) + i as i64 * 1_000);
        let command = if i % SYSTEM_EVENT_EVERY == SYSTEM_EVENT_EVERY - 1 {
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
                    CommandMeta::new().with_source("strata-demo-audit"),
                )
                .await
                .map_err(|e| DemoError::Command(format!("log {log}: {e}")))?;
            events += done.events.len() as u64;
        }
    }
    Ok(events)
}

/// `e` with one field of its JSON payload replaced (a forged copy).
fn doctor(e: &RecordedEvent, field: &str, value: serde_json::Value) -> RecordedEvent {
    let mut json: serde_json::Value = serde_json::from_slice(&e.data).unwrap_or_default();
    json[field] = value;
    let mut out = e.clone();
    out.data = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
    out
}

fn check_options(options: &DemoOptions) -> Result<(), DemoError> {
    if options.actions > MAX_DEMO_ACTIONS {
        return Err(DemoError::Options(format!(
            "actions must be at most {MAX_DEMO_ACTIONS}, got {}",
            options.actions
        )));
    }
    check_range("logs", options.logs, MAX_DEMO_LOGS)?;
    check_range("batch", options.batch, MAX_BATCH_RECORDS)?;
    if options.run.is_empty() || options.run.contains('-') {
        return Err(DemoError::Options(format!(
            "the run id must be non-empty and hold no `-`, got `{}`",
            options.run
        )));
    }
    Ok(())
}

/// Answers `question` from the index (`index`) and by a full scan (`scan`),
/// and fails if they differ.
fn compare(
    question: String,
    index: impl FnOnce() -> (usize, Vec<String>),
    scan: impl FnOnce() -> usize,
) -> Result<QueryAnswer, DemoError> {
    let t = Instant::now();
    let (found, first) = index();
    let index_elapsed = t.elapsed();
    let t = Instant::now();
    let scanned = scan();
    let scan_elapsed = t.elapsed();
    if found != scanned {
        return Err(DemoError::Check(format!(
            "{question}: the index found {found}, a full scan {scanned}"
        )));
    }
    Ok(QueryAnswer {
        question,
        found,
        index_elapsed,
        scan_elapsed,
        first,
    })
}

fn queries(ix: &AuditIndex, options: &DemoOptions) -> Result<Vec<QueryAnswer>, DemoError> {
    let by_user = compare(
        format!("actions of {QUERY_USER}"),
        || (ix.by_user(QUERY_USER).len(), Vec::new()),
        || {
            ix.records()
                .iter()
                .filter(|r| r.user_id() == Some(QUERY_USER))
                .count()
        },
    )?;
    let by_resource = compare(
        format!("actions on {QUERY_RESOURCE}"),
        || {
            let found = ix.by_resource(QUERY_RESOURCE);
            let first = found
                .iter()
                .take(LISTED_RECORDS)
                .map(|r| match &r.event {
                    AuditEvent::UserAction {
                        user_id,
                        action,
                        timestamp,
                        seq,
                        ..
                    } => format!("{timestamp} {user_id} {action} (#{seq} of {})", r.stream),
                    other => format!("{other:?}"),
                })
                .collect();
            (found.len(), first)
        },
        || {
            ix.records()
                .iter()
                .filter(|r| r.resource() == Some(QUERY_RESOURCE))
                .count()
        },
    )?;
    // One window in the middle of the run.
    let middle = (options.actions / options.logs / 2) as i64;
    let from = base_time() + chrono::Duration::seconds(middle);
    let to = from + chrono::Duration::seconds(QUERY_WINDOW_SECONDS);
    let in_range = compare(
        format!("events in [{from}, {to})"),
        || (ix.in_range(from, to).len(), Vec::new()),
        || {
            ix.records()
                .iter()
                .filter(|r| (from..to).contains(&r.event.timestamp()))
                .count()
        },
    )?;
    Ok(vec![by_user, by_resource, in_range])
}

/// Tampers with copies of the first events of `stream` (one modified, one
/// removed, two swapped) and returns what the detector says about each;
/// fails if one goes unnoticed.
async fn tamper_with_a_copy(
    store: &dyn EventStore,
    stream: &StreamId,
) -> Result<Vec<(String, TamperReport)>, DemoError> {
    let events = match store
        .read_stream(stream, 1, TAMPER_COPY_EVENTS, Direction::Forward)
        .await
    {
        Ok(events) => events,
        Err(strata_core::Error::StreamNotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if events.len() < 3 {
        return Ok(Vec::new());
    }
    let k = events.len() / 2;
    let mut modified = events.clone();
    modified[k] = doctor(&events[k], "resource", "doc-secret".into());
    let mut removed = events.clone();
    removed.remove(k);
    let mut reordered = events;
    reordered.swap(k, k + 1);
    let mut out = Vec::with_capacity(3);
    for (what, copy) in [
        ("modified", &modified),
        ("removed", &removed),
        ("reordered", &reordered),
    ] {
        match verify_events(copy.iter()) {
            Err(report) => out.push((what.to_owned(), report)),
            Ok(_) => {
                return Err(DemoError::Check(format!(
                    "a {what} event in a copy of {stream} went unnoticed"
                )))
            }
        }
    }
    Ok(out)
}

/// Runs the audit demo on `store` (see the module docs) and reports what
/// happened. Fails if an index answer differs from a full scan or if the
/// store fails; a tampered chain is reported, not an error.
pub async fn run(
    store: Arc<dyn EventStore>,
    options: &DemoOptions,
) -> Result<DemoReport, DemoError> {
    check_options(options)?;
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(options.logs));
    let logs: Vec<String> = (0..options.logs)
        .map(|l| format!("{}_svc{l}", options.run))
        .collect();

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(logs.len());
    for (l, log) in logs.iter().enumerate() {
        let (repo, log) = (Arc::clone(&repo), log.clone());
        let n = options.actions / options.logs + usize::from(l < options.actions % options.logs);
        let (seed, batch) = (options.seed ^ ((l as u64) << 32), options.batch);
        tasks.push(tokio::spawn(async move {
            write_log(&repo, &log, n, batch, seed).await
        }));
    }
    let mut events = 0;
    for t in tasks {
        events += t.await??;
    }
    let write_elapsed = started.elapsed();

    // The indexes, over every audit event of the store.
    let mut runner = ProjectionRunner::new(
        Arc::clone(&store),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AuditIndex::new()),
    );
    let indexed = CatchUp::of(&runner.catch_up().await?);
    let queries = if options.actions > 0 {
        runner.projection().read(|ix| queries(ix, options)).await?
    } else {
        Vec::new()
    };

    let verification = if options.verify {
        let t = Instant::now();
        let checked = verify_all_audit_chains(&*store).await?;
        let elapsed = t.elapsed();
        let first = Repo::stream_id(&logs[0])
            .map_err(|e| DemoError::Command(format!("log {}: {e}", logs[0])))?;
        let copy_tampering = if options.actions > 0 {
            tamper_with_a_copy(&*store, &first).await?
        } else {
            Vec::new()
        };
        Some(TimedVerification {
            store: checked,
            elapsed,
            copy_tampering,
        })
    } else {
        None
    };

    Ok(DemoReport {
        run: options.run.clone(),
        actions: options.actions,
        logs: options.logs,
        batch: options.batch,
        events,
        write_elapsed,
        indexed,
        queries,
        verification,
    })
}
