//! Reads: a stream by version, `$all` with filters (planned as a scan, a
//! stream's positions or posting lists), and pages for subscriptions; each
//! honours retention ([`retention`]); `$all` backwards ([`backward`]).

use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) mod at;
mod backward;
pub(crate) mod offload;
mod plan;
mod query;
mod retention;
mod scan;
mod shared;

use strata_core::append_rules::check_readable;
use strata_core::{
    Direction, Error, Position, ReadFilter, RecordedEvent, Result, StreamId, Version,
};
use tracing::warn;

use crate::format::{position_of, split_position, RecordView};
use crate::index::Postings;
use crate::read::at::{damage_error, read_events_at, read_events_at_in};
use crate::read::plan::{filter_view, Plan};
pub(crate) use crate::read::retention::Cut;
use crate::read::retention::{positions_in, RetentionFilter};
use crate::segment::{DamagedBytes, Segment};
use crate::state::{damaged_index_segment, OpenStore};

/// Most result slots a read reserves up front (more grow as needed).
pub(crate) const READ_PRESIZE_EVENTS: usize = 16 * 1024;
/// How many candidate positions a filtered read checks per round.
pub(crate) const FILTER_CHUNK_EVENTS: usize = 1024;
/// Most positions a prefix read gathers from the stream index before it
/// gives up for a scan (32 MiB of positions).
pub(crate) const MAX_PREFIX_CANDIDATES: usize = 4 * 1024 * 1024;

impl OpenStore {
    /// Where the events of a stream read are (limits already checked):
    /// positions taken from the stream index at one moment, from the first
    /// version retention leaves readable, and the segments that hold them.
    pub(crate) fn plan_stream_read(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<StreamRead> {
        self.with_first_readable(stream.as_str(), Cut::Stream, |state, found| {
            let entry = check_readable(stream, found.map(|(e, _)| e), |e| &e.head)?;
            let first = found.map_or(1, |(_, first)| first);
            let window = entry
                .head
                .read_window_from(first, from, max_count, direction);
            // Empty when retention cut everything (`low` may then be past the end).
            let (lo, hi) = (window.low.saturating_sub(1), window.high.saturating_sub(1));
            let positions = entry
                .positions
                .get(lo as usize..hi as usize)
                .map(<[u64]>::to_vec)
                .unwrap_or_default();
            Ok(StreamRead {
                stream: stream.clone(),
                positions,
                segments: state.segments.clone(),
                direction,
            })
        })
    }

    /// `read_all` without the limit check. A damaged sealed index is rebuilt
    /// from its segment and the read retried once.
    pub(crate) fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        match self.read_all_once(from, max_count, filter) {
            Err(Error::Corrupt { location, reason }) => match damaged_index_segment(&location) {
                Some(n) => {
                    warn!(segment = n, reason = %reason, "a segment index is damaged; rebuilding it from the segment");
                    self.repair_index(n)?;
                    self.read_all_once(from, max_count, filter)
                }
                None => Err(Error::Corrupt { location, reason }),
            },
            other => other,
        }
    }

    fn read_all_once(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let damage = self.damage_from(from);
        let until = damage.as_ref().map_or(Position(u64::MAX), |(seg, d)| {
            position_of(seg.number, d.start)
        });
        let mut out = Vec::with_capacity(max_count.min(READ_PRESIZE_EVENTS));
        let span = (from, until);
        match Plan::for_filter(filter) {
            Plan::Scan => self.scan_all(from, until, max_count, filter, &mut out)?,
            Plan::Stream(stream) => {
                self.read_by_stream(&stream, span, max_count, filter, &mut out)?
            }
            Plan::Postings(kind, keys) => self.read_by_postings(
                kind,
                &keys,
                span,
                max_count,
                filter,
                Direction::Forward,
                &mut out,
            )?,
            Plan::Prefix(prefix) => {
                if !self.read_by_prefix(&prefix, span, max_count, filter, &mut out)? {
                    self.scan_all(from, until, max_count, filter, &mut out)?
                }
            }
        }
        out.truncate(max_count);
        match damage {
            // Nothing readable before the damage: the read touches it.
            Some((seg, d)) if out.is_empty() => Err(damage_error(&seg, &d)),
            _ => Ok(out),
        }
    }

    /// The first damaged run at or after `from` (a store opened read-only
    /// over damage): a read of `$all` stops before it, with the events up
    /// to it, or fails naming it when there are none.
    fn damage_from(&self, from: Position) -> Option<(Arc<Segment>, DamagedBytes)> {
        self.damaged.as_ref()?;
        let (from_seg, from_off) = split_position(from);
        let state = self.state.read();
        state.segments.range(from_seg..).find_map(|(&n, seg)| {
            let after = if n == from_seg { from_off } else { 0 };
            let d = seg.damage_after(after)?;
            Some((Arc::clone(seg), d.clone()))
        })
    }

    /// A filtered `$all` read that follows one stream's positions.
    fn read_by_stream(
        &self,
        stream: &StreamId,
        (from, until): (Position, Position),
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        // Retention cuts a prefix of the stream: its positions start after it.
        let (positions, segments) =
            self.with_first_readable(stream.as_str(), Cut::All, |state, found| {
                let positions = found.map_or_else(Vec::new, |(e, first)| {
                    positions_in(e, first, (from, until), usize::MAX).to_vec()
                });
                Ok((positions, state.segments.clone()))
            })?;
        for chunk in positions.chunks(FILTER_CHUNK_EVENTS) {
            read_events_at(&segments, chunk, |v| filter_view(filter, v), out)?;
            if out.len() >= max_count {
                break;
            }
        }
        Ok(())
    }

    /// A `$all` read filtered by a stream-name prefix, answered from the
    /// stream index: the first `max_count` positions at or after `from` of
    /// each stream the prefix selects, from the first version retention
    /// leaves, merged. `false` (nothing read) when the prefix selects so
    /// many events that a scan is cheaper.
    fn read_by_prefix(
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
                positions.extend_from_slice(positions_in(entry, r.first_version, span, max_count));
                if positions.len() > MAX_PREFIX_CANDIDATES {
                    return Ok(false);
                }
            }
            (positions, aged, state.segments.clone())
        };
        for name in aged {
            self.with_first_readable(name.as_str(), Cut::All, |_, found| {
                if let Some((entry, first)) = found {
                    positions.extend_from_slice(positions_in(entry, first, span, max_count));
                }
                Ok(())
            })?;
            if positions.len() > MAX_PREFIX_CANDIDATES {
                return Ok(false);
            }
        }
        positions.sort_unstable();
        positions.truncate(max_count);
        for chunk in positions.chunks(FILTER_CHUNK_EVENTS) {
            read_events_at(&segments, chunk, |v| filter_view(filter, v), out)?;
            if out.len() >= max_count {
                break;
            }
        }
        Ok(true)
    }

    /// A filtered `$all` read that follows posting lists, segment by
    /// segment, in `direction` (backwards: segments, and positions within
    /// each, newest first).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_by_postings(
        &self,
        kind: Postings,
        keys: &[u64],
        (from, until): (Position, Position),
        max_count: usize,
        filter: &ReadFilter,
        direction: Direction,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        let backward = direction == Direction::Backward;
        let (seg_numbers, segments, mut retention) = {
            let state = self.state.read();
            let retention = RetentionFilter::new(self, &state);
            let (from_seg, _) = split_position(from);
            let (until_seg, _) = split_position(until);
            let range = state.segments.range(from_seg..=until_seg).map(|(n, _)| *n);
            let nums: Vec<u32> = if backward {
                range.rev().collect()
            } else {
                range.collect()
            };
            (nums, state.segments.clone(), retention)
        };
        for n in seg_numbers {
            let mut positions: Vec<u64> = {
                let state = self.state.read();
                let mut v = Vec::new();
                for k in keys {
                    v.extend(state.postings(n, kind, *k, from.0)?);
                }
                v
            };
            if keys.len() > 1 {
                positions.sort_unstable();
                positions.dedup();
            }
            positions.retain(|p| *p < until.0);
            let chunks: Box<dyn Iterator<Item = &[u64]>> = if backward {
                Box::new(positions.rchunks(FILTER_CHUNK_EVENTS))
            } else {
                Box::new(positions.chunks(FILTER_CHUNK_EVENTS))
            };
            for chunk in chunks {
                let keep = |v: &RecordView<'_>| filter_view(filter, v) && retention.keeps(v);
                if backward {
                    let mut read = Vec::with_capacity(chunk.len());
                    read_events_at(&segments, chunk, keep, &mut read)?;
                    out.extend(read.into_iter().rev());
                } else {
                    read_events_at(&segments, chunk, keep, out)?;
                }
                if out.len() >= max_count {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// A planned read of one stream: its events' positions in ascending order.
/// [`StreamRead::read`] reads any run of them, so a caller can read a long
/// stream in bounded pieces.
pub(crate) struct StreamRead {
    stream: StreamId,
    /// Positions of the events to read, ascending.
    pub(crate) positions: Vec<u64>,
    segments: BTreeMap<u32, Arc<Segment>>,
    direction: Direction,
}

impl StreamRead {
    /// Reads the events at `positions` (a run of `self.positions`) into
    /// `out`, checking that each belongs to the stream.
    pub(crate) fn read(&self, positions: &[u64], out: &mut Vec<RecordedEvent>) -> Result<()> {
        let first_new = out.len();
        read_events_at_in(&self.segments, positions, Some(&self.stream), |_| true, out)?;
        for e in out.iter().skip(first_new) {
            if e.stream_id != self.stream {
                return Err(Error::Corrupt {
                    location: format!("position {}", e.position),
                    reason: format!(
                        "the stream index of `{}` points at an event of `{}`",
                        self.stream, e.stream_id
                    ),
                });
            }
        }
        Ok(())
    }

    /// The events read, in the order the read asked for.
    pub(crate) fn finish(&self, mut out: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
        if self.direction == Direction::Backward {
            out.reverse();
        }
        out
    }
}
