//! Reads never hold an async worker for long. A read whose work is bounded
//! by the events it returns (a stream by version, an unfiltered page of
//! `$all` in a store where no stream has metadata) runs in place, in pieces
//! of [`READ_PIECE_EVENTS`] with a yield to the runtime between them; a
//! filtered read, or a page of `$all` that retention may cut, which may pass
//! over any number of events to find a few, runs on tokio's blocking pool.
//! Either way other requests keep being answered and a caller's timeout
//! fires. A query read runs in place when the tag index shows it has at most
//! [`IN_PLACE_QUERY_CANDIDATES`] candidates to look at, else on the pool.
//!
//! Why not the blocking pool for everything: a hand-off per read made a
//! 1,000-event stream read ~60% slower and a 10,000-event page ~8% slower
//! (events built on one thread and freed on another), and both kinds of
//! read are bounded anyway.

use std::sync::Arc;

use async_trait::async_trait;
use strata_core::subscription::SubscriptionSource;
use strata_core::{
    Direction, Error, Position, ReadFilter, RecordedEvent, Result, StreamId, Version,
};
use tokio::sync::watch;

use crate::state::OpenStore;

/// Events a read does in place before it yields to the runtime: a few
/// milliseconds of work for small events. Each piece after the first
/// starts a new scan (a chunk read), so pieces are large: with 4,096, a
/// 10,000-event page of `$all` was ~20% slower.
pub(crate) const READ_PIECE_EVENTS: usize = 16_384;

/// The most candidate events (the tag index's posting lists an item reads
/// from) a query read may have to run in place rather than on the blocking
/// pool: bounded work of well under a millisecond.
pub(crate) const IN_PLACE_QUERY_CANDIDATES: usize = 1_024;

/// Runs `read` on the blocking pool and waits for it without holding a
/// worker. A panic in the read is resumed here.
pub(crate) async fn off_runtime<T, F>(read: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Backend(format!("a read task was cancelled: {e}"))),
    }
}

/// `read_stream`, in place, in pieces of [`READ_PIECE_EVENTS`] with a
/// yield between them.
pub(crate) async fn read_stream(
    store: &Arc<OpenStore>,
    stream: &StreamId,
    from: Version,
    max_count: usize,
    direction: Direction,
) -> Result<Vec<RecordedEvent>> {
    let plan = store.plan_stream_read(stream, from, max_count, direction)?;
    let mut out = Vec::with_capacity(plan.positions.len());
    let mut pieces = plan.positions.chunks(READ_PIECE_EVENTS).peekable();
    while let Some(piece) = pieces.next() {
        plan.read(piece, &mut out)?;
        if pieces.peek().is_some() {
            tokio::task::yield_now().await;
        }
    }
    Ok(plan.finish(out))
}

/// `read_all`: unfiltered in place, in pieces of [`READ_PIECE_EVENTS`]
/// with a yield between them; filtered, or where retention may cut events,
/// on the blocking pool.
pub(crate) async fn read_all(
    store: &Arc<OpenStore>,
    from: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> Result<Vec<RecordedEvent>> {
    read_all_in_pieces(store, from, max_count, filter, Way::Forward).await
}

/// `read_all_backward`, as [`read_all`] runs (each piece reads the windows
/// of the segments its events lie in).
pub(crate) async fn read_all_backward(
    store: &Arc<OpenStore>,
    before: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> Result<Vec<RecordedEvent>> {
    read_all_in_pieces(store, before, max_count, filter, Way::Backward).await
}

/// Which way a read of `$all` goes.
#[derive(Clone, Copy)]
enum Way {
    /// From a position upwards.
    Forward,
    /// Below a position, downwards.
    Backward,
}

impl Way {
    fn read(
        self,
        store: &OpenStore,
        at: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        match self {
            Way::Forward => store.read_all(at, max_count, filter),
            Way::Backward => store.read_all_backward(at, max_count, filter),
        }
    }

    /// Where the next piece starts, after a piece that ended at `last`.
    fn next(self, last: Position) -> Position {
        match self {
            Way::Forward => Position(last.0 + 1),
            Way::Backward => last,
        }
    }
}

async fn read_all_in_pieces(
    store: &Arc<OpenStore>,
    at: Position,
    max_count: usize,
    filter: &ReadFilter,
    way: Way,
) -> Result<Vec<RecordedEvent>> {
    if !filter.is_all() || store.retention_may_cut() {
        let (store, filter) = (Arc::clone(store), filter.clone());
        return off_runtime(move || way.read(&store, at, max_count, &filter)).await;
    }
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut next = at;
    loop {
        let wanted = (max_count - out.len()).min(READ_PIECE_EVENTS);
        let piece = way.read(store, next, wanted, filter)?;
        // A short piece: the log ends (or begins) there.
        let short = piece.len() < wanted;
        if out.is_empty() {
            out = piece;
        } else {
            out.extend(piece);
        }
        match out.last() {
            Some(last) if !short && out.len() < max_count => next = way.next(last.position),
            _ => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(out)
}

/// What subscriptions read pages from: the store, with each page read off
/// the async workers like any other `read_all`.
pub(crate) struct PageSource(pub Arc<OpenStore>);

#[async_trait]
impl SubscriptionSource for PageSource {
    async fn read_page(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        read_all(&self.0, from, max_count, filter).await
    }

    fn head(&self) -> watch::Receiver<Position> {
        self.0.head_feed()
    }
}
