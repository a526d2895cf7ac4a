//! Deciding a batch in memory: each request's outcome under the database
//! rules, against the locked heads as the batch's earlier appends leave
//! them, and the event columns of the accepted ones, laid out for the
//! insert.

use super::*;

/// The event columns of a batch, one element per accepted event, in position
/// order (offset `i + 1` is element `i`).
#[derive(Default)]
pub(super) struct Columns<'a> {
    pub(super) ids: Vec<Uuid>,
    pub(super) streams: Vec<&'a str>,
    pub(super) versions: Vec<i64>,
    pub(super) types: Vec<&'a str>,
    pub(super) content_types: Vec<i16>,
    pub(super) data: Vec<&'a [u8]>,
    pub(super) metadata: Vec<Option<&'a str>>,
    /// Each event's tags joined by spaces (a tag holds none), `None` for none.
    pub(super) tags: Vec<Option<String>>,
}

/// One request's planned outcome.
pub(super) enum Planned {
    /// Decided without writing: an error or an idempotent retry.
    Done(Result<Vec<AppendResult>>),
    /// Written: per part, the next expected version and the first and last
    /// offsets (1-based within the batch).
    Write(Vec<(u64, u64, u64)>),
}

pub(super) struct Plan<'a> {
    pub(super) planned: Vec<Planned>,
    pub(super) columns: Columns<'a>,
    /// Final version and last offset per written stream.
    pub(super) heads: BTreeMap<&'a str, (u64, u64)>,
    /// Per stream whose metadata stream is written: the metadata version
    /// and settings the batch leaves (the last append's).
    pub(super) metadata: BTreeMap<&'a str, (u64, &'a StreamMetadata)>,
    pub(super) total: u64,
}

impl Plan<'_> {
    pub(super) fn stream_updates(&self) -> (Vec<&str>, Vec<i64>, Vec<i64>) {
        let mut names = Vec::with_capacity(self.heads.len());
        let mut versions = Vec::with_capacity(self.heads.len());
        let mut offsets = Vec::with_capacity(self.heads.len());
        for (name, (version, offset)) in &self.heads {
            names.push(*name);
            versions.push(to_i64(*version));
            offsets.push(to_i64(*offset));
        }
        (names, versions, offsets)
    }

    /// The `stream_metadata` rows the batch writes.
    pub(super) fn metadata_rows(&self) -> MetadataColumns<'_> {
        let mut rows = MetadataColumns::default();
        for (stream, (version, settings)) in &self.metadata {
            rows.push(stream, *version, settings);
        }
        rows
    }

    /// Every request's result, with offsets turned into positions.
    pub(super) fn resolve(
        &self,
        position: impl Fn(u64) -> Position,
    ) -> Vec<Result<Vec<AppendResult>>> {
        self.planned
            .iter()
            .map(|p| match p {
                Planned::Done(r) => match r {
                    Ok(v) => Ok(v.clone()),
                    Err(e) => Err(copy_error(e)),
                },
                Planned::Write(parts) => Ok(parts
                    .iter()
                    .map(|&(next, first, last)| AppendResult {
                        next_expected_version: next,
                        first_position: position(first),
                        last_position: position(last),
                    })
                    .collect()),
            })
            .collect()
    }
}

/// Each event's tags as `append.sql` takes them: joined by spaces, `None`
/// when it has none.
fn join_tags(tags: &[Tag]) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    let mut joined = String::with_capacity(tags.iter().map(|t| t.as_str().len() + 1).sum());
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            joined.push(' ');
        }
        joined.push_str(tag.as_str());
    }
    Some(joined)
}

/// Decides every request of a batch, in order, with the database append
/// rules, and each condition against `checked` (the committed events) and
/// the events accepted before it in the batch.
pub(super) fn plan<'a>(
    batch: &'a [WriteRequest],
    mut heads: Heads,
    recorded: &Recorded,
    checked: &Checked,
) -> Plan<'a> {
    let lookup = |id: &EventId| {
        recorded
            .get(id)
            .map(|(stream, version, position)| RecordedRef {
                stream: stream.as_str(),
                version: *version,
                position: *position,
            })
    };
    let mut out = Plan {
        planned: Vec::with_capacity(batch.len()),
        columns: Columns::default(),
        heads: BTreeMap::new(),
        metadata: BTreeMap::new(),
        total: 0,
    };
    // Only a batch with conditions needs its accepted events by tag.
    let conditional = batch.iter().any(|r| r.condition.is_some());
    let mut accepted = BatchEvents::default();
    for (i, request) in batch.iter().enumerate() {
        let decided = match (decide(request, &heads, &lookup), &request.condition) {
            // An exact retry answers without the condition: the events it
            // would find are its own. A failed guard fails first.
            (Ok(None), Some(condition)) => condition_failure(condition, i, checked, &accepted),
            (other, _) => other,
        };
        match decided {
            Err(e) => out.planned.push(Planned::Done(Err(e))),
            Ok(Some(retried)) => out.planned.push(Planned::Done(Ok(retried))),
            Ok(None) => {
                let mut parts = Vec::with_capacity(request.parts.len());
                let parts_with = request.parts.iter().zip(&request.metadata);
                for ((part, metadata), settings) in parts_with.zip(&request.settings) {
                    let head = heads.entry(part.stream.as_str().to_owned()).or_default();
                    let first = out.total + 1;
                    for (event, meta) in part.events.iter().zip(metadata) {
                        head.version += 1;
                        out.total += 1;
                        let c = &mut out.columns;
                        c.ids.push(event.id.unwrap_or_default().0);
                        c.streams.push(part.stream.as_str());
                        c.versions.push(to_i64(head.version));
                        c.types.push(&event.event_type);
                        c.content_types.push(i16::from(event.content_type.code()));
                        c.data.push(&event.data);
                        c.metadata.push(meta.as_deref());
                        c.tags.push(join_tags(&event.tags));
                        if conditional {
                            accepted.add(out.total, &part.stream, &event.event_type, &event.tags);
                        }
                    }
                    out.heads
                        .insert(part.stream.as_str(), (head.version, out.total));
                    let target = metadata_target(part.stream.as_str());
                    if let (Some(target), Some(settings)) = (target, settings) {
                        out.metadata.insert(target, (head.version, settings));
                    }
                    parts.push((head.version, first, out.total));
                }
                out.planned.push(Planned::Write(parts));
            }
        }
    }
    out
}

/// The condition of request `index`, decided to be written otherwise: fails
/// on the first committed match (`checked`) or, when there is none, on the
/// first event accepted earlier in the batch that matches it. Committed
/// positions are all at or below `checked.base` and the batch's are above
/// it, so this is the condition's first matching position either way.
fn condition_failure(
    condition: &AppendCondition,
    index: usize,
    checked: &Checked,
    accepted: &BatchEvents<'_>,
) -> Result<Option<Vec<AppendResult>>> {
    if let Some(position) = checked.committed_match(index) {
        return Err(Error::ConditionFailed { position });
    }
    let after = condition.checked_after().0.saturating_sub(checked.base);
    match accepted.first_match(&condition.fail_if_events_match, after) {
        Some(offset) => Err(Error::ConditionFailed {
            position: Position(checked.base + offset),
        }),
        None => Ok(None),
    }
}

/// One request against the current heads: `Ok(Some)` for an exact retry,
/// `Ok(None)` to write, `Err` to refuse. The same order of checks as every
/// store: tombstone, idempotency, guard; a multi-stream append is an exact
/// retry in every part or in none.
fn decide<'r>(
    request: &WriteRequest,
    heads: &Heads,
    lookup: &impl Fn(&EventId) -> Option<RecordedRef<'r>>,
) -> Result<Option<Vec<AppendResult>>> {
    let mut retried = Vec::new();
    for part in &request.parts {
        let head = heads.get(part.stream.as_str());
        if head.is_some_and(|h| h.tombstoned) {
            return Err(Error::StreamDeleted {
                stream: part.stream.clone(),
            });
        }
        match check_retry(&part.stream, &part.events, lookup)? {
            Some(original) => retried.push(original),
            None => check_guard(&part.stream, part.expected, head)?,
        }
    }
    if retried.len() == request.parts.len() {
        return Ok(Some(retried));
    }
    if !retried.is_empty() {
        let event_id = request
            .parts
            .iter()
            .flat_map(|p| p.events.iter())
            .find_map(|e| e.id.filter(|id| lookup(id).is_some()))
            .unwrap_or_default();
        return Err(Error::IdempotencyConflict {
            event_id,
            reason: "a multi-stream append re-sends some recorded streams together with new ones"
                .into(),
        });
    }
    Ok(None)
}

/// `strata_core::Error` is not `Clone` (it can hold an `io::Error`); the
/// writer's errors never do, so this rebuilds them.
pub(crate) fn copy_error(e: &Error) -> Error {
    match e {
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => Error::WrongExpectedVersion {
            stream: stream.clone(),
            expected: *expected,
            actual: *actual,
        },
        Error::StreamDeleted { stream } => Error::StreamDeleted {
            stream: stream.clone(),
        },
        Error::StreamNotFound { stream } => Error::StreamNotFound {
            stream: stream.clone(),
        },
        Error::InvalidInput { reason } => Error::InvalidInput {
            reason: reason.clone(),
        },
        Error::IdempotencyConflict { event_id, reason } => Error::IdempotencyConflict {
            event_id: *event_id,
            reason: reason.clone(),
        },
        Error::Corrupt { location, reason } => Error::Corrupt {
            location: location.clone(),
            reason: reason.clone(),
        },
        Error::Poisoned { reason } => Error::Poisoned {
            reason: reason.clone(),
        },
        Error::ConditionFailed { position } => Error::ConditionFailed {
            position: *position,
        },
        Error::Closed => Error::Closed,
        Error::Timeout { context, millis } => Error::Timeout {
            context: context.clone(),
            millis: *millis,
        },
        other => Error::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{ExpectedVersion, NewEvent, StreamId};

    fn request(stream: &str, expected: ExpectedVersion, n: usize) -> WriteRequest {
        let events: Vec<NewEvent> = (0..n)
            .map(|_| NewEvent::json_bytes("E", &b"{}"[..]).with_id(EventId::new()))
            .collect();
        let (reply, _) = tokio::sync::oneshot::channel();
        WriteRequest {
            metadata: vec![vec![None; events.len()]],
            settings: vec![None],
            generated: HashSet::new(),
            condition: None,
            bytes: 0,
            parts: vec![StreamAppend::new(
                StreamId::new(stream).unwrap(),
                expected,
                events,
            )],
            reply,
        }
    }

    fn set_metadata(stream: &str, expected: ExpectedVersion, max_count: u64) -> WriteRequest {
        let settings = StreamMetadata {
            max_count: Some(max_count),
            ..Default::default()
        };
        let event = settings.to_event().unwrap().with_id(EventId::new());
        let (reply, _) = tokio::sync::oneshot::channel();
        WriteRequest {
            metadata: vec![vec![None]],
            settings: vec![Some(settings)],
            generated: HashSet::new(),
            condition: None,
            bytes: 0,
            parts: vec![StreamAppend::new(
                StreamId::system(stream).unwrap(),
                expected,
                vec![event],
            )],
            reply,
        }
    }

    #[test]
    fn a_batch_writes_the_last_settings_of_each_metadata_stream() {
        let batch = vec![
            set_metadata("$$a-1", ExpectedVersion::NoStream, 5),
            set_metadata("$$a-1", ExpectedVersion::NoStream, 6),
            set_metadata("$$a-1", ExpectedVersion::Exact(1), 7),
            set_metadata("$$b-1", ExpectedVersion::Any, 8),
            request("a-1", ExpectedVersion::Any, 2),
        ];
        let plan = plan(&batch, Heads::new(), &Recorded::new(), &Checked::default());
        let rows = plan.metadata_rows();
        // The second append failed its guard and sets nothing.
        assert_eq!(rows.streams, ["a-1", "b-1"]);
        assert_eq!(rows.versions, [2, 1]);
        assert_eq!(rows.max_count, [Some(7), Some(8)]);
        assert_eq!(rows.max_age, [None, None]);
    }

    fn conditional(stream: &str, seat: &str, after: u64) -> WriteRequest {
        use strata_core::dcb::{Query, QueryItem};
        let mut r = request(stream, ExpectedVersion::Any, 2);
        let tag = Tag::new(seat).unwrap();
        for e in &mut r.parts[0].events {
            e.tags = vec![tag.clone()];
        }
        let item = QueryItem::new(["E"], [tag]);
        r.condition = Some(AppendCondition::new(
            Query::new(vec![item]).unwrap(),
            Some(Position(after)),
        ));
        r
    }

    #[test]
    fn conditions_count_the_events_accepted_before_them_in_the_batch() {
        let batch = vec![
            conditional("a-1", "seat:a", 10),
            conditional("a-2", "seat:a", 10),
            conditional("b-1", "seat:b", 10),
            // Committed match (from its check): wins over the batch's.
            conditional("a-3", "seat:a", 10),
            // After beyond the batch's first events: only later ones count.
            conditional("b-2", "seat:b", 14),
            conditional("b-3", "seat:b", 16),
        ];
        let mut matched = vec![None; batch.len()];
        matched[3] = Some(Position(7));
        let checked = Checked { base: 12, matched };
        let plan = plan(&batch, Heads::new(), &Recorded::new(), &checked);
        let results = plan.resolve(|o| Position(12 + o));
        let failed = |i: usize| match &results[i] {
            Err(Error::ConditionFailed { position }) => position.0,
            other => panic!("{i}: expected condition_failed, got {other:?}"),
        };
        assert_eq!(results[0].as_ref().unwrap()[0].last_position, Position(14));
        assert_eq!(failed(1), 13);
        assert_eq!(results[2].as_ref().unwrap()[0].last_position, Position(16));
        assert_eq!(failed(3), 7);
        assert_eq!(failed(4), 15);
        assert_eq!(results[5].as_ref().unwrap()[0].last_position, Position(18));
        assert_eq!(plan.total, 6);
    }

    #[test]
    fn one_conflict_does_not_fail_the_others() {
        let batch = vec![
            request("a-1", ExpectedVersion::NoStream, 2),
            request("a-1", ExpectedVersion::NoStream, 1),
            request("a-1", ExpectedVersion::Exact(2), 1),
            request("b-1", ExpectedVersion::Any, 3),
        ];
        let plan = plan(&batch, Heads::new(), &Recorded::new(), &Checked::default());
        assert_eq!(plan.total, 6);
        let results = plan.resolve(|o| Position(100 + o));
        assert_eq!(results[0].as_ref().unwrap()[0].last_position, Position(102));
        assert!(matches!(
            results[1],
            Err(Error::WrongExpectedVersion { .. })
        ));
        let third = results[2].as_ref().unwrap()[0];
        assert_eq!(third.next_expected_version, 3);
        assert_eq!(third.first_position, Position(103));
        let fourth = results[3].as_ref().unwrap()[0];
        assert_eq!(
            (fourth.first_position, fourth.last_position),
            (Position(104), Position(106))
        );
        assert_eq!(plan.heads["a-1"], (3, 3));
        assert_eq!(plan.heads["b-1"], (3, 6));
    }
}
