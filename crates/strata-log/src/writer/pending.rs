//! What the writer has decided but readers cannot see yet: the turn being
//! decided, over the turns written and still with the sync stage. Every
//! check of a request reads the store through this, so it sees the heads,
//! ids and tagged events of every request before it, published or not.

use std::collections::{HashMap, VecDeque};

use strata_core::append_rules::StreamHead;
use strata_core::dcb::{AppendCondition, Tag};
use strata_core::{EventId, StreamId};

use crate::index::FastMap;
use crate::state::State;

/// Events with caller-chosen ids encoded in one turn: id → (stream,
/// version, position).
pub(super) type TurnIds = HashMap<EventId, (StreamId, u64, u64)>;

/// What one turn decided: the stream heads it leaves, the caller-chosen ids
/// it records and the tagged events it appends.
#[derive(Default)]
pub(super) struct Decided {
    /// Heads changed by the turn's requests.
    pub heads: FastMap<StreamId, StreamHead>,
    /// Ids encoded in the turn.
    pub ids: TurnIds,
    /// Events of user streams encoded in the turn: position, type and tag
    /// set, for the conditions of later requests.
    pub tagged: Vec<(u64, String, Vec<Tag>)>,
}

/// The turn being decided over the unpublished turns before it.
pub(super) struct Pending {
    /// This turn so far.
    pub now: Decided,
    /// Turns written but not yet published, oldest first, with their
    /// numbers.
    pub earlier: VecDeque<(u64, Decided)>,
}

impl Pending {
    /// A new turn over `earlier`.
    pub fn over(earlier: VecDeque<(u64, Decided)>) -> Self {
        Pending {
            now: Decided::default(),
            earlier,
        }
    }

    /// The turns, newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Decided> {
        std::iter::once(&self.now).chain(self.earlier.iter().rev().map(|(_, d)| d))
    }

    /// The head of `stream` as the requests so far leave it.
    pub fn head<'a>(&'a self, state: &'a State, stream: &StreamId) -> Option<&'a StreamHead> {
        self.newest_first()
            .find_map(|d| d.heads.get(stream))
            .or_else(|| state.streams.streams.get(stream.as_str()).map(|e| &e.head))
    }

    /// Where an unpublished turn (this one included) recorded caller-chosen
    /// id `id`: stream, version and position.
    pub fn id(&self, id: &EventId) -> Option<&(StreamId, u64, u64)> {
        self.newest_first().find_map(|d| d.ids.get(id))
    }

    /// The first position of an event matching `condition`'s query after
    /// its position, in the store as the requests so far leave it.
    pub fn condition_match(&self, state: &State, condition: &AppendCondition) -> Option<u64> {
        let query = &condition.fail_if_events_match;
        let after = condition.checked_after().0;
        let streams = &state.streams;
        // Retention and erasure hide events from conditions as from `$all`.
        let shown = |position: u64| {
            if !streams.may_cut_all() {
                return true;
            }
            let p = match state.placed_at(position) {
                Ok(Some(p)) => p,
                // Removed by a scavenge: hidden from `$all`.
                Ok(None) => return false,
                // Unreadable: it counts, and the append is refused rather
                // than let through on a guess.
                Err(_) => return true,
            };
            match streams.streams.get(p.stream.as_str()) {
                Some(entry) if entry.erased || streams.governs(p.stream.as_str()) => streams
                    .retention(p.stream.as_str(), entry, crate::read::Cut::All)
                    .keeps(p.version, strata_core::clock::from_micros(p.recorded_at)),
                _ => true,
            }
        };
        state.tags.first_match(query, after, shown).or_else(|| {
            // Unpublished turns, oldest first, so the first match is the
            // lowest position.
            self.earlier
                .iter()
                .map(|(_, d)| d)
                .chain(std::iter::once(&self.now))
                .flat_map(|d| d.tagged.iter())
                .find(|(p, ty, tags)| *p > after && query.matches_parts(ty, tags))
                .map(|(p, _, _)| *p)
        })
    }
}
