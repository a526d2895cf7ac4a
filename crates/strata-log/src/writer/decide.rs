//! Deciding each request of a batch: tombstones, exact retries, guards and
//! the events a metadata stream accepts, checked against the stream heads as
//! the requests before it in the batch leave them; and whether it still fits
//! in the active segment.

use std::collections::VecDeque;

use strata_core::append_rules::{check_erase, check_guard, check_metadata_append, StreamHead};
use strata_core::dcb::AppendCondition;
use strata_core::handoff::Reply as ReplyTo;
use strata_core::metadata::erased_metadata_stream;
use strata_core::{AppendResult, Error, ExpectedVersion, Position, Result, StreamAppend, StreamId};

use crate::segment::FIRST_FRAME_OFFSET;
use crate::state::State;
use crate::streams::DeleteKind;
use crate::writer::encode::delete_frame_len;
use crate::writer::pending::{Decided, Pending};
use crate::writer::{PendingAck, Request, Turn, Writer};

/// An append's parts, its condition and its frame's size.
type AppendParts = (Vec<StreamAppend>, Option<Box<AppendCondition>>, u64);

/// What became of an append after its checks.
enum AppendDecision {
    /// Refused; the caller is told now.
    Refused(Error),
    /// An exact retry: answered with the original outcome after this batch
    /// is synced (the original may be in it).
    Retried(Vec<AppendResult>),
    /// To be written.
    Accepted,
}

impl Writer {
    /// Decides and encodes the requests of `batch` in order; returns what
    /// the turn decided. A request that does not fit in the active segment
    /// and the ones after it are carried to the next turn, after the segment
    /// is sealed.
    pub(super) fn decide(&mut self, batch: Vec<Request>, turn: &mut Turn) -> Decided {
        // Turns the stage has published are in the state: read it after
        // learning which, so none is missed.
        let published = self.stage.published();
        while self
            .inflight
            .front()
            .is_some_and(|(seq, _)| *seq <= published)
        {
            self.inflight.pop_front();
        }
        let store = self.store.clone();
        let state = store.state.read();
        let mut pending = Pending::over(std::mem::take(&mut self.inflight));
        let mut queue: VecDeque<Request> = batch.into();
        while let Some(req) = queue.pop_front() {
            let carried = match req {
                Request::Append {
                    parts,
                    condition,
                    frame_len,
                    reply,
                } => self.take_append(
                    &state,
                    &mut pending,
                    (parts, condition, frame_len),
                    reply,
                    turn,
                ),
                Request::Delete {
                    stream,
                    expected,
                    kind,
                    reply,
                } => self.take_delete(&state, &mut pending, stream, expected, kind, reply, turn),
                Request::Sync { reply } => {
                    turn.force_sync = true;
                    if let Some(r) = reply {
                        turn.acks.push(PendingAck::Sync(r));
                    }
                    None
                }
                Request::Barrier { reply } => {
                    turn.acks.push(PendingAck::Sync(reply));
                    None
                }
                Request::Seal { reply } => {
                    // An empty segment has nothing to seal.
                    if self.tail + self.frames.len() as u64 > FIRST_FRAME_OFFSET {
                        turn.rotate = true;
                    }
                    turn.after_seal.push(reply);
                    None
                }
                Request::Close { reply } => {
                    turn.close = Some(reply);
                    self.carry.extend(queue.drain(..));
                    break;
                }
            };
            if let Some(req) = carried {
                turn.rotate = true;
                self.carry.push_back(req);
                self.carry.extend(queue.drain(..));
                break;
            }
        }
        self.inflight = pending.earlier;
        pending.now
    }

    /// Decides one append; returns it back if the segment must be sealed first.
    fn take_append(
        &mut self,
        state: &State,
        pending: &mut Pending,
        (parts, condition, frame_len): AppendParts,
        reply: ReplyTo<Vec<AppendResult>>,
        turn: &mut Turn,
    ) -> Option<Request> {
        match self.check_append(state, pending, &parts, condition.as_deref()) {
            AppendDecision::Refused(e @ Error::ConditionFailed { .. }) => {
                turn.acks.push(PendingAck::Refused(reply, e));
                return None;
            }
            AppendDecision::Refused(e) => {
                let _ = reply.send(Err(e));
                return None;
            }
            AppendDecision::Retried(results) => {
                turn.acks.push(PendingAck::Append(reply, results));
                return None;
            }
            AppendDecision::Accepted => {}
        }
        if !self.fits(frame_len) {
            let max_segment = self.store.config.max_segment_bytes;
            if self.frames.is_empty() && self.tail == FIRST_FRAME_OFFSET {
                let _ = reply.send(Err(Error::invalid(format!(
                    "append of {frame_len} bytes does not fit in a segment of {max_segment} bytes"
                ))));
                return None;
            }
            return Some(Request::Append {
                parts,
                condition,
                frame_len,
                reply,
            });
        }
        let results = self.encode_append(state, pending, parts, frame_len, turn);
        turn.acks.push(PendingAck::Append(reply, results));
        None
    }

    /// Tombstones, then exact retries, then guards, then what a metadata
    /// stream accepts, for every part; then the condition, if any, against
    /// the store as the requests before it in the batch leave it.
    fn check_append(
        &self,
        state: &State,
        pending: &Pending,
        parts: &[StreamAppend],
        condition: Option<&AppendCondition>,
    ) -> AppendDecision {
        let mut retries = Vec::with_capacity(parts.len());
        for part in parts {
            // A tombstone refuses everything, exact retries included.
            if pending
                .head(state, &part.stream)
                .is_some_and(|h| h.tombstoned)
            {
                return AppendDecision::Refused(Error::StreamDeleted {
                    stream: part.stream.clone(),
                });
            }
            match self.retry_of(state, pending, part) {
                Ok(r) => retries.push(r),
                Err(e) => return AppendDecision::Refused(e),
            }
        }
        let n_retries = retries.iter().filter(|r| r.is_some()).count();
        if n_retries == parts.len() {
            return AppendDecision::Retried(retries.into_iter().flatten().collect());
        }
        if n_retries > 0 {
            let event_id = parts
                .iter()
                .zip(&retries)
                .find(|(_, r)| r.is_some())
                .and_then(|(p, _)| p.events.first().and_then(|e| e.id))
                .unwrap_or_default();
            return AppendDecision::Refused(Error::IdempotencyConflict {
                event_id,
                reason:
                    "a multi-stream append re-sends some recorded streams together with new ones"
                        .into(),
            });
        }
        for part in parts {
            if let Err(e) = check_guard(
                &part.stream,
                part.expected,
                pending.head(state, &part.stream),
            ) {
                return AppendDecision::Refused(e);
            }
            if let Err(e) = check_metadata_append(&part.stream, &part.events) {
                return AppendDecision::Refused(e);
            }
        }
        if condition.is_some() {
            if let Err(e) = state.tags.check_complete() {
                return AppendDecision::Refused(e);
            }
        }
        if let Some(position) = condition.and_then(|c| pending.condition_match(state, c)) {
            return AppendDecision::Refused(Error::ConditionFailed {
                position: Position(position),
            });
        }
        AppendDecision::Accepted
    }

    /// Decides one delete or tombstone; returns it back if the segment must
    /// be sealed first.
    #[allow(clippy::too_many_arguments)]
    fn take_delete(
        &mut self,
        state: &State,
        pending: &mut Pending,
        stream: StreamId,
        expected: ExpectedVersion,
        kind: DeleteKind,
        reply: ReplyTo<()>,
        turn: &mut Turn,
    ) -> Option<Request> {
        let head = pending.head(state, &stream).copied();
        if let Err(e) = check_delete(&stream, expected, kind, head.as_ref()) {
            let _ = reply.send(Err(e));
            return None;
        }
        if !self.fits(delete_frame_len(&stream)) {
            return Some(Request::Delete {
                stream,
                expected,
                kind,
                reply,
            });
        }
        let erased_meta = match kind {
            DeleteKind::Erase => erased_metadata_stream(&stream),
            _ => None,
        };
        self.encode_delete(pending, stream, head.unwrap_or_default(), kind, turn);
        if let Some(meta) = erased_meta {
            // The erase frame tombstones the metadata stream too
            // (`StreamIndex::record_delete`): later requests of this batch
            // must see it so.
            let mut h = pending.head(state, &meta).copied().unwrap_or_default();
            h.tombstoned = true;
            pending.now.heads.insert(meta, h);
        }
        turn.acks.push(PendingAck::Delete(reply));
        None
    }

    /// Whether a frame of `len` bytes still fits in the active segment.
    fn fits(&self, len: u64) -> bool {
        self.tail + self.frames.len() as u64 + len <= self.store.config.max_segment_bytes
    }
}

/// Whether a delete, tombstone or erasure of `stream`, whose head is
/// `head`, may go ahead.
fn check_delete(
    stream: &StreamId,
    expected: ExpectedVersion,
    kind: DeleteKind,
    head: Option<&StreamHead>,
) -> Result<()> {
    if kind == DeleteKind::Erase {
        return check_erase(stream, expected, head);
    }
    if head.is_some_and(|h| h.tombstoned) {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    let live = head.is_some_and(|h| h.version > h.deleted_through);
    if kind == DeleteKind::Soft && !live {
        return Err(Error::StreamNotFound {
            stream: stream.clone(),
        });
    }
    check_guard(stream, expected, head)
}
