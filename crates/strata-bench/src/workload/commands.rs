//! `commands`: the framework's hot path. `--streams` bank accounts are
//! opened (untimed), then `--writers` tasks send `--events` deposits spread
//! evenly over the accounts through one `strata::Repository` with its
//! aggregate cache on; latency per command.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{CommandMeta, EventStore, Repository};

use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::BenchError;

/// `commands` defaults: 16 tasks, 1,000 accounts, 50 deposits each.
pub const DEFAULTS: Defaults = Defaults {
    writers: 16,
    batch: 1,
    events: 50_000,
    streams: 1_000,
};

/// Fewest aggregates the repository's cache holds (more when there are
/// more accounts, so every account stays cached).
pub const MIN_CACHE_AGGREGATES: usize = 10_000;

type BankRepository = Repository<BankAccount, Arc<dyn EventStore>>;

/// The id of account `i` of run `run_id` (its stream is `account-{id}`).
fn account_id(run_id: &str, i: u64) -> String {
    format!("b{run_id}x{i}")
}

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let accounts = p.streams as u64;
    let repo: Arc<BankRepository> = Arc::new(
        Repository::new(ctx.store()).with_cache(
            p.streams
                .saturating_add(p.streams / 4)
                .max(MIN_CACHE_AGGREGATES),
        ),
    );
    let bar = ctx.progress(accounts, "open accounts");
    let next = Arc::new(AtomicU64::new(0));
    run_tasks(p.writers, |_| {
        let (repo, next, bar, run_id) =
            (repo.clone(), next.clone(), bar.clone(), ctx.run_id.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= accounts {
                    return Ok(Tally::default());
                }
                let open = AccountCommand::Open {
                    owner: format!("owner-{i}"),
                };
                repo.execute(&account_id(&run_id, i), open, CommandMeta::new())
                    .await?;
                bar.inc(1);
            }
        }
    })
    .await?;
    bar.finish_and_clear();

    let total = p.events;
    let tasks = p.writers as u64;
    let bar = ctx.progress(total, "commands");
    let syncs_before = ctx.syncs();
    let started = Instant::now();
    let tally = run_tasks(p.writers, |task| {
        let (repo, bar, run_id) = (repo.clone(), bar.clone(), ctx.run_id.clone());
        let task = task as u64;
        async move {
            let mut t = Tally::default();
            // Task `task` sends commands task, task + tasks, task + 2 tasks, ...
            // to account (command number) mod accounts: every account gets
            // its share, and concurrent tasks rarely hit the same account.
            let mut i = task;
            while i < total {
                let id = account_id(&run_id, i % accounts);
                let deposit = AccountCommand::Deposit {
                    amount: Decimal::ONE,
                };
                let t0 = Instant::now();
                let done = repo.execute(&id, deposit, CommandMeta::new()).await;
                t.latency.record(t0.elapsed());
                match done {
                    Ok(_) => {
                        t.ops += 1;
                        t.events += 1;
                    }
                    Err(_) => t.errors += 1,
                }
                bar.inc(1);
                i += tasks;
            }
            Ok(t)
        }
    })
    .await?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(vec![Measurement {
        workload: None,
        variant: None,
        op: "command",
        writers: p.writers,
        batch: 1,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: ctx.syncs().zip(syncs_before).map(|(a, b)| a - b),
        errors: tally.errors,
        dataset_events: None,
        subscriber: None,
        pipeline: None,
    }])
}
