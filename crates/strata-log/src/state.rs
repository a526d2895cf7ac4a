//! The in-memory state shared by the writer and readers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Error, Position, RecordedEvent, Result, StreamId};

use crate::format::{split_position, RecordView};
use crate::index::{active_postings_from, ActiveIndex, Postings, SealedIndex};
use crate::segment::{read_records, Segment, FIRST_FRAME_OFFSET};
use crate::streams::StreamIndex;

/// Readers' view of the store. Only the writer thread mutates it, after the
/// bytes it describes are written (and, in `Always` mode, synced).
pub struct State {
    /// Every stream's head and version → position map.
    pub streams: StreamIndex,
    /// Index of the segment being written.
    pub active: ActiveIndex,
    /// Number of the segment being written.
    pub active_segment: u32,
    /// Indexes of sealed segments.
    pub sealed: BTreeMap<u32, Arc<SealedIndex>>,
    /// Indexes of segments just sealed whose index file is being written in
    /// the background; they move to `sealed` when it is done.
    pub sealing: BTreeMap<u32, Arc<ActiveIndex>>,
    /// Every segment, sealed and active.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    /// Readers may read the active segment up to this offset.
    pub visible_end: u64,
    /// Position of the last event (START if none).
    pub head: Position,
}

impl State {
    /// The position of an event id, if recorded.
    pub fn lookup_id(&self, id: u128) -> Result<Option<u64>> {
        if let Some(p) = self.active.ids.get(&id) {
            return Ok(Some(*p));
        }
        for s in self.sealing.values().rev() {
            if let Some(p) = s.ids.get(&id) {
                return Ok(Some(*p));
            }
        }
        for (n, s) in self.sealed.iter().rev() {
            if let Some(p) = s.lookup_id(id).map_err(|e| self.index_error(*n, e))? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    fn index_error(&self, segment: u32, e: std::io::Error) -> Error {
        Error::Corrupt {
            location: format!("index of segment {segment}"),
            reason: e.to_string(),
        }
    }

    /// The offset of the frame in `segment` that holds (or follows) `offset`.
    pub fn frame_start(&self, segment: u32, offset: u64) -> Result<u64> {
        let transient = if segment == self.active_segment {
            Some(&self.active)
        } else {
            self.sealing.get(&segment).map(|a| a.as_ref())
        };
        let found = if let Some(idx) = transient {
            let frames = &idx.frames;
            let i = frames.partition_point(|f| *f <= offset);
            if i == 0 {
                None
            } else {
                Some(frames[i - 1])
            }
        } else {
            match self.sealed.get(&segment) {
                Some(s) => s
                    .frame_at_or_before(offset)
                    .map_err(|e| self.index_error(segment, e))?,
                None => None,
            }
        };
        Ok(found.unwrap_or(FIRST_FRAME_OFFSET))
    }

    /// Where readers must stop in `segment`.
    pub fn readable_end(&self, segment: u32) -> Option<u64> {
        if segment == self.active_segment {
            Some(self.visible_end)
        } else if segment < self.active_segment {
            // Sealed segments are complete; `u64::MAX` means "to the end of the file".
            Some(u64::MAX)
        } else {
            None
        }
    }

    /// Positions `>= from` in `segment` under posting `kind`/`key`.
    pub fn postings(&self, segment: u32, kind: Postings, key: u64, from: u64) -> Result<Vec<u64>> {
        if segment == self.active_segment {
            Ok(active_postings_from(&self.active, kind, key, from).to_vec())
        } else if let Some(idx) = self.sealing.get(&segment) {
            Ok(active_postings_from(idx, kind, key, from).to_vec())
        } else {
            match self.sealed.get(&segment) {
                Some(s) => s
                    .postings_from(kind, key, from)
                    .map_err(|e| self.index_error(segment, e)),
                None => Ok(Vec::new()),
            }
        }
    }
}

/// Describes a location for `Corrupt` errors.
pub fn location(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}

/// Reads and checks the events at `positions` (ascending, one segment per
/// run). Each record must name the stream and version the caller expects
/// when `expect` is given, otherwise the index is wrong and that is reported
/// as corruption rather than served.
pub fn read_events_at(
    segments: &BTreeMap<u32, Arc<Segment>>,
    positions: &[u64],
    keep: impl FnMut(&RecordView<'_>) -> bool,
    out: &mut Vec<RecordedEvent>,
) -> Result<()> {
    read_events_at_in(segments, positions, None, keep, out)
}

/// [`read_events_at`] for events that should all belong to `stream`: their
/// `StreamId` is shared instead of rebuilt per event.
pub fn read_events_at_in(
    segments: &BTreeMap<u32, Arc<Segment>>,
    positions: &[u64],
    stream: Option<&StreamId>,
    mut keep: impl FnMut(&RecordView<'_>) -> bool,
    out: &mut Vec<RecordedEvent>,
) -> Result<()> {
    let mut i = 0;
    while i < positions.len() {
        let (seg, _) = split_position(Position(positions[i]));
        let mut j = i;
        while j < positions.len() && split_position(Position(positions[j])).0 == seg {
            j += 1;
        }
        let segment = segments.get(&seg).ok_or_else(|| Error::Corrupt {
            location: format!("position {}", positions[i]),
            reason: format!("the index points into segment {seg}, which does not exist"),
        })?;
        let offsets: Vec<u64> = positions[i..j]
            .iter()
            .map(|p| split_position(Position(*p)).1)
            .collect();
        let bufs = read_records(segment.file.as_ref(), &offsets)
            .map_err(|e| Error::io(format!("reading {}", segment.path.display()), e))?;
        for ((buf, at), (&off, &pos)) in bufs.iter().zip(offsets.iter().zip(&positions[i..j])) {
            let view = RecordView::parse(&buf[*at..]).map_err(|reason| Error::Corrupt {
                location: location(&segment.path, off),
                reason,
            })?;
            if keep(&view) {
                match stream {
                    Some(s) if s.as_str() == view.stream => {
                        let e = view.to_event(s.clone(), Position(pos), buf, *at).map_err(
                            |reason| Error::Corrupt {
                                location: location(&segment.path, off),
                                reason,
                            },
                        )?;
                        out.push(e);
                    }
                    _ => out.push(to_event(
                        &view,
                        Position(pos),
                        buf,
                        *at,
                        &segment.path,
                        off,
                    )?),
                }
            }
        }
        i = j;
    }
    Ok(())
}

/// Builds a `RecordedEvent` from a checked record.
pub fn to_event(
    view: &RecordView<'_>,
    position: Position,
    buf: &Bytes,
    at: usize,
    path: &Path,
    offset: u64,
) -> Result<RecordedEvent> {
    let stream = StreamId::new(view.stream)
        .or_else(|_| StreamId::system(view.stream))
        .map_err(|e| Error::Corrupt {
            location: location(path, offset),
            reason: format!("stored stream name is invalid: {e}"),
        })?;
    view.to_event(stream, position, buf, at)
        .map_err(|reason| Error::Corrupt {
            location: location(path, offset),
            reason,
        })
}
