//! Measuring consistency.
//!
//! - **Eventual consistency** is measurable convergence: [`lag_of`] says
//!   how far a projection (or processor) trails the store's head, in
//!   positions and in time.
//! - **Causal consistency**, `causes(e₁, e₂) ⟹ order(e₁, e₂)`: the
//!   [`CausalChecker`] walks `$all` and reports every event whose
//!   `causation_id` names an *event* that is missing or is not positioned
//!   before it.
//!
//! Which causation ids name events? The framework sets `causation_id` to
//! the id of the *command* that caused an event (ADR 0003), and command
//! ids are UUIDs just like event ids, so the shape alone cannot tell. The
//! checker therefore treats a causation id as an event reference when
//! either
//!
//! 1. it parses as a UUID and some event of the store has that id (then
//!    that event must come first), or
//! 2. the effect declares it: its metadata carries
//!    [`CAUSATION_KIND_KEY`]` = `[`CAUSATION_KIND_EVENT`] (set by
//!    [`caused_by_event`]); then the cause must exist, and come first.
//!
//! Any other causation id (a command id, a request id, free text) is
//! counted and skipped. See `docs/adr/0004-projections-and-consistency.md`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use strata_core::{
    EventId, EventStore, Metadata, Position, ReadFilter, RecordedEvent, StreamId, Version,
};
use uuid::Uuid;

use crate::runner::{Progress, ProjectionStatus};

/// How far a projection or processor trails the store (the lag
/// goes to zero when writes stop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lag {
    /// The projection's (or processor's) name.
    pub name: String,
    /// Every position up to here has been considered.
    pub position: Position,
    /// The store's head when measured.
    pub head: Position,
    /// `head − position`: an upper bound on the events still to consider
    /// (positions need not be contiguous).
    pub positions_behind: u64,
    /// How long ago the oldest event not yet considered was recorded: how
    /// stale the projection's answers can be. Zero when caught up.
    pub time_behind: Duration,
    /// What the projection is doing.
    pub status: ProjectionStatus,
}

impl Lag {
    /// Whether it has considered everything up to the head.
    pub fn is_caught_up(&self) -> bool {
        self.position >= self.head
    }
}

/// Measures the lag of a consumer whose progress is `progress`.
pub async fn lag_of<S: EventStore + ?Sized>(
    store: &S,
    name: &str,
    progress: &Progress,
) -> Result<Lag, strata_core::Error> {
    let head = store.head_position().await?;
    let position = progress.position;
    let time_behind = if position >= head {
        Duration::ZERO
    } else {
        let next = store
            .read_all(position.next(), 1, &ReadFilter::all())
            .await?;
        match next.first() {
            Some(e) => (Utc::now() - e.recorded_at)
                .to_std()
                .unwrap_or(Duration::ZERO),
            None => Duration::ZERO,
        }
    };
    Ok(Lag {
        name: name.to_owned(),
        position,
        head,
        positions_behind: head.0.saturating_sub(position.0),
        time_behind,
        status: progress.status.clone(),
    })
}

/// The metadata key (in [`Metadata::extra`]) that declares what the
/// `causation_id` names.
pub const CAUSATION_KIND_KEY: &str = "causation_kind";
/// The value of [`CAUSATION_KIND_KEY`] for "the causation id is an event id".
pub const CAUSATION_KIND_EVENT: &str = "event";
/// Events per page the checker reads.
pub const CAUSAL_CHECK_PAGE_EVENTS: usize = 4096;
/// Default for [`CausalChecker::max_events`]. The checker keeps about 100
/// bytes per event it walks.
pub const DEFAULT_MAX_CAUSAL_CHECK_EVENTS: u64 = 2_000_000;
/// Default for [`CausalChecker::max_violations`].
pub const DEFAULT_MAX_CAUSAL_VIOLATIONS: usize = 1_000;

/// Metadata for an event caused by event `cause`: its causation id is the
/// cause's id, declared as an event id, and it inherits the cause's
/// correlation id unless `metadata` has one.
///
/// ```
/// # use strata::consistency::{caused_by_event, CAUSATION_KIND_KEY};
/// # use strata::*;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let s = StreamId::new("order-1").unwrap();
/// store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("Placed", "{}")]).await.unwrap();
/// let placed = store.read_stream(&s, 1, 1, Direction::Forward).await.unwrap().remove(0);
/// let meta = caused_by_event(Metadata::default(), &placed);
/// assert_eq!(meta.causation_id, Some(placed.id.to_string()));
/// assert_eq!(meta.extra[CAUSATION_KIND_KEY], "event");
/// # });
/// ```
pub fn caused_by_event(metadata: Metadata, cause: &RecordedEvent) -> Metadata {
    let mut m = metadata
        .with_causation_id(cause.id.to_string())
        .with(CAUSATION_KIND_KEY, CAUSATION_KIND_EVENT);
    if m.correlation_id.is_none() {
        m.correlation_id = cause.metadata.correlation_id.clone();
    }
    m
}

/// What is wrong with one cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CausalViolationKind {
    /// Declared an event id, but no event has it.
    Missing,
    /// The cause exists but is positioned at or after its effect.
    NotBefore {
        /// Where the cause is.
        cause_position: Position,
    },
}

/// An event whose cause breaks causal order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CausalViolation {
    /// The effect's id.
    pub event_id: EventId,
    /// The effect's position.
    pub position: Position,
    /// The effect's stream.
    pub stream: StreamId,
    /// The effect's version.
    pub version: Version,
    /// The cause it names.
    pub causation_id: EventId,
    /// What is wrong.
    pub kind: CausalViolationKind,
}

/// What a causal-order check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CausalReport {
    /// Events walked.
    pub events_checked: u64,
    /// Causation ids that named events (and were checked).
    pub event_causations: u64,
    /// Causation ids that did not (command ids, free text): skipped.
    pub other_causations: u64,
    /// Violations found (at most the checker's `max_violations`).
    pub violations: Vec<CausalViolation>,
    /// Violations found in all, reported or not.
    pub violation_count: u64,
    /// Whether the walk stopped at `max_events` before the head.
    pub truncated: bool,
}

impl CausalReport {
    /// Whether no violation was found.
    pub fn is_consistent(&self) -> bool {
        self.violation_count == 0
    }
}

/// Walks events and checks that every cause comes before its effect.
///
/// ```
/// # use strata::consistency::CausalChecker;
/// # use strata::*;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let report = CausalChecker::new().check_store(&store).await.unwrap();
/// assert!(report.is_consistent());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CausalChecker {
    /// Stop after this many events (the report says `truncated`).
    pub max_events: u64,
    /// Report at most this many violations (all are counted).
    pub max_violations: usize,
}

impl Default for CausalChecker {
    fn default() -> Self {
        Self::new()
    }
}

struct Pending {
    event_id: EventId,
    position: Position,
    stream: StreamId,
    version: Version,
    cause: Uuid,
    declared: bool,
}

/// The walk's state.
#[derive(Default)]
struct Walk {
    seen: HashMap<Uuid, Position>,
    pending: Vec<Pending>,
    report: CausalReport,
}

impl Walk {
    fn visit(&mut self, e: &RecordedEvent, max: usize) {
        self.report.events_checked += 1;
        if let Some(c) = e.metadata.causation_id.as_deref() {
            let declared = e
                .metadata
                .extra
                .get(CAUSATION_KIND_KEY)
                .is_some_and(|k| k == CAUSATION_KIND_EVENT);
            match Uuid::parse_str(c) {
                Ok(cause) if self.seen.contains_key(&cause) => {
                    // Seen earlier in the walk: in order.
                    self.report.event_causations += 1;
                }
                Ok(cause) => self.pending.push(Pending {
                    event_id: e.id,
                    position: e.position,
                    stream: e.stream_id.clone(),
                    version: e.version,
                    cause,
                    declared,
                }),
                Err(_) if declared => {
                    self.report.event_causations += 1;
                    // Declared an event id, but it is not one: it cannot exist.
                    self.violation(
                        CausalViolation {
                            event_id: e.id,
                            position: e.position,
                            stream: e.stream_id.clone(),
                            version: e.version,
                            causation_id: EventId::from(Uuid::nil()),
                            kind: CausalViolationKind::Missing,
                        },
                        max,
                    );
                }
                Err(_) => self.report.other_causations += 1,
            }
        }
        self.seen.insert(*e.id.as_uuid(), e.position);
    }

    fn violation(&mut self, v: CausalViolation, max: usize) {
        self.report.violation_count += 1;
        if self.report.violations.len() < max {
            self.report.violations.push(v);
        }
    }

    fn finish(mut self, max: usize) -> CausalReport {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            let kind = match self.seen.get(&p.cause) {
                Some(&cause_position) => CausalViolationKind::NotBefore { cause_position },
                None if p.declared => CausalViolationKind::Missing,
                None => {
                    self.report.other_causations += 1;
                    continue;
                }
            };
            self.report.event_causations += 1;
            self.violation(
                CausalViolation {
                    event_id: p.event_id,
                    position: p.position,
                    stream: p.stream,
                    version: p.version,
                    causation_id: EventId::from(p.cause),
                    kind,
                },
                max,
            );
        }
        self.report.violations.sort_by_key(|v| v.position);
        self.report
    }
}

impl CausalChecker {
    /// A checker with the default limits.
    pub fn new() -> Self {
        CausalChecker {
            max_events: DEFAULT_MAX_CAUSAL_CHECK_EVENTS,
            max_violations: DEFAULT_MAX_CAUSAL_VIOLATIONS,
        }
    }

    /// Checks `events`, which must be in position order (a slice of `$all`;
    /// causes outside it count as missing only when declared).
    pub fn check_events<'a>(
        &self,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> CausalReport {
        let mut walk = Walk::default();
        for e in events {
            if walk.report.events_checked >= self.max_events {
                walk.report.truncated = true;
                break;
            }
            walk.visit(e, self.max_violations);
        }
        walk.finish(self.max_violations)
    }

    /// Checks all of `$all`, page by page.
    pub async fn check_store<S: EventStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<CausalReport, strata_core::Error> {
        let page = CAUSAL_CHECK_PAGE_EVENTS
            .min(store.limits().max_read_count)
            .max(1);
        let mut walk = Walk::default();
        let mut from = Position::START.next();
        'pages: loop {
            let events = store.read_all(from, page, &ReadFilter::all()).await?;
            for e in &events {
                if walk.report.events_checked >= self.max_events {
                    walk.report.truncated = true;
                    break 'pages;
                }
                walk.visit(e, self.max_violations);
            }
            match events.last() {
                Some(last) if events.len() == page => from = last.position.next(),
                _ => break,
            }
        }
        Ok(walk.finish(self.max_violations))
    }
}
