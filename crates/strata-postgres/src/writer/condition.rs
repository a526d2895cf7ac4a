//! The conditions of the conditional appends of a batch
//! (`docs/postgres.md`, "Tags, query reads and conditional appends").
//!
//! Several conditional appends share one transaction. Phase 1 takes the
//! global position lock after the stream rows and, in the same pipelined
//! round trip, runs every condition's check (a query read after its
//! position, `LIMIT 1`) under it. The batch is then decided in queue order
//! in memory: a condition also fails on an event accepted earlier in the
//! batch that matches it ([`BatchEvents`]); such an event takes a position
//! above the committed head, so above every condition's `after` unless the
//! caller named a position beyond the head.

use std::collections::HashMap;

use strata_core::dcb::{Query, QueryItem, Tag};
use strata_core::{Position, StreamId};

use crate::read::{read_query_query, Param};
use crate::sql::Sql;
use crate::writer::WriteRequest;

/// The check of one conditional append: its query read, `LIMIT 1`.
pub(crate) struct Check {
    /// The request's index in the batch.
    pub index: usize,
    /// The statement's text.
    pub text: String,
    /// Its parameters.
    pub params: Vec<Param>,
}

/// The checks of a batch's conditional appends, in queue order.
pub(crate) fn checks(sql: &Sql, batch: &[WriteRequest]) -> Vec<Check> {
    batch
        .iter()
        .enumerate()
        .filter_map(|(index, request)| {
            let condition = request.condition.as_ref()?;
            let (text, params) = read_query_query(
                sql,
                &condition.fail_if_events_match,
                condition.checked_after(),
                1,
            );
            Some(Check {
                index,
                text,
                params,
            })
        })
        .collect()
}

/// What the checks found, run under the position lock.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The last position taken when the lock was granted: the batch's
    /// events take the positions after it (offset `o` is `base + o`).
    pub base: u64,
    /// Per request of the batch: the first committed event after its
    /// condition's position that matches it (`None` too for a request
    /// without a condition).
    pub matched: Vec<Option<Position>>,
}

impl Checked {
    /// The first committed match of request `index`'s condition.
    pub fn committed_match(&self, index: usize) -> Option<Position> {
        self.matched.get(index).copied().flatten()
    }
}

/// The events of user streams accepted so far in a batch, by offset (1-based
/// within the batch), with lists by tag and by type, so a condition is
/// checked against them without looking at every event.
#[derive(Default)]
pub(crate) struct BatchEvents<'a> {
    /// Offset, type and tag set (sorted) of each event, offsets ascending.
    events: Vec<(u64, &'a str, &'a [Tag])>,
    /// Tag → indexes into `events`, ascending.
    by_tag: HashMap<&'a str, Vec<usize>>,
    /// Type → indexes into `events`, ascending.
    by_type: HashMap<&'a str, Vec<usize>>,
}

impl<'a> BatchEvents<'a> {
    /// Records an accepted event at `offset` (ascending); events of system
    /// streams never match a condition and are left out.
    pub fn add(&mut self, offset: u64, stream: &StreamId, event_type: &'a str, tags: &'a [Tag]) {
        if stream.is_system() {
            return;
        }
        let at = self.events.len();
        self.events.push((offset, event_type, tags));
        for tag in tags {
            self.by_tag.entry(tag.as_str()).or_default().push(at);
        }
        self.by_type.entry(event_type).or_default().push(at);
    }

    /// The first offset above `after` of a recorded event matching `query`.
    pub fn first_match(&self, query: &Query, after: u64) -> Option<u64> {
        if query.is_all() {
            return self.first_in(None, None, after);
        }
        query
            .items
            .iter()
            .filter_map(|item| self.first_for_item(item, after))
            .min()
    }

    /// The first offset above `after` matching `item`, looking only at the
    /// events that can: those of its rarest tag, else those of its types,
    /// else every event.
    fn first_for_item(&self, item: &QueryItem, after: u64) -> Option<u64> {
        if !item.tags.is_empty() {
            let mut rarest: Option<&[usize]> = None;
            for tag in &item.tags {
                let list = self.by_tag.get(tag.as_str())?;
                if rarest.is_none_or(|r| list.len() < r.len()) {
                    rarest = Some(list);
                }
            }
            return self.first_in(rarest, Some(item), after);
        }
        if !item.types.is_empty() {
            return item
                .types
                .iter()
                .filter_map(|t| self.by_type.get(t.as_str()))
                .filter_map(|list| self.first_in(Some(list), Some(item), after))
                .min();
        }
        self.first_in(None, Some(item), after)
    }

    /// The first offset above `after` among `list` (every event when
    /// `None`) of an event matching `item` (any, when `None`).
    fn first_in(
        &self,
        list: Option<&[usize]>,
        item: Option<&QueryItem>,
        after: u64,
    ) -> Option<u64> {
        let matches = |&(offset, ty, tags): &(u64, &str, &[Tag])| {
            offset > after && item.is_none_or(|i| i.matches_parts(ty, tags))
        };
        match list {
            None => {
                let start = self.events.partition_point(|e| e.0 <= after);
                self.events[start..]
                    .iter()
                    .find(|e| matches(e))
                    .map(|e| e.0)
            }
            Some(list) => {
                let start = list.partition_point(|&i| self.events[i].0 <= after);
                list[start..]
                    .iter()
                    .map(|&i| &self.events[i])
                    .find(|e| matches(e))
                    .map(|e| e.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(t: &str) -> Tag {
        Tag::new(t).unwrap()
    }

    fn query(items: &[(&[&str], &[&str])]) -> Query {
        Query::new(
            items
                .iter()
                .map(|(types, tags)| {
                    QueryItem::new(types.iter().copied(), tags.iter().map(|t| tag(t)))
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn finds_the_first_match_after_an_offset() {
        let user = StreamId::new("s-1").unwrap();
        let system = StreamId::system("$s-1").unwrap();
        let c1 = [tag("course:c1")];
        let c1s1 = [tag("course:c1"), tag("student:s1")];
        let c2s1 = [tag("course:c2"), tag("student:s1")];
        let mut events = BatchEvents::default();
        events.add(1, &system, "Subscribed", &c1s1);
        events.add(2, &user, "Opened", &c1);
        events.add(3, &user, "Subscribed", &c1s1);
        events.add(5, &user, "Subscribed", &c2s1);
        events.add(6, &user, "Other", &[]);

        assert_eq!(events.first_match(&Query::all(), 0), Some(2));
        assert_eq!(events.first_match(&Query::all(), 5), Some(6));
        assert_eq!(events.first_match(&Query::all(), 6), None);
        let by_student = query(&[(&[], &["student:s1"])]);
        assert_eq!(events.first_match(&by_student, 0), Some(3));
        assert_eq!(events.first_match(&by_student, 3), Some(5));
        let both = query(&[(&["Subscribed"], &["course:c1", "student:s1"])]);
        assert_eq!(events.first_match(&both, 0), Some(3));
        assert_eq!(events.first_match(&both, 3), None);
        let by_type = query(&[(&["Other", "Opened"], &[])]);
        assert_eq!(events.first_match(&by_type, 0), Some(2));
        assert_eq!(events.first_match(&by_type, 2), Some(6));
        let either = query(&[(&["Nope"], &[]), (&[], &["course:c2"])]);
        assert_eq!(events.first_match(&either, 0), Some(5));
        let unknown_tag = query(&[(&[], &["course:c1", "nope:1"])]);
        assert_eq!(events.first_match(&unknown_tag, 0), None);
        let any_item = query(&[(&[], &[])]);
        assert_eq!(events.first_match(&any_item, 3), Some(5));
    }
}
