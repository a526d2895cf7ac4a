//! The read, decide, append-if loop.

use std::sync::atomic::{AtomicU64, Ordering};

use strata_core::dcb::{default_stream, parts_by_stream, AppendCondition, QUERY_SCAN_PAGE};
use strata_core::{ContentType, Error, Metadata, NewEvent, Position};

use super::{Decision, DecisionStore};
use crate::event::{self, DomainEvent, DEFAULT_SCHEMA_VERSION, SCHEMA_METADATA_KEY};
use crate::retry::RetryPolicy;

/// The most events one decision's boundary may hold: a query that selects
/// more is refused ([`DecisionError::BoundaryTooLarge`]) rather than read
/// into memory; narrow the query (more tags per item).
pub const MAX_BOUNDARY_EVENTS: usize = 100_000;

/// Why a decision did not commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError<E> {
    /// The rule refused the command; nothing was written.
    #[error("command rejected: {0}")]
    Rejected(E),
    /// Every attempt the retry policy allows found a new event in the
    /// boundary between its read and its append.
    #[error(
        "the boundary kept changing: the event at position {position} arrived after the read, \
         after {attempts} attempt(s); retry the command later"
    )]
    Conflict {
        /// The first conflicting event of the last attempt.
        position: Position,
        /// Attempts made.
        attempts: u32,
    },
    /// The query selects more than [`MAX_BOUNDARY_EVENTS`] events.
    #[error("the decision's query selects more than {limit} events; narrow it")]
    BoundaryTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// An event could not be turned into JSON or back.
    #[error("cannot (de)serialize {context}: {source}")]
    Serialization {
        /// What was being (de)serialized.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// What a committed (or empty) decision did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionOutcome {
    /// Events written (0 when the decision had nothing to record).
    pub events: usize,
    /// The first and last positions written.
    pub positions: Option<(Position, Position)>,
    /// Attempts made (conflicts + 1).
    pub attempts: u32,
}

/// Runs decisions against a store: any [`strata_core::EventStore`], or
/// another [`DecisionStore`] (a remote server's).
pub struct DecisionRunner<S> {
    store: S,
    retry: RetryPolicy,
    conflicts: AtomicU64,
}

impl<S: DecisionStore> DecisionRunner<S> {
    /// A runner with the default [`RetryPolicy`].
    pub fn new(store: S) -> Self {
        Self::with_retry(store, RetryPolicy::default())
    }

    /// A runner with its own retry policy.
    pub fn with_retry(store: S, retry: RetryPolicy) -> Self {
        DecisionRunner {
            store,
            retry,
            conflicts: AtomicU64::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Conflicts met so far (each one retried or returned).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Reads the boundary of `command` up to the head, decides, and
    /// appends with the condition that nothing in the boundary changed;
    /// on a conflict, reads and decides again as the retry policy allows.
    pub async fn execute<D: Decision>(
        &self,
        command: &D::Command,
    ) -> Result<DecisionOutcome, DecisionError<D::Error>> {
        let query = D::query(command);
        let attempts = self.retry.attempts();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (state, head) = self.fold::<D>(command, &query).await?;
            let events = D::decide(&state, command).map_err(DecisionError::Rejected)?;
            if events.is_empty() {
                return Ok(DecisionOutcome {
                    events: 0,
                    positions: None,
                    attempts: attempt,
                });
            }
            let parts = parts_by_stream(encode::<D, _>(&events)?);
            let condition = AppendCondition::new(query.clone(), Some(head));
            match self.store.append_decided(parts, &condition).await {
                Ok(results) => {
                    let first = results.iter().map(|r| r.first_position).min();
                    let last = results.iter().map(|r| r.last_position).max();
                    return Ok(DecisionOutcome {
                        events: events.len(),
                        positions: first.zip(last),
                        attempts: attempt,
                    });
                }
                Err(Error::ConditionFailed { position }) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    if attempt >= attempts {
                        return Err(DecisionError::Conflict {
                            position,
                            attempts: attempt,
                        });
                    }
                    let wait = self.retry.delay_before_retry(attempt);
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The state folded from the boundary's events up to the head, and the
    /// head.
    async fn fold<D: Decision>(
        &self,
        command: &D::Command,
        query: &strata_core::dcb::Query,
    ) -> Result<(D::State, Position), DecisionError<D::Error>> {
        let mut head = None;
        let mut state = D::initial(command);
        let mut after = Position::START;
        let mut seen = 0usize;
        'pages: loop {
            let (page, page_head) = self
                .store
                .read_boundary(query, after, QUERY_SCAN_PAGE)
                .await?;
            // The first page's head is the decision's: later pages only
            // complete the boundary up to it.
            let head = *head.get_or_insert(page_head);
            let full = page.len() == QUERY_SCAN_PAGE;
            for e in page {
                if e.position > head {
                    break 'pages;
                }
                seen += 1;
                if seen > MAX_BOUNDARY_EVENTS {
                    return Err(DecisionError::BoundaryTooLarge {
                        limit: MAX_BOUNDARY_EVENTS,
                    });
                }
                let decoded: D::Event =
                    event::decode(&e.event_type, &e.data).map_err(|source| {
                        DecisionError::Serialization {
                            context: format!("event {} (`{}`)", e.position.0, e.event_type),
                            source,
                        }
                    })?;
                D::evolve(&mut state, &decoded);
                after = e.position;
            }
            if !full {
                break;
            }
        }
        Ok((state, head.unwrap_or(Position::START)))
    }
}

/// The events to append, each bound for its default stream.
fn encode<D: Decision, X>(
    events: &[D::Event],
) -> Result<Vec<(strata_core::StreamId, NewEvent)>, DecisionError<X>> {
    events
        .iter()
        .map(|e| {
            let encoded = event::encode(e).map_err(|source| DecisionError::Serialization {
                context: format!("a `{}` event", e.event_type()),
                source,
            })?;
            let tags = D::tags(e);
            let stream = default_stream(&tags)?;
            let mut metadata = Metadata::default();
            if encoded.schema_version != DEFAULT_SCHEMA_VERSION {
                metadata.extra.insert(
                    SCHEMA_METADATA_KEY.to_owned(),
                    encoded.schema_version.to_string(),
                );
            }
            let new = NewEvent::new(encoded.event_type, encoded.data, ContentType::Json)
                .with_metadata(metadata)
                .with_tags(tags);
            Ok((stream, new))
        })
        .collect()
}
