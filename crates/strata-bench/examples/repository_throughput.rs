//! A quick throughput probe of `Repository::execute` on `MemoryStore`:
//! `TASKS` concurrent tasks send deposits to `ACCOUNTS` accounts.
//!
//! ```text
//! cargo run --release -p strata-bench --example repository_throughput [-- COMMANDS [TASKS [ACCOUNTS]]]
//! ```
//!
//! The CLI's `strata bench` is the real benchmark; this is for quick checks
//! of the framework's hot path.

use std::sync::Arc;
use std::time::Instant;

use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{CommandMeta, MemorySnapshotStore, MemoryStore, Repository, SnapshotPolicy};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let commands = arg(1, 1_000_000);
    let tasks = arg(2, 16).max(1);
    let accounts = arg(3, 1_000).max(1);
    let cache = arg(4, 10_000);

    let repo = Arc::new(
        Repository::<BankAccount, _>::new(MemoryStore::new())
            .with_cache(cache)
            .with_snapshots(
                Arc::new(MemorySnapshotStore::new()),
                SnapshotPolicy::every(100),
            ),
    );
    for a in 0..accounts {
        repo.execute(
            &a.to_string(),
            AccountCommand::Open {
                owner: format!("owner-{a}"),
            },
            CommandMeta::new(),
        )
        .await
        .expect("open");
    }

    let ids: Arc<Vec<String>> = Arc::new((0..accounts).map(|a| a.to_string()).collect());
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let repo = Arc::clone(&repo);
        let ids = Arc::clone(&ids);
        let share = commands / tasks + usize::from(t < commands % tasks);
        handles.push(tokio::spawn(async move {
            let mut failures = 0u64;
            for i in 0..share {
                let id = &ids[(i * tasks + t) % ids.len()];
                let command = AccountCommand::Deposit {
                    amount: Decimal::ONE,
                };
                if repo.execute(id, command, CommandMeta::new()).await.is_err() {
                    failures += 1;
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for h in handles {
        failures += h.await.expect("task");
    }
    let elapsed = started.elapsed();
    repo.flush_snapshots().await;
    println!(
        "{commands} commands, {tasks} tasks, {accounts} accounts, cache {cache}: {:.3} s, {:.0} commands/s, {failures} failed",
        elapsed.as_secs_f64(),
        commands as f64 / elapsed.as_secs_f64()
    );
    println!("{:?}", repo.stats());
}
