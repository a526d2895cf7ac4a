//! Point reads: the events at known positions, as the stream index and the
//! posting lists give them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::{Error, Position, RecordedEvent, Result, StreamId};

use crate::format::{split_position, RecordView};
use crate::read::shared::SharedBuffer;
use crate::segment::{read_records, DamagedBytes, Segment};
use crate::state::location;

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
        if let Some(d) = offsets.iter().find_map(|o| segment.damage_at(*o)) {
            return Err(damage_error(segment, d));
        }
        let bufs = read_records(segment.file.as_ref(), &offsets)
            .map_err(|e| Error::io(format!("reading {}", segment.path.display()), e))?;
        let mut shared = SharedBuffer::default();
        for ((buf, at), (&off, &pos)) in bufs.iter().zip(offsets.iter().zip(&positions[i..j])) {
            if segment.removed_at(&buf[*at..]) {
                continue;
            }
            shared.enter(buf, out);
            let view = RecordView::parse(&buf[*at..]).map_err(|reason| Error::Corrupt {
                location: location(&segment.path, off),
                reason: reason.to_string(),
            })?;
            if view.is_removed() {
                continue;
            }
            if keep(&view) {
                match stream {
                    Some(s) if s.as_str() == view.stream => {
                        let e = view.to_event(s.clone(), Position(pos), buf, *at).map_err(
                            |reason| Error::Corrupt {
                                location: location(&segment.path, off),
                                reason: reason.to_string(),
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
        shared.release(out);
        i = j;
    }
    Ok(())
}

/// When the event at `offset` of `segment` was recorded (microseconds since
/// the epoch), checked to be version `expect.1` of stream `expect.0`.
pub fn recorded_at(segment: &Segment, offset: u64, expect: (&str, u64)) -> Result<i64> {
    if let Some(d) = segment.damage_at(offset) {
        return Err(damage_error(segment, d));
    }
    let corrupt = |reason: String| Error::Corrupt {
        location: location(&segment.path, offset),
        reason,
    };
    let bufs = read_records(segment.file.as_ref(), &[offset])
        .map_err(|e| Error::io(format!("reading {}", segment.path.display()), e))?;
    let (buf, at) = bufs
        .first()
        .ok_or_else(|| corrupt("no record was read".into()))?;
    if segment.removed_at(buf.get(*at..).unwrap_or_default()) {
        // A scavenge removed it: it was older than any cut since.
        return Ok(i64::MIN);
    }
    let view = RecordView::parse(buf.get(*at..).unwrap_or_default())
        .map_err(|reason| corrupt(reason.to_string()))?;
    if (view.stream, view.version) != expect {
        return Err(corrupt(format!(
            "the stream index of `{}` points at version {} of `{}` as its version {}",
            expect.0, view.version, view.stream, expect.1
        )));
    }
    Ok(view.recorded_at_micros())
}

/// The stream of a record at `offset` of `path`: a user or system stream
/// name, or `Corrupt`.
pub fn stored_stream_id(name: &str, path: &Path, offset: u64) -> Result<StreamId> {
    StreamId::any(name).map_err(|e| Error::Corrupt {
        location: location(path, offset),
        reason: format!("stored stream name is invalid: {e}"),
    })
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
    let stream = stored_stream_id(view.stream, path, offset)?;
    view.to_event(stream, position, buf, at)
        .map_err(|reason| Error::Corrupt {
            location: location(path, offset),
            reason: reason.to_string(),
        })
}

/// The error a read that touches damaged bytes gets (a store opened
/// read-only over damage): where the damage is, what is wrong, and where
/// reading can go on.
pub fn damage_error(segment: &Segment, d: &DamagedBytes) -> Error {
    let to = if d.end == u64::MAX {
        "the end of the segment".to_string()
    } else {
        format!("offset {}", d.end)
    };
    Error::Corrupt {
        location: location(&segment.path, d.start),
        reason: format!(
            "{}; the bytes from here to {to} cannot be read (the store was opened read-only over this damage); reading can go on from position {}",
            d.reason,
            segment.resume_after(d)
        ),
    }
}
