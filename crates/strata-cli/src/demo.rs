//! `strata demo`: the smallest round trip through a store, and the seed's
//! scenarios (`strata demo trading|game|audit`) run on any store.
//!
//! The scenario drivers live in `strata-scenarios`
//! (`strata_scenarios::{trading,game,audit}::demo`); this module opens the
//! store named by `--store`, runs one, prints its report and closes the
//! store. `strata demo audit --verify` exits non-zero, naming the first bad
//! event, when a chain in the store was tampered with.

use serde_json::json;
use strata_core::{
    Direction, EventStore, ExpectedVersion, Metadata, NewEvent, ReadFilter, StreamId, Version,
};
use strata_scenarios::{audit, demo::fresh_run_id, game, trading};

use clap::{Args, Subcommand};
use strata_log::Durability;

use strata_stores::{OpenOptions, StoreSpec, DEFAULT_STORE};

/// `strata demo` options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Which store: `log:DIR`, `memory:` or `postgres://…[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, global = true)]
    pub store: StoreSpec,
    /// Durability of the log store: always, interval, interval:<ms> or none.
    #[arg(long, default_value = "always", global = true)]
    pub durability: Durability,
    /// A scenario to run; without one, a short round trip through the store.
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
}

/// The seed's scenarios.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Orders with partial fills and cancels; the order book and positions
    /// checked against a direct recomputation, and the book as of a past time.
    Trading(TradingArgs),
    /// Many games played at once, their boards kept by a partitioned parallel
    /// processor, one game replayed to chosen ticks.
    Game(GameArgs),
    /// Hash-chained audit logs queried by user, resource and time; with
    /// `--verify`, every chain of the store checked (exit 1 naming the first
    /// bad event if one was tampered with).
    Audit(AuditArgs),
}

/// `strata demo trading` options.
#[derive(Args, Debug)]
pub struct TradingArgs {
    /// Orders to place.
    #[arg(long, default_value_t = 100_000)]
    pub orders: usize,
    /// Tasks sending commands at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seed of the generated flow.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `strata demo game` options.
#[derive(Args, Debug)]
pub struct GameArgs {
    /// Games to play.
    #[arg(long, default_value_t = 1_000)]
    pub games: usize,
    /// Move commands per game (some refused by the rules).
    #[arg(long, default_value_t = 50)]
    pub moves: usize,
    /// Partitions of the event processor that keeps the boards.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Games played at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seed of the generated play.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Which game of the run to replay (its index).
    #[arg(long, default_value_t = 0)]
    pub replay: usize,
    /// A tick (stream version) to replay it to; repeatable. Default: after
    /// the joins, the start, the middle and the end.
    #[arg(long = "tick")]
    pub ticks: Vec<Version>,
}

/// `strata demo audit` options.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Records to write over all logs (0: write nothing, only verify).
    #[arg(long, default_value_t = 20_000)]
    pub actions: usize,
    /// Logs (hash chains), written concurrently.
    #[arg(long, default_value_t = 4)]
    pub logs: usize,
    /// Records per command (one atomic append each).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Check every audit chain in the store; exit 1 naming the first bad
    /// event if one was modified, removed or reordered.
    #[arg(long)]
    pub verify: bool,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `strata demo`: the round trip, or the scenario asked for.
pub async fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = args.store;
    let options = OpenOptions {
        durability: args.durability,
        ..OpenOptions::default()
    };
    let open = spec.open(&options).await?;
    let store = open.store();
    let outcome = match args.scenario {
        None => round_trip(store.as_ref(), &spec).await,
        Some(scenario) => {
            println!("strata demo on {}", display_store(&spec));
            run_scenario(store, scenario).await
        }
    };
    // Close even after a failure, so the log store writes its checkpoint.
    let closed = open.close().await;
    outcome?;
    closed?;
    Ok(())
}

/// Runs one scenario on `store` and prints its report; an audit chain found
/// tampered with is an error naming the first bad event.
async fn run_scenario(
    store: std::sync::Arc<dyn EventStore>,
    scenario: Scenario,
) -> Result<(), Box<dyn std::error::Error>> {
    match scenario {
        Scenario::Trading(a) => {
            let options = trading::demo::DemoOptions {
                orders: a.orders,
                concurrency: a.concurrency,
                seed: a.seed,
                run: fresh_run_id(),
            };
            let report = trading::demo::run(store, &options).await?;
            println!("{report}");
        }
        Scenario::Game(a) => {
            let options = game::demo::DemoOptions {
                games: a.games,
                moves: a.moves,
                workers: a.workers,
                concurrency: a.concurrency,
                seed: a.seed,
                run: fresh_run_id(),
                replay_game: a.replay,
                ticks: a.ticks,
            };
            let report = game::demo::run(store, &options).await?;
            println!("{report}");
        }
        Scenario::Audit(a) => {
            let options = audit::demo::DemoOptions {
                actions: a.actions,
                logs: a.logs,
                batch: a.batch,
                verify: a.verify,
                seed: a.seed,
                run: fresh_run_id(),
            };
            let report = audit::demo::run(store, &options).await?;
            println!("{report}");
            if let Some((stream, bad)) = report.first_tampered() {
                return Err(format!("audit chain {stream} was tampered with: {bad}").into());
            }
        }
    }
    Ok(())
}

/// Most events the demo reads back from one stream.
const DEMO_READ_EVENTS: usize = 100;

/// Appends a short account history to a fresh stream and prints it back from
/// the stream and from `$all`. Each run uses a new stream, so it can be run
/// again and again on the same data directory.
async fn round_trip(
    store: &dyn EventStore,
    spec: &StoreSpec,
) -> Result<(), Box<dyn std::error::Error>> {
    let suffix = unique_suffix();
    let stream = StreamId::new(format!("account-demo{suffix}"))?;
    let correlation = format!("demo-{suffix}");
    let meta = Metadata::default()
        .with_correlation_id(&correlation)
        .with_source("strata demo");
    let events = vec![
        NewEvent::json("AccountOpened", &json!({"owner": "Ada", "currency": "EUR"}))?
            .with_metadata(meta.clone()),
        NewEvent::json("Deposited", &json!({"amount": "100.00"}))?.with_metadata(meta.clone()),
        NewEvent::json("Withdrawn", &json!({"amount": "30.00"}))?.with_metadata(meta),
    ];
    let count = events.len();
    let result = store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await?;
    println!(
        "appended {count} events to {stream} (store {}): version {}, positions {}..={}",
        display_store(spec),
        result.next_expected_version,
        result.first_position,
        result.last_position
    );
    println!("read back from the stream:");
    for e in store
        .read_stream(&stream, 1, DEMO_READ_EVENTS, Direction::Forward)
        .await?
    {
        println!(
            "  v{} @{} {} {} {}",
            e.version,
            e.position,
            e.recorded_at.format("%H:%M:%S%.6f"),
            e.event_type,
            String::from_utf8_lossy(&e.data)
        );
    }
    let by_correlation = store
        .read_all(
            result.first_position,
            DEMO_READ_EVENTS,
            &ReadFilter::all().correlation_id(&correlation),
        )
        .await?;
    println!(
        "read back from $all by correlation id {correlation}: {} events",
        by_correlation.len()
    );
    let head = store.head_position().await?;
    println!("$all head position: {head}");
    Ok(())
}

/// The spec as the user should see it: a bare `log:` is the default directory.
fn display_store(spec: &StoreSpec) -> String {
    match spec {
        StoreSpec::Log(None) => format!("log:{}", strata_stores::DEFAULT_LOG_DIR),
        other => other.to_string(),
    }
}

/// The last 8 hex digits of a fresh UUID v7 (its random part): a new stream
/// name for every run.
fn unique_suffix() -> String {
    let id = strata_core::EventId::new().to_string();
    id[id.len() - 8..].to_string()
}
