//! Audit trail: user actions and system events written to a few
//! hash-chained audit logs, queried by user, by resource and by time from
//! secondary indexes, and (with `--verify`) every chain of the store checked
//! and a tampered copy caught. The driver is
//! `strata_scenarios::audit::demo`; `strata demo audit` runs the same.
//!
//! ```text
//! cargo run -p strata-scenarios --release --example audit -- --verify                # memory:, 20,000 actions
//! cargo run -p strata-scenarios --release --example audit -- --verify --store log:./audit-data
//! cargo run -p strata-scenarios --release --example audit -- --verify --actions 0 --store log:./audit-data
//! ```
//!
//! Exits 1 naming the first bad event if a chain in the store was tampered
//! with.

mod common;

use std::process::ExitCode;

use clap::Parser;
use strata_scenarios::audit::demo::{run, DemoOptions};
use strata_scenarios::demo::fresh_run_id;

/// The audit demo.
#[derive(Parser)]
struct Args {
    /// `memory:`, `log:DIR` (bare `log:` is ./audit-data) or
    /// `postgres://…[?schema=NAME]`.
    #[arg(long, default_value = "memory:")]
    store: String,
    /// Records to write over all logs (0: only verify).
    #[arg(long, default_value_t = 20_000)]
    actions: usize,
    /// Logs (chains), written concurrently.
    #[arg(long, default_value_t = 4)]
    logs: usize,
    /// Records per command (one atomic append).
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Check every chain of the store and show tampering caught.
    #[arg(long)]
    verify: bool,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opened = match common::open(&args.store, "./audit-data").await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("audit example: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = DemoOptions {
        actions: args.actions,
        logs: args.logs,
        batch: args.batch,
        verify: args.verify,
        seed: args.seed,
        run: fresh_run_id(),
    };
    println!("audit example on `{}`", args.store);
    let outcome = run(opened.store.clone(), &options).await;
    let closed = opened.close().await;
    let Some(report) = common::finish("audit", outcome, closed) else {
        return ExitCode::FAILURE;
    };
    match report.first_tampered() {
        Some((stream, bad)) => {
            eprintln!("audit example: chain {stream} was tampered with: {bad}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
