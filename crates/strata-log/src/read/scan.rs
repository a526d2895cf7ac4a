//! Sequential reads of `$all`: walking frames from a start position.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Error, Position, ReadFilter, RecordedEvent, Result, StreamId};

use crate::format::record_offsets;
use crate::format::{position_of, split_position, FrameKind, RecordView, FRAME_HEADER_BYTES};
use crate::read::at::stored_stream_id;
use crate::read::plan::filter_view;
use crate::read::retention::RetentionFilter;
use crate::read::shared::SharedBuffer;
use crate::segment::{scan_frames, ScanEnd, Segment, FIRST_FRAME_OFFSET, SCAN_CHUNK_BYTES};
use crate::state::{location, OpenStore};

/// About how many bytes of a segment a backward scan reads per window
/// (one scan chunk): the window starts at the frame that holds the byte
/// this far below the window's end.
pub(crate) const BACKWARD_WINDOW_BYTES: u64 = SCAN_CHUNK_BYTES as u64;

/// One segment's share of a scan: its number, the first frame to read, where
/// to stop (`u64::MAX`: the end of the file) and the segment.
type ScanRange = (u32, u64, u64, Arc<Segment>);

/// What a scan collects and how it stops.
struct ScanSink<'a, 'o> {
    from: Position,
    /// The scan stops at the first record at or past this position.
    until: Position,
    max_count: usize,
    filter: &'a ReadFilter,
    all: bool,
    out: &'o mut Vec<RecordedEvent>,
    /// Consecutive events often share a stream: its id is reused.
    last_stream: Option<StreamId>,
    failure: Option<Error>,
    /// The read buffer the latest events point into, and where in `out`
    /// its events start.
    buffer: SharedBuffer,
    /// What retention cuts.
    retention: RetentionFilter<'a>,
}

impl OpenStore {
    /// Reads `$all` sequentially from `from` up to (not including) `until`,
    /// keeping events that pass `filter` and retention.
    pub(crate) fn scan_all(
        &self,
        from: Position,
        until: Position,
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        let (ranges, retention) = self.scan_ranges(from, until)?;
        let mut sink = ScanSink {
            from,
            until,
            max_count,
            filter,
            all: filter.is_all(),
            out,
            last_stream: None,
            failure: None,
            buffer: SharedBuffer::default(),
            retention,
        };
        for range in ranges {
            self.scan_segment(range, &mut sink)?;
            if sink.out.len() >= max_count {
                break;
            }
        }
        sink.buffer.release(sink.out);
        Ok(())
    }

    /// Reads `$all` backwards from `before` (exclusive) down to `floor`
    /// (inclusive, a frame start or `START`), keeping events that pass
    /// `filter` and retention, newest first, until `out` holds
    /// `max_count`. Segments are visited newest first; each is read in
    /// windows of about [`BACKWARD_WINDOW_BYTES`] that end where the
    /// previous window began, found with the segment's frame index, and
    /// each window is scanned forward and kept in reverse. A page reads
    /// the windows its events lie in and no more (a filter that selects
    /// few events still scans until it has its page, as a forward scan
    /// does).
    pub(crate) fn scan_all_backward(
        &self,
        (floor, before): (Position, Position),
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        let (floor_seg, floor_off) = split_position(floor);
        let (before_seg, before_off) = split_position(before);
        if floor >= before {
            return Ok(());
        }
        let (segments, retention) = {
            let state = self.state.read();
            let mut segments = Vec::new();
            for (&n, seg) in state.segments.range(floor_seg..=before_seg).rev() {
                if let Some(end) = state.readable_end(n) {
                    segments.push((n, end, seg.clone()));
                }
            }
            (segments, RetentionFilter::new(self, &state))
        };
        let mut retention = retention;
        for (n, end, seg) in segments {
            let limit = if end == u64::MAX {
                seg.file
                    .len()
                    .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?
            } else {
                end
            };
            let low = if n == floor_seg {
                floor_off.max(FIRST_FRAME_OFFSET)
            } else {
                FIRST_FRAME_OFFSET
            };
            // Records at offsets below `upper` are wanted; the first window
            // may end inside a frame (a `before` in this segment), so it
            // scans on to `limit` and stops at `upper`; every later window
            // ends at a frame start.
            let mut upper = if n == before_seg {
                before_off.min(limit)
            } else {
                limit
            };
            // Damage above `before` (a store opened read-only over it) is
            // never scanned into: the first window stops short of it.
            let mut scan_to = seg
                .damage
                .iter()
                .map(|d| d.start)
                .find(|start| *start >= upper)
                .map_or(limit, |start| start.min(limit));
            while upper > low {
                let start = match upper.saturating_sub(BACKWARD_WINDOW_BYTES) {
                    at if at <= low => low,
                    at => self.state.read().frame_start(n, at)?.max(low),
                };
                let mut window = Vec::new();
                let mut sink = ScanSink {
                    from: position_of(n, start),
                    until: position_of(n, upper),
                    max_count: usize::MAX,
                    filter,
                    all: filter.is_all(),
                    out: &mut window,
                    last_stream: None,
                    failure: None,
                    buffer: SharedBuffer::default(),
                    retention,
                };
                let scanned = self.scan_segment((n, start, scan_to, seg.clone()), &mut sink);
                sink.buffer.release(sink.out);
                retention = sink.retention;
                scanned?;
                out.extend(window.into_iter().rev().take(max_count - out.len()));
                if out.len() >= max_count {
                    return Ok(());
                }
                upper = start;
                scan_to = start;
            }
        }
        Ok(())
    }

    /// The segments a scan from `from` to `until` visits, each with where it
    /// starts and stops, and the retention filter of the scan.
    fn scan_ranges(
        &self,
        from: Position,
        until: Position,
    ) -> Result<(Vec<ScanRange>, RetentionFilter<'_>)> {
        let (from_seg, from_off) = split_position(from);
        let (until_seg, until_off) = split_position(until);
        let state = self.state.read();
        let mut ranges = Vec::new();
        for (&n, seg) in state.segments.range(from_seg..=until_seg) {
            let Some(mut end) = state.readable_end(n) else {
                continue;
            };
            if n == until_seg {
                end = end.min(until_off);
            }
            let start = if n == from_seg {
                state.frame_start(n, from_off)?
            } else {
                FIRST_FRAME_OFFSET
            };
            ranges.push((n, start, end, seg.clone()));
        }
        Ok((ranges, RetentionFilter::new(self, &state)))
    }

    /// Scans one segment's frames into `sink`.
    fn scan_segment(
        &self,
        (n, start, end, seg): ScanRange,
        sink: &mut ScanSink<'_, '_>,
    ) -> Result<()> {
        let limit = if end == u64::MAX {
            seg.file
                .len()
                .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?
        } else {
            end
        };
        let result = scan_frames(
            seg.file.as_ref(),
            seg.check,
            start,
            limit,
            self.config.max_segment_bytes,
            |offset, kind, body, shared, body_at| {
                // A frame at or past where the read ends is not looked into
                // (it may be damage a backward read stops short of).
                if position_of(n, offset) >= sink.until {
                    return Ok(false);
                }
                if kind != FrameKind::Append {
                    return Ok(true);
                }
                let body_start = offset + FRAME_HEADER_BYTES as u64;
                let frame = FrameAt {
                    segment: n,
                    path: &seg.path,
                    shared,
                    body_at,
                };
                for (rec_off, rel) in record_offsets(body, body_start)? {
                    let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                    if !sink.take(&frame, &view, rec_off, rel) {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
        .map_err(|e| Error::Corrupt {
            location: seg.path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let Some(e) = sink.failure.take() {
            return Err(e);
        }
        match result {
            ScanEnd::Clean { .. } => Ok(()),
            ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason } => {
                Err(Error::Corrupt {
                    location: location(&seg.path, at),
                    reason,
                })
            }
        }
    }
}

/// Where the frame being scanned lives.
struct FrameAt<'a> {
    segment: u32,
    path: &'a PathBuf,
    shared: &'a Bytes,
    body_at: usize,
}

impl ScanSink<'_, '_> {
    /// Keeps the record at `rec_off` if it passes the filter; `false` stops the scan.
    // Inlined into the frame walk, its one caller: out of line, each event
    // was moved twice more (memcpy) and a scan took ~1.5% more instructions.
    #[inline(always)]
    fn take(
        &mut self,
        frame: &FrameAt<'_>,
        view: &RecordView<'_>,
        rec_off: u64,
        rel: usize,
    ) -> bool {
        let position = position_of(frame.segment, rec_off);
        if position >= self.until {
            return false;
        }
        if position < self.from || view.is_removed() {
            return true;
        }
        if !self.all && !filter_view(self.filter, view) {
            return true;
        }
        if !self.retention.keeps(view) {
            return true;
        }
        let at = frame.body_at + rel;
        self.buffer.enter(frame.shared, self.out);
        let stream = match &self.last_stream {
            Some(s) if s.as_str() == view.stream => s.clone(),
            _ => match stored_stream_id(view.stream, frame.path, rec_off) {
                Ok(s) => {
                    self.last_stream = Some(s.clone());
                    s
                }
                Err(e) => {
                    self.failure = Some(e);
                    return false;
                }
            },
        };
        // Matched and pushed straight from the decoder's result: each move
        // of an event (some 270 bytes) through another `Result` showed as
        // `memmove` in profiles of `read-all`.
        match view.to_event(stream, position, frame.shared, at) {
            Ok(e) if self.all || self.filter.matches(&e) => self.out.push(e),
            Ok(_) => {}
            Err(reason) => {
                self.failure = Some(Error::Corrupt {
                    location: location(frame.path, rec_off),
                    reason: reason.to_string(),
                });
                return false;
            }
        }
        self.out.len() < self.max_count
    }
}
