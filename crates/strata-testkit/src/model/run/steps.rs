//! One generated operation, run against the backend and the model.

use super::*;

impl<H: StoreHarness> Run<'_, H> {
    pub(super) async fn op_append(
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
    pub(super) async fn op_retry(
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

    pub(super) async fn op_multi(
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
    pub(super) async fn op_retry_multi(
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

    pub(super) async fn op_delete(
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

    pub(super) async fn op_tombstone(
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

    pub(super) async fn op_read_stream(
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
    /// in the model's (which are dense, 1, 2, 3, …). A rank whose backend
    /// position the test has not seen moves on to the next one it has.
    pub(super) fn resolve_from(
        &self,
        from: &GenFrom,
    ) -> Result<(Position, Position), TestCaseError> {
        let n = self.backend_positions.len();
        let known_from = |k: usize| {
            (k..n).find_map(|i| self.backend_positions[i].map(|p| (p, Position(i as u64 + 1))))
        };
        let past_end = (
            self.last_backend_position()?
                .map_or(Position(1), Position::next),
            Position(n as u64 + 1),
        );
        Ok(match *from {
            GenFrom::Rank(r) => match r % (n + 2) {
                0 => (Position::START, Position::START),
                k if k <= n => known_from(k - 1).unwrap_or(past_end),
                _ => past_end,
            },
            GenFrom::After(r) if n > 0 => {
                known_from(r % n).map_or(past_end, |(b, m)| (b.next(), m.next()))
            }
            GenFrom::After(_) => (Position(1), Position(1)),
        })
    }

    pub(super) async fn op_read_all(
        &mut self,
        what: &str,
        from: &GenFrom,
        count: &GenCount,
        filter: &GenFilter,
        backward: bool,
    ) -> Result<(), TestCaseError> {
        let (backend_from, model_from) = self.resolve_from(from)?;
        let filter = resolve_filter(filter);
        let count = self.resolve_count(count);
        // Backwards, the same bound is exclusive: the events below it.
        let (want, got, what) = if backward {
            let want = self.model.read_all_backward(model_from, count, &filter);
            let got = self
                .store()
                .read_all_backward(backend_from, count, &filter)
                .await;
            let what = format!(
                "{what}: read_all_backward before {backend_from} (model {model_from}) x{count}"
            );
            (want, got, what)
        } else {
            let want = self.model.read_all(model_from, count, &filter);
            let got = self.store().read_all(backend_from, count, &filter).await;
            let what =
                format!("{what}: read_all from {backend_from} (model {model_from}) x{count}");
            (want, got, what)
        };
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                for pair in g.windows(2) {
                    let (older, newer) = if backward {
                        (&pair[1], &pair[0])
                    } else {
                        (&pair[0], &pair[1])
                    };
                    ensure!(
                        older.recorded_at <= newer.recorded_at,
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

    pub(super) async fn op_stream_info(
        &mut self,
        what: &str,
        stream: usize,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        self.check_stream_info(&format!("{what}: stream_info {stream}"), &stream)
            .await
    }

    pub(super) async fn op_set_metadata(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
        settings: &StreamMetadata,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let meta = metadata_stream(&stream);
        let expected = self.resolve_expected(&meta, expected);
        let what = format!("{what}: set_stream_metadata {expected:?} {stream}");
        let want = self.model.set_stream_metadata(&stream, expected, settings);
        let got = self
            .store()
            .set_stream_metadata(&stream, expected, settings)
            .await;
        match (&got, &want) {
            (Ok(version), Ok(w)) => {
                ensure!(
                    *version == w.result.next_expected_version,
                    "{what}: metadata version {version}, model {}",
                    w.result.next_expected_version
                );
                self.note_written();
                self.learn_metadata_event(&what, &meta, w.result.first_position)
                    .await
            }
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    /// Learns the position and id of the metadata event just written at
    /// model position `model_position` (`set_stream_metadata` returns only
    /// the version): its metadata stream's latest event, read back, which
    /// `$all` must show too.
    async fn learn_metadata_event(
        &mut self,
        what: &str,
        meta: &StreamId,
        model_position: Position,
    ) -> Result<(), TestCaseError> {
        let got = self
            .store()
            .read_stream(meta, FROM_END, 1, Direction::Backward)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: reading {meta} failed: {e}")))?;
        let want = self.model.events()[(model_position.0 - 1) as usize].clone();
        ensure!(
            got.len() == 1,
            "{what}: {meta} read backward gave {} events, expected its latest",
            got.len()
        );
        self.check_event(&got[0], &want)
            .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
        self.learn_written(what, got[0].position, model_position)
            .await
    }

    pub(super) async fn op_get_metadata(
        &mut self,
        what: &str,
        stream: usize,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        self.check_metadata(&format!("{what}: stream_metadata {stream}"), &stream)
            .await
    }

    /// Erases `stream` if the store supports erasure (see
    /// [`Run::erase_supported`]); afterwards the test never sends the
    /// stream's ids again (see [`Run::forget_erased`]).
    pub(super) async fn op_erase(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
    ) -> Result<(), TestCaseError> {
        if !self.erase_supported {
            return Ok(());
        }
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let want = self.model.erase_stream(&stream, expected);
        let got = self.store().erase_stream(&stream, expected).await;
        let erased = want.is_ok();
        self.check_unit(&format!("{what}: erase {expected:?} {stream}"), got, want)?;
        if erased {
            self.forget_erased(&stream);
        }
        Ok(())
    }

    /// Drops the ids of `stream`'s events from what later ops may re-send.
    /// Whether an erased event's id still counts as recorded depends on
    /// whether its data was reclaimed yet (at once on some backends, at the
    /// next scavenge on others), which the contract leaves open.
    fn forget_erased(&mut self, stream: &StreamId) {
        // Its metadata stream is erased with it.
        let metadata = super::super::lifecycle::metadata_stream(stream);
        let ids: HashSet<EventId> = self
            .model
            .events()
            .iter()
            .filter(|e| &e.stream == stream || e.stream == metadata)
            .filter_map(|e| e.id)
            .collect();
        self.id_pool.retain(|id| !ids.contains(id));
        self.appends
            .retain(|a| &a.stream != stream && a.stream != metadata);
        self.multis.retain(|parts| {
            parts
                .iter()
                .all(|p| &p.stream != stream && p.stream != metadata)
        });
    }
}
