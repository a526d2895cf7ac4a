//! The reference store's dynamic consistency boundaries: query reads and
//! conditional appends (`docs/adr/0022-dynamic-consistency-boundaries.md`),
//! decided by scanning the log with the model's own matching.
//!
//! The rules it encodes: input (the query's limits, the read's limit, the
//! parts and their events) is checked first; then every part as
//! `append_multi` checks it (tombstone, exact retry, guard); an exact retry
//! of every part answers with the original result without looking at the
//! condition; only then is the condition checked: the first event after
//! `after` (every event, without one) that `$all` still shows and the query
//! matches fails the append with `ConditionFailed` naming it. A failed guard
//! therefore wins over a failed condition.

use strata_core::dcb::{AppendCondition, Query, MAX_ITEM_TAGS, MAX_ITEM_TYPES, MAX_QUERY_ITEMS};
use strata_core::{Position, StreamAppend};

use super::reference::{Model, ModelAppend, ModelError, ModelEvent};

/// Whether `query`'s shape is within the limits.
fn query_valid(query: &Query) -> bool {
    query.items.len() <= MAX_QUERY_ITEMS
        && query.items.iter().all(|i| {
            i.types.len() <= MAX_ITEM_TYPES
                && i.tags.len() <= MAX_ITEM_TAGS
                && i.types.iter().all(|t| !t.is_empty())
        })
}

/// Whether `query` matches `e`: never an event of a system stream; every
/// event when the query has no items; else an event whose type is one of
/// some item's types (or the item names none) and whose tags include all of
/// that item's tags.
pub(super) fn query_matches(query: &Query, e: &ModelEvent) -> bool {
    if e.stream.as_str().starts_with('$') {
        return false;
    }
    query.items.is_empty()
        || query.items.iter().any(|item| {
            (item.types.is_empty() || item.types.contains(&e.event_type))
                && item.tags.iter().all(|t| e.tags.contains(t))
        })
}

impl Model {
    /// `read_query`, with `after` a model position.
    pub fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        if !query_valid(query) || limit == 0 || limit > self.limits().max_read_count {
            return Err(ModelError::InvalidInput);
        }
        Ok(self.matching(query, after).take(limit).cloned().collect())
    }

    /// The events `$all` shows after `after` that `query` matches.
    fn matching<'a>(
        &'a self,
        query: &'a Query,
        after: Position,
    ) -> impl Iterator<Item = &'a ModelEvent> + 'a {
        self.log
            .iter()
            .filter(move |e| e.position > after && self.shows(e) && query_matches(query, e))
    }

    /// `append_if`, with the condition's `after` a model position. The
    /// error side lists every error a correct store may return.
    pub fn append_if(
        &mut self,
        parts: &[StreamAppend],
        condition: &AppendCondition,
    ) -> Result<Vec<ModelAppend>, Vec<ModelError>> {
        if !query_valid(&condition.fail_if_events_match) {
            return Err(vec![ModelError::InvalidInput]);
        }
        if let Some(retried) = self.decide_multi(parts)? {
            return Ok(retried);
        }
        let after = condition.after.unwrap_or(Position::START);
        let first = self.matching(&condition.fail_if_events_match, after).next();
        if let Some(e) = first {
            return Err(vec![ModelError::ConditionFailed(e.position)]);
        }
        Ok(self.write_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use strata_core::dcb::{QueryItem, Tag};
    use strata_core::{CurrentVersion, ExpectedVersion, Limits, NewEvent, StreamId};

    use super::*;

    fn tag(t: &str) -> Tag {
        Tag::new(t).unwrap()
    }

    fn tagged(event_type: &str, tags: &[&str]) -> NewEvent {
        NewEvent::json_bytes(event_type, &b"{}"[..]).with_tags(tags.iter().map(|t| tag(t)))
    }

    #[test]
    fn model_conditions_guards_and_retries() {
        let mut m = Model::new(Limits::default());
        let a = StreamId::new("a-1").unwrap();
        let b = StreamId::new("b-1").unwrap();
        m.append(&a, ExpectedVersion::Any, &[tagged("X", &["k:1", "k:1"])])
            .unwrap();
        assert_eq!(m.events()[0].tags, vec![tag("k:1")]);
        let q = Query::new(vec![QueryItem::new(["X"], [tag("k:1")])]).unwrap();
        let part = |stream: &StreamId, expected| {
            StreamAppend::new(stream.clone(), expected, vec![tagged("Y", &["k:1"])])
        };
        // A match after `after` fails it, naming the match.
        let cond = AppendCondition::new(q.clone(), None);
        assert_eq!(
            m.append_if(&[part(&b, ExpectedVersion::Any)], &cond),
            Err(vec![ModelError::ConditionFailed(Position(1))])
        );
        // A failed guard wins over a failed condition.
        assert_eq!(
            m.append_if(&[part(&a, ExpectedVersion::NoStream)], &cond),
            Err(vec![ModelError::WrongExpectedVersion {
                stream: a.clone(),
                expected: ExpectedVersion::NoStream,
                actual: CurrentVersion::Current(1),
            }])
        );
        // Nothing after the position: written.
        let id = strata_core::EventId::new();
        let parts = [StreamAppend::new(
            b.clone(),
            ExpectedVersion::NoStream,
            vec![tagged("X", &["k:1"]).with_id(id)],
        )];
        let cond = AppendCondition::new(q.clone(), Some(Position(1)));
        let r = m.append_if(&parts, &cond).unwrap();
        assert!(r[0].written);
        // An exact retry answers with the original result although its own
        // event now fails the condition.
        let again = m.append_if(&parts, &cond).unwrap();
        assert_eq!((again[0].result, again[0].written), (r[0].result, false));
        // A new event under the same condition fails on that event.
        assert_eq!(
            m.append_if(&[part(&a, ExpectedVersion::Any)], &cond),
            Err(vec![ModelError::ConditionFailed(Position(2))])
        );
        assert_eq!(
            m.read_query(&Query::all(), Position::START, 10)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            m.read_query(&Query::all(), Position::START, 0),
            Err(ModelError::InvalidInput)
        );
    }
}
