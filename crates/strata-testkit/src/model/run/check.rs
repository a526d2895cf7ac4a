//! Comparing the backend's answers with the model's, and learning the
//! backend's positions and generated ids.

use super::*;

impl<H: StoreHarness> Run<'_, H> {
    /// Checks that the backend gave the event at model position `want`
    /// position `got`: the one learned before, or, for an event whose
    /// position the test has not seen yet (retention hid it, or it sat
    /// inside a multi-event append), one strictly between the known
    /// positions of its neighbours, which is then learned.
    pub(super) fn check_position(
        &mut self,
        what: &str,
        got: Position,
        want: Position,
    ) -> Result<(), TestCaseError> {
        let i = (want.0 - 1) as usize;
        ensure!(
            i < self.backend_positions.len(),
            "{what}: model position {want} is past the test's bookkeeping"
        );
        if let Some(known) = self.backend_positions[i] {
            ensure!(
                got == known,
                "{what}: backend position {got} for the event at model position {want}, \
                 which the backend put at {known} before"
            );
            return Ok(());
        }
        let before = self.backend_positions[..i].iter().rev().flatten().next();
        let after = self.backend_positions[i + 1..].iter().flatten().next();
        ensure!(
            before.is_none_or(|b| *b < got) && after.is_none_or(|a| got < *a),
            "{what}: backend position {got} for model position {want} is out of order \
             (known neighbours {before:?} and {after:?})"
        );
        self.backend_positions[i] = Some(got);
        Ok(())
    }

    /// The backend position of the last event, which the test always knows.
    pub(super) fn last_backend_position(&self) -> Result<Option<Position>, TestCaseError> {
        match self.backend_positions.last() {
            None => Ok(None),
            Some(Some(p)) => Ok(Some(*p)),
            Some(None) => Err(TestCaseError::fail(
                "test bookkeeping: the last event's backend position is unknown",
            )),
        }
    }

    /// Checks a generated id the backend returned for the event at model
    /// `position`, and learns it.
    fn learn_id(
        &mut self,
        what: &str,
        position: Position,
        id: EventId,
    ) -> Result<(), TestCaseError> {
        ensure!(
            id.as_uuid().get_version_num() == 7,
            "{what}: generated id {id} is not a UUID v7"
        );
        self.model
            .learn_generated_id(position, id)
            .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
        self.id_pool.push(id);
        Ok(())
    }

    pub(super) fn check_event(
        &mut self,
        got: &RecordedEvent,
        want: &ModelEvent,
    ) -> Result<(), TestCaseError> {
        let at = format!("event {}@{}", want.stream, want.version);
        ensure!(
            got.stream_id == want.stream && got.version == want.version,
            "{at}: backend returned {}@{} instead",
            got.stream_id,
            got.version
        );
        self.check_position(&at, got.position, want.position)?;
        match want.id {
            Some(id) => ensure!(got.id == id, "{at}: id {} instead of {id}", got.id),
            None => self.learn_id(&at, want.position, got.id)?,
        }
        ensure!(got.event_type == want.event_type, "{at}: type differs");
        ensure!(got.data == want.data, "{at}: data differs");
        ensure!(
            got.content_type == want.content_type,
            "{at}: content type differs"
        );
        ensure!(got.metadata == want.metadata, "{at}: metadata differs");
        ensure!(
            got.tags == want.tags,
            "{at}: tags {:?}, model {:?}",
            got.tags,
            want.tags
        );
        Ok(())
    }

    pub(super) fn check_events(
        &mut self,
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

    pub(super) fn check_error<T: Debug>(
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

    /// Makes room in the bookkeeping for the events the model just wrote.
    pub(super) fn note_written(&mut self) {
        self.backend_positions
            .resize(self.model.events().len(), None);
    }

    /// After the model wrote events from model position `model_first` on,
    /// reads `$all` back from the backend's `backend_first` (the first
    /// written event's position): it must show what the model shows of them
    /// (all but what retention cuts at once), newest `recorded_at` last.
    pub(super) async fn learn_written(
        &mut self,
        what: &str,
        backend_first: Position,
        model_first: Position,
    ) -> Result<(), TestCaseError> {
        let count = (self.model.head().0 + 1 - model_first.0) as usize;
        let read = self
            .store()
            .read_all(backend_first, count, &ReadFilter::all())
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: read back failed: {e}")))?;
        let want = self
            .model
            .read_all(model_first, count, &ReadFilter::all())
            .map_err(|e| TestCaseError::fail(format!("{what}: model read back: {e:?}")))?;
        for e in &read {
            let micros = e.recorded_at.timestamp_micros();
            if let Some(prev) = self.last_recorded_at {
                ensure!(micros >= prev, "{what}: recorded_at went back along $all");
            }
            self.last_recorded_at = Some(micros);
        }
        self.check_events(&format!("{what}: read back"), &read, &want)
    }

    /// Checks a backend append result against the model's positions and
    /// version (learning positions it did not know).
    pub(super) fn check_append(
        &mut self,
        what: &str,
        got: &AppendResult,
        want: &ModelAppend,
    ) -> Result<(), TestCaseError> {
        ensure!(
            got.next_expected_version == want.result.next_expected_version,
            "{what}: next_expected_version {} , model {}",
            got.next_expected_version,
            want.result.next_expected_version
        );
        self.check_position(what, got.first_position, want.result.first_position)?;
        self.check_position(what, got.last_position, want.result.last_position)
    }

    /// The events as they were recorded (ids filled in), for later retries.
    pub(super) fn as_recorded(
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
                    tags: e.tags.clone(),
                    json_checked: strata_core::JsonChecked::NO,
                }
            })
            .collect();
        StreamAppend::new(stream.clone(), expected, events)
    }

    pub(super) async fn append(
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
                if w.written {
                    self.note_written();
                }
                self.check_append(what, g, w)?;
                if w.written {
                    self.learn_written(what, g.first_position, w.result.first_position)
                        .await?;
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

    pub(super) async fn append_multi(
        &mut self,
        what: &str,
        parts: Vec<StreamAppend>,
    ) -> Result<(), TestCaseError> {
        let want = self.model.append_multi(&parts);
        let got = self.store().append_multi(parts.clone()).await;
        self.check_multi(what, &parts, got, want).await
    }

    /// Compares the answers to a multi-stream append (conditional or not);
    /// on success learns what was written and keeps it for retries.
    pub(super) async fn check_multi(
        &mut self,
        what: &str,
        parts: &[StreamAppend],
        got: Result<Vec<AppendResult>, Error>,
        want: Result<Vec<ModelAppend>, Vec<ModelError>>,
    ) -> Result<(), TestCaseError> {
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
                    self.note_written();
                }
                for (i, (g, w)) in g.iter().zip(w).enumerate() {
                    self.check_append(&format!("{what} part {i}"), g, w)?;
                }
                if written {
                    // Parts get consecutive positions in part order.
                    self.learn_written(what, g[0].first_position, w[0].result.first_position)
                        .await?;
                    let recorded: Vec<StreamAppend> = w
                        .iter()
                        .zip(parts)
                        .map(|(w, p)| self.as_recorded(&p.stream, &w.result, p.expected))
                        .collect();
                    self.appends.extend(recorded.iter().cloned());
                    self.multis.push(recorded);
                }
                Ok(())
            }
            (Err(Error::ConditionFailed { position }), Err(allowed)) => {
                let named = allowed.iter().find_map(|m| match m {
                    ModelError::ConditionFailed(p) => Some(*p),
                    _ => None,
                });
                match named {
                    Some(p) => {
                        self.check_position(&format!("{what}: condition failed"), *position, p)
                    }
                    None => self.check_error(what, &got, allowed),
                }
            }
            (_, Err(allowed)) => self.check_error(what, &got, allowed),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    pub(super) fn check_unit(
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

    /// Compares `stream_info` answers, the last position by the model's.
    pub(super) fn check_info(
        &mut self,
        what: &str,
        got: Option<StreamInfo>,
        want: Option<StreamInfo>,
    ) -> Result<(), TestCaseError> {
        let mut got = got;
        let positions = (
            got.as_ref().and_then(|i| i.last_position),
            want.as_ref().and_then(|i| i.last_position),
        );
        if let (Some(info), (Some(g), Some(w))) = (got.as_mut(), positions) {
            self.check_position(what, g, w)?;
            info.last_position = Some(w);
        }
        ensure!(
            got == want,
            "{what}: backend {got:?} (positions as the model's), model {want:?}"
        );
        Ok(())
    }
}
