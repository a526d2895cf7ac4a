//! How a consumer (projection runner, event processor) reads `$all`: big
//! `read_all` pages while it catches up, then a live subscription whose
//! buffered events are taken in batches.
//!
//! A feed tracks the position up to which every event has been
//! *considered* (delivered, or skipped by the filter). That, not the
//! position of the last delivered event, is what a consumer reports and
//! checkpoints: a consumer whose filter hides the last events of `$all` has
//! still caught up with them, and a query waiting for such a position must
//! not wait for ever.
//!
//! A feed may also follow a DCB [`Query`] (`docs/adr/0022-dynamic-consistency-boundaries.md`):
//! it then catches up with `read_query` pages (the store's tag and type
//! indexes do the matching) and follows a subscription
//! [`with_query`](Subscription::with_query). The filter still applies, to
//! the matching events. A `read_query` page that comes back short has
//! considered everything up to the head read before it; a full one,
//! everything up to its last event — so the considered position moves past
//! events the query skips exactly as past those the filter skips.
//!
//! [`Feed::next`] is cancel-safe: it only changes its state after its last
//! await, so a consumer may race it against other work in `tokio::select!`.
//! The live part relies on `strata_core::Subscription::next` being
//! cancel-safe too (its state also only changes between awaits).

use chrono::{DateTime, Utc};
use futures::FutureExt;
use strata_core::dcb::Query;
use strata_core::{
    Error, EventStore, Position, ReadFilter, RecordedEvent, SubscribeFrom, Subscription,
    SubscriptionMessage,
};

/// What one call to [`Feed::next`] returns.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Events in position order (possibly none).
    pub(crate) events: Vec<RecordedEvent>,
    /// Every position `<=` this has been considered once `events` are processed.
    pub(crate) considered: Position,
    /// Whether the feed had reached the store's head when it read this batch.
    pub(crate) caught_up: bool,
}

impl Batch {
    /// When the last event of the batch was recorded.
    pub(crate) fn last_recorded_at(&self) -> Option<DateTime<Utc>> {
        self.events.last().map(|e| e.recorded_at)
    }
}

pub(crate) struct Feed<S> {
    store: S,
    filter: ReadFilter,
    /// When set, only events matching it are read ([`strata_core::dcb`]).
    query: Option<Query>,
    page_events: usize,
    live_batch_events: usize,
    considered: Position,
    live: Option<Subscription>,
}

impl<S: EventStore> Feed<S> {
    /// A feed that starts after `from` (exclusive). Pages are clamped to the
    /// store's `max_read_count`.
    pub(crate) fn new(
        store: S,
        filter: ReadFilter,
        page_events: usize,
        live_batch_events: usize,
        from: Position,
    ) -> Self {
        let page_events = page_events.min(store.limits().max_read_count).max(1);
        Feed {
            store,
            filter,
            query: None,
            page_events,
            live_batch_events: live_batch_events.max(1),
            considered: from,
            live: None,
        }
    }

    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// Changes the page and live batch sizes.
    pub(crate) fn set_sizes(&mut self, page_events: usize, live_batch_events: usize) {
        self.page_events = page_events.min(self.store.limits().max_read_count).max(1);
        self.live_batch_events = live_batch_events.max(1);
        self.live = self
            .live
            .take()
            .map(|sub| sub.with_page_size(self.live_batch_events));
    }

    /// Reads through `filter` from the next read on.
    pub(crate) fn set_filter(&mut self, filter: ReadFilter) {
        self.filter = filter;
        self.live = None;
    }

    /// Reads only events matching `query` (every event through the filter,
    /// with `None`) from the next read on.
    pub(crate) fn set_query(&mut self, query: Option<Query>) {
        self.query = query;
        self.live = None;
    }

    /// Starts over after `from`, catching up with pages again.
    pub(crate) fn restart(&mut self, from: Position) {
        self.live = None;
        self.considered = from;
    }

    /// Whether the feed has caught up and follows the store live.
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Every position `<=` this has been considered and handed out.
    pub(crate) fn considered(&self) -> Position {
        match &self.live {
            Some(sub) => self.considered.max(sub.last_considered()),
            None => self.considered,
        }
    }

    /// The next batch; `Ok(None)` once the store has closed. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Result<Option<Batch>, Error> {
        if self.live.is_some() {
            return self.next_live().await;
        }
        // The head is read first: every event at or below it is visible to
        // the read that follows, so a short page means "caught up to head".
        let head = self.store.head_position().await?;
        let page = match &self.query {
            None => {
                self.store
                    .read_all(self.considered.next(), self.page_events, &self.filter)
                    .await?
            }
            Some(q) => {
                self.store
                    .read_query(q, self.considered, self.page_events)
                    .await?
            }
        };
        let short = page.len() < self.page_events;
        let mut previous = self.considered;
        for e in &page {
            if e.position <= previous {
                return Err(Error::Corrupt {
                    location: "$all".to_owned(),
                    reason: format!(
                        "a read from position {} returned position {} after {}",
                        self.considered.next(),
                        e.position,
                        previous
                    ),
                });
            }
            previous = e.position;
        }
        let considered = if short { previous.max(head) } else { previous };
        let live = if short {
            let sub = self
                .store
                .subscribe(SubscribeFrom::After(considered), self.filter.clone())
                .await?
                .with_page_size(self.live_batch_events);
            Some(match &self.query {
                Some(q) => sub.with_query(q.clone()),
                None => sub,
            })
        } else {
            None
        };
        // A query read is not filtered by the store: the filter applies here.
        let page = match &self.query {
            Some(_) if !self.filter.is_all() => page
                .into_iter()
                .filter(|e| self.filter.matches(e))
                .collect(),
            _ => page,
        };
        // No await below: the feed's state changes only once the batch is certain.
        self.considered = considered;
        self.live = live;
        Ok(Some(Batch {
            events: page,
            considered,
            caught_up: short,
        }))
    }

    async fn next_live(&mut self) -> Result<Option<Batch>, Error> {
        let Some(sub) = self.live.as_mut() else {
            return Ok(None);
        };
        let mut events = Vec::new();
        match sub.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok(SubscriptionMessage::Event(e))) => events.push(e),
            Some(Ok(SubscriptionMessage::CaughtUp(_))) => {}
        }
        // Take whatever else is ready without waiting, up to a batch.
        while events.len() < self.live_batch_events {
            match sub.next().now_or_never() {
                Some(Some(Ok(SubscriptionMessage::Event(e)))) => events.push(e),
                Some(Some(Ok(SubscriptionMessage::CaughtUp(_)))) => {}
                Some(Some(Err(e))) => {
                    // The subscription retries on the next poll.
                    tracing::warn!(error = %e, "reading live events failed; will retry");
                    break;
                }
                Some(None) | None => break,
            }
        }
        let considered = self
            .considered
            .max(sub.last_considered())
            .max(events.last().map_or(Position::START, |e| e.position));
        self.considered = considered;
        Ok(Some(Batch {
            events,
            considered,
            caught_up: true,
        }))
    }
}
