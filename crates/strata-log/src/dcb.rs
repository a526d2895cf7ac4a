//! The tag index of dynamic consistency boundaries: every event of a user
//! stream, in position order, with its type and tag set, plus posting lists
//! by tag and by type. The writer checks an append's condition against it
//! (and against the events earlier in its batch); query reads find their
//! positions in it.
//!
//! It lives in memory: loaded on open from the sealed segments' tag files
//! (and a scan of the active segment), and kept up to date as the writer
//! publishes each batch. Each event takes 16 bytes (position, interned
//! type, tag-set number) plus its tag set when it has one; where an event
//! sits in its stream ([`Placed`]), needed only when retention or erasure
//! may hide it, is read from the log when asked for.

use crate::index::FastMap;
use std::sync::Arc;

use strata_core::dcb::{Query, QueryItem, Tag};
use strata_core::StreamId;

/// Where an event sits in its stream, for retention: a condition does not
/// count an event that retention or erasure hides from `$all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The event's stream.
    pub stream: StreamId,
    /// Its version.
    pub version: u64,
    /// When it was recorded, microseconds since the epoch.
    pub recorded_at: i64,
}

/// One indexed event.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    position: u64,
    type_id: u32,
    /// Its tag set: 0 for none, else one more than its index in
    /// `TagIndex::tag_sets`.
    tag_set: u32,
}

/// Events of user streams by position, tag and type.
#[derive(Debug, Default)]
pub struct TagIndex {
    /// Interned event types.
    type_ids: FastMap<Arc<str>, u32>,
    types: Vec<Arc<str>>,
    /// Every indexed event, positions ascending.
    events: Vec<Indexed>,
    /// The non-empty tag sets of the indexed events (sorted, each tag
    /// once), in event order.
    tag_sets: Vec<Box<[Tag]>>,
    /// Tag → indexes into `events`, ascending.
    by_tag: FastMap<Tag, Vec<u32>>,
    /// By type id: indexes into `events`, ascending.
    by_type: Vec<Vec<u32>>,
    /// Why the index misses events (its rebuild on open met damage): then
    /// conditions and query reads are refused rather than answered wrong.
    incomplete: Option<String>,
}

/// Where an item's candidates come from.
enum Source<'a> {
    /// Every event.
    All,
    /// One posting list.
    List(&'a [u32]),
}

impl TagIndex {
    /// Marks the index as missing events, for `reason`.
    pub fn mark_incomplete(&mut self, reason: String) {
        self.incomplete = Some(reason);
    }

    /// Fails when the index misses events.
    pub fn check_complete(&self) -> strata_core::Result<()> {
        match &self.incomplete {
            None => Ok(()),
            Some(reason) => Err(strata_core::Error::Corrupt {
                location: "the tag index".into(),
                reason: format!("it could not be rebuilt on open: {reason}"),
            }),
        }
    }

    /// The last indexed position.
    pub fn last_position(&self) -> Option<u64> {
        self.events.last().map(|e| e.position)
    }

    /// Adds an event of a user stream; `tags` is its tag set. Positions
    /// arrive ascending; one at or below the last indexed is ignored (it is
    /// already there).
    pub fn add(&mut self, position: u64, event_type: &str, tags: &[Tag]) {
        let type_id = self.type_id(event_type);
        self.add_typed(position, type_id, tags);
    }

    /// [`add`](Self::add) for events in position order, each with its type
    /// and tag set: a run of one type is interned once.
    pub fn add_run<'a>(&mut self, events: impl Iterator<Item = (u64, &'a (String, Vec<Tag>))>) {
        let mut last: Option<(&str, u32)> = None;
        for (position, (event_type, tags)) in events {
            let type_id = match last {
                Some((t, id)) if t == event_type => id,
                _ => {
                    let id = self.type_id(event_type);
                    last = Some((event_type, id));
                    id
                }
            };
            self.add_typed(position, type_id, tags);
        }
    }

    /// The id of `event_type`, interned if it is new.
    pub fn type_id(&mut self, event_type: &str) -> u32 {
        if let Some(id) = self.type_ids.get(event_type) {
            return *id;
        }
        let id = self.types.len() as u32;
        let name: Arc<str> = event_type.into();
        self.types.push(Arc::clone(&name));
        self.type_ids.insert(name, id);
        self.by_type.push(Vec::new());
        id
    }

    /// [`add`](Self::add) with the type already interned by
    /// [`type_id`](Self::type_id).
    pub fn add_typed(&mut self, position: u64, type_id: u32, tags: &[Tag]) {
        if self.last_position().is_some_and(|last| position <= last) {
            return;
        }
        let Ok(at) = u32::try_from(self.events.len()) else {
            tracing::error!(position, "the tag index is full; event not indexed");
            return;
        };
        let Some(by_type) = self.by_type.get_mut(type_id as usize) else {
            tracing::error!(
                position,
                type_id,
                "an event type the tag index never interned"
            );
            return;
        };
        let tag_set = if tags.is_empty() {
            0
        } else {
            let Ok(n) = u32::try_from(self.tag_sets.len() + 1) else {
                tracing::error!(position, "the tag index is full; event not indexed");
                return;
            };
            self.tag_sets.push(tags.into());
            n
        };
        by_type.push(at);
        for t in tags {
            self.by_tag.entry(t.clone()).or_default().push(at);
        }
        self.events.push(Indexed {
            position,
            type_id,
            tag_set,
        });
    }

    /// The tag set of an indexed event.
    fn tags_of(&self, e: &Indexed) -> &[Tag] {
        match e.tag_set.checked_sub(1) {
            Some(i) => self.tag_sets.get(i as usize).map_or(&[], |t| &**t),
            None => &[],
        }
    }

    /// How many indexed events after `after` a query read of `query` may
    /// look at: the sum of its items' candidate lists (an upper bound on
    /// its work, found without walking them).
    pub fn candidates(&self, query: &Query, after: u64) -> usize {
        let after_in = |list: &[u32]| {
            list.len()
                - list.partition_point(|i| {
                    self.events
                        .get(*i as usize)
                        .is_some_and(|e| e.position <= after)
                })
        };
        let all = || self.events.len() - self.events.partition_point(|e| e.position <= after);
        if query.is_all() {
            return all();
        }
        query
            .items
            .iter()
            .flat_map(|item| self.sources(item))
            .map(|source| match source {
                Source::All => all(),
                Source::List(list) => after_in(list),
            })
            .fold(0usize, usize::saturating_add)
    }

    /// The first position after `after` of an event matching `query` that
    /// `shown` keeps (it is given the event's position).
    pub fn first_match(
        &self,
        query: &Query,
        after: u64,
        shown: impl Fn(u64) -> bool,
    ) -> Option<u64> {
        self.matches_where(query, after, 1, shown).first().copied()
    }

    /// Up to `limit` positions after `after` of events matching `query`,
    /// ascending.
    pub fn matches(&self, query: &Query, after: u64, limit: usize) -> Vec<u64> {
        self.matches_where(query, after, limit, |_| true)
    }

    fn matches_where(
        &self,
        query: &Query,
        after: u64,
        limit: usize,
        shown: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        if query.is_all() {
            self.collect(Source::All, None, after, limit, &shown, &mut out);
            return out;
        }
        for item in &query.items {
            for source in self.sources(item) {
                self.collect(source, Some(item), after, limit, &shown, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(limit);
        out
    }

    /// The posting lists whose events include every match of `item`: the
    /// shortest of its tags' lists, or one list per type when it names no
    /// tag, or every event when it names neither. None when it cannot match.
    fn sources(&self, item: &QueryItem) -> Vec<Source<'_>> {
        if !item.tags.is_empty() {
            let mut shortest: Option<&[u32]> = None;
            for t in &item.tags {
                match self.by_tag.get(t) {
                    None => return Vec::new(),
                    Some(list) if shortest.is_none_or(|s| list.len() < s.len()) => {
                        shortest = Some(list)
                    }
                    Some(_) => {}
                }
            }
            return shortest.map(Source::List).into_iter().collect();
        }
        if !item.types.is_empty() {
            return item
                .types
                .iter()
                .filter_map(|t| self.type_ids.get(t.as_str()))
                .filter_map(|id| self.by_type.get(*id as usize))
                .map(|l| Source::List(l))
                .collect();
        }
        vec![Source::All]
    }

    /// Pushes up to `limit` positions after `after` of events of `source`
    /// matching `item` (every event when `None`).
    fn collect(
        &self,
        source: Source<'_>,
        item: Option<&QueryItem>,
        after: u64,
        limit: usize,
        shown: &impl Fn(u64) -> bool,
        out: &mut Vec<u64>,
    ) {
        let keep = |e: &Indexed| {
            item.is_none_or(|i| {
                let ty = self.types.get(e.type_id as usize).map_or("", |t| &**t);
                i.matches_parts(ty, self.tags_of(e))
            }) && shown(e.position)
        };
        let mut taken = 0;
        match source {
            Source::All => {
                let start = self.events.partition_point(|e| e.position <= after);
                for e in self.events.iter().skip(start) {
                    if taken >= limit {
                        break;
                    }
                    if keep(e) {
                        out.push(e.position);
                        taken += 1;
                    }
                }
            }
            Source::List(list) => {
                let start = list.partition_point(|i| {
                    self.events
                        .get(*i as usize)
                        .is_some_and(|e| e.position <= after)
                });
                for e in list
                    .iter()
                    .skip(start)
                    .filter_map(|i| self.events.get(*i as usize))
                {
                    if taken >= limit {
                        break;
                    }
                    if keep(e) {
                        out.push(e.position);
                        taken += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tag(t: &str) -> Tag {
        Tag::new(t).unwrap()
    }

    fn item(types: &[&str], tags: &[&str]) -> QueryItem {
        QueryItem::new(types.iter().copied(), tags.iter().map(|t| tag(t)))
    }

    #[test]
    fn finds_matches_by_tag_type_and_both() {
        let mut ix = TagIndex::default();
        ix.add(10, "Opened", &[tag("course:c1")]);
        ix.add(20, "Subscribed", &[tag("course:c1"), tag("student:s1")]);
        ix.add(30, "Subscribed", &[tag("course:c2"), tag("student:s1")]);
        ix.add(40, "Other", &[]);
        ix.add(40, "Again", &[]);
        assert_eq!(ix.tag_sets.len(), 3, "only events with tags keep a set");
        assert_eq!(ix.events.len(), 4);
        let q = |items| Query::new(items).unwrap();
        assert_eq!(ix.matches(&Query::all(), 0, 10), vec![10, 20, 30, 40]);
        assert_eq!(ix.matches(&Query::all(), 20, 1), vec![30]);
        assert_eq!(
            ix.matches(&q(vec![item(&[], &["student:s1"])]), 0, 10),
            vec![20, 30]
        );
        assert_eq!(
            ix.matches(&q(vec![item(&["Subscribed"], &["course:c1"])]), 0, 10),
            vec![20]
        );
        assert_eq!(
            ix.matches(&q(vec![item(&["Opened", "Other"], &[])]), 0, 10),
            vec![10, 40]
        );
        assert_eq!(
            ix.matches(
                &q(vec![item(&["Opened"], &[]), item(&[], &["course:c2"])]),
                0,
                10
            ),
            vec![10, 30]
        );
        assert_eq!(
            ix.matches(&q(vec![item(&[], &["nope:1"])]), 0, 10),
            Vec::<u64>::new()
        );
        assert_eq!(ix.matches(&q(vec![item(&[], &[])]), 15, 2), vec![20, 30]);
        assert_eq!(
            ix.first_match(&q(vec![item(&["Subscribed"], &["student:s1"])]), 20, |_| {
                true
            }),
            Some(30)
        );
        let hidden_first = |p: u64| p != 20;
        assert_eq!(
            ix.first_match(&q(vec![item(&[], &["student:s1"])]), 0, hidden_first),
            Some(30)
        );
        assert_eq!(
            ix.first_match(&q(vec![item(&["Missing"], &[])]), 0, |_| true),
            None
        );
    }
}
