//! Encoding decided requests as frames in the batch buffer, and the index
//! and stream-index changes each one brings once it is committed.

use strata_core::append_rules::StreamHead;
use strata_core::metadata::metadata_target;
use strata_core::{AppendResult, NewEvent, Position, StreamAppend, StreamId, StreamMetadata};

use crate::format::{align, position_of, FrameKind, FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};
use crate::index::{key_hash, IndexEntry};
use crate::state::State;
use crate::streams::DeleteKind;
use crate::writer::pending::Pending;
use crate::writer::{Effect, Turn, Writer};

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
            let mut first = None;
            let category_hash = key_hash(part.stream.category());
            for e in part.events {
                let position = self.encode_event(
                    &part.stream,
                    &mut head,
                    e,
                    now,
                    category_hash,
                    pending,
                    turn,
                );
                first.get_or_insert(position);
            }
            results.push(AppendResult {
                next_expected_version: head.version,
                first_position: Position(first.unwrap_or_default()),
                last_position: head.last_position.unwrap_or_default(),
            });
            pending.now.heads.insert(part.stream, head);
        }
        self.frames.finish();
        debug_assert_eq!(self.frames.len() - frame_at, frame_len as usize);
        results
    }

    /// Encodes one event record of `stream`, moving `head` on; returns its position.
    #[allow(clippy::too_many_arguments)]
    fn encode_event(
        &mut self,
        stream: &StreamId,
        head: &mut StreamHead,
        e: NewEvent,
        now: i64,
        category_hash: u64,
        pending: &mut Pending,
        turn: &mut Turn,
    ) -> u64 {
        let id = e.id.unwrap_or_default();
        let version = head.version + 1;
        let tags = strata_core::dcb::tag_set(e.tags);
        let tagged = (!stream.is_system()).then(|| (e.event_type.clone(), tags.clone()));
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
        if let Some((ty, tags)) = &tagged {
            pending
                .now
                .tagged
                .push((position, ty.clone(), tags.clone()));
        }
        turn.effects.push(Effect::Event {
            stream: stream.clone(),
            version,
            tagged,
            entry: IndexEntry {
                id: id.0.as_u128(),
                position,
                type_hash: key_hash(&e.event_type),
                category_hash,
                correlation_hash: e.metadata.correlation_id.as_deref().map(key_hash),
            },
        });
        turn.last_position = Some(position);
        position
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
    let target = StreamId::new(target)
        .or_else(|_| StreamId::system(target))
        .ok()?;
    let metadata = StreamMetadata::from_json(&part.events.last()?.data).ok()?;
    Some(Effect::Metadata { target, metadata })
}

/// The exact size of the frame `parts` encode to.
pub(super) fn append_frame_len(parts: &[StreamAppend]) -> u64 {
    let mut n = FRAME_HEADER_BYTES + 4;
    for p in parts {
        for e in &p.events {
            n += RECORD_HEADER_BYTES
                + p.stream.as_str().len()
                + e.event_type.len()
                + metadata_len(&e.metadata)
                + crate::format::tags_len(&strata_core::dcb::tag_set(e.tags.clone()))
                + e.data.len();
        }
    }
    align(n) as u64
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
