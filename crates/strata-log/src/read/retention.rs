//! Retention on reads. A stream's metadata (and a metadata stream's
//! implicit `max_count` of 1) cuts what reads return, by the one rule of
//! [`Retention`]: a stream read starts at the first version retention
//! leaves, and `$all` (every plan, and so subscription pages) drops the
//! events it cuts. Deletion cuts stream reads only: a deleted stream's
//! events stay in `$all`.
//!
//! `max_age` cuts a prefix of a stream (its events are recorded in version
//! order), found by a binary search of point reads of `recorded_at`. Where a
//! read meets events of any stream (a scan, posting lists), each event is
//! checked instead, from its record, before it is built; in a store where
//! no stream has metadata only metadata streams' events are looked up.

use chrono::{DateTime, Utc};
use strata_core::append_rules::StreamHead;
use strata_core::clock::from_micros;
use strata_core::metadata::METADATA_STREAM_PREFIX;
use strata_core::{Error, Position, Result, Retention, Version};

use crate::format::{split_position, RecordView};
use crate::index::FastMap;
use crate::read::at::recorded_at;
use crate::state::{OpenStore, State};
use crate::streams::{StreamEntry, StreamIndex};

/// Most streams one read remembers the retention of; past it, it forgets
/// them and looks them up again (a filtered read may pass over any number
/// of streams).
const MAX_REMEMBERED_STREAMS: usize = 64 * 1024;

/// What a read shows of a stream, as far as deletion is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// A read of the stream: deletion and retention cut it.
    Stream,
    /// `$all`: only retention cuts it.
    All,
}

impl StreamIndex {
    /// Whether some event of `$all` may be cut: some stream has metadata or
    /// is erased.
    pub(crate) fn may_cut_all(&self) -> bool {
        !self.metadata.is_empty() || self.erased > 0
    }

    /// Whether retention may cut events of stream `name`: it has metadata,
    /// or it is a metadata stream.
    pub(crate) fn governs(&self, name: &str) -> bool {
        name.starts_with(METADATA_STREAM_PREFIX)
            || (!self.metadata.is_empty() && self.metadata.contains_key(name))
    }

    /// What retention (and, for a stream read, deletion) leaves readable of
    /// stream `name`, whose entry is `entry`, now. Nothing of a tombstoned
    /// stream is readable by a stream read, nothing of an erased one by any.
    pub(crate) fn retention(&self, name: &str, entry: &StreamEntry, cut: Cut) -> Retention {
        let head = &entry.head;
        let head = match cut {
            _ if entry.erased => {
                return Retention {
                    first_version: head.version + 1,
                    not_before: None,
                }
            }
            Cut::Stream if head.tombstoned => {
                return Retention {
                    first_version: head.version + 1,
                    not_before: None,
                }
            }
            Cut::Stream => *head,
            Cut::All => StreamHead {
                deleted_through: 0,
                ..*head
            },
        };
        if self.governs(name) {
            Retention::new(name, &head, self.metadata.get(name), Utc::now())
        } else {
            Retention::of_head(&head)
        }
    }
}

/// The positions of `entry`'s versions from `first` on that lie in
/// `from..until`: at most `max` of them, the first ones.
pub(crate) fn positions_in(
    entry: &StreamEntry,
    first: Version,
    (from, until): (Position, Position),
    max: usize,
) -> &[u64] {
    let p = &entry.positions;
    let hi = p.partition_point(|x| *x < until.0);
    let first_index = usize::try_from(first.saturating_sub(1)).unwrap_or(usize::MAX);
    let lo = p.partition_point(|x| *x < from.0).max(first_index).min(hi);
    let end = lo + (hi - lo).min(max);
    p.get(lo..end).unwrap_or_default()
}

/// The positions of `entry`'s versions from `first` on that lie in
/// `from..until`: at most `max` of them, the last ones (a backward read).
pub(crate) fn positions_below(
    entry: &StreamEntry,
    first: Version,
    (from, until): (Position, Position),
    max: usize,
) -> &[u64] {
    let all = positions_in(entry, first, (from, until), usize::MAX);
    &all[all.len().saturating_sub(max)..]
}

/// Retention as a filter over the records a read of `$all` meets. Built
/// under the state lock, used without it: it takes the lock briefly for
/// each stream it meets first.
pub(crate) struct RetentionFilter<'s> {
    store: &'s OpenStore,
    /// Some stream has metadata or is erased: every record's stream is
    /// looked up. Otherwise only metadata streams' records are.
    any_metadata: bool,
    /// The retention of each stream met so far; `None`: nothing cut.
    seen: FastMap<Box<str>, Option<Retention>>,
}

impl<'s> RetentionFilter<'s> {
    /// A filter for a read of `store`, whose state (locked) is `state`.
    pub(crate) fn new(store: &'s OpenStore, state: &State) -> Self {
        RetentionFilter {
            store,
            any_metadata: state.streams.may_cut_all(),
            seen: FastMap::default(),
        }
    }

    /// Whether `$all` shows the record `v`. Call it without the state lock.
    #[inline]
    pub(crate) fn keeps(&mut self, v: &RecordView<'_>) -> bool {
        if !self.any_metadata && !v.stream.starts_with(METADATA_STREAM_PREFIX) {
            return true;
        }
        self.keeps_looked_up(v)
    }

    // Out of line: a scan's per-record step stays small enough to inline
    // into the frame walk (inlined, this made a scan of a store without
    // metadata ~1.5% more instructions).
    #[inline(never)]
    fn keeps_looked_up(&mut self, v: &RecordView<'_>) -> bool {
        let r = match self.seen.get(v.stream) {
            Some(r) => *r,
            None => {
                let r = self.look_up(v.stream);
                if self.seen.len() >= MAX_REMEMBERED_STREAMS {
                    self.seen.clear();
                }
                self.seen.insert(v.stream.into(), r);
                r
            }
        };
        r.is_none_or(|r| r.keeps(v.version, from_micros(v.recorded_at_micros())))
    }

    fn look_up(&self, name: &str) -> Option<Retention> {
        let state = self.store.state.read();
        let index = &state.streams;
        let entry = index.streams.get(name)?;
        if !entry.erased && !index.governs(name) {
            return None;
        }
        Some(index.retention(name, entry, Cut::All))
    }
}

impl OpenStore {
    /// Whether retention may cut events of `$all`: some stream has
    /// metadata or is erased. (Then a page may pass over any number of cut
    /// events.)
    pub(crate) fn retention_may_cut(&self) -> bool {
        self.state.read().streams.may_cut_all()
    }

    /// Runs `plan` under the state lock with stream `name`'s entry, if it
    /// has one, and the first version of it that `cut` leaves readable now.
    /// A `max_age` cut is found first, without the lock, by point reads.
    pub(crate) fn with_first_readable<T>(
        &self,
        name: &str,
        cut: Cut,
        plan: impl FnOnce(&State, Option<(&StreamEntry, Version)>) -> Result<T>,
    ) -> Result<T> {
        let mut aged_first: Option<Version> = None;
        loop {
            let state = self.state.read();
            let Some(entry) = state.streams.streams.get(name) else {
                return plan(&state, None);
            };
            let r = state.streams.retention(name, entry, cut);
            match (r.not_before, aged_first) {
                (Some(t), None) => {
                    let (lo, hi) = (r.first_version, entry.head.version);
                    drop(state);
                    aged_first = Some(self.first_recorded_since(name, lo, hi, t)?);
                }
                // Events appended since are newer than the cut: the
                // version found still holds.
                _ => {
                    let first = r.first_version.max(aged_first.unwrap_or(0));
                    return plan(&state, Some((entry, first)));
                }
            }
        }
    }

    /// The first version of stream `name` in `lo..=hi` recorded at or after
    /// `t`, or `hi + 1` if none is: the events recorded before `t` are a
    /// prefix of the stream.
    fn first_recorded_since(
        &self,
        name: &str,
        lo: Version,
        hi: Version,
        t: DateTime<Utc>,
    ) -> Result<Version> {
        if lo > hi {
            return Ok(lo);
        }
        // Usually nothing has aged yet: one read tells.
        if self.recorded_at(name, lo)? >= t {
            return Ok(lo);
        }
        let (mut a, mut b) = (lo + 1, hi + 1);
        while a < b {
            let mid = a + (b - a) / 2;
            if self.recorded_at(name, mid)? < t {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        Ok(a)
    }

    /// When version `version` of stream `name` was recorded: one point read,
    /// without the state lock.
    fn recorded_at(&self, name: &str, version: Version) -> Result<DateTime<Utc>> {
        let (position, segment) = {
            let state = self.state.read();
            let position = usize::try_from(version.saturating_sub(1))
                .ok()
                .and_then(|i| state.streams.streams.get(name)?.positions.get(i).copied())
                .ok_or_else(|| {
                    Error::Backend(format!(
                        "version {version} of `{name}` is not in the stream index"
                    ))
                })?;
            let (n, _) = split_position(Position(position));
            let segment = state
                .segments
                .get(&n)
                .cloned()
                .ok_or_else(|| Error::Corrupt {
                    location: format!("position {position}"),
                    reason: format!("the index points into segment {n}, which does not exist"),
                })?;
            (position, segment)
        };
        let (_, offset) = split_position(Position(position));
        recorded_at(&segment, offset, (name, version)).map(from_micros)
    }
}
