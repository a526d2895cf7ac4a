//! Running one generated case against a backend and the model side by side.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how the property test reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use proptest::test_runner::TestCaseError;
use strata_core::{
    AppendResult, ContentType, CurrentVersion, Direction, Error, EventId, EventStore,
    ExpectedVersion, Metadata, NewEvent, Position, ReadFilter, RecordedEvent, StreamAppend,
    StreamId, StreamInfo, FROM_END,
};

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

/// The backend and model side by side, plus what the test learned about the
/// backend's positions.
struct Run<'h, H: StoreHarness> {
    harness: &'h H,
    store: Option<H::Store>,
    model: Model,
    /// `backend_positions[i]` is the backend position of model position `i + 1`.
    backend_positions: Vec<Position>,
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

    /// Backend position to model position, by rank.
    fn to_model(&self, p: Position) -> Result<Position, TestCaseError> {
        match self.backend_positions.binary_search(&p) {
            Ok(i) => Ok(Position(i as u64 + 1)),
            Err(_) => Err(TestCaseError::fail(format!(
                "the backend returned position {p}, which no event the test wrote has"
            ))),
        }
    }

    fn check_event(&self, got: &RecordedEvent, want: &ModelEvent) -> Result<(), TestCaseError> {
        let at = format!("event {}@{}", want.stream, want.version);
        ensure!(
            got.stream_id == want.stream && got.version == want.version,
            "{at}: backend returned {}@{} instead",
            got.stream_id,
            got.version
        );
        ensure!(
            self.to_model(got.position)? == want.position,
            "{at}: backend position {} ranks as {}, model says {}",
            got.position,
            self.to_model(got.position)?,
            want.position
        );
        if let Some(id) = want.id {
            ensure!(got.id == id, "{at}: id {} instead of {id}", got.id);
        }
        ensure!(got.event_type == want.event_type, "{at}: type differs");
        ensure!(got.data == want.data, "{at}: data differs");
        ensure!(
            got.content_type == want.content_type,
            "{at}: content type differs"
        );
        ensure!(got.metadata == want.metadata, "{at}: metadata differs");
        Ok(())
    }

    fn check_events(
        &self,
        what: &str,
        got: &[RecordedEvent],
        want: &[ModelEvent],
    ) -> Result<(), TestCaseError> {
        let show = |v: Vec<(String, u64)>| format!("{v:?}");
        ensure!(
            got.len() == want.len(),
            "{what}: backend returned {} events {}, model {} events {}",
            got.len(),
            show(
                got.iter()
                    .map(|e| (e.stream_id.to_string(), e.version))
                    .collect()
            ),
            want.len(),
            show(
                want.iter()
                    .map(|e| (e.stream.to_string(), e.version))
                    .collect()
            )
        );
        for (g, w) in got.iter().zip(want) {
            self.check_event(g, w)
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        }
        Ok(())
    }

    fn check_error<T: Debug>(
        &self,
        what: &str,
        got: &Result<T, Error>,
        allowed: &[ModelError],
    ) -> Result<(), TestCaseError> {
        match got {
            Err(e) if allowed.iter().any(|m| m.matches(e)) => Ok(()),
            other => Err(TestCaseError::fail(format!(
                "{what}: the model expects one of {allowed:?}, the backend returned {other:?}"
            ))),
        }
    }

    /// After the model wrote `count` events starting at model position
    /// `model_first`, reads them back from the backend starting at
    /// `backend_first`, checks them, and learns their positions and ids.
    async fn learn_written(
        &mut self,
        what: &str,
        backend_first: Position,
        model_first: Position,
        count: usize,
    ) -> Result<(), TestCaseError> {
        ensure!(
            self.backend_positions.len() as u64 + 1 == model_first.0,
            "{what}: test bookkeeping out of step"
        );
        if let Some(last) = self.backend_positions.last() {
            ensure!(
                backend_first > *last,
                "{what}: first position {backend_first} is not after the previous last {last}"
            );
        }
        let read = self
            .store()
            .read_all(backend_first, count, &ReadFilter::all())
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: read back failed: {e}")))?;
        ensure!(
            read.len() == count,
            "{what}: read back {} events from {backend_first}, expected {count}",
            read.len()
        );
        for (i, e) in read.iter().enumerate() {
            if let Some(last) = self.backend_positions.last() {
                ensure!(e.position > *last, "{what}: positions not increasing");
            }
            let micros = e.recorded_at.timestamp_micros();
            if let Some(prev) = self.last_recorded_at {
                ensure!(micros >= prev, "{what}: recorded_at went back along $all");
            }
            self.last_recorded_at = Some(micros);
            self.backend_positions.push(e.position);
            let model_pos = Position(model_first.0 + i as u64);
            if self.model.events()[(model_pos.0 - 1) as usize].id.is_none() {
                ensure!(
                    e.id.as_uuid().get_version_num() == 7,
                    "{what}: generated id {} is not a UUID v7",
                    e.id
                );
                self.model
                    .learn_generated_id(model_pos, e.id)
                    .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
                self.id_pool.push(e.id);
            }
            let want = self.model.events()[(model_pos.0 - 1) as usize].clone();
            self.check_event(e, &want)
                .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
        }
        Ok(())
    }

    /// Checks a backend append result against the model's; learns written events.
    async fn check_append(
        &mut self,
        what: &str,
        got: &AppendResult,
        want: &ModelAppend,
        count: usize,
    ) -> Result<(), TestCaseError> {
        ensure!(
            got.next_expected_version == want.result.next_expected_version,
            "{what}: next_expected_version {} , model {}",
            got.next_expected_version,
            want.result.next_expected_version
        );
        if want.written {
            self.learn_written(what, got.first_position, want.result.first_position, count)
                .await?;
        }
        ensure!(
            self.to_model(got.first_position)? == want.result.first_position
                && self.to_model(got.last_position)? == want.result.last_position,
            "{what}: positions {}..{} rank as {}..{}, model says {}..{}",
            got.first_position,
            got.last_position,
            self.to_model(got.first_position)?,
            self.to_model(got.last_position)?,
            want.result.first_position,
            want.result.last_position
        );
        Ok(())
    }

    /// The events as they were recorded (ids filled in), for later retries.
    fn as_recorded(
        &self,
        stream: &StreamId,
        result: &AppendResult,
        expected: ExpectedVersion,
    ) -> StreamAppend {
        let events = (result.first_position.0..=result.last_position.0)
            .map(|p| {
                let e = &self.model.events()[(p - 1) as usize];
                NewEvent {
                    id: e.id,
                    event_type: e.event_type.clone(),
                    data: e.data.clone(),
                    content_type: e.content_type,
                    metadata: e.metadata.clone(),
                }
            })
            .collect();
        StreamAppend::new(stream.clone(), expected, events)
    }

    async fn append(
        &mut self,
        what: &str,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<(), TestCaseError> {
        let want = self.model.append(&stream, expected, &events);
        let got = self.store().append(&stream, expected, events.clone()).await;
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                self.check_append(what, g, w, events.len()).await?;
                if w.written {
                    let recorded = self.as_recorded(&stream, &w.result, expected);
                    self.appends.push(recorded);
                }
                Ok(())
            }
            (_, Err(m)) => self.check_error(what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    async fn append_multi(
        &mut self,
        what: &str,
        parts: Vec<StreamAppend>,
    ) -> Result<(), TestCaseError> {
        let want = self.model.append_multi(&parts);
        let got = self.store().append_multi(parts.clone()).await;
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                ensure!(
                    g.len() == w.len(),
                    "{what}: {} results, model {}",
                    g.len(),
                    w.len()
                );
                let written = w.iter().all(|r| r.written);
                if written {
                    // Parts get consecutive positions in part order: learn them all.
                    let total: usize = parts.iter().map(|p| p.events.len()).sum();
                    self.learn_written(
                        what,
                        g[0].first_position,
                        w[0].result.first_position,
                        total,
                    )
                    .await?;
                }
                for (i, ((g, w), p)) in g.iter().zip(w).zip(&parts).enumerate() {
                    let what = format!("{what} part {i}");
                    let w = ModelAppend {
                        written: false,
                        ..*w
                    };
                    self.check_append(&what, g, &w, p.events.len()).await?;
                }
                if written {
                    let recorded: Vec<StreamAppend> = w
                        .iter()
                        .zip(&parts)
                        .map(|(w, p)| self.as_recorded(&p.stream, &w.result, p.expected))
                        .collect();
                    self.appends.extend(recorded.iter().cloned());
                    self.multis.push(recorded);
                }
                Ok(())
            }
            (_, Err(allowed)) => self.check_error(what, &got, allowed),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    fn check_unit(
        &self,
        what: &str,
        got: Result<(), Error>,
        want: Result<(), ModelError>,
    ) -> Result<(), TestCaseError> {
        match (&got, &want) {
            (Ok(()), Ok(())) => Ok(()),
            (_, Err(m)) => self.check_error(what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(())) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded"
            ))),
        }
    }

    fn check_info(
        &self,
        what: &str,
        got: Option<StreamInfo>,
        want: Option<StreamInfo>,
    ) -> Result<(), TestCaseError> {
        let got = match got {
            None => None,
            Some(mut info) => {
                if let Some(p) = info.last_position {
                    info.last_position = Some(self.to_model(p)?);
                }
                Some(info)
            }
        };
        ensure!(
            got == want,
            "{what}: backend {got:?} (positions ranked), model {want:?}"
        );
        Ok(())
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
            } => self.op_read_all(&what, from, count, filter).await,
            Op::StreamInfo { stream } => self.op_stream_info(&what, *stream).await,
            Op::Head => self.check_head(&what).await,
            Op::Reopen => {
                let store = self.store.take().expect("store is open");
                self.store = Some(self.harness.reopen(store).await);
                Ok(())
            }
        }
    }

    async fn op_append(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
        events: &[GenEvent],
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let events: Vec<NewEvent> = events.iter().map(|g| self.resolve_event(g)).collect();
        self.remember(&events);
        let what = format!("{what}: append {expected:?} to {stream}");
        self.append(&what, stream, expected, events).await
    }

    /// Appends again what an earlier append sent, possibly altered.
    async fn op_retry(
        &mut self,
        what: &str,
        of: usize,
        expected: &GenExpected,
        tamper: &Tamper,
    ) -> Result<(), TestCaseError> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let original = self.appends[of % self.appends.len()].clone();
        let mut stream = original.stream.clone();
        let mut events = original.events;
        match tamper {
            Tamper::None => {}
            Tamper::Reverse => events.reverse(),
            Tamper::DropFirst => {
                events.remove(0);
            }
            Tamper::AddFresh => {
                let id = self.fresh_id();
                events.push(NewEvent::json_bytes("Deposited", &b"{}"[..]).with_id(id));
                self.remember(&events);
            }
            Tamper::OtherStream(i) => stream = self.pick(*i),
        }
        let expected = self.resolve_expected(&stream, expected);
        let what = format!("{what}: retry {expected:?} to {stream}");
        self.append(&what, stream, expected, events).await
    }

    async fn op_multi(
        &mut self,
        what: &str,
        parts: &[(usize, GenExpected, Vec<GenEvent>)],
    ) -> Result<(), TestCaseError> {
        let mut resolved = Vec::new();
        for (stream, expected, events) in parts {
            let stream = stream_id(*stream);
            let expected = self.resolve_expected(&stream, expected);
            let events = events.iter().map(|g| self.resolve_event(g)).collect();
            resolved.push(StreamAppend::new(stream, expected, events));
        }
        for part in &resolved {
            self.remember(&part.events);
        }
        self.append_multi(&format!("{what}: append_multi"), resolved)
            .await
    }

    /// Sends an earlier multi-stream append again, possibly with one more part.
    async fn op_retry_multi(
        &mut self,
        what: &str,
        of: usize,
        extra: &Option<(usize, GenEvent)>,
    ) -> Result<(), TestCaseError> {
        if self.multis.is_empty() {
            return Ok(());
        }
        let mut parts = self.multis[of % self.multis.len()].clone();
        if let Some((stream, g)) = extra {
            let e = self.resolve_event(g);
            self.remember(std::slice::from_ref(&e));
            parts.push(StreamAppend::new(
                self.pick(*stream),
                ExpectedVersion::Any,
                vec![e],
            ));
        }
        self.append_multi(&format!("{what}: retry append_multi"), parts)
            .await
    }

    async fn op_delete(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let want = self.model.delete_stream(&stream, expected);
        let got = self.store().delete_stream(&stream, expected).await;
        self.check_unit(&format!("{what}: delete {expected:?} {stream}"), got, want)
    }

    async fn op_tombstone(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let want = self.model.tombstone_stream(&stream, expected);
        let got = self.store().tombstone_stream(&stream, expected).await;
        self.check_unit(
            &format!("{what}: tombstone {expected:?} {stream}"),
            got,
            want,
        )
    }

    async fn op_read_stream(
        &mut self,
        what: &str,
        stream: usize,
        from: Option<u64>,
        count: &GenCount,
        backward: bool,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let from = from.unwrap_or(FROM_END);
        let count = self.resolve_count(count);
        let direction = if backward {
            Direction::Backward
        } else {
            Direction::Forward
        };
        let want = self.model.read_stream(&stream, from, count, direction);
        let got = self
            .store()
            .read_stream(&stream, from, count, direction)
            .await;
        let what = format!("{what}: read {stream} {direction:?} from {from} x{count}");
        match (&got, &want) {
            (Ok(g), Ok(w)) => self.check_events(&what, g, w),
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(_)) => Err(TestCaseError::fail(format!(
                "{what}: backend failed: {e:?}"
            ))),
        }
    }

    /// Where a generated `read_all` starts: in the backend's positions and
    /// in the model's (which are dense, 1, 2, 3, …).
    fn resolve_from(&self, from: &GenFrom) -> (Position, Position) {
        let n = self.backend_positions.len();
        match *from {
            GenFrom::Rank(r) => match r % (n + 2) {
                0 => (Position::START, Position::START),
                k if k <= n => (self.backend_positions[k - 1], Position(k as u64)),
                _ => (
                    self.backend_positions
                        .last()
                        .map_or(Position(1), |p| p.next()),
                    Position(n as u64 + 1),
                ),
            },
            GenFrom::After(r) if n > 0 => {
                let k = r % n;
                (self.backend_positions[k].next(), Position(k as u64 + 2))
            }
            GenFrom::After(_) => (Position(1), Position(1)),
        }
    }

    async fn op_read_all(
        &mut self,
        what: &str,
        from: &GenFrom,
        count: &GenCount,
        filter: &GenFilter,
    ) -> Result<(), TestCaseError> {
        let (backend_from, model_from) = self.resolve_from(from);
        let filter = resolve_filter(filter);
        let count = self.resolve_count(count);
        let want = self.model.read_all(model_from, count, &filter);
        let got = self.store().read_all(backend_from, count, &filter).await;
        let what = format!("{what}: read_all from {backend_from} (model {model_from}) x{count}");
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                for pair in g.windows(2) {
                    ensure!(
                        pair[0].recorded_at <= pair[1].recorded_at,
                        "{what}: recorded_at goes back"
                    );
                }
                self.check_events(&what, g, w)
            }
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(_)) => Err(TestCaseError::fail(format!(
                "{what}: backend failed: {e:?}"
            ))),
        }
    }

    async fn op_stream_info(&mut self, what: &str, stream: usize) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let got = self
            .store()
            .stream_info(&stream)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: stream_info failed: {e}")))?;
        self.check_info(
            &format!("{what}: stream_info {stream}"),
            got,
            self.model.stream_info(&stream),
        )
    }

    async fn check_head(&self, what: &str) -> Result<(), TestCaseError> {
        let got = self
            .store()
            .head_position()
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: head_position failed: {e}")))?;
        let want = match self.backend_positions.last() {
            Some(p) => *p,
            None => Position::START,
        };
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
        let want = self.model.events().to_vec();
        self.check_events("final $all", &got, &want)?;
        for i in 0..STREAMS.len() {
            let s = stream_id(i);
            let info = self
                .store()
                .stream_info(&s)
                .await
                .map_err(|e| TestCaseError::fail(format!("final stream_info failed: {e}")))?;
            self.check_info(
                &format!("final stream_info {s}"),
                info,
                self.model.stream_info(&s),
            )?;
        }
        self.check_head("final head").await
    }
}

pub(super) async fn run_case<H: StoreHarness>(
    harness: &H,
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
        step: 0,
    };
    for op in ops {
        run.run_op(op).await?;
    }
    run.check_everything().await
}
