//! Reads of `$all` backwards (`EventStore::read_all_backward`): newest
//! first, below an exclusive bound, with the plans of a forward read run
//! from the other end. A scan walks segments newest first and each one in
//! windows found through its frame index ([`OpenStore::scan_all_backward`]);
//! a stream filter takes the stream's last positions from the stream
//! index; posting lists are read segment by segment, newest first; a
//! stream-name prefix takes the last positions of each stream it selects
//! (or falls back to a scan when it selects too many). Retention, erasure
//! and a damaged store's unreadable bytes are handled as a forward read
//! handles them.

use std::sync::Arc;

use strata_core::{Direction, Error, Position, ReadFilter, RecordedEvent, Result, StreamId};
use tracing::warn;

use crate::format::{position_of, split_position};
use crate::read::at::{damage_error, read_events_at};
use crate::read::plan::{filter_view, Plan};
use crate::read::retention::{positions_below, Cut};
use crate::read::{FILTER_CHUNK_EVENTS, MAX_PREFIX_CANDIDATES};
use crate::segment::{DamagedBytes, Segment};
use crate::state::{damaged_index_segment, OpenStore};

impl OpenStore {
    /// `read_all_backward` without the limit check. A damaged sealed index
    /// is rebuilt from its segment and the read retried once.
    pub(crate) fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        match self.read_all_backward_once(before, max_count, filter) {
            Err(Error::Corrupt { location, reason }) => match damaged_index_segment(&location) {
                Some(n) => {
                    warn!(segment = n, reason = %reason, "a segment index is damaged; rebuilding it from the segment");
                    self.repair_index(n)?;
                    self.read_all_backward_once(before, max_count, filter)
                }
                None => Err(Error::Corrupt { location, reason }),
            },
            other => other,
        }
    }

    fn read_all_backward_once(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        if max_count == 0 || before == Position::START {
            return Ok(Vec::new());
        }
        let damage = self.damage_before(before);
        // Reading stops where the damage ends: below it nothing is read.
        let floor = damage
            .as_ref()
            .map_or(Position::START, |(seg, d)| Position(seg.resume_after(d)));
        let span = (floor, before);
        let mut out = Vec::with_capacity(max_count.min(super::READ_PRESIZE_EVENTS));
        match Plan::for_filter(filter) {
            Plan::Scan => self.scan_all_backward(span, max_count, filter, &mut out)?,
            Plan::Stream(stream) => {
                self.read_by_stream_backward(&stream, span, max_count, filter, &mut out)?
            }
            Plan::Postings(kind, keys) => self.read_by_postings(
                kind,
                &keys,
                span,
                max_count,
                filter,
                Direction::Backward,
                &mut out,
            )?,
            Plan::Prefix(prefix) => {
                if !self.read_by_prefix_backward(&prefix, span, max_count, filter, &mut out)? {
                    self.scan_all_backward(span, max_count, filter, &mut out)?
                }
            }
        }
        out.truncate(max_count);
        match damage {
            // Nothing readable after the damage: the read touches it.
            Some((seg, d)) if out.is_empty() => Err(damage_error(&seg, &d)),
            _ => Ok(out),
        }
    }

    /// The last damaged run that starts below `before` (a store opened
    /// read-only over damage): a backward read stops after it, with the
    /// events above it, or fails naming it when there are none.
    fn damage_before(&self, before: Position) -> Option<(Arc<Segment>, DamagedBytes)> {
        self.damaged.as_ref()?;
        let (before_seg, _) = split_position(before);
        let state = self.state.read();
        state
            .segments
            .range(..=before_seg)
            .rev()
            .find_map(|(&n, seg)| {
                let d = seg
                    .damage
                    .iter()
                    .rev()
                    .find(|d| position_of(n, d.start) < before)?;
                Some((Arc::clone(seg), d.clone()))
            })
    }

    /// A filtered backward read that follows one stream's positions, from
    /// its last one below `before` down to the first retention leaves. The
    /// positions are taken from the stream index in batches, newest first,
    /// so a page of a long stream copies about a page of them.
    fn read_by_stream_backward(
        &self,
        stream: &StreamId,
        (floor, before): (Position, Position),
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        let batch = max_count.max(FILTER_CHUNK_EVENTS);
        let mut upper = before;
        loop {
            let (positions, segments) =
                self.with_first_readable(stream.as_str(), Cut::All, |state, found| {
                    let positions = found.map_or_else(Vec::new, |(e, first)| {
                        positions_below(e, first, (floor, upper), batch).to_vec()
                    });
                    Ok((positions, state.segments.clone()))
                })?;
            let Some(&lowest) = positions.first() else {
                return Ok(());
            };
            for chunk in positions.rchunks(FILTER_CHUNK_EVENTS) {
                let mut read = Vec::with_capacity(chunk.len());
                read_events_at(&segments, chunk, |v| filter_view(filter, v), &mut read)?;
                out.extend(read.into_iter().rev());
                if out.len() >= max_count {
                    return Ok(());
                }
            }
            upper = Position(lowest);
        }
    }

    /// A backward read filtered by a stream-name prefix, from the stream
    /// index: the last `max_count` positions below `before` of each stream
    /// the prefix selects, merged, newest first. `false` (nothing read)
    /// when the prefix selects so many events that a scan is cheaper.
    fn read_by_prefix_backward(
        &self,
        prefix: &str,
        span: (Position, Position),
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<bool> {
        let (mut positions, aged, segments) = {
            let state = self.state.read();
            let index = &state.streams;
            let mut positions = Vec::new();
            // Streams whose `max_age` cut needs point reads: done below,
            // without the lock.
            let mut aged = Vec::new();
            for (name, entry) in &index.streams {
                if !name.as_str().starts_with(prefix) {
                    continue;
                }
                let r = index.retention(name.as_str(), entry, Cut::All);
                if r.not_before.is_some() {
                    aged.push(name.clone());
                    continue;
                }
                positions.extend_from_slice(positions_below(
                    entry,
                    r.first_version,
                    span,
                    max_count,
                ));
                if positions.len() > MAX_PREFIX_CANDIDATES {
                    return Ok(false);
                }
            }
            (positions, aged, state.segments.clone())
        };
        for name in aged {
            self.with_first_readable(name.as_str(), Cut::All, |_, found| {
                if let Some((entry, first)) = found {
                    positions.extend_from_slice(positions_below(entry, first, span, max_count));
                }
                Ok(())
            })?;
            if positions.len() > MAX_PREFIX_CANDIDATES {
                return Ok(false);
            }
        }
        // The newest `max_count`, ascending.
        positions.sort_unstable();
        let newest = positions.len().saturating_sub(max_count);
        for chunk in positions[newest..].rchunks(FILTER_CHUNK_EVENTS) {
            let mut read = Vec::with_capacity(chunk.len());
            read_events_at(&segments, chunk, |v| filter_view(filter, v), &mut read)?;
            out.extend(read.into_iter().rev());
            if out.len() >= max_count {
                break;
            }
        }
        Ok(true)
    }
}
