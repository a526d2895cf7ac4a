//! Parked events: events a handler kept failing on, set aside with their
//! error so that they block nobody, and kept to be replayed once fixed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use strata_core::{async_trait, Error, EventId, Position, RecordedEvent};

/// Default for [`MemoryParkedStore`]'s capacity.
pub const DEFAULT_MAX_PARKED_EVENTS: usize = 10_000;

/// One event a handler failed on, after its last retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedEvent {
    /// The processor it belongs to.
    pub processor: String,
    /// The handler (or projection) that failed.
    pub handler: String,
    /// The event, as recorded.
    pub event: RecordedEvent,
    /// The last error, as text.
    pub error: String,
    /// How many times the handler was tried on it, replays included.
    pub attempts: u32,
    /// When it was (last) parked.
    pub parked_at: DateTime<Utc>,
}

impl ParkedEvent {
    /// The event's position in `$all`.
    pub fn position(&self) -> Position {
        self.event.position
    }
}

/// Where a processor keeps its parked events. Keyed by processor, handler
/// and event id: parking the same pair again replaces the entry.
#[async_trait]
pub trait ParkedStore: Send + Sync + 'static {
    /// Records (or replaces) a parked event. Fails when the store is full,
    /// which stops the processor rather than dropping events.
    async fn park(&self, parked: ParkedEvent) -> Result<(), Error>;

    /// The processor's parked events in position order, at most `limit`.
    async fn list(&self, processor: &str, limit: usize) -> Result<Vec<ParkedEvent>, Error>;

    /// Removes one; `false` if it was not there.
    async fn unpark(
        &self,
        processor: &str,
        handler: &str,
        event_id: EventId,
    ) -> Result<bool, Error>;
}

type Key = (String, Position, String, EventId);

/// Parked events in memory, at most a fixed number.
#[derive(Debug)]
pub struct MemoryParkedStore {
    max_parked_events: usize,
    inner: Mutex<BTreeMap<Key, ParkedEvent>>,
}

impl Default for MemoryParkedStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryParkedStore {
    /// An empty store holding at most [`DEFAULT_MAX_PARKED_EVENTS`].
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_MAX_PARKED_EVENTS)
    }

    /// An empty store holding at most `max_parked_events`.
    pub fn with_capacity(max_parked_events: usize) -> Self {
        MemoryParkedStore {
            max_parked_events,
            inner: Mutex::new(BTreeMap::new()),
        }
    }

    /// How many events are parked, for every processor.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn key(processor: &str, position: Position, handler: &str, id: EventId) -> Key {
    (processor.to_owned(), position, handler.to_owned(), id)
}

#[async_trait]
impl ParkedStore for MemoryParkedStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), Error> {
        let k = key(
            &parked.processor,
            parked.event.position,
            &parked.handler,
            parked.event.id,
        );
        let mut inner = self.inner.lock();
        if !inner.contains_key(&k) && inner.len() >= self.max_parked_events {
            return Err(Error::Backend(format!(
                "cannot park the event at position {} for handler `{}` of processor `{}`: \
                 {} events are parked already, the limit; fix the handler and replay them",
                parked.event.position,
                parked.handler,
                parked.processor,
                inner.len()
            )));
        }
        inner.insert(k, parked);
        Ok(())
    }

    async fn list(&self, processor: &str, limit: usize) -> Result<Vec<ParkedEvent>, Error> {
        let inner = self.inner.lock();
        Ok(inner
            .iter()
            .filter(|(k, _)| k.0 == processor)
            .map(|(_, v)| v.clone())
            .take(limit)
            .collect())
    }

    async fn unpark(
        &self,
        processor: &str,
        handler: &str,
        event_id: EventId,
    ) -> Result<bool, Error> {
        let mut inner = self.inner.lock();
        let found = inner
            .keys()
            .find(|k| k.0 == processor && k.2 == handler && k.3 == event_id)
            .cloned();
        Ok(match found {
            Some(k) => inner.remove(&k).is_some(),
            None => false,
        })
    }
}
