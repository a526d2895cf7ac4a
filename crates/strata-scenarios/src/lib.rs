//! Application scenarios as worked examples of the
//! framework: each one is an aggregate with its rules, projections that
//! answer its questions, and a demo driver (`trading::demo`, `game::demo`,
//! `audit::demo`) that generates a realistic load on any store, checks the
//! read side and reports; `strata demo trading|game|audit` and the examples
//! (`cargo run -p strata-scenarios --example trading|game|audit`) run it.
//!
//! - [`trading`]: orders with partial fills and cancels, an order book
//!   per symbol, positions and PnL per trader, the book as of a past time.
//! - [`game`]: a game's state machine, replay to any tick, an ASCII
//!   board, many games processed in parallel with per-game order kept.
//! - [`audit`]: an audit trail with secondary indexes by user,
//!   resource and time, and a SHA-256 hash chain that makes tampering
//!   evident.

pub mod audit;
pub mod demo;
pub mod game;
pub mod trading;

use chrono::{DateTime, Utc};
use strata_core::{EventStore, Position};

use strata::projection::{Projection, ProjectionError};

/// Most events one page of [`project_until`] asks the store for.
pub const HISTORY_PAGE_EVENTS: usize = 4_096;

/// How far back into `$all` [`project_until`] goes. Both bounds are inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Every event at or before this position.
    Position(Position),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

/// Runs `projection` over the events of `$all` that pass its filter, from
/// the start up to `until`, and returns the position of the last event it
/// folded (`Position::START` if none) — a rebuild as of a point for a read
/// model instead of one aggregate.
///
/// `recorded_at` never decreases along `$all` (a store guarantee),
/// so the read stops at the first event past `until`. The cost is one read
/// of every matching event up to `until`, not of the whole log. The
/// projection is [reset](Projection::reset) first.
pub async fn project_until<S, P>(
    store: &S,
    projection: &mut P,
    until: Until,
) -> Result<Position, ProjectionError>
where
    S: EventStore + ?Sized,
    P: Projection,
{
    projection.reset();
    let filter = projection.filter();
    let page = HISTORY_PAGE_EVENTS
        .min(store.limits().max_read_count)
        .max(1);
    let mut from = Position::START.next();
    let mut last = Position::START;
    loop {
        let events = store.read_all(from, page, &filter).await?;
        let read = events.len();
        for e in &events {
            let past = match until {
                Until::Position(p) => e.position > p,
                Until::Time(t) => e.recorded_at > t,
            };
            if past {
                return Ok(last);
            }
            projection
                .update(e)
                .map_err(|err| ProjectionError::at(projection.name(), e, err))?;
            last = e.position;
        }
        match events.last() {
            Some(e) if read == page => from = e.position.next(),
            _ => return Ok(last),
        }
    }
}
