//! Game state: many games played through a repository, their
//! boards kept by a parallel event processor (partitions by game, each
//! game's order kept), and one game replayed tick by tick as ASCII. The
//! driver is `strata_scenarios::game::demo`; `strata demo game` runs the
//! same.
//!
//! ```text
//! cargo run -p strata-scenarios --release --example game                       # memory:, 1,000 games
//! cargo run -p strata-scenarios --release --example game -- --games 200 --store log:./game-data
//! cargo run -p strata-scenarios --release --example game -- --games 200 --tick 3 --tick 10
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use strata_scenarios::demo::fresh_run_id;
use strata_scenarios::game::demo::{run, DemoOptions};

/// The game demo.
#[derive(Parser)]
struct Args {
    /// `memory:`, `log:DIR` (bare `log:` is ./game-data) or
    /// `postgres://…[?schema=NAME]`.
    #[arg(long, default_value = "memory:")]
    store: String,
    /// Games to play.
    #[arg(long, default_value_t = 1_000)]
    games: usize,
    /// Move commands per game (some refused).
    #[arg(long, default_value_t = 50)]
    moves: usize,
    /// Partitions of the event processor.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Games played at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seed of the generated play.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Which game to replay (its index).
    #[arg(long, default_value_t = 0)]
    replay: usize,
    /// A tick to replay it to (repeatable; default: a few along the game).
    #[arg(long = "tick")]
    ticks: Vec<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opened = match common::open(&args.store, "./game-data").await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("game example: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = DemoOptions {
        games: args.games,
        moves: args.moves,
        workers: args.workers,
        concurrency: args.concurrency,
        seed: args.seed,
        run: fresh_run_id(),
        replay_game: args.replay,
        ticks: args.ticks,
    };
    println!("game example on `{}`", args.store);
    let outcome = run(opened.store.clone(), &options).await;
    let closed = opened.close().await;
    match common::finish("game", outcome, closed) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}
