//! Trading: many orders with partial fills and cancels through a
//! repository, then the order book and positions projections, checked
//! against a direct recomputation, and the book as of a past time. The
//! driver is `strata_scenarios::trading::demo`; `strata demo trading` runs
//! the same.
//!
//! ```text
//! cargo run -p strata-scenarios --release --example trading                      # memory:, 100,000 orders
//! cargo run -p strata-scenarios --release --example trading -- --orders 20000 --store log:./trading-data
//! cargo run -p strata-scenarios --release --example trading -- --store 'postgres://postgres@127.0.0.1/test?schema=demo_trading'
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use strata_scenarios::demo::fresh_run_id;
use strata_scenarios::trading::demo::{run, DemoOptions};

/// The trading demo.
#[derive(Parser)]
struct Args {
    /// `memory:`, `log:DIR` (bare `log:` is ./trading-data) or
    /// `postgres://…[?schema=NAME]`.
    #[arg(long, default_value = "memory:")]
    store: String,
    /// Orders to place.
    #[arg(long, default_value_t = 100_000)]
    orders: usize,
    /// Tasks sending commands at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seed of the generated flow.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opened = match common::open(&args.store, "./trading-data").await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("trading example: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = DemoOptions {
        orders: args.orders,
        concurrency: args.concurrency,
        seed: args.seed,
        run: fresh_run_id(),
    };
    println!("trading example on `{}`", args.store);
    let outcome = run(opened.store.clone(), &options).await;
    let closed = opened.close().await;
    match common::finish("trading", outcome, closed) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}
