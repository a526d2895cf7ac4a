//! Running one generated case against a backend and the model side by side.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how the property test reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fmt::Debug;

use proptest::test_runner::TestCaseError;
use strata_core::{
    AppendResult, ContentType, CurrentVersion, Direction, Error, EventId, EventStore,
    ExpectedVersion, Metadata, NewEvent, Position, ReadFilter, RecordedEvent, StreamAppend,
    StreamId, StreamInfo, StreamMetadata, FROM_END,
};

use super::dcb_ops::resolve_tags;
use super::lifecycle::metadata_stream;
use super::ops::*;
use super::reference::{Model, ModelAppend, ModelError, ModelEvent};
use crate::conformance::StoreHarness;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

mod check;
mod dcb;
mod steps;

/// The backend and model side by side, plus what the test learned about the
/// backend's positions.
struct Run<'h, H: StoreHarness> {
    harness: &'h H,
    store: Option<H::Store>,
    model: Model,
    /// `backend_positions[i]` is the backend position of model position
    /// `i + 1`, once the test saw it. It always knows the last event's.
    backend_positions: Vec<Option<Position>>,
    /// `recorded_at` of the last learned event, in microseconds since the epoch.
    last_recorded_at: Option<i64>,
    id_seed: u64,
    next_fresh: u64,
    /// Every id ever sent or learned, for reuse.
    id_pool: Vec<EventId>,
    /// Written single appends and multi parts (with learned ids), for retries.
    appends: Vec<StreamAppend>,
    /// Written multi appends (with learned ids), for retries.
    multis: Vec<Vec<StreamAppend>>,
    /// Whether the store erases streams (it answered a probe with anything
    /// but `Unsupported`); `Erase` ops are skipped otherwise.
    erase_supported: bool,
    step: usize,
}

impl<'h, H: StoreHarness> Run<'h, H> {
    fn store(&self) -> &H::Store {
        self.store.as_ref().expect("store is open")
    }

    /// Resolves a generated stream pick (see [`STREAM_PICKS`]).
    fn pick(&self, i: usize) -> StreamId {
        if i < STREAMS.len() {
            return stream_id(i);
        }
        let live: Vec<usize> = (0..STREAMS.len())
            .filter(|&k| self.model.current(&stream_id(k)) != CurrentVersion::NoStream)
            .collect();
        match live.len() {
            0 => stream_id(i % STREAMS.len()),
            n => stream_id(live[i % n]),
        }
    }

    /// Makes the supplied ids of `events` available for later reuse (only
    /// after an op is resolved, so one append does not reuse its own ids).
    fn remember(&mut self, events: &[NewEvent]) {
        self.id_pool.extend(events.iter().filter_map(|e| e.id));
    }

    fn fresh_id(&mut self) -> EventId {
        self.next_fresh += 1;
        EventId(uuid::Uuid::from_u64_pair(self.id_seed, self.next_fresh))
    }

    fn resolve_expected(&self, stream: &StreamId, g: &GenExpected) -> ExpectedVersion {
        let shifted =
            |base: u64, d: i8| ExpectedVersion::Exact(base.saturating_add_signed(d.into()));
        match g {
            GenExpected::Any => ExpectedVersion::Any,
            GenExpected::NoStream => ExpectedVersion::NoStream,
            GenExpected::StreamExists => ExpectedVersion::StreamExists,
            GenExpected::Exact(n) => ExpectedVersion::Exact(*n),
            GenExpected::Live(d) => match self.model.current(stream) {
                CurrentVersion::Current(v) => shifted(v, *d),
                CurrentVersion::NoStream => shifted(0, *d),
            },
            GenExpected::Raw(d) => shifted(self.model.stream(stream).map_or(0, |s| s.version), *d),
        }
    }

    fn resolve_event(&mut self, g: &GenEvent) -> NewEvent {
        let event_type = TYPES[g.event_type];
        let mut e = match g.payload {
            GenPayload::Json => {
                NewEvent::json_bytes(event_type, format!("{{\"n\":{}}}", g.n).into_bytes())
            }
            GenPayload::Binary => {
                NewEvent::new(event_type, vec![g.n, 0xff, 0x00], ContentType::Binary)
            }
            GenPayload::BadJson => NewEvent::json_bytes(event_type, &b"{\"n\":"[..]),
        };
        e.tags = resolve_tags(&g.tags);
        if let Some(c) = CORRELATIONS[g.correlation] {
            e.metadata = Metadata::default().with_correlation_id(c);
        }
        e.id = match g.id {
            GenId::Generated => None,
            GenId::Fresh => Some(self.fresh_id()),
            GenId::Reuse(i) if !self.id_pool.is_empty() => {
                Some(self.id_pool[i % self.id_pool.len()])
            }
            GenId::Reuse(_) => Some(self.fresh_id()),
        };
        e
    }

    fn resolve_count(&self, g: &GenCount) -> usize {
        match g {
            GenCount::Small(n) => *n,
            GenCount::OverLimit => self.model.limits().max_read_count.saturating_add(1),
        }
    }

    async fn run_op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.step += 1;
        let what = format!("step {} ({op:?})", self.step);
        match op {
            Op::Append {
                stream,
                expected,
                events,
            } => self.op_append(&what, *stream, expected, events).await,
            Op::Retry {
                of,
                expected,
                tamper,
            } => self.op_retry(&what, *of, expected, tamper).await,
            Op::Multi { parts } => self.op_multi(&what, parts).await,
            Op::RetryMulti { of, extra } => self.op_retry_multi(&what, *of, extra).await,
            Op::Delete { stream, expected } => self.op_delete(&what, *stream, expected).await,
            Op::Tombstone { stream, expected } => self.op_tombstone(&what, *stream, expected).await,
            Op::ReadStream {
                stream,
                from,
                count,
                backward,
            } => {
                self.op_read_stream(&what, *stream, *from, count, *backward)
                    .await
            }
            Op::ReadAll {
                from,
                count,
                filter,
                backward,
            } => {
                self.op_read_all(&what, from, count, filter, *backward)
                    .await
            }
            Op::StreamInfo { stream } => self.op_stream_info(&what, *stream).await,
            Op::Head => self.check_head(&what).await,
            Op::Reopen => {
                let store = self.store.take().expect("store is open");
                self.store = Some(self.harness.reopen(store).await);
                Ok(())
            }
            Op::SetMetadata {
                stream,
                expected,
                settings,
            } => {
                self.op_set_metadata(&what, *stream, expected, settings)
                    .await
            }
            Op::GetMetadata { stream } => self.op_get_metadata(&what, *stream).await,
            Op::Erase { stream, expected } => self.op_erase(&what, *stream, expected).await,
            Op::ReadQuery {
                query,
                after,
                count,
            } => self.op_read_query(&what, query, after, count).await,
            Op::AppendIf {
                parts,
                query,
                after,
            } => self.op_append_if(&what, parts, query, after).await,
            Op::RetryIf { of, query, after } => self.op_retry_if(&what, *of, query, after).await,
        }
    }

    async fn check_head(&self, what: &str) -> Result<(), TestCaseError> {
        let got = self
            .store()
            .head_position()
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: head_position failed: {e}")))?;
        let want = self.last_backend_position()?.unwrap_or(Position::START);
        ensure!(got == want, "{what}: head_position {got}, expected {want}");
        Ok(())
    }

    /// The final comparison: all of `$all`, every stream's info, the head.
    async fn check_everything(&mut self) -> Result<(), TestCaseError> {
        let store = self.store.take().expect("store is open");
        self.store = Some(self.harness.reopen(store).await);
        let limit = self.model.limits().max_read_count.max(1);
        let mut got = Vec::new();
        let mut from = Position::START;
        loop {
            let page = self
                .store()
                .read_all(from, limit.min(1000), &ReadFilter::all())
                .await
                .map_err(|e| TestCaseError::fail(format!("final read_all failed: {e}")))?;
            let short = page.len() < limit.min(1000);
            if let Some(last) = page.last() {
                from = last.position.next();
            }
            got.extend(page);
            if short {
                break;
            }
        }
        let want: Vec<ModelEvent> = (self.model.events().iter())
            .filter(|e| self.model.shows(e))
            .cloned()
            .collect();
        self.check_events("final $all", &got, &want)?;
        for i in 0..STREAMS.len() {
            let s = stream_id(i);
            self.check_stream_info(&format!("final stream_info {s}"), &s)
                .await?;
            let meta = metadata_stream(&s);
            self.check_stream_info(&format!("final stream_info {meta}"), &meta)
                .await?;
            self.check_metadata(&format!("final stream_metadata {s}"), &s)
                .await?;
        }
        self.check_head("final head").await
    }

    async fn check_stream_info(&mut self, what: &str, s: &StreamId) -> Result<(), TestCaseError> {
        let info = self
            .store()
            .stream_info(s)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what} failed: {e}")))?;
        let want = self.model.stream_info(s);
        self.check_info(what, info, want)
    }

    async fn check_metadata(&self, what: &str, stream: &StreamId) -> Result<(), TestCaseError> {
        let got = self
            .store()
            .stream_metadata(stream)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what} failed: {e}")))?;
        let want = self.model.stream_metadata(stream);
        ensure!(got == want, "{what}: backend {got:?}, model {want:?}");
        Ok(())
    }
}

/// Runs `ops` against a fresh store and the model; `erase_supported` says
/// whether to send `Erase` ops.
pub(super) async fn run_case<H: StoreHarness>(
    harness: &H,
    erase_supported: bool,
    id_seed: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let store = harness.open().await;
    let model = Model::new(store.limits().clone());
    let mut run = Run {
        harness,
        store: Some(store),
        model,
        backend_positions: Vec::new(),
        last_recorded_at: None,
        id_seed,
        next_fresh: 0,
        id_pool: Vec::new(),
        appends: Vec::new(),
        multis: Vec::new(),
        erase_supported,
        step: 0,
    };
    for op in ops {
        run.run_op(op).await?;
    }
    run.check_everything().await
}
