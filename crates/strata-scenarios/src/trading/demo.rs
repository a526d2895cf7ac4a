//! The trading demo: many orders with partial fills and cancels
//! through a repository, the order book and positions projections checked
//! against a direct recomputation, a few queries, and the book as of a past
//! time and position.
//!
//! Every order is generated from the seed and its index, so a run's flow
//! does not depend on the concurrency. Order `i` of run `run` lives in
//! stream `order-{run}.{i}` and the projections are scoped to the run's
//! streams, so earlier runs in the same store do not disturb the check.
//!
//! ```
//! use std::sync::Arc;
//! use strata_scenarios::trading::demo::{run, DemoOptions};
//! use strata::{EventStore, MemoryStore};
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let report = rt.block_on(async {
//!     let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
//!     run(store, &DemoOptions { orders: 200, ..DemoOptions::default() }).await
//! }).unwrap();
//! assert_eq!(report.orders, 200);
//! assert!(report.to_string().contains("match a direct recomputation"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use strata_core::{EventStore, MemoryCheckpointStore, Position as LogPosition};

use super::{
    Book, Level, Order, OrderBookProjection, OrderCommand, Position, PositionsProjection, Side,
};
use crate::demo::{
    check_range, fresh_run_id, per_second, CatchUp, DemoError, MAX_DEMO_CONCURRENCY,
};
use crate::{project_until, Until};
use strata::aggregate::Aggregate;
use strata::command::CommandMeta;
use strata::error::AggregateError;
use strata::projection::Typed;
use strata::repository::Repository;
use strata::runner::ProjectionRunner;

/// The symbols traded.
pub const SYMBOLS: [&str; 8] = [
    "ACME", "BOLT", "CRUX", "DYNE", "EPIC", "FLUX", "GRIT", "HALO",
];
/// How many traders place orders (`trader-00` ..).
pub const TRADERS: usize = 50;
/// Most orders one run may place (their outcomes are kept in memory for
/// the check).
pub const MAX_DEMO_ORDERS: usize = 10_000_000;
/// Price levels shown per side in the depth query.
pub const DEPTH_LEVELS: usize = 3;
/// Symbols whose top of book the report shows.
pub const TOP_OF_BOOK_SYMBOLS: usize = 3;
/// Traders the PnL ranking shows.
pub const TOP_TRADERS: usize = 3;
/// Pause between the two halves of the run, so the second half is recorded
/// strictly after the time the book is recomputed for.
pub const PHASE_GAP_MS: u64 = 2;

/// How to run the trading demo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Orders to place (1 ..= [`MAX_DEMO_ORDERS`]).
    pub orders: usize,
    /// Tasks sending commands at once (1 ..= [`MAX_DEMO_CONCURRENCY`]); a
    /// durable store's group commit turns them into fewer syncs.
    pub concurrency: usize,
    /// Seed of the generated flow.
    pub seed: u64,
    /// Names this run's streams (see [`fresh_run_id`]); must hold no `-`.
    pub run: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            orders: 100_000,
            concurrency: 256,
            seed: 42,
            run: fresh_run_id(),
        }
    }
}

/// The top of one symbol's book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopOfBook {
    /// The symbol.
    pub symbol: String,
    /// The highest bid.
    pub best_bid: Option<Level>,
    /// The lowest ask.
    pub best_ask: Option<Level>,
    /// Σ resting bid quantity.
    pub bid_quantity: u64,
    /// Σ resting ask quantity.
    pub ask_quantity: u64,
}

/// The book of the first symbol as of the end of the run's first half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastBook {
    /// The time it is as of.
    pub as_of: DateTime<Utc>,
    /// The `$all` position it is as of.
    pub position: LogPosition,
    /// Orders placed by then.
    pub orders: usize,
    /// The top of the book then (it matched the recomputation by time and by
    /// position).
    pub top: TopOfBook,
    /// How long both folds took.
    pub elapsed: Duration,
}

/// What the trading demo did.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoReport {
    /// The run id.
    pub run: String,
    /// Orders placed.
    pub orders: usize,
    /// Tasks that sent commands.
    pub concurrency: usize,
    /// The seed.
    pub seed: u64,
    /// Commands sent.
    pub commands: u64,
    /// Commands refused (over-fills), by design.
    pub refused: u64,
    /// Events written.
    pub events: u64,
    /// Fills among them.
    pub fills: u64,
    /// Cancels among them.
    pub cancels: u64,
    /// Time spent writing.
    pub write_elapsed: Duration,
    /// The order book projection's catch-up.
    pub book_projection: CatchUp,
    /// The positions projection's catch-up.
    pub positions_projection: CatchUp,
    /// Symbols with a book (all matched the recomputation).
    pub symbols: usize,
    /// Traders with positions (all matched the recomputation).
    pub traders: usize,
    /// The top of the first symbols' books.
    pub top_of_book: Vec<TopOfBook>,
    /// The first symbol's depth: (bid, ask) per level.
    pub depth: Vec<(Level, Level)>,
    /// The best traders by PnL marked at the last fill price.
    pub best_pnl: Vec<(String, Decimal)>,
    /// The first symbol's book as of the end of the first half.
    pub past: PastBook,
}

impl DemoReport {
    /// Orders per second of writing.
    pub fn orders_per_second(&self) -> f64 {
        per_second(self.orders as u64, self.write_elapsed)
    }

    /// Events per second of writing.
    pub fn events_per_second(&self) -> f64 {
        per_second(self.events, self.write_elapsed)
    }
}

fn level_text(l: Option<Level>) -> String {
    l.map_or_else(
        || "-".to_owned(),
        |l| format!("{} x {} ({} orders)", l.price, l.quantity, l.orders),
    )
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trading: {} orders, {} tasks, seed {}, run `{}`",
            self.orders, self.concurrency, self.seed, self.run
        )?;
        writeln!(
            f,
            "write: {} orders, {} commands ({} refused), {} events ({} fills, {} cancels) in {:.2?}",
            self.orders,
            self.commands,
            self.refused,
            self.events,
            self.fills,
            self.cancels,
            self.write_elapsed
        )?;
        writeln!(
            f,
            "       {:.0} orders/s, {:.0} commands/s, {:.0} events/s",
            self.orders_per_second(),
            per_second(self.commands, self.write_elapsed),
            self.events_per_second()
        )?;
        writeln!(f, "project order book: {}", self.book_projection)?;
        writeln!(f, "project positions:  {}", self.positions_projection)?;
        writeln!(
            f,
            "check: order books of {} symbols and positions of {} traders match a direct \
             recomputation",
            self.symbols, self.traders
        )?;
        writeln!(f, "queries:")?;
        for t in &self.top_of_book {
            writeln!(
                f,
                "  {}: best bid {}, best ask {}, resting {} bid / {} ask",
                t.symbol,
                level_text(t.best_bid),
                level_text(t.best_ask),
                t.bid_quantity,
                t.ask_quantity
            )?;
        }
        if !self.depth.is_empty() {
            writeln!(f, "  {} depth ({} levels):", SYMBOLS[0], self.depth.len())?;
            for (b, a) in &self.depth {
                writeln!(
                    f,
                    "    bid {:>8} x {:<6}   ask {:>8} x {}",
                    b.price, b.quantity, a.price, a.quantity
                )?;
            }
        }
        for (trader, pnl) in &self.best_pnl {
            writeln!(f, "  PnL of {trader} (marked at last fills): {pnl}")?;
        }
        let p = &self.past;
        write!(
            f,
            "  {} as of {} (after {} orders, position {}): best bid {}, best ask {} — matches \
             the recomputation ({:.2?} for both folds)",
            p.top.symbol,
            p.as_of,
            p.orders,
            p.position,
            level_text(p.top.best_bid),
            level_text(p.top.best_ask),
            p.elapsed
        )
    }
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

impl Counts {
    fn add(&mut self, c: &Counts) {
        self.commands += c.commands;
        self.refused += c.refused;
        self.events += c.events;
        self.fills += c.fills;
        self.cancels += c.cancels;
    }
}

type Repo = Repository<Order, Arc<dyn EventStore>>;

async fn exec(
    repo: &Repo,
    id: &str,
    command: OrderCommand,
    counts: &mut Counts,
) -> Result<(), DemoError> {
    counts.commands += 1;
    repo.execute(id, command, CommandMeta::new())
        .await
        .map(|_| ())
        .map_err(|e| DemoError::Command(format!("order {id}: {e}")))
}

/// Places order `i`, fills part or all of it in zero to three executions,
/// tries an over-fill (refused) now and then, and cancels some of what
/// remains.
async fn run_order(
    repo: &Repo,
    run: &str,
    seed: u64,
    i: usize,
    counts: &mut Counts,
) -> Result<Outcome, DemoError> {
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
    exec(repo, &id, place, counts).await?;
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
        exec(repo, &id, fill, counts).await?;
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
        counts.commands += 1;
        match repo.execute(&id, overfill, CommandMeta::new()).await {
            Err(AggregateError::Rejected(_)) => counts.refused += 1,
            Ok(_) => {
                return Err(DemoError::Check(format!(
                    "an over-fill of order {id} was accepted"
                )))
            }
            Err(e) => return Err(DemoError::Command(format!("order {id}: {e}"))),
        }
    }
    if out.remaining > 0 && rng.gen_bool(0.3) {
        let cancel = OrderCommand::Cancel {
            reason: "trader request".into(),
        };
        exec(repo, &id, cancel, counts).await?;
        counts.events += 1;
        counts.cancels += 1;
        out.remaining = 0;
    }
    Ok(out)
}

/// Runs orders `range` over `concurrency` tasks; appends their outcomes in
/// index order.
async fn run_orders(
    repo: &Arc<Repo>,
    options: &DemoOptions,
    range: Range<usize>,
    counts: &mut Counts,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), DemoError> {
    let concurrency = options.concurrency;
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency.min(range.len()) {
        let repo = Arc::clone(repo);
        let run = options.run.clone();
        let seed = options.seed;
        let range = range.clone();
        tasks.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            let mut done = Vec::new();
            for i in range.skip(w).step_by(concurrency) {
                done.push((i, run_order(&repo, &run, seed, i, &mut counts).await?));
            }
            Ok::<_, DemoError>((counts, done))
        }));
    }
    let mut all = Vec::with_capacity(range.len());
    for t in tasks {
        let (c, done) = t.await??;
        counts.add(&c);
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

fn top_of(symbol: &str, book: Option<&Book>) -> TopOfBook {
    let book = book.cloned().unwrap_or_default();
    let (bid_quantity, ask_quantity) = book.total_quantity();
    TopOfBook {
        symbol: symbol.to_owned(),
        best_bid: book.best_bid(),
        best_ask: book.best_ask(),
        bid_quantity,
        ask_quantity,
    }
}

fn check_options(options: &DemoOptions) -> Result<(), DemoError> {
    check_range("orders", options.orders, MAX_DEMO_ORDERS)?;
    check_range("concurrency", options.concurrency, MAX_DEMO_CONCURRENCY)?;
    if options.run.is_empty() || options.run.contains('-') {
        return Err(DemoError::Options(format!(
            "the run id must be non-empty and hold no `-`, got `{}`",
            options.run
        )));
    }
    Ok(())
}

/// Runs the trading demo on `store` (see the module docs) and reports what
/// happened. Fails if the projections differ from the direct recomputation,
/// now or as of the end of the first half.
pub async fn run(
    store: Arc<dyn EventStore>,
    options: &DemoOptions,
) -> Result<DemoReport, DemoError> {
    check_options(options)?;
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(options.orders));
    let mut counts = Counts::default();
    let mut outcomes = Vec::with_capacity(options.orders);

    // First half; remember where it ended for time travel.
    let half = options.orders / 2;
    let started = Instant::now();
    run_orders(&repo, options, 0..half, &mut counts, &mut outcomes).await?;
    let first_half = started.elapsed();
    let then_position = store.head_position().await?;
    let then_time = Utc::now();
    let then_books = expected_books(&outcomes);
    // The second half starts strictly later than `then_time`.
    tokio::time::sleep(Duration::from_millis(PHASE_GAP_MS)).await;
    let restarted = Instant::now();
    run_orders(
        &repo,
        options,
        half..options.orders,
        &mut counts,
        &mut outcomes,
    )
    .await?;
    let write_elapsed = first_half + restarted.elapsed();

    // The projections, caught up by runners over `$all`.
    let prefix = format!("{}-{}.", Order::TYPE, options.run);
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let mut book_runner = ProjectionRunner::new(
        Arc::clone(&store),
        checkpoints.clone(),
        Typed::new(OrderBookProjection::scoped(prefix.clone())),
    );
    let book_projection = CatchUp::of(&book_runner.catch_up().await?);
    let mut positions_runner = ProjectionRunner::new(
        Arc::clone(&store),
        checkpoints,
        Typed::new(PositionsProjection::scoped(prefix.clone())),
    );
    let positions_projection = CatchUp::of(&positions_runner.catch_up().await?);

    // The check: projections against the flow's own bookkeeping.
    let want_books = expected_books(&outcomes);
    let want_positions = expected_positions(&outcomes);
    let books = book_runner.projection().read(|p| p.books().clone()).await;
    let (positions, last_prices) = positions_runner
        .projection()
        .read(|p| (p.all().clone(), p.last_prices().clone()))
        .await;
    if books != want_books {
        return Err(DemoError::Check(
            "the order book differs from the direct recomputation".into(),
        ));
    }
    if positions != want_positions {
        return Err(DemoError::Check(
            "the positions differ from the direct recomputation".into(),
        ));
    }

    let (top_of_book, depth, best_pnl) = summarize(&books, &positions, &last_prices);

    // Time travel: the book as of the end of the first half, by time and by
    // position.
    let then = Then {
        time: then_time,
        position: then_position,
        books: then_books,
        orders: half,
    };
    let past = past_book(&*store, prefix, then).await?;

    Ok(DemoReport {
        run: options.run.clone(),
        orders: options.orders,
        concurrency: options.concurrency,
        seed: options.seed,
        commands: counts.commands,
        refused: counts.refused,
        events: counts.events,
        fills: counts.fills,
        cancels: counts.cancels,
        write_elapsed,
        book_projection,
        positions_projection,
        symbols: books.len(),
        traders: positions.len(),
        top_of_book,
        depth,
        best_pnl,
        past,
    })
}

/// The report's views of the books and positions (see [`summarize`]).
type Summary = (Vec<TopOfBook>, Vec<(Level, Level)>, Vec<(String, Decimal)>);

/// The report's views of the books and positions: the top of the first
/// books, the depth of the first symbol, and the traders with the best PnL.
fn summarize(
    books: &BTreeMap<String, Book>,
    positions: &BTreeMap<String, BTreeMap<String, Position>>,
    last_prices: &BTreeMap<String, Decimal>,
) -> Summary {
    let top_of_book = SYMBOLS
        .iter()
        .take(TOP_OF_BOOK_SYMBOLS)
        .filter_map(|s| books.get(*s).map(|b| top_of(s, Some(b))))
        .collect();
    let depth = books
        .get(SYMBOLS[0])
        .map(|b| {
            b.bid_depth(DEPTH_LEVELS)
                .into_iter()
                .zip(b.ask_depth(DEPTH_LEVELS))
                .collect()
        })
        .unwrap_or_default();
    let pnl = |by_symbol: &BTreeMap<String, Position>| -> Decimal {
        by_symbol
            .iter()
            .map(|(s, p)| p.pnl(last_prices.get(s).copied().unwrap_or_default()))
            .sum()
    };
    let mut best_pnl: Vec<(String, Decimal)> = positions
        .iter()
        .map(|(t, by)| (t.clone(), pnl(by)))
        .collect();
    best_pnl.sort_by_key(|r| std::cmp::Reverse(r.1));
    best_pnl.truncate(TOP_TRADERS);
    (top_of_book, depth, best_pnl)
}

/// Where the first half of the flow ended.
struct Then {
    time: DateTime<Utc>,
    position: LogPosition,
    books: BTreeMap<String, Book>,
    orders: usize,
}

/// The book as of the end of the first half, by time and by position,
/// checked against the recomputation `then.books`.
async fn past_book(
    store: &dyn EventStore,
    prefix: String,
    then: Then,
) -> Result<PastBook, DemoError> {
    let timer = Instant::now();
    let mut as_of = Typed::new(OrderBookProjection::scoped(prefix));
    project_until(store, &mut as_of, Until::Time(then.time)).await?;
    let by_time = as_of.books().clone();
    project_until(store, &mut as_of, Until::Position(then.position)).await?;
    if by_time != then.books || as_of.books() != &then.books {
        return Err(DemoError::Check(
            "the book as of the end of the first half differs from the recomputation".into(),
        ));
    }
    Ok(PastBook {
        as_of: then.time,
        position: then.position,
        orders: then.orders,
        top: top_of(SYMBOLS[0], then.books.get(SYMBOLS[0])),
        elapsed: timer.elapsed(),
    })
}
