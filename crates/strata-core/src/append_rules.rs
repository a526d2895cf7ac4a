//! The append rules every store applies, as pure functions over what the store
//! knows: stream heads (guards, deletion) and recorded event ids (idempotency).
//! Backends share them so they cannot drift apart.

use crate::append::AppendResult;
use crate::error::{Error, Result};
use crate::event::{EventId, NewEvent};
use crate::read::{Direction, ReadWindow};
use crate::stream_id::StreamId;
use crate::stream_info::{StreamInfo, StreamState};
use crate::version::{CurrentVersion, ExpectedVersion, Position, Version};

/// What a store keeps per stream to check guards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamHead {
    /// Version of the last event ever appended (0 if none).
    pub version: Version,
    /// Versions `<= deleted_through` were soft-deleted.
    pub deleted_through: Version,
    /// Hard-deleted.
    pub tombstoned: bool,
    /// Position of the last event ever appended.
    pub last_position: Option<Position>,
}

impl StreamHead {
    /// The stream's state as a guard sees it.
    pub fn current(&self) -> CurrentVersion {
        if self.version > self.deleted_through {
            CurrentVersion::Current(self.version)
        } else {
            CurrentVersion::NoStream
        }
    }

    /// The state as `stream_info` reports it.
    pub fn state(&self) -> StreamState {
        if self.tombstoned {
            StreamState::Tombstoned
        } else if self.version > self.deleted_through {
            StreamState::Live
        } else {
            StreamState::Deleted
        }
    }

    /// The window of a read of this stream's readable versions from
    /// `from`, at most `max_count` events, in `direction` (check the stream
    /// is readable first: [`check_readable`]).
    pub fn read_window(&self, from: Version, max_count: usize, direction: Direction) -> ReadWindow {
        ReadWindow::new(
            self.deleted_through + 1,
            self.version,
            from,
            max_count,
            direction,
        )
    }

    /// [`read_window`](Self::read_window) when retention leaves versions
    /// from `first` on readable (see [`crate::Retention`]).
    pub fn read_window_from(
        &self,
        first: Version,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> ReadWindow {
        ReadWindow::new(
            first.max(self.deleted_through + 1),
            self.version,
            from,
            max_count,
            direction,
        )
    }

    /// The `stream_info` answer for this head.
    pub fn info(&self, stream: &StreamId) -> StreamInfo {
        StreamInfo {
            stream: stream.clone(),
            version: self.version,
            // Nothing of a tombstoned stream is readable: by `StreamInfo`'s
            // definition that makes its first readable version `version + 1`.
            first_readable_version: if self.tombstoned {
                self.version + 1
            } else {
                self.deleted_through + 1
            },
            state: self.state(),
            last_position: self.last_position,
        }
    }
}

/// Checks that `stream` can be read, deleted or tombstoned, and returns
/// what the store keeps for it: `entry` (`None` if never written), whose
/// head `head_of` gives. A tombstoned stream is `StreamDeleted`, one with
/// nothing readable `StreamNotFound`.
pub fn check_readable<'e, E>(
    stream: &StreamId,
    entry: Option<&'e E>,
    head_of: impl Fn(&E) -> &StreamHead,
) -> Result<&'e E> {
    match entry {
        Some(e) if head_of(e).tombstoned => Err(Error::StreamDeleted {
            stream: stream.clone(),
        }),
        Some(e) if head_of(e).version > head_of(e).deleted_through => Ok(e),
        _ => Err(Error::StreamNotFound {
            stream: stream.clone(),
        }),
    }
}

/// Checks the tombstone and the guard of a write to `stream`, whose head is
/// `head` (`None` if never written).
pub fn check_guard(
    stream: &StreamId,
    expected: ExpectedVersion,
    head: Option<&StreamHead>,
) -> Result<()> {
    let head = head.copied().unwrap_or_default();
    if head.tombstoned {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    let actual = head.current();
    if expected.accepts(actual) {
        Ok(())
    } else {
        Err(Error::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual,
        })
    }
}

/// Checks the guard of an erasure of `stream`, whose head is `head`
/// (`None` if never written). Erasure is allowed where a tombstone is (a
/// never-written name is erased by reserving it), and also on a stream
/// already tombstoned or erased, whose data must still be removable: there
/// only `ExpectedVersion::Any` passes, any other guard fails with
/// `StreamDeleted`.
pub fn check_erase(
    stream: &StreamId,
    expected: ExpectedVersion,
    head: Option<&StreamHead>,
) -> Result<()> {
    match head {
        Some(h) if h.tombstoned && expected == ExpectedVersion::Any => Ok(()),
        _ => check_guard(stream, expected, head),
    }
}

/// Where a recorded event id lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedRef<'a> {
    /// Its stream.
    pub stream: &'a str,
    /// Its version.
    pub version: Version,
    /// Its position.
    pub position: Position,
}

/// Decides whether an append is an exact retry of recorded events.
///
/// Returns `Ok(Some(original))` for an exact retry, `Ok(None)` when none of
/// the ids is recorded, and `IdempotencyConflict` for any partial or
/// misplaced overlap.
///
/// Check the tombstone before calling this: a tombstoned stream refuses every
/// append with `StreamDeleted`, exact retries included.
pub fn check_retry<'a>(
    stream: &StreamId,
    events: &[NewEvent],
    lookup: impl Fn(&EventId) -> Option<RecordedRef<'a>>,
) -> Result<Option<AppendResult>> {
    let mut first: Option<RecordedRef<'a>> = None;
    let mut prev: Option<RecordedRef<'a>> = None;
    let mut recorded = 0usize;
    let mut first_unrecorded: Option<usize> = None;
    let mut conflict: Option<(EventId, String)> = None;
    for (i, e) in events.iter().enumerate() {
        let found = e.id.as_ref().and_then(&lookup);
        match found {
            None => {
                first_unrecorded.get_or_insert(i);
            }
            Some(r) => {
                recorded += 1;
                let id = e.id.unwrap_or_default();
                if conflict.is_none() {
                    if r.stream != stream.as_str() {
                        conflict = Some((id, format!("it belongs to stream `{}`", r.stream)));
                    } else if let Some(p) = prev {
                        if r.version != p.version + 1 {
                            conflict = Some((
                                id,
                                format!(
                                    "it is version {} of `{stream}`, not the next after {}",
                                    r.version, p.version
                                ),
                            ));
                        }
                    }
                }
                first.get_or_insert(r);
                prev = Some(r);
            }
        }
    }
    if recorded == 0 {
        return Ok(None);
    }
    if let Some((event_id, reason)) = conflict {
        return Err(Error::IdempotencyConflict { event_id, reason });
    }
    if let Some(i) = first_unrecorded {
        let event_id = events
            .iter()
            .find_map(|e| e.id.filter(|id| lookup(id).is_some()))
            .unwrap_or_default();
        return Err(Error::IdempotencyConflict {
            event_id,
            reason: format!(
                "the append re-sends {recorded} recorded event(s) together with new ones (event {i} is new)"
            ),
        });
    }
    match (first, prev) {
        (Some(f), Some(l)) => Ok(Some(AppendResult {
            next_expected_version: l.version,
            first_position: f.position,
            last_position: l.position,
        })),
        _ => Ok(None),
    }
}

/// Checks an append to a metadata stream (`$$NAME`): every event must be a
/// `$metadata` event whose data is valid [`StreamMetadata`]. Appends to
/// other streams pass.
///
/// [`StreamMetadata`]: crate::StreamMetadata
pub fn check_metadata_append(stream: &StreamId, events: &[NewEvent]) -> Result<()> {
    if crate::metadata::metadata_target(stream.as_str()).is_none() {
        return Ok(());
    }
    for e in events {
        if e.event_type != crate::metadata::METADATA_EVENT_TYPE {
            return Err(Error::invalid(format!(
                "stream `{stream}` holds stream metadata: its events must be of type `{}`, not `{}`",
                crate::metadata::METADATA_EVENT_TYPE,
                e.event_type
            )));
        }
        crate::metadata::StreamMetadata::from_json(&e.data)?.validate()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_tombstoned_stream_has_nothing_readable() {
        let stream = StreamId::new("account-1").unwrap();
        let head = StreamHead {
            version: 3,
            deleted_through: 1,
            tombstoned: true,
            last_position: Some(Position(9)),
        };
        let info = head.info(&stream);
        assert_eq!(info.state, StreamState::Tombstoned);
        assert_eq!(info.first_readable_version, 4);
        let live = StreamHead {
            tombstoned: false,
            ..head
        };
        assert_eq!(live.info(&stream).first_readable_version, 2);
    }
}
