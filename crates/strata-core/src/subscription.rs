//! Catch-up-then-live subscriptions with bounded memory.
//!
//! A [`Subscription`] never holds more than one page of events. It reads
//! `$all` from the store page by page; when a read comes back short it has
//! caught up, says so once, and then sleeps until the store's head moves. A
//! subscriber that falls behind simply reads more pages later: the store never
//! buffers on its behalf. Live delivery and catch-up are the same code path,
//! which is why the hand-off between them cannot lose or repeat an event.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::dcb::Query;
use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::filter::ReadFilter;
use crate::version::Position;

/// How many events a subscription reads per page, at most.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 512;

/// About how many bytes of events a subscription reads per page: the page
/// size follows the sizes of the events read so far, so a subscription over
/// large events holds about this much, not 512 large events. A server holds
/// one page per subscriber, so this is what a hundred stalled subscribers
/// cost it, a hundred times over.
pub const SUBSCRIPTION_PAGE_BYTES: usize = 1024 * 1024;

/// Events in a subscription's first page, before it knows their sizes: one,
/// since one event may already be as large as a whole page. The second page
/// is sized from it.
const FIRST_PAGE_EVENTS: usize = 1;

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// From the first event.
    Start,
    /// After this position (exclusive): resume with the last position seen.
    After(Position),
    /// From the current end: only events committed after subscribing.
    End,
}

/// What a subscription yields.
// Events are the common case and are moved, never copied around in bulk, so
// boxing them to shrink the rare `CaughtUp` variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionMessage {
    /// An event, in position order.
    Event(RecordedEvent),
    /// Sent once: every event committed up to this position (that passes the
    /// filter) has been delivered. Live events follow.
    CaughtUp(Position),
}

/// The part of a store a subscription reads from.
///
/// `head` must only ever publish a position below which every event is
/// committed and visible to `read_page`; that is what makes "no skipped
/// events" hold for subscribers.
#[async_trait]
pub trait SubscriptionSource: Send + Sync + 'static {
    /// Reads events with positions `>= from` that pass `filter`.
    async fn read_page(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>>;

    /// A receiver of the committed head position. It closes when the store closes.
    fn head(&self) -> watch::Receiver<Position>;
}

/// A live, ordered feed of `$all`. Call [`Subscription::next`] in a loop.
pub struct Subscription {
    source: Arc<dyn SubscriptionSource>,
    filter: ReadFilter,
    head: watch::Receiver<Position>,
    /// Every position `< cursor` has been considered.
    cursor: Position,
    buffer: VecDeque<RecordedEvent>,
    /// Set when a short page was read; cleared once `CaughtUp` is sent.
    caught_up_at: Option<Position>,
    caught_up_sent: bool,
    page_size: usize,
    /// Events the next page asks for: `page_size` or fewer, from the sizes
    /// of the events read so far.
    next_page: usize,
    /// When set, only events matching it are delivered ([`crate::dcb`]).
    query: Option<Query>,
}

impl Subscription {
    /// Starts a subscription over `source`.
    pub fn new(
        source: Arc<dyn SubscriptionSource>,
        from: SubscribeFrom,
        filter: ReadFilter,
    ) -> Self {
        let head = source.head();
        let cursor = match from {
            SubscribeFrom::Start => Position::START.next(),
            SubscribeFrom::After(p) => p.next(),
            SubscribeFrom::End => head.borrow().next(),
        };
        Subscription {
            source,
            filter,
            head,
            cursor,
            buffer: VecDeque::new(),
            caught_up_at: None,
            caught_up_sent: false,
            page_size: SUBSCRIPTION_PAGE_EVENTS,
            next_page: FIRST_PAGE_EVENTS,
            query: None,
        }
    }

    /// Delivers only the events matching `query` (besides the store's
    /// filter); the others are skipped as the filter's are.
    pub fn with_query(mut self, query: Query) -> Self {
        self.query = Some(query);
        self
    }

    /// Sets how many events are read per page (at least 1).
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self.next_page = self.next_page.min(self.page_size);
        self
    }

    /// The next message; `None` once the store has closed. An `Err` is
    /// returned once and the subscription may be polled again to retry.
    pub async fn next(&mut self) -> Option<Result<SubscriptionMessage>> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Some(Ok(SubscriptionMessage::Event(e)));
            }
            if let Some(at) = self.caught_up_at.take() {
                if !self.caught_up_sent {
                    self.caught_up_sent = true;
                    return Some(Ok(SubscriptionMessage::CaughtUp(at)));
                }
            }
            // Snapshot the head before reading: everything up to it is visible
            // to the read that follows.
            let head = *self.head.borrow_and_update();
            if self.cursor > head {
                if !self.caught_up_sent {
                    self.caught_up_at = Some(Position(self.cursor.0.saturating_sub(1)));
                    continue;
                }
                if self.head.changed().await.is_err() {
                    // The store closed; deliver whatever it committed last.
                    let last = *self.head.borrow();
                    if self.cursor > last {
                        return None;
                    }
                }
                continue;
            }
            let asked = self.next_page;
            let page = match self
                .source
                .read_page(self.cursor, asked, &self.filter)
                .await
            {
                Ok(page) => page,
                Err(Error::Closed) => return None,
                Err(e) => return Some(Err(e)),
            };
            let short = page.len() < asked;
            self.next_page = next_page_size(&page, asked, self.page_size);
            if let Some(last) = page.last() {
                self.cursor = last.position.next();
            }
            if short {
                // Nothing more up to `head` (and maybe beyond): skip the gap
                // the filter hid, and report catch-up once.
                if self.cursor <= head {
                    self.cursor = head.next();
                }
                if !self.caught_up_sent {
                    self.caught_up_at = Some(Position(self.cursor.0.saturating_sub(1)));
                }
            }
            match &self.query {
                Some(q) => self
                    .buffer
                    .extend(page.into_iter().filter(|e| q.matches(e))),
                None => self.buffer.extend(page),
            }
        }
    }

    /// The position just before the next one this subscription will consider.
    pub fn last_considered(&self) -> Position {
        match self.buffer.front() {
            Some(e) => Position(e.position.0.saturating_sub(1)),
            None => Position(self.cursor.0.saturating_sub(1)),
        }
    }

    /// Turns the subscription into a `futures::Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<SubscriptionMessage>> + Send {
        futures::stream::unfold(self, |mut s| async move { s.next().await.map(|m| (m, s)) })
    }
}

/// The next page's size: as many events as fit in [`SUBSCRIPTION_PAGE_BYTES`]
/// at the average size of `page`'s events, between 1 and `most`. An empty
/// page says nothing about sizes: the size it was read with stays.
fn next_page_size(page: &[RecordedEvent], asked: usize, most: usize) -> usize {
    if page.is_empty() {
        return asked;
    }
    let bytes: usize = page.iter().map(RecordedEvent::size_bytes).sum();
    let average = (bytes / page.len()).max(1);
    (SUBSCRIPTION_PAGE_BYTES / average).clamp(1, most)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Bytes, ContentType, EventId, Metadata, StreamId};

    /// `n` events of `size` bytes each, recording the page sizes asked.
    struct Sized {
        n: u64,
        size: usize,
        asked: parking_lot::Mutex<Vec<usize>>,
        head: watch::Sender<Position>,
    }

    #[async_trait]
    impl SubscriptionSource for Sized {
        async fn read_page(
            &self,
            from: Position,
            max_count: usize,
            _filter: &ReadFilter,
        ) -> Result<Vec<RecordedEvent>> {
            self.asked.lock().push(max_count);
            let end = self.n.min(from.0 + max_count as u64);
            Ok((from.0..end)
                .map(|i| RecordedEvent {
                    id: EventId::new(),
                    stream_id: StreamId::new("s").unwrap(),
                    version: i + 1,
                    position: Position(i),
                    event_type: "T".into(),
                    data: Bytes::from(vec![0u8; self.size]),
                    content_type: ContentType::Binary,
                    metadata: Metadata::default(),
                    recorded_at: crate::clock::from_micros(0),
                    tags: Vec::new(),
                })
                .collect())
        }

        fn head(&self) -> watch::Receiver<Position> {
            self.head.subscribe()
        }
    }

    async fn asked_pages(n: u64, size: usize) -> Vec<usize> {
        let source = Arc::new(Sized {
            n,
            size,
            asked: parking_lot::Mutex::new(Vec::new()),
            head: watch::channel(Position(n - 1)).0,
        });
        let mut sub = Subscription::new(source.clone(), SubscribeFrom::Start, ReadFilter::all());
        // Read until caught up: every page of the catch-up was asked for.
        loop {
            match sub.next().await {
                Some(Ok(SubscriptionMessage::CaughtUp(_))) => break,
                Some(Ok(SubscriptionMessage::Event(_))) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let asked = source.asked.lock().clone();
        asked
    }

    #[tokio::test]
    async fn pages_of_large_events_stay_near_the_byte_budget() {
        let asked = asked_pages(40, 1024 * 1024).await;
        assert_eq!(asked[0], FIRST_PAGE_EVENTS);
        assert!(asked[1..].iter().all(|&n| n == 1), "{asked:?}");
    }

    #[tokio::test]
    async fn pages_of_small_events_grow_to_the_most() {
        let asked = asked_pages(5_000, 100).await;
        assert_eq!(asked[0], FIRST_PAGE_EVENTS);
        assert_eq!(asked[1], SUBSCRIPTION_PAGE_EVENTS);
    }

    #[tokio::test]
    async fn a_query_skips_events_it_does_not_match() {
        use crate::dcb::{QueryItem, Tag};
        use crate::{EventStore, ExpectedVersion, MemoryStore, NewEvent};
        let store = MemoryStore::new();
        let tagged = |t: &str| {
            NewEvent::json("A", &serde_json::json!({}))
                .unwrap()
                .with_tags([Tag::new(t).unwrap()])
        };
        let s = StreamId::new("s-1").unwrap();
        let events = vec![tagged("k:1"), tagged("k:2"), tagged("k:1")];
        store
            .append(&s, ExpectedVersion::Any, events)
            .await
            .unwrap();
        let q = Query::new(vec![QueryItem::new(["A"], [Tag::new("k:1").unwrap()])]).unwrap();
        let mut sub = store
            .subscribe(SubscribeFrom::Start, ReadFilter::all())
            .await
            .unwrap()
            .with_query(q);
        let mut seen = Vec::new();
        while let Some(Ok(m)) = sub.next().await {
            match m {
                SubscriptionMessage::Event(e) => seen.push(e.position.0),
                SubscriptionMessage::CaughtUp(_) => break,
            }
        }
        assert_eq!(seen, vec![1, 3]);
    }
}
