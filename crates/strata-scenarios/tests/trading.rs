//! Trading: the order's rules (given/when/then), the order book
//! and positions projections against a direct recomputation on random
//! order flows, their idempotency, and the book as of a past position/time.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use strata::testing::{given, given_no_events};
use strata::{
    CommandMeta, Consistency, EventStore, MemoryCheckpointStore, MemoryStore, Projection,
    QueryModel, ReadFilter, Repository, Typed,
};
use strata_scenarios::trading::{
    order_book_as_of, Book, BookAnswer, BookQuery, Order, OrderBookProjection, OrderCommand,
    OrderError, OrderEvent, OrderStatus, Position, PositionsProjection, Side,
};
use strata_scenarios::{project_until, Until};

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

fn placed(side: Side, quantity: u64, price: Decimal) -> OrderEvent {
    OrderEvent::Placed {
        order_id: "o1".into(),
        trader: "ada".into(),
        symbol: "ACME".into(),
        quantity,
        price,
        side,
    }
}

fn place(side: Side, quantity: u64, price: Decimal) -> OrderCommand {
    OrderCommand::Place {
        order_id: "o1".into(),
        trader: "ada".into(),
        symbol: "ACME".into(),
        side,
        quantity,
        price,
    }
}

fn filled(price: Decimal, quantity: u64) -> OrderEvent {
    OrderEvent::Filled {
        order_id: "o1".into(),
        fill_price: price,
        fill_quantity: quantity,
    }
}

fn fill(price: Decimal, quantity: u64) -> OrderCommand {
    OrderCommand::Fill {
        fill_price: price,
        fill_quantity: quantity,
    }
}

#[test]
fn placing_records_the_order() {
    given_no_events::<Order>()
        .when(place(Side::Buy, 10, d(10050, 2)))
        .then_expect_events([placed(Side::Buy, 10, d(10050, 2))])
        .then_state(|o| {
            assert_eq!(o.status(), OrderStatus::Open);
            assert_eq!(o.remaining(), 10);
        });
}

#[test]
fn placing_refuses_zero_quantity_non_positive_price_and_empty_names() {
    given_no_events::<Order>()
        .when(place(Side::Buy, 0, d(1, 0)))
        .then_expect_error(OrderError::InvalidQuantity);
    given_no_events::<Order>()
        .when(place(Side::Sell, 5, d(0, 0)))
        .then_expect_error(OrderError::InvalidPrice { price: d(0, 0) });
    given_no_events::<Order>()
        .when(place(Side::Sell, 5, d(-1, 0)))
        .then_expect_error(OrderError::InvalidPrice { price: d(-1, 0) });
    given_no_events::<Order>()
        .when(OrderCommand::Place {
            order_id: "o1".into(),
            trader: " ".into(),
            symbol: "ACME".into(),
            side: Side::Buy,
            quantity: 1,
            price: d(1, 0),
        })
        .then_expect_error_matching(|e| {
            matches!(
                e,
                OrderError::InvalidName {
                    field: "trader",
                    ..
                }
            )
        });
}

#[test]
fn placing_twice_is_refused() {
    given::<Order>([placed(Side::Buy, 10, d(100, 0))])
        .when(place(Side::Buy, 10, d(100, 0)))
        .then_expect_error(OrderError::AlreadyPlaced);
}

#[test]
fn partial_fills_add_up_to_a_full_fill() {
    given::<Order>([placed(Side::Buy, 10, d(100, 0))])
        .when(fill(d(99, 0), 3))
        .then_expect_events([filled(d(99, 0), 3)])
        .then_state(|o| {
            assert_eq!(o.status(), OrderStatus::Open);
            assert_eq!(o.remaining(), 7);
        })
        .and_when(fill(d(100, 0), 7))
        .then_expect_events([filled(d(100, 0), 7)])
        .then_state(|o| {
            assert_eq!(o.status(), OrderStatus::Filled);
            assert_eq!(o.remaining(), 0);
            assert_eq!(o.filled(), 10);
            assert_eq!(o.filled_notional(), d(997, 0));
        });
}

#[test]
fn a_fill_beyond_the_remaining_quantity_is_refused() {
    given::<Order>([placed(Side::Sell, 10, d(100, 0)), filled(d(101, 0), 6)])
        .when(fill(d(101, 0), 5))
        .then_expect_error(OrderError::Overfill {
            remaining: 4,
            requested: 5,
        });
}

#[test]
fn zero_fills_and_non_positive_fill_prices_are_refused() {
    given::<Order>([placed(Side::Sell, 10, d(100, 0))])
        .when(fill(d(101, 0), 0))
        .then_expect_error(OrderError::InvalidQuantity);
    given::<Order>([placed(Side::Sell, 10, d(100, 0))])
        .when(fill(d(0, 0), 1))
        .then_expect_error(OrderError::InvalidPrice { price: d(0, 0) });
}

#[test]
fn a_fill_worse_than_the_limit_is_refused() {
    given::<Order>([placed(Side::Buy, 10, d(100, 0))])
        .when(fill(d(10001, 2), 1))
        .then_expect_error(OrderError::PriceThroughLimit {
            side: Side::Buy,
            limit: d(100, 0),
            fill_price: d(10001, 2),
        });
    given::<Order>([placed(Side::Sell, 10, d(100, 0))])
        .when(fill(d(9999, 2), 1))
        .then_expect_error(OrderError::PriceThroughLimit {
            side: Side::Sell,
            limit: d(100, 0),
            fill_price: d(9999, 2),
        });
}

#[test]
fn nothing_happens_to_a_filled_order() {
    let history = [placed(Side::Buy, 5, d(100, 0)), filled(d(100, 0), 5)];
    given::<Order>(history.clone())
        .when(fill(d(100, 0), 1))
        .then_expect_error(OrderError::AlreadyFilled);
    given::<Order>(history)
        .when(OrderCommand::Cancel {
            reason: "late".into(),
        })
        .then_expect_error(OrderError::AlreadyFilled);
}

#[test]
fn nothing_happens_to_a_cancelled_order() {
    let cancelled = OrderEvent::Cancelled {
        order_id: "o1".into(),
        reason: "user".into(),
    };
    let history = [
        placed(Side::Buy, 5, d(100, 0)),
        filled(d(100, 0), 2),
        cancelled,
    ];
    given::<Order>(history.clone())
        .when(fill(d(100, 0), 1))
        .then_expect_error(OrderError::AlreadyCancelled);
    given::<Order>(history)
        .when(OrderCommand::Cancel {
            reason: "again".into(),
        })
        .then_expect_error(OrderError::AlreadyCancelled);
}

#[test]
fn fill_or_cancel_before_placing_is_refused() {
    given_no_events::<Order>()
        .when(fill(d(1, 0), 1))
        .then_expect_error(OrderError::NotPlaced);
    given_no_events::<Order>()
        .when(OrderCommand::Cancel { reason: "x".into() })
        .then_expect_error(OrderError::NotPlaced);
}

#[test]
fn a_partly_filled_order_can_be_cancelled() {
    given::<Order>([placed(Side::Sell, 5, d(100, 0)), filled(d(100, 0), 2)])
        .when(OrderCommand::Cancel {
            reason: "user".into(),
        })
        .then_expect_events([OrderEvent::Cancelled {
            order_id: "o1".into(),
            reason: "user".into(),
        }])
        .then_state(|o| {
            assert_eq!(o.status(), OrderStatus::Cancelled);
            assert_eq!(o.remaining(), 0);
            assert_eq!(o.filled(), 2);
        });
}

const SYMBOLS: [&str; 3] = ["ACME", "BOLT", "CRUX"];
const TRADERS: [&str; 4] = ["ada", "bo", "cy", "di"];

/// Runs `commands` random commands on up to `orders` orders through a
/// repository; refusals are part of the flow. Returns the order ids and
/// every symbol's last fill price, as the flow saw them.
async fn random_flow(
    repo: &Repository<Order, MemoryStore>,
    rng: &mut StdRng,
    orders: usize,
    commands: usize,
    ids: &mut Vec<String>,
    last_price: &mut BTreeMap<String, Decimal>,
) {
    for _ in 0..commands {
        let new = ids.len() < orders && (ids.is_empty() || rng.gen_bool(0.4));
        if new {
            let id = format!("{}", ids.len());
            let command = OrderCommand::Place {
                order_id: id.clone(),
                trader: TRADERS[rng.gen_range(0..TRADERS.len())].into(),
                symbol: SYMBOLS[rng.gen_range(0..SYMBOLS.len())].into(),
                side: if rng.gen_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                },
                quantity: rng.gen_range(1..=20),
                price: Decimal::new(rng.gen_range(95..=105), 0),
            };
            repo.execute(&id, command, CommandMeta::new())
                .await
                .unwrap();
            ids.push(id);
            continue;
        }
        let id = ids[rng.gen_range(0..ids.len())].clone();
        let order = repo.load(&id).await.unwrap().state;
        let command = if rng.gen_bool(0.15) {
            OrderCommand::Cancel {
                reason: "random".into(),
            }
        } else {
            // Mostly valid fills; sometimes too large (refused).
            let most = order.remaining().max(1) + u64::from(rng.gen_bool(0.1));
            let price = match order.side() {
                Some(Side::Sell) => order.price() + Decimal::new(rng.gen_range(0..3), 0),
                _ => order.price() - Decimal::new(rng.gen_range(0..3), 0),
            };
            fill(price, rng.gen_range(1..=most))
        };
        if let Ok(done) = repo.execute(&id, command, CommandMeta::new()).await {
            for e in &done.events {
                if let OrderEvent::Filled { fill_price, .. } = e {
                    last_price.insert(order.symbol().to_owned(), *fill_price);
                }
            }
        }
    }
}

/// The book and positions computed directly from the orders' states.
async fn recompute(
    repo: &Repository<Order, MemoryStore>,
    ids: &[String],
) -> (
    BTreeMap<String, Book>,
    BTreeMap<String, BTreeMap<String, Position>>,
) {
    let mut books: BTreeMap<String, Book> = BTreeMap::new();
    let mut positions: BTreeMap<String, BTreeMap<String, Position>> = BTreeMap::new();
    for id in ids {
        let o = repo.load(id).await.unwrap().state;
        let side = o.side().unwrap();
        if o.remaining() > 0 {
            books
                .entry(o.symbol().into())
                .or_default()
                .add_order(side, o.price(), o.remaining());
        } else {
            books.entry(o.symbol().into()).or_default();
        }
        if o.filled() > 0 {
            let p = positions
                .entry(o.trader().into())
                .or_default()
                .entry(o.symbol().into())
                .or_default();
            let (q, notional) = (i128::from(o.filled()), o.filled_notional());
            match side {
                Side::Buy => {
                    p.quantity += q;
                    p.cash -= notional;
                    p.bought += o.filled();
                }
                Side::Sell => {
                    p.quantity -= q;
                    p.cash += notional;
                    p.sold += o.filled();
                }
            }
        }
    }
    (books, positions)
}

async fn fold<P: Projection>(store: &MemoryStore, projection: &mut P) {
    project_until(
        store,
        projection,
        Until::Position(strata::Position(u64::MAX)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn projections_match_a_direct_recomputation_on_random_flows() {
    for seed in 0..12u64 {
        let store = MemoryStore::new();
        let repo = Repository::<Order, _>::new(store.clone());
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut ids, mut last) = (Vec::new(), BTreeMap::new());
        random_flow(&repo, &mut rng, 40, 300, &mut ids, &mut last).await;

        let mut book = Typed::new(OrderBookProjection::new());
        let mut positions = Typed::new(PositionsProjection::new());
        fold(&store, &mut book).await;
        fold(&store, &mut positions).await;

        let (want_books, want_positions) = recompute(&repo, &ids).await;
        assert_eq!(book.books(), &want_books, "seed {seed}: books differ");
        assert_eq!(book.orders_seen(), ids.len());
        assert_eq!(
            positions.all(),
            &want_positions,
            "seed {seed}: positions differ"
        );
        assert_eq!(
            positions.last_prices(),
            &last,
            "seed {seed}: last prices differ"
        );
        for trader in TRADERS {
            let want: Decimal = want_positions
                .get(trader)
                .map(|m| m.iter().map(|(s, p)| p.pnl(last[s])).sum())
                .unwrap_or_default();
            assert_eq!(positions.pnl(trader), want, "seed {seed}: pnl of {trader}");
        }
        // Every level that is kept holds something.
        for b in want_books.values() {
            for l in b
                .bid_depth(usize::MAX)
                .iter()
                .chain(&b.ask_depth(usize::MAX))
            {
                assert!(l.quantity > 0 && l.orders > 0);
            }
        }
    }
}

#[tokio::test]
async fn projections_ignore_events_delivered_twice() {
    let store = MemoryStore::new();
    let repo = Repository::<Order, _>::new(store.clone());
    let mut rng = StdRng::seed_from_u64(99);
    let (mut ids, mut last) = (Vec::new(), BTreeMap::new());
    random_flow(&repo, &mut rng, 20, 150, &mut ids, &mut last).await;

    let events = store
        .read_all(strata::Position(1), 10_000, &ReadFilter::all())
        .await
        .unwrap();
    let mut book = Typed::new(OrderBookProjection::new());
    let mut positions = Typed::new(PositionsProjection::new());
    for e in &events {
        book.update(e).unwrap();
        positions.update(e).unwrap();
    }
    let (once_book, once_positions) = (book.books().clone(), positions.all().clone());
    // A restarted runner hands over the second half again.
    for e in &events[events.len() / 2..] {
        book.update(e).unwrap();
        positions.update(e).unwrap();
    }
    assert_eq!(book.books(), &once_book);
    assert_eq!(positions.all(), &once_positions);
}

#[tokio::test]
async fn the_book_as_of_a_past_position_or_time_is_the_book_then() {
    let store = MemoryStore::new();
    let repo = Repository::<Order, _>::new(store.clone());
    let mut rng = StdRng::seed_from_u64(7);
    let (mut ids, mut last) = (Vec::new(), BTreeMap::new());
    random_flow(&repo, &mut rng, 30, 200, &mut ids, &mut last).await;

    let then_position = store.head_position().await.unwrap();
    let (then_books, _) = recompute(&repo, &ids).await;
    let then_time = store
        .read_all(then_position, 1, &ReadFilter::all())
        .await
        .unwrap()[0]
        .recorded_at;

    random_flow(&repo, &mut rng, 60, 200, &mut ids, &mut last).await;
    let (now_books, _) = recompute(&repo, &ids).await;
    assert_ne!(
        then_books, now_books,
        "the second flow should change the books"
    );

    for symbol in SYMBOLS {
        let want = then_books.get(symbol).cloned().unwrap_or_default();
        let by_position = order_book_as_of(&store, symbol, Until::Position(then_position))
            .await
            .unwrap();
        assert_eq!(by_position, want, "{symbol} as of position {then_position}");
        // Events recorded in the same instant as the last one before the
        // cut may follow it: the time bound includes them, so compare
        // with a recomputation up to the last event at that instant.
        let by_time = order_book_as_of(&store, symbol, Until::Time(then_time))
            .await
            .unwrap();
        let mut up_to_time = Typed::new(OrderBookProjection::new());
        let last_at_time = store
            .read_all(strata::Position(1), 100_000, &ReadFilter::all())
            .await
            .unwrap()
            .into_iter()
            .take_while(|e| e.recorded_at <= then_time)
            .last()
            .unwrap()
            .position;
        project_until(&store, &mut up_to_time, Until::Position(last_at_time))
            .await
            .unwrap();
        assert_eq!(
            by_time,
            up_to_time.book(symbol).cloned().unwrap_or_default(),
            "{symbol} as of {then_time}"
        );
        let now = order_book_as_of(&store, symbol, Until::Time(chrono::Utc::now()))
            .await
            .unwrap();
        assert_eq!(now, now_books.get(symbol).cloned().unwrap_or_default());
    }
}

#[tokio::test]
async fn best_bid_ask_and_depth() {
    let store = MemoryStore::new();
    let repo = Repository::<Order, _>::new(store.clone());
    let orders = [
        ("b1", Side::Buy, 10, 99),
        ("b2", Side::Buy, 5, 99),
        ("b3", Side::Buy, 7, 98),
        ("s1", Side::Sell, 4, 101),
        ("s2", Side::Sell, 6, 102),
    ];
    for (id, side, quantity, price) in orders {
        let command = OrderCommand::Place {
            order_id: id.into(),
            trader: "ada".into(),
            symbol: "ACME".into(),
            side,
            quantity,
            price: d(price, 0),
        };
        repo.execute(id, command, CommandMeta::new()).await.unwrap();
    }
    repo.execute("b1", fill(d(99, 0), 10), CommandMeta::new())
        .await
        .unwrap();
    repo.execute("s1", fill(d(101, 0), 1), CommandMeta::new())
        .await
        .unwrap();

    let mut book = Typed::new(OrderBookProjection::new());
    fold(&store, &mut book).await;
    let acme = book.book("ACME").unwrap();
    let bid = acme.best_bid().unwrap();
    assert_eq!((bid.price, bid.quantity, bid.orders), (d(99, 0), 5, 1));
    let ask = acme.best_ask().unwrap();
    assert_eq!((ask.price, ask.quantity, ask.orders), (d(101, 0), 3, 1));
    let bids: Vec<_> = acme
        .bid_depth(5)
        .iter()
        .map(|l| (l.price, l.quantity))
        .collect();
    assert_eq!(bids, [(d(99, 0), 5), (d(98, 0), 7)]);
    let asks: Vec<_> = acme
        .ask_depth(1)
        .iter()
        .map(|l| (l.price, l.quantity))
        .collect();
    assert_eq!(asks, [(d(101, 0), 3)]);
    assert_eq!(acme.total_quantity(), (12, 9));
}

#[tokio::test]
async fn the_book_is_served_by_a_query_model_with_read_your_writes() {
    let store = MemoryStore::new();
    let repo = Repository::<Order, _>::new(store.clone());
    let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()));
    let books = model
        .register(Typed::new(OrderBookProjection::new()))
        .unwrap();
    let top = BookQuery::Top("ACME".into());
    for (i, price) in [99, 101, 100].into_iter().enumerate() {
        let id = format!("b{i}");
        let command = OrderCommand::Place {
            order_id: id.clone(),
            trader: "ada".into(),
            symbol: "ACME".into(),
            side: Side::Buy,
            quantity: 10,
            price: d(price, 0),
        };
        let done = repo
            .execute(&id, command, CommandMeta::new())
            .await
            .unwrap();
        let (_, written) = done.positions.unwrap();
        // Read your own write: the answer includes the order just placed.
        let answer = books
            .query(&top, Consistency::AtLeast(written))
            .await
            .unwrap();
        let BookAnswer::Top(Some(bid), None) = answer else {
            panic!("no bid after placing {id}: {answer:?}");
        };
        let best_so_far = [99, 101, 101][i];
        assert_eq!(bid.price, d(best_so_far, 0), "after {id}");
    }
    let depth = books
        .query(
            &BookQuery::Depth {
                symbol: "ACME".into(),
                levels: 2,
            },
            Consistency::Latest,
        )
        .await
        .unwrap();
    let BookAnswer::Depth(bids, asks) = depth else {
        panic!("not a depth answer");
    };
    assert_eq!(
        bids.iter().map(|l| l.price).collect::<Vec<_>>(),
        [d(101, 0), d(100, 0)]
    );
    assert!(asks.is_empty());
    model.shutdown().await.unwrap();
}
