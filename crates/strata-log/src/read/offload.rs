//! Reads that may take long run on tokio's blocking pool, not on an async
//! worker: a scan of the log (or a large page) must not stop the runtime
//! from answering other requests, and a caller's timeout around the read
//! must still fire.

use std::sync::Arc;

use async_trait::async_trait;
use strata_core::subscription::SubscriptionSource;
use strata_core::{
    Direction, Error, Position, ReadFilter, RecordedEvent, Result, StreamId, Version,
};
use tokio::sync::watch;

use crate::state::OpenStore;

/// Reads of at most this many events that cannot turn into a scan (one
/// stream by version, or an unfiltered page of `$all`) run in place: a
/// hand-off to the blocking pool would cost more than the read.
pub(crate) const INLINE_READ_MAX_EVENTS: usize = 64;

/// Runs `read` on the blocking pool and waits for it without holding a
/// worker. A panic in the read is resumed here.
async fn off_runtime<T, F>(read: F) -> Result<T>
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

/// `read_stream`, off the async workers unless it is small.
pub(crate) async fn read_stream(
    store: &Arc<OpenStore>,
    stream: &StreamId,
    from: Version,
    max_count: usize,
    direction: Direction,
) -> Result<Vec<RecordedEvent>> {
    if max_count <= INLINE_READ_MAX_EVENTS {
        return store.read_stream(stream, from, max_count, direction);
    }
    let (store, stream) = (Arc::clone(store), stream.clone());
    off_runtime(move || store.read_stream(&stream, from, max_count, direction)).await
}

/// `read_all`, off the async workers unless it is a small unfiltered page.
pub(crate) async fn read_all(
    store: &Arc<OpenStore>,
    from: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> Result<Vec<RecordedEvent>> {
    if max_count <= INLINE_READ_MAX_EVENTS && filter.is_all() {
        return store.read_all(from, max_count, filter);
    }
    let (store, filter) = (Arc::clone(store), filter.clone());
    off_runtime(move || store.read_all(from, max_count, &filter)).await
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
