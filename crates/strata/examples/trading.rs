//! Trading (seed §6.1): many orders with partial fills and cancels through a
//! repository, then the order book and positions projections, checked
//! against a direct recomputation, and the book as of a past time.
//!
//! ```text
//! cargo run -p strata --release --example trading                      # memory:, 100,000 orders
//! cargo run -p strata --release --example trading -- --orders 20000 --store log:./trading-data
//! ```
//!
//! Options: `--store memory:|log:DIR`, `--orders N`, `--concurrency C`
//! (tasks sending commands at once, default 256; the log store's group commit turns
//! them into fewer fsyncs), `--seed S`. Every order is generated from the
//! seed and its index, so a run's flow does not depend on the concurrency.
//! On `log:DIR` each run's orders are named `{run}.{i}`; the projections are
//! scoped to them, so earlier runs in the same directory do not disturb the
//! check.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use strata::scenarios::trading::{
    Book, Order, OrderBookProjection, OrderCommand, Position, PositionsProjection, Side,
};
use strata::scenarios::{project_until, Until};
use strata::{
    AggregateError, CommandMeta, EventStore, MemoryCheckpointStore, MemoryStore, ProjectionRunner,
    Repository, Typed,
};
use strata_log::{LogConfig, LogStore};

const USAGE: &str = "usage: trading [--store memory: | --store log:DIR] [--orders N] \
                     [--concurrency C] [--seed S]";
const SYMBOLS: [&str; 8] = [
    "ACME", "BOLT", "CRUX", "DYNE", "EPIC", "FLUX", "GRIT", "HALO",
];
const TRADERS: usize = 50;

struct Args {
    store: String,
    orders: usize,
    concurrency: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        store: "memory:".to_owned(),
        orders: 100_000,
        concurrency: 256,
        seed: 42,
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
            "--orders" => out.orders = number(value()?)? as usize,
            "--concurrency" => out.concurrency = (number(value()?)? as usize).max(1),
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

/// What the flow did to one order, for the direct recomputation.
struct Outcome {
    trader: String,
    symbol: &'static str,
    side: Side,
    price: Decimal,
    remaining: u64,
    filled: u64,
    notional: Decimal,
}

#[derive(Default)]
struct Counts {
    commands: u64,
    refused: u64,
    events: u64,
    fills: u64,
    cancels: u64,
}

type Repo = Repository<Order, Arc<dyn EventStore>>;

async fn exec(
    repo: &Repo,
    id: &str,
    command: OrderCommand,
    counts: &mut Counts,
) -> Result<
    strata::Committed<strata::scenarios::trading::OrderEvent>,
    AggregateError<strata::scenarios::trading::OrderError>,
> {
    counts.commands += 1;
    repo.execute(id, command, CommandMeta::new()).await
}

/// Places order `i`, fills part or all of it in one to three executions,
/// cancels some of what remains, and tries one refused command now and then.
async fn run_order(
    repo: &Repo,
    run: &str,
    seed: u64,
    i: usize,
    counts: &mut Counts,
) -> Result<Outcome, String> {
    let mut rng = StdRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let id = format!("{run}.{i}");
    let symbol = SYMBOLS[rng.gen_range(0..SYMBOLS.len())];
    let side = if rng.gen_bool(0.5) {
        Side::Buy
    } else {
        Side::Sell
    };
    let quantity = rng.gen_range(1..=100u64) * 10;
    // Bids below 100.00, asks above, in cents: a book that does not cross
    // (fills are reports from elsewhere; nothing matches here).
    let price = match side {
        Side::Buy => Decimal::new(rng.gen_range(9_500..=9_999), 2),
        Side::Sell => Decimal::new(rng.gen_range(10_001..=10_500), 2),
    };
    let trader = format!("trader-{:02}", rng.gen_range(0..TRADERS));
    let mut out = Outcome {
        trader: trader.clone(),
        symbol,
        side,
        price,
        remaining: quantity,
        filled: 0,
        notional: Decimal::ZERO,
    };
    let place = OrderCommand::Place {
        order_id: id.clone(),
        trader,
        symbol: symbol.to_owned(),
        side,
        quantity,
        price,
    };
    exec(repo, &id, place, counts)
        .await
        .map_err(|e| e.to_string())?;
    counts.events += 1;

    for _ in 0..rng.gen_range(0..=3) {
        if out.remaining == 0 {
            break;
        }
        let fill_quantity = if rng.gen_bool(0.3) {
            out.remaining
        } else {
            rng.gen_range(1..=out.remaining)
        };
        // At the limit or better.
        let better = Decimal::new(rng.gen_range(0..=50), 2);
        let fill_price = match side {
            Side::Buy => price - better,
            Side::Sell => price + better,
        };
        let fill = OrderCommand::Fill {
            fill_price,
            fill_quantity,
        };
        exec(repo, &id, fill, counts)
            .await
            .map_err(|e| e.to_string())?;
        counts.events += 1;
        counts.fills += 1;
        out.remaining -= fill_quantity;
        out.filled += fill_quantity;
        out.notional += fill_price * Decimal::from(fill_quantity);
    }
    if rng.gen_bool(0.05) {
        // Too much: refused, nothing written.
        let overfill = OrderCommand::Fill {
            fill_price: price,
            fill_quantity: out.remaining + 1,
        };
        let refused = exec(repo, &id, overfill, counts).await;
        match refused {
            Err(AggregateError::Rejected(_)) => counts.refused += 1,
            other => return Err(format!("an overfill of {id} was not refused: {other:?}")),
        }
    }
    if out.remaining > 0 && rng.gen_bool(0.3) {
        let cancel = OrderCommand::Cancel {
            reason: "trader request".into(),
        };
        exec(repo, &id, cancel, counts)
            .await
            .map_err(|e| e.to_string())?;
        counts.events += 1;
        counts.cancels += 1;
        out.remaining = 0;
    }
    Ok(out)
}

/// Runs orders `range` over `concurrency` tasks; returns outcomes by index.
async fn run_orders(
    repo: &Arc<Repo>,
    run: &str,
    seed: u64,
    range: std::ops::Range<usize>,
    concurrency: usize,
    counts: &mut Counts,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), String> {
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let repo = Arc::clone(repo);
        let run = run.to_owned();
        let range = range.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            let mut done = Vec::new();
            for i in range.skip(w).step_by(concurrency) {
                done.push((i, run_order(&repo, &run, seed, i, &mut counts).await?));
            }
            Ok::<_, String>((counts, done))
        }));
    }
    let mut all = Vec::with_capacity(range.len());
    for t in tasks {
        let (c, done) = t.await.map_err(|e| e.to_string())??;
        counts.commands += c.commands;
        counts.refused += c.refused;
        counts.events += c.events;
        counts.fills += c.fills;
        counts.cancels += c.cancels;
        all.extend(done);
    }
    all.sort_by_key(|(i, _)| *i);
    outcomes.extend(all.into_iter().map(|(_, o)| o));
    Ok(())
}

fn expected_books(outcomes: &[Outcome]) -> BTreeMap<String, Book> {
    let mut books: BTreeMap<String, Book> = BTreeMap::new();
    for o in outcomes {
        let book = books.entry(o.symbol.to_owned()).or_default();
        if o.remaining > 0 {
            book.add_order(o.side, o.price, o.remaining);
        }
    }
    books
}

fn expected_positions(outcomes: &[Outcome]) -> BTreeMap<String, BTreeMap<String, Position>> {
    let mut all: BTreeMap<String, BTreeMap<String, Position>> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.filled > 0) {
        let p = all
            .entry(o.trader.clone())
            .or_default()
            .entry(o.symbol.to_owned())
            .or_default();
        // One fill of the whole quantity at the average price has the same
        // quantity and cash flow as the real fills.
        match o.side {
            Side::Buy => {
                p.quantity += i128::from(o.filled);
                p.cash -= o.notional;
                p.bought += o.filled;
            }
            Side::Sell => {
                p.quantity -= i128::from(o.filled);
                p.cash += o.notional;
                p.sold += o.filled;
            }
        }
    }
    all
}

fn level_text(l: Option<strata::scenarios::trading::Level>) -> String {
    l.map_or_else(
        || "-".to_owned(),
        |l| format!("{} x {} ({} orders)", l.price, l.quantity, l.orders),
    )
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn open_store(spec: &str) -> Result<(Arc<dyn EventStore>, String), String> {
    match spec.strip_prefix("log:") {
        None => Ok((Arc::new(MemoryStore::new()), "run".to_owned())),
        Some(dir) => {
            let dir = if dir.is_empty() {
                "./trading-data"
            } else {
                dir
            };
            let log = LogStore::open(LogConfig::new(dir))
                .await
                .map_err(|e| format!("cannot open `{spec}`: {e}"))?;
            let run = format!("r{}", chrono::Utc::now().timestamp_millis());
            Ok((Arc::new(log), run))
        }
    }
}

async fn main_inner(args: Args) -> Result<(), String> {
    let (store, run) = open_store(&args.store).await?;
    println!(
        "trading example on `{}`: {} orders, {} tasks, seed {}, run `{run}`",
        args.store, args.orders, args.concurrency, args.seed
    );
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(args.orders.max(1)));
    let mut counts = Counts::default();
    let mut outcomes = Vec::with_capacity(args.orders);

    // Phase 1: the first half; remember where it ended for time travel.
    let half = args.orders / 2;
    let started = Instant::now();
    run_orders(
        &repo,
        &run,
        args.seed,
        0..half,
        args.concurrency,
        &mut counts,
        &mut outcomes,
    )
    .await?;
    let first_half = started.elapsed();
    let then_position = store.head_position().await.map_err(|e| e.to_string())?;
    let then_time = chrono::Utc::now();
    let then_books = expected_books(&outcomes);
    // Phase 2 starts strictly later than `then_time`.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let restarted = Instant::now();
    run_orders(
        &repo,
        &run,
        args.seed,
        half..args.orders,
        args.concurrency,
        &mut counts,
        &mut outcomes,
    )
    .await?;
    let write = first_half + restarted.elapsed();
    println!(
        "\nwrite: {} orders, {} commands ({} refused), {} events ({} fills, {} cancels) in {:.2?}",
        args.orders,
        counts.commands,
        counts.refused,
        counts.events,
        counts.fills,
        counts.cancels,
        write
    );
    println!(
        "       {:.0} orders/s, {:.0} commands/s, {:.0} events/s",
        rate(args.orders as u64, write),
        rate(counts.commands, write),
        rate(counts.events, write)
    );

    // The projections, caught up by runners over `$all`.
    let prefix = format!("order-{run}.");
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let mut book_runner = ProjectionRunner::new(
        Arc::clone(&store),
        checkpoints.clone(),
        Typed::new(OrderBookProjection::scoped(prefix.clone())),
    );
    let report = book_runner.catch_up().await.map_err(|e| e.to_string())?;
    println!(
        "project order book: {} events in {:.2?} ({:.0} events/s)",
        report.events,
        report.elapsed,
        report.events_per_second()
    );
    let mut positions_runner = ProjectionRunner::new(
        Arc::clone(&store),
        checkpoints,
        Typed::new(PositionsProjection::scoped(prefix.clone())),
    );
    let report = positions_runner
        .catch_up()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "project positions:  {} events in {:.2?} ({:.0} events/s)",
        report.events,
        report.elapsed,
        report.events_per_second()
    );

    // The check: projections against the flow's own bookkeeping.
    let want_books = expected_books(&outcomes);
    let want_positions = expected_positions(&outcomes);
    let books = book_runner.projection().read(|p| p.books().clone()).await;
    let (positions, last_prices) = positions_runner
        .projection()
        .read(|p| (p.all().clone(), p.last_prices().clone()))
        .await;
    if books != want_books {
        return Err("the order book differs from the direct recomputation".into());
    }
    if positions != want_positions {
        return Err("the positions differ from the direct recomputation".into());
    }
    println!(
        "check: order books of {} symbols and positions of {} traders match a direct recomputation",
        books.len(),
        positions.len()
    );

    println!("\nqueries:");
    for symbol in SYMBOLS.iter().take(3) {
        let Some(book) = books.get(*symbol) else {
            continue;
        };
        let (bids, asks) = book.total_quantity();
        println!(
            "  {symbol}: best bid {}, best ask {}, resting {bids} bid / {asks} ask",
            level_text(book.best_bid()),
            level_text(book.best_ask()),
        );
    }
    if let Some(book) = books.get(SYMBOLS[0]) {
        println!("  {} depth (3 levels):", SYMBOLS[0]);
        for (b, a) in book.bid_depth(3).into_iter().zip(book.ask_depth(3)) {
            println!(
                "    bid {:>8} x {:<6}   ask {:>8} x {}",
                b.price, b.quantity, a.price, a.quantity
            );
        }
    }
    let pnl = |by_symbol: &BTreeMap<String, Position>| -> Decimal {
        by_symbol
            .iter()
            .map(|(s, p)| p.pnl(last_prices.get(s).copied().unwrap_or_default()))
            .sum()
    };
    let mut ranked: Vec<(&String, Decimal)> =
        positions.iter().map(|(t, by)| (t, pnl(by))).collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (trader, value) in ranked.iter().take(3) {
        println!("  PnL of {trader} (marked at last fills): {value}");
    }

    // Time travel: the book as of the end of phase 1.
    let timer = Instant::now();
    let mut as_of = Typed::new(OrderBookProjection::scoped(prefix.clone()));
    project_until(&*store, &mut as_of, Until::Time(then_time))
        .await
        .map_err(|e| e.to_string())?;
    let by_time = as_of.books().clone();
    project_until(&*store, &mut as_of, Until::Position(then_position))
        .await
        .map_err(|e| e.to_string())?;
    if by_time != then_books || as_of.books() != &then_books {
        return Err("the book as of the end of phase 1 differs from the recomputation".into());
    }
    let symbol = SYMBOLS[0];
    let then = then_books.get(symbol).cloned().unwrap_or_default();
    println!(
        "  {symbol} as of {then_time} (after {half} orders, position {then_position}): \
         best bid {}, best ask {} — matches the recomputation ({:.2?} for both folds)",
        level_text(then.best_bid()),
        level_text(then.best_ask()),
        timer.elapsed()
    );
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
            eprintln!("trading example failed: {e}");
            ExitCode::FAILURE
        }
    }
}
