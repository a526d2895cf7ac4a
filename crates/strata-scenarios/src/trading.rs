//! Trading: limit orders with partial fills and cancels, an
//! order book per symbol, positions and PnL per trader, and the book of a
//! symbol as of a past time.
//!
//! An [`Order`] lives in stream `order-{order_id}`. It is placed once, then
//! filled in parts (never beyond what remains, never at a price worse than
//! its limit) until it is full, or cancelled while something remains. Fills
//! come from outside (an exchange's execution reports): the book here is a
//! view of resting orders, not a matching engine, so bids and asks may cross.
//!
//! Two projections fold the order events of `$all`:
//!
//! - [`OrderBookProjection`]: per symbol, the remaining quantity of resting
//!   orders by price level and side — best bid, best ask, depth.
//! - [`PositionsProjection`]: per trader and symbol, the net quantity and the
//!   cash flow of their fills; PnL is marked to the symbol's last fill price.
//!
//! Both are idempotent under at-least-once delivery: each remembers, per
//! order, the stream version of the last event it folded and ignores events
//! at or below it.
//!
//! **The book as of a time** ([`order_book_as_of`]) runs a fresh
//! [`OrderBookProjection`] over `$all` from the start up to the time (or
//! position) with [`project_until`]: `$all` is ordered by position and its
//! record times never decrease, so the read stops at the first later event.
//! The alternative — loading each order of the symbol with
//! [`Repository::load_as_of`](strata::Repository::load_as_of) — would need
//! an index of orders by symbol and one stream read per order; folding the
//! prefix of `$all` answers for every symbol at once in one sequential scan
//! of the order events up to `t`.
//!
//! ```
//! use rust_decimal::Decimal;
//! use strata_scenarios::trading::{Order, OrderCommand, OrderError, OrderEvent, Side};
//! use strata::Aggregate;
//!
//! let order = Order::from_events(&[OrderEvent::Placed {
//!     order_id: "o1".into(),
//!     trader: "ada".into(),
//!     symbol: "ACME".into(),
//!     quantity: 10,
//!     price: Decimal::new(10050, 2),
//!     side: Side::Buy,
//! }]);
//! let fill = OrderCommand::Fill { fill_price: Decimal::new(100, 0), fill_quantity: 4 };
//! assert_eq!(order.handle(&fill).unwrap().len(), 1);
//! let too_much = OrderCommand::Fill { fill_price: Decimal::new(100, 0), fill_quantity: 11 };
//! assert!(matches!(order.handle(&too_much), Err(OrderError::Overfill { .. })));
//! ```

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use strata_core::{EventStore, ReadFilter, RecordedEvent, Version};

use crate::{project_until, Until};
use strata::aggregate::Aggregate;
use strata::event::DomainEvent;
use strata::projection::{event_types_of, ProjectionError, Typed, TypedProjection};
use strata::query::Queryable;

/// Longest symbol, trader or order id accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Which side of the book an order is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Wants to buy at the price or lower.
    Buy,
    /// Wants to sell at the price or higher.
    Sell,
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Not placed yet (the initial state).
    #[default]
    New,
    /// Placed; nothing or part of it filled.
    Open,
    /// Completely filled.
    Filled,
    /// Cancelled with something left.
    Cancelled,
}

/// An order's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    order_id: String,
    trader: String,
    symbol: String,
    side: Option<Side>,
    quantity: u64,
    price: Decimal,
    filled: u64,
    /// Σ fill_price × fill_quantity.
    filled_notional: Decimal,
}

impl Order {
    /// Where the order is in its life.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// Its id.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }
    /// Who placed it.
    pub fn trader(&self) -> &str {
        &self.trader
    }
    /// What it trades.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }
    /// Buy or sell (`None` before it is placed).
    pub fn side(&self) -> Option<Side> {
        self.side
    }
    /// The quantity ordered.
    pub fn quantity(&self) -> u64 {
        self.quantity
    }
    /// The limit price.
    pub fn price(&self) -> Decimal {
        self.price
    }
    /// The quantity filled so far.
    pub fn filled(&self) -> u64 {
        self.filled
    }
    /// The quantity still to fill (0 once filled or cancelled).
    pub fn remaining(&self) -> u64 {
        match self.status {
            OrderStatus::Open => self.quantity - self.filled,
            _ => 0,
        }
    }
    /// Σ fill price × fill quantity over its fills.
    pub fn filled_notional(&self) -> Decimal {
        self.filled_notional
    }
}

/// What can be asked of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum OrderCommand {
    /// Places a limit order.
    Place {
        /// Its id (the stream is `order-{order_id}`).
        order_id: String,
        /// Who places it.
        trader: String,
        /// What it trades.
        symbol: String,
        /// Buy or sell.
        side: Side,
        /// How much; positive.
        quantity: u64,
        /// The limit price; positive.
        price: Decimal,
    },
    /// Records an execution of part or all of what remains.
    Fill {
        /// The execution price; positive and not worse than the limit.
        fill_price: Decimal,
        /// How much; positive, at most what remains.
        fill_quantity: u64,
    },
    /// Cancels what remains.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// What happened to an order (`TradeEvent`, with the trader added).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// The order was placed.
    #[serde(rename = "OrderPlaced")]
    Placed {
        /// Its id.
        order_id: String,
        /// Who placed it.
        trader: String,
        /// What it trades.
        symbol: String,
        /// How much.
        quantity: u64,
        /// The limit price.
        price: Decimal,
        /// Buy or sell.
        side: Side,
    },
    /// Part or all of it was executed.
    #[serde(rename = "OrderFilled")]
    Filled {
        /// Its id.
        order_id: String,
        /// The execution price.
        fill_price: Decimal,
        /// How much.
        fill_quantity: u64,
    },
    /// What remained was cancelled.
    #[serde(rename = "OrderCancelled")]
    Cancelled {
        /// Its id.
        order_id: String,
        /// Why.
        reason: String,
    },
}

impl DomainEvent for OrderEvent {}

/// Why an order refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Fill or cancel before the order was placed.
    #[error("the order has not been placed")]
    NotPlaced,
    /// Placed twice.
    #[error("the order was already placed")]
    AlreadyPlaced,
    /// An empty or over-long order id, trader or symbol.
    #[error("the {field} must be 1 to {MAX_NAME_BYTES} bytes, got {got:?}")]
    InvalidName {
        /// Which field.
        field: &'static str,
        /// What was given.
        got: String,
    },
    /// A zero quantity.
    #[error("the quantity must be positive")]
    InvalidQuantity,
    /// A price that is not positive.
    #[error("the price must be positive, got {price}")]
    InvalidPrice {
        /// The refused price.
        price: Decimal,
    },
    /// A fill larger than what remains.
    #[error("cannot fill {requested}: only {remaining} remains")]
    Overfill {
        /// What remains.
        remaining: u64,
        /// The refused fill.
        requested: u64,
    },
    /// A fill at a price worse than the order's limit.
    #[error("a {side:?} order limited at {limit} cannot fill at {fill_price}")]
    PriceThroughLimit {
        /// The order's side.
        side: Side,
        /// Its limit.
        limit: Decimal,
        /// The refused price.
        fill_price: Decimal,
    },
    /// The order is completely filled: nothing more can happen to it.
    #[error("the order is already filled")]
    AlreadyFilled,
    /// The order was cancelled: nothing more can happen to it.
    #[error("the order is cancelled")]
    AlreadyCancelled,
}

fn check_name(field: &'static str, value: &str) -> Result<(), OrderError> {
    if value.trim().is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(OrderError::InvalidName {
            field,
            got: value.to_owned(),
        });
    }
    Ok(())
}

fn positive_price(price: Decimal) -> Result<(), OrderError> {
    if price > Decimal::ZERO {
        Ok(())
    } else {
        Err(OrderError::InvalidPrice { price })
    }
}

impl Order {
    fn require_open(&self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::New => Err(OrderError::NotPlaced),
            OrderStatus::Open => Ok(()),
            OrderStatus::Filled => Err(OrderError::AlreadyFilled),
            OrderStatus::Cancelled => Err(OrderError::AlreadyCancelled),
        }
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn handle(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        match command {
            OrderCommand::Place {
                order_id,
                trader,
                symbol,
                side,
                quantity,
                price,
            } => {
                if self.status != OrderStatus::New {
                    return Err(OrderError::AlreadyPlaced);
                }
                check_name("order id", order_id)?;
                check_name("trader", trader)?;
                check_name("symbol", symbol)?;
                if *quantity == 0 {
                    return Err(OrderError::InvalidQuantity);
                }
                positive_price(*price)?;
                Ok(vec![OrderEvent::Placed {
                    order_id: order_id.clone(),
                    trader: trader.clone(),
                    symbol: symbol.clone(),
                    quantity: *quantity,
                    price: *price,
                    side: *side,
                }])
            }
            OrderCommand::Fill {
                fill_price,
                fill_quantity,
            } => {
                self.require_open()?;
                if *fill_quantity == 0 {
                    return Err(OrderError::InvalidQuantity);
                }
                positive_price(*fill_price)?;
                let remaining = self.remaining();
                if *fill_quantity > remaining {
                    return Err(OrderError::Overfill {
                        remaining,
                        requested: *fill_quantity,
                    });
                }
                let side = self.side.unwrap_or(Side::Buy);
                let through = match side {
                    Side::Buy => *fill_price > self.price,
                    Side::Sell => *fill_price < self.price,
                };
                if through {
                    return Err(OrderError::PriceThroughLimit {
                        side,
                        limit: self.price,
                        fill_price: *fill_price,
                    });
                }
                Ok(vec![OrderEvent::Filled {
                    order_id: self.order_id.clone(),
                    fill_price: *fill_price,
                    fill_quantity: *fill_quantity,
                }])
            }
            OrderCommand::Cancel { reason } => {
                self.require_open()?;
                Ok(vec![OrderEvent::Cancelled {
                    order_id: self.order_id.clone(),
                    reason: reason.clone(),
                }])
            }
        }
    }

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed {
                order_id,
                trader,
                symbol,
                quantity,
                price,
                side,
            } => {
                self.status = OrderStatus::Open;
                self.order_id.clone_from(order_id);
                self.trader.clone_from(trader);
                self.symbol.clone_from(symbol);
                self.side = Some(*side);
                self.quantity = *quantity;
                self.price = *price;
            }
            OrderEvent::Filled {
                fill_price,
                fill_quantity,
                ..
            } => {
                // Saturating: `apply` must not panic, even on events that
                // other tools wrote without the rules of `handle`.
                self.filled = self.filled.saturating_add(*fill_quantity);
                self.filled_notional += *fill_price * Decimal::from(*fill_quantity);
                if self.filled >= self.quantity {
                    self.status = OrderStatus::Filled;
                }
            }
            OrderEvent::Cancelled { .. } => self.status = OrderStatus::Cancelled,
        }
    }
}

/// The order id of stream `order-{id}`.
fn order_id_of(recorded: &RecordedEvent) -> &str {
    let stream = recorded.stream_id.as_str();
    stream
        .strip_prefix(Order::TYPE)
        .and_then(|s| s.strip_prefix('-'))
        .unwrap_or(stream)
}

/// Whether `recorded` is in a projection's scope (a reader without the
/// store's filtering, such as a processor with other handlers, may hand over
/// more).
fn in_scope(scope: Option<&str>, recorded: &RecordedEvent) -> bool {
    scope.is_none_or(|p| recorded.stream_id.as_str().starts_with(p))
}

/// The filter of both projections: order events of `order-*` streams,
/// only those whose name starts with `prefix` if there is one.
fn order_filter(prefix: Option<&str>) -> ReadFilter {
    let filter = ReadFilter::all()
        .category(Order::TYPE)
        .event_types(event_types_of::<OrderEvent>().iter().copied());
    match prefix {
        Some(p) => filter.stream_prefix(p),
        None => filter,
    }
}

/// One price level of a book side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Level {
    /// The price.
    pub price: Decimal,
    /// Σ remaining quantity of the resting orders at this price.
    pub quantity: u64,
    /// How many resting orders.
    pub orders: u64,
}

/// The resting orders of one symbol, by price level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    bids: BTreeMap<Decimal, Level>,
    asks: BTreeMap<Decimal, Level>,
}

impl Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Decimal, Level> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Adds `quantity` of one new resting order at `price`.
    pub fn add_order(&mut self, side: Side, price: Decimal, quantity: u64) {
        let level = self.side_mut(side).entry(price).or_insert(Level {
            price,
            quantity: 0,
            orders: 0,
        });
        level.quantity += quantity;
        level.orders += 1;
    }

    /// Takes `quantity` off a resting order at `price`; `order_gone` when
    /// the order leaves the book (filled or cancelled).
    pub fn reduce(&mut self, side: Side, price: Decimal, quantity: u64, order_gone: bool) {
        let levels = self.side_mut(side);
        if let Some(level) = levels.get_mut(&price) {
            level.quantity = level.quantity.saturating_sub(quantity);
            if order_gone {
                level.orders = level.orders.saturating_sub(1);
            }
            if level.orders == 0 {
                levels.remove(&price);
            }
        }
    }

    /// The highest bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.values().next_back().copied()
    }

    /// The lowest ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.values().next().copied()
    }

    /// Up to `levels` bid levels, best (highest) first.
    pub fn bid_depth(&self, levels: usize) -> Vec<Level> {
        self.bids.values().rev().take(levels).copied().collect()
    }

    /// Up to `levels` ask levels, best (lowest) first.
    pub fn ask_depth(&self, levels: usize) -> Vec<Level> {
        self.asks.values().take(levels).copied().collect()
    }

    /// Σ remaining quantity on each side: (bids, asks).
    pub fn total_quantity(&self) -> (u64, u64) {
        (
            self.bids.values().map(|l| l.quantity).sum(),
            self.asks.values().map(|l| l.quantity).sum(),
        )
    }

    /// Whether no order rests on either side.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

/// What the book projection remembers of one order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Resting {
    symbol: String,
    side: Side,
    price: Decimal,
    remaining: u64,
    open: bool,
    version: Version,
}

/// The order book of every symbol: resting orders' remaining quantity by
/// price level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderBookProjection {
    books: BTreeMap<String, Book>,
    orders: HashMap<String, Resting>,
    scope: Option<String>,
}

/// The book projection's name in a query model.
pub const ORDER_BOOK: &str = "order-book";

impl OrderBookProjection {
    /// No orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds only the orders whose stream name starts with `stream_prefix`
    /// (`order-run7.`, say), so that one run's orders can be told apart
    /// in a store that holds others.
    pub fn scoped(stream_prefix: impl Into<String>) -> Self {
        Self {
            scope: Some(stream_prefix.into()),
            ..Self::default()
        }
    }

    /// The book of `symbol` (`None` if no order of it was ever placed).
    pub fn book(&self, symbol: &str) -> Option<&Book> {
        self.books.get(symbol)
    }

    /// Every book, by symbol.
    pub fn books(&self) -> &BTreeMap<String, Book> {
        &self.books
    }

    /// How many orders it has seen placed.
    pub fn orders_seen(&self) -> usize {
        self.orders.len()
    }
}

impl TypedProjection for OrderBookProjection {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        ORDER_BOOK
    }

    fn filter(&self) -> ReadFilter {
        order_filter(self.scope.as_deref())
    }

    fn apply(
        &mut self,
        event: OrderEvent,
        recorded: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if !in_scope(self.scope.as_deref(), recorded) {
            return Ok(());
        }
        let id = order_id_of(recorded);
        match event {
            OrderEvent::Placed {
                symbol,
                quantity,
                price,
                side,
                ..
            } => {
                if self.orders.contains_key(id) {
                    // Delivered again: already folded in.
                    return Ok(());
                }
                self.books
                    .entry(symbol.clone())
                    .or_default()
                    .add_order(side, price, quantity);
                self.orders.insert(
                    id.to_owned(),
                    Resting {
                        symbol,
                        side,
                        price,
                        remaining: quantity,
                        open: true,
                        version: recorded.version,
                    },
                );
            }
            OrderEvent::Filled { fill_quantity, .. } => {
                let Some(order) = self.orders.get_mut(id) else {
                    return Err(ProjectionError::failed(format!(
                        "order `{id}` filled before it was placed"
                    )));
                };
                if recorded.version <= order.version || !order.open {
                    return Ok(());
                }
                order.version = recorded.version;
                let take = fill_quantity.min(order.remaining);
                order.remaining -= take;
                order.open = order.remaining > 0;
                if let Some(book) = self.books.get_mut(&order.symbol) {
                    book.reduce(order.side, order.price, take, !order.open);
                }
            }
            OrderEvent::Cancelled { .. } => {
                let Some(order) = self.orders.get_mut(id) else {
                    return Err(ProjectionError::failed(format!(
                        "order `{id}` cancelled before it was placed"
                    )));
                };
                if recorded.version <= order.version || !order.open {
                    return Ok(());
                }
                order.version = recorded.version;
                order.open = false;
                if let Some(book) = self.books.get_mut(&order.symbol) {
                    book.reduce(order.side, order.price, order.remaining, true);
                }
                order.remaining = 0;
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        *self = Self {
            scope: self.scope.take(),
            ..Self::default()
        };
    }
}

/// What can be asked of the order books.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BookQuery {
    /// Best bid and best ask of a symbol.
    Top(String),
    /// Up to `levels` levels of each side of a symbol.
    Depth {
        /// The symbol.
        symbol: String,
        /// How many levels per side.
        levels: usize,
    },
}

/// The answer to a [`BookQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookAnswer {
    /// Best bid, best ask.
    Top(Option<Level>, Option<Level>),
    /// Bid levels (best first), ask levels (best first).
    Depth(Vec<Level>, Vec<Level>),
}

impl Queryable for OrderBookProjection {
    type Query = BookQuery;
    type Answer = BookAnswer;

    fn query(&self, query: &BookQuery) -> BookAnswer {
        match query {
            BookQuery::Top(symbol) => {
                let book = self.books.get(symbol);
                BookAnswer::Top(book.and_then(Book::best_bid), book.and_then(Book::best_ask))
            }
            BookQuery::Depth { symbol, levels } => match self.books.get(symbol) {
                Some(book) => BookAnswer::Depth(book.bid_depth(*levels), book.ask_depth(*levels)),
                None => BookAnswer::Depth(Vec::new(), Vec::new()),
            },
        }
    }
}

/// A trader's holding of one symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Net quantity: bought minus sold.
    pub quantity: i128,
    /// Cash flow: Σ sold notional − Σ bought notional.
    pub cash: Decimal,
    /// Σ quantity bought.
    pub bought: u64,
    /// Σ quantity sold.
    pub sold: u64,
}

impl Position {
    /// Profit and loss marked at `mark`: cash flow plus the net quantity
    /// valued at `mark`.
    pub fn pnl(&self, mark: Decimal) -> Decimal {
        self.cash + Decimal::from(self.quantity) * mark
    }

    /// Folds in a fill of `quantity` at `price` on `side`.
    pub fn add_fill(&mut self, side: Side, price: Decimal, quantity: u64) {
        let notional = price * Decimal::from(quantity);
        match side {
            Side::Buy => {
                self.quantity += i128::from(quantity);
                self.cash -= notional;
                self.bought += quantity;
            }
            Side::Sell => {
                self.quantity -= i128::from(quantity);
                self.cash += notional;
                self.sold += quantity;
            }
        }
    }
}

/// What the positions projection remembers of one order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OrderRef {
    trader: String,
    symbol: String,
    side: Side,
    version: Version,
}

/// Every trader's positions by symbol, and every symbol's last fill price.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PositionsProjection {
    positions: BTreeMap<String, BTreeMap<String, Position>>,
    last_price: BTreeMap<String, Decimal>,
    orders: HashMap<String, OrderRef>,
    scope: Option<String>,
}

/// The positions projection's name in a query model.
pub const POSITIONS: &str = "trader-positions";

impl PositionsProjection {
    /// No positions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds only the orders whose stream name starts with `stream_prefix`
    /// (`order-run7.`, say), so that one run's orders can be told apart
    /// in a store that holds others.
    pub fn scoped(stream_prefix: impl Into<String>) -> Self {
        Self {
            scope: Some(stream_prefix.into()),
            ..Self::default()
        }
    }

    /// The positions of `trader`, by symbol.
    pub fn positions_of(&self, trader: &str) -> Option<&BTreeMap<String, Position>> {
        self.positions.get(trader)
    }

    /// Every trader's positions.
    pub fn all(&self) -> &BTreeMap<String, BTreeMap<String, Position>> {
        &self.positions
    }

    /// The last fill price of `symbol`.
    pub fn last_price(&self, symbol: &str) -> Option<Decimal> {
        self.last_price.get(symbol).copied()
    }

    /// Every symbol's last fill price.
    pub fn last_prices(&self) -> &BTreeMap<String, Decimal> {
        &self.last_price
    }

    /// `trader`'s PnL over all symbols, each marked at its last fill price.
    pub fn pnl(&self, trader: &str) -> Decimal {
        self.positions
            .get(trader)
            .map(|by_symbol| {
                by_symbol
                    .iter()
                    .map(|(symbol, p)| p.pnl(self.last_price(symbol).unwrap_or_default()))
                    .sum()
            })
            .unwrap_or_default()
    }
}

impl TypedProjection for PositionsProjection {
    type Event = OrderEvent;

    fn name(&self) -> &str {
        POSITIONS
    }

    fn filter(&self) -> ReadFilter {
        order_filter(self.scope.as_deref())
    }

    fn apply(
        &mut self,
        event: OrderEvent,
        recorded: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if !in_scope(self.scope.as_deref(), recorded) {
            return Ok(());
        }
        let id = order_id_of(recorded);
        match event {
            OrderEvent::Placed {
                trader,
                symbol,
                side,
                ..
            } => {
                self.orders.entry(id.to_owned()).or_insert(OrderRef {
                    trader,
                    symbol,
                    side,
                    version: recorded.version,
                });
            }
            OrderEvent::Filled {
                fill_price,
                fill_quantity,
                ..
            } => {
                let Some(order) = self.orders.get_mut(id) else {
                    return Err(ProjectionError::failed(format!(
                        "order `{id}` filled before it was placed"
                    )));
                };
                if recorded.version <= order.version {
                    return Ok(());
                }
                order.version = recorded.version;
                self.positions
                    .entry(order.trader.clone())
                    .or_default()
                    .entry(order.symbol.clone())
                    .or_default()
                    .add_fill(order.side, fill_price, fill_quantity);
                self.last_price.insert(order.symbol.clone(), fill_price);
            }
            OrderEvent::Cancelled { .. } => {
                if let Some(order) = self.orders.get_mut(id) {
                    order.version = order.version.max(recorded.version);
                }
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        *self = Self {
            scope: self.scope.take(),
            ..Self::default()
        };
    }
}

/// The order book of `symbol` as it was at `until` (a time or a position):
/// a fresh [`OrderBookProjection`] folded over `$all` up to it (see the
/// module docs). An unknown symbol gives an empty book.
///
/// ```
/// use rust_decimal::Decimal;
/// use strata_scenarios::trading::{order_book_as_of, Order, OrderCommand, Side};
/// use strata_scenarios::Until;
/// use strata::{CommandMeta, MemoryStore, Repository};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let repo = Repository::<Order, _>::new(store.clone());
/// let place = OrderCommand::Place {
///     order_id: "o1".into(), trader: "ada".into(), symbol: "ACME".into(),
///     side: Side::Buy, quantity: 10, price: Decimal::new(100, 0),
/// };
/// let placed = repo.execute("o1", place, CommandMeta::new()).await.unwrap();
/// let fill = OrderCommand::Fill { fill_price: Decimal::new(100, 0), fill_quantity: 10 };
/// repo.execute("o1", fill, CommandMeta::new()).await.unwrap();
///
/// let (_, at) = placed.positions.unwrap();
/// let then = order_book_as_of(&store, "ACME", Until::Position(at)).await.unwrap();
/// assert_eq!(then.best_bid().unwrap().quantity, 10);
/// let now = order_book_as_of(&store, "ACME", Until::Time(chrono::Utc::now())).await.unwrap();
/// assert!(now.is_empty());
/// # });
/// ```
pub async fn order_book_as_of<S: EventStore + ?Sized>(
    store: &S,
    symbol: &str,
    until: Until,
) -> Result<Book, ProjectionError> {
    let mut projection = Typed::new(OrderBookProjection::new());
    project_until(store, &mut projection, until).await?;
    Ok(projection.book(symbol).cloned().unwrap_or_default())
}

pub mod demo;
