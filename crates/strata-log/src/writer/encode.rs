//! Encoding decided requests as frames in the batch buffer, and the index
//! and stream-index changes each one brings once it is committed.

use strata_core::append_rules::StreamHead;
use strata_core::dcb::Tag;
use strata_core::metadata::metadata_target;
use strata_core::{AppendResult, NewEvent, Position, StreamAppend, StreamId, StreamMetadata};

use crate::format::{align, position_of, FrameKind, FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::index::{key_hash, IndexEntry};
use crate::state::State;
use crate::streams::DeleteKind;
use crate::writer::pending::Pending;
use crate::writer::{Effect, EventRun, Turn, Writer};

impl Writer {
    /// Encodes an accepted append as one frame; returns each part's outcome.
    pub(super) fn encode_append(
        &mut self,
        state: &State,
        pending: &mut Pending,
        parts: Vec<StreamAppend>,
        frame_len: u64,
        turn: &mut Turn,
    ) -> Vec<AppendResult> {
        let now = self.clock.now().timestamp_micros();
        let frame_at = self.frames.begin(FrameKind::Append);
        turn.effects
            .push(Effect::Frame(self.tail + frame_at as u64));
        let count: usize = parts.iter().map(|p| p.events.len()).sum();
        self.frames.put_u32(count as u32);
        let mut results = Vec::with_capacity(parts.len());
        for part in parts {
            let mut head = pending
                .head(state, &part.stream)
                .copied()
                .unwrap_or_default();
            if let Some(effect) = metadata_effect(&part) {
                turn.effects.push(effect);
            }
            let category_hash = key_hash(part.stream.category());
            let mut run = EventRun::starting(&part.stream, head.version + 1, part.events.len());
            for e in part.events {
                self.encode_event(
                    &part.stream,
                    &mut head,
                    e,
                    now,
                    category_hash,
                    pending,
                    &mut run,
                );
            }
            results.push(AppendResult {
                next_expected_version: head.version,
                first_position: Position(run.entries.first().map_or(0, |e| e.position)),
                last_position: head.last_position.unwrap_or_default(),
            });
            if let Some(last) = run.entries.last() {
                turn.last_position = Some(last.position);
            }
            if !run.entries.is_empty() {
                turn.effects.push(Effect::Events(run));
            }
            pending.now.heads.insert(part.stream, head);
        }
        self.frames.finish();
        debug_assert_eq!(self.frames.len() - frame_at, frame_len as usize);
        results
    }

    /// Encodes one event record of `stream`, moving `head` on, and adds it
    /// to `run`.
    #[allow(clippy::too_many_arguments)]
    fn encode_event(
        &mut self,
        stream: &StreamId,
        head: &mut StreamHead,
        e: NewEvent,
        now: i64,
        category_hash: u64,
        pending: &mut Pending,
        run: &mut EventRun,
    ) {
        let id = e.id.unwrap_or_default();
        let version = head.version + 1;
        let tags = strata_core::dcb::tag_set(e.tags);
        let rec_at = self.frames.record(
            stream.as_str(),
            version,
            id,
            now,
            e.content_type,
            &e.event_type,
            &e.metadata,
            &tags,
            &e.data,
        );
        let position = position_of(self.segment.number, self.tail + rec_at as u64).0;
        head.version = version;
        head.last_position = Some(Position(position));
        if e.id.is_some() {
            // Only caller-chosen ids can be re-sent in this batch.
            pending
                .now
                .ids
                .insert(id, (stream.clone(), version, position));
        }
        run.entries.push(IndexEntry {
            id: id.0.as_u128(),
            position,
            type_hash: key_hash(&e.event_type),
            category_hash,
            correlation_hash: e.metadata.correlation_id.as_deref().map(key_hash),
            store_made: e.id.is_none(),
        });
        if !stream.is_system() {
            pending
                .now
                .tagged
                .push((position, e.event_type.clone(), tags.clone()));
            run.tagged.push((e.event_type, tags));
        }
    }

    /// Encodes an accepted delete, tombstone or erasure of `stream`, whose
    /// head is `head`.
    pub(super) fn encode_delete(
        &mut self,
        pending: &mut Pending,
        stream: StreamId,
        mut head: StreamHead,
        kind: DeleteKind,
        turn: &mut Turn,
    ) {
        let through = head.version;
        match kind {
            DeleteKind::Soft => head.deleted_through = through,
            DeleteKind::Tombstone | DeleteKind::Erase => head.tombstoned = true,
        }
        let frame_at = self.frames.begin(kind.frame_kind());
        self.frames.delete_body(stream.as_str(), through);
        self.frames.finish();
        turn.effects
            .push(Effect::Frame(self.tail + frame_at as u64));
        turn.effects.push(Effect::Delete {
            stream: stream.clone(),
            through,
            kind,
        });
        pending.now.heads.insert(stream, head);
    }
}

/// The metadata an accepted append to a metadata stream (`$$NAME`) sets:
/// its last event's (checked by `check_metadata_append`).
fn metadata_effect(part: &StreamAppend) -> Option<Effect> {
    let target = metadata_target(part.stream.as_str())?;
    let target = StreamId::any(target).ok()?;
    let metadata = StreamMetadata::from_json(&part.events.last()?.data).ok()?;
    Some(Effect::Metadata { target, metadata })
}

/// The exact size of the frame `parts` encode to.
pub(crate) fn append_frame_len(parts: &[StreamAppend]) -> u64 {
    let mut n = FRAME_HEADER_BYTES + 4;
    for p in parts {
        for e in &p.events {
            n += RECORD_HEADER_BYTES
                + p.stream.as_str().len()
                + e.event_type.len()
                + metadata_len(&e.metadata)
                + tag_set_len(&e.tags)
                + e.data.len();
        }
    }
    align(n) as u64
}

/// The encoded size of `tags` as the set the record holds (sorted, each
/// once): without a copy when they already are one.
fn tag_set_len(tags: &[Tag]) -> usize {
    if tags.windows(2).all(|w| w[0] < w[1]) {
        crate::format::tags_len(tags)
    } else {
        crate::format::tags_len(&strata_core::dcb::tag_set(tags.to_vec()))
    }
}

/// The exact size of the frame a delete or tombstone of `stream` encodes to.
pub(super) fn delete_frame_len(stream: &StreamId) -> u64 {
    align(FRAME_HEADER_BYTES + 1 + stream.as_str().len() + 8) as u64
}

fn metadata_len(m: &strata_core::Metadata) -> usize {
    let mut n = 0;
    for s in [&m.correlation_id, &m.causation_id, &m.user_id, &m.source]
        .into_iter()
        .flatten()
    {
        n += 2 + s.len();
    }
    if !m.extra.is_empty() {
        n += 4 + m
            .extra
            .iter()
            .map(|(k, v)| 2 + k.len() + 4 + v.len())
            .sum::<usize>();
    }
    n
}
