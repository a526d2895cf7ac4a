//! Dynamic consistency boundaries: tags on events, queries over types and
//! tags, and the condition a conditional append checks
//! (`docs/adr/0022-dynamic-consistency-boundaries.md`).
//!
//! An event carries a small set of [`Tag`]s. A [`Query`] is a list of
//! [`QueryItem`]s; an event matches an item when its type is one of the
//! item's types (or the item names none) and its tags include all of the
//! item's tags, and it matches the query when it matches any item. A query
//! with no items matches every event. Events of system streams never match.
//!
//! ```
//! use strata_core::dcb::{Query, QueryItem, Tag};
//! let q = Query::new(vec![QueryItem::new(["Subscribed"], [Tag::new("course:c1").unwrap()])]).unwrap();
//! assert!(q.matches_parts("Subscribed", &[Tag::new("course:c1").unwrap(), Tag::new("student:s1").unwrap()]));
//! assert!(!q.matches_parts("Subscribed", &[Tag::new("course:c2").unwrap()]));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::limits::Limits;
use crate::stream_id::StreamId;
use crate::version::Position;

/// The most tags one event carries.
pub const MAX_TAGS_PER_EVENT: usize = 16;
/// The longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 128;
/// The most items one query holds.
pub const MAX_QUERY_ITEMS: usize = 64;
/// The most event types one query item names.
pub const MAX_ITEM_TYPES: usize = 32;
/// The most tags one query item names.
pub const MAX_ITEM_TAGS: usize = MAX_TAGS_PER_EVENT;
/// How many events of `$all` a query read without a tag index looks at
/// per page.
pub const QUERY_SCAN_PAGE: usize = 4_096;
/// The stream an event appended without one goes to when it has no tags;
/// a tagged one goes to `dcb-` followed by its first tag ([`default_stream`]).
pub const DEFAULT_DCB_STREAM: &str = "dcb";

/// A tag: 1 to [`MAX_TAG_BYTES`] bytes of text without control characters
/// or whitespace, by convention `key:value`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// Checks and wraps a tag.
    pub fn new(tag: impl Into<String>) -> Result<Self> {
        let tag = tag.into();
        if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
            return Err(Error::invalid(format!(
                "a tag holds 1 to {MAX_TAG_BYTES} bytes, got {}",
                tag.len()
            )));
        }
        if tag.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(format!(
                "tag `{}` holds whitespace or a control character",
                tag.escape_debug()
            )));
        }
        Ok(Tag(tag))
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = Error;
    fn try_from(tag: String) -> Result<Self> {
        Self::new(tag)
    }
}

impl std::str::FromStr for Tag {
    type Err = Error;
    fn from_str(tag: &str) -> Result<Self> {
        Self::new(tag)
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> String {
        tag.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// An event's tags as the store keeps them: sorted, each once.
pub fn tag_set(mut tags: Vec<Tag>) -> Vec<Tag> {
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// Checks that an event carries at most [`MAX_TAGS_PER_EVENT`] distinct
/// tags.
pub fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() <= MAX_TAGS_PER_EVENT {
        return Ok(());
    }
    let distinct = tag_set(tags.to_vec()).len();
    if distinct > MAX_TAGS_PER_EVENT {
        return Err(Error::invalid(format!(
            "an event carries at most {MAX_TAGS_PER_EVENT} tags, got {distinct}"
        )));
    }
    Ok(())
}

/// One item of a [`Query`]: event types (any, when empty) and tags (all of
/// which an event must carry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryItem {
    /// The event types the item matches; empty matches every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// The tags an event must all carry; empty asks for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl QueryItem {
    /// An item of these types and tags.
    pub fn new<T: Into<String>>(
        types: impl IntoIterator<Item = T>,
        tags: impl IntoIterator<Item = Tag>,
    ) -> Self {
        QueryItem {
            types: types.into_iter().map(Into::into).collect(),
            tags: tags.into_iter().collect(),
        }
    }

    /// Whether an event of type `event_type` with the tag set `tags`
    /// (sorted, as stored) matches.
    pub fn matches_parts(&self, event_type: &str, tags: &[Tag]) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|t| tags.binary_search(t).is_ok())
    }

    fn validate(&self) -> Result<()> {
        if self.types.len() > MAX_ITEM_TYPES {
            return Err(Error::invalid(format!(
                "a query item names at most {MAX_ITEM_TYPES} event types, got {}",
                self.types.len()
            )));
        }
        if self.tags.len() > MAX_ITEM_TAGS {
            return Err(Error::invalid(format!(
                "a query item names at most {MAX_ITEM_TAGS} tags, got {}",
                self.tags.len()
            )));
        }
        if self.types.iter().any(String::is_empty) {
            return Err(Error::invalid("a query item names an empty event type"));
        }
        Ok(())
    }
}

/// Which events a read or a condition is about: those matching any item;
/// every event when there are no items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The items.
    #[serde(default)]
    pub items: Vec<QueryItem>,
}

impl Query {
    /// A checked query.
    pub fn new(items: Vec<QueryItem>) -> Result<Self> {
        let q = Query { items };
        q.validate()?;
        Ok(q)
    }

    /// The query that matches every event.
    pub fn all() -> Self {
        Query::default()
    }

    /// Checks the limits ([`MAX_QUERY_ITEMS`], [`MAX_ITEM_TYPES`],
    /// [`MAX_ITEM_TAGS`]).
    pub fn validate(&self) -> Result<()> {
        if self.items.len() > MAX_QUERY_ITEMS {
            return Err(Error::invalid(format!(
                "a query holds at most {MAX_QUERY_ITEMS} items, got {}",
                self.items.len()
            )));
        }
        self.items.iter().try_for_each(QueryItem::validate)
    }

    /// Whether the query matches every event.
    pub fn is_all(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether an event of a user stream with this type and tag set (sorted,
    /// as stored) matches.
    pub fn matches_parts(&self, event_type: &str, tags: &[Tag]) -> bool {
        self.is_all() || self.items.iter().any(|i| i.matches_parts(event_type, tags))
    }

    /// Whether `event` matches: never for an event of a system stream.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        !event.stream_id.is_system() && self.matches_parts(&event.event_type, &event.tags)
    }
}

/// Checks a query read's arguments: the query's limits, and a `limit` of
/// 1 to the store's `max_read_count`.
pub fn check_read(query: &Query, limit: usize, limits: &Limits) -> Result<()> {
    query.validate()?;
    if limit == 0 || limit > limits.max_read_count {
        return Err(Error::invalid(format!(
            "a query read's limit is 1 to {}, got {limit}",
            limits.max_read_count
        )));
    }
    Ok(())
}

/// The condition of a conditional append: it fails, writing nothing, when
/// an event after `after` (or any event, without one) matches
/// `fail_if_events_match`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCondition {
    /// The events whose presence fails the append.
    pub fail_if_events_match: Query,
    /// Only events after this position count; the position the caller's
    /// decision read up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Position>,
}

impl AppendCondition {
    /// Fails when an event after `after` matches `query`.
    pub fn new(query: Query, after: Option<Position>) -> Self {
        AppendCondition {
            fail_if_events_match: query,
            after,
        }
    }

    /// Where the check starts: events at or below it do not count.
    pub fn checked_after(&self) -> Position {
        self.after.unwrap_or(Position::START)
    }
}

/// The stream of an event appended without one: `dcb-` followed by its
/// first tag (the sorted set's first), or [`DEFAULT_DCB_STREAM`] when it
/// has none.
pub fn default_stream(tags: &[Tag]) -> Result<StreamId> {
    match tags.iter().min() {
        Some(first) => StreamId::new(format!("{DEFAULT_DCB_STREAM}-{first}")),
        None => StreamId::new(DEFAULT_DCB_STREAM),
    }
}

/// The per-stream parts of an append of `events`, each bound for its
/// stream: events of one stream keep their order, streams come in the
/// order they first appear, and every guard is `Any`.
pub fn parts_by_stream(
    events: impl IntoIterator<Item = (StreamId, crate::event::NewEvent)>,
) -> Vec<crate::append::StreamAppend> {
    let mut parts: Vec<crate::append::StreamAppend> = Vec::new();
    for (stream, event) in events {
        match parts.iter_mut().find(|p| p.stream == stream) {
            Some(p) => p.events.push(event),
            None => parts.push(crate::append::StreamAppend::new(
                stream,
                crate::version::ExpectedVersion::Any,
                vec![event],
            )),
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(t: &str) -> Tag {
        Tag::new(t).unwrap()
    }

    #[test]
    fn tags_are_checked_and_kept_as_sets() {
        assert!(Tag::new("").is_err());
        assert!(Tag::new("a b").is_err());
        assert!(Tag::new("a\u{7}").is_err());
        assert!(Tag::new("x".repeat(MAX_TAG_BYTES + 1)).is_err());
        assert!(Tag::new("x".repeat(MAX_TAG_BYTES)).is_ok());
        let set = tag_set(vec![tag("b:1"), tag("a:1"), tag("b:1")]);
        assert_eq!(set, vec![tag("a:1"), tag("b:1")]);
        let many: Vec<Tag> = (0..=MAX_TAGS_PER_EVENT)
            .map(|i| tag(&format!("t:{i}")))
            .collect();
        assert!(check_tags(&many).is_err());
        assert!(check_tags(&many[1..]).is_ok());
        let repeated = vec![tag("a:1"); MAX_TAGS_PER_EVENT + 1];
        assert!(check_tags(&repeated).is_ok());
        let json: Result<Tag, _> = serde_json::from_str("\"has space\"");
        assert!(json.is_err());
    }

    #[test]
    fn an_item_needs_one_of_its_types_and_all_of_its_tags() {
        let tags = [tag("course:c1"), tag("student:s1")];
        let item = QueryItem::new(["Subscribed", "Left"], [tag("course:c1")]);
        assert!(item.matches_parts("Subscribed", &tags));
        assert!(item.matches_parts("Left", &tags));
        assert!(!item.matches_parts("Opened", &tags));
        let both = QueryItem::new(Vec::<String>::new(), [tag("course:c1"), tag("student:s2")]);
        assert!(!both.matches_parts("Subscribed", &tags));
        let any_type = QueryItem::new(Vec::<String>::new(), [tag("student:s1")]);
        assert!(any_type.matches_parts("Whatever", &tags));
        let untagged = QueryItem::new(["Opened"], []);
        assert!(untagged.matches_parts("Opened", &[]));
    }

    #[test]
    fn a_query_matches_any_item_and_no_items_match_everything() {
        let q = Query::new(vec![
            QueryItem::new(["A"], []),
            QueryItem::new(Vec::<String>::new(), [tag("k:v")]),
        ])
        .unwrap();
        assert!(q.matches_parts("A", &[]));
        assert!(q.matches_parts("B", &[tag("k:v")]));
        assert!(!q.matches_parts("B", &[tag("k:w")]));
        assert!(Query::all().matches_parts("Z", &[]));
        let too_many = vec![QueryItem::default(); MAX_QUERY_ITEMS + 1];
        assert!(Query::new(too_many).is_err());
        let wide = QueryItem::new((0..=MAX_ITEM_TYPES).map(|i| i.to_string()), []);
        assert!(Query::new(vec![wide]).is_err());
        assert!(Query::new(vec![QueryItem::new([""], [])]).is_err());
    }

    #[test]
    fn the_default_stream_follows_the_first_tag() {
        assert_eq!(default_stream(&[]).unwrap().as_str(), "dcb");
        let s = default_stream(&[tag("student:s1"), tag("course:c1")]).unwrap();
        assert_eq!(s.as_str(), "dcb-course:c1");
    }

    #[test]
    fn conditions_read_and_write_as_the_http_body_does() {
        let c: AppendCondition = serde_json::from_str(
            r#"{"fail_if_events_match":{"items":[{"types":["A"],"tags":["k:v"]}]},"after":7}"#,
        )
        .unwrap();
        assert_eq!(c.checked_after(), Position(7));
        assert_eq!(c.fail_if_events_match.items[0].tags, vec![tag("k:v")]);
        let none: AppendCondition =
            serde_json::from_str(r#"{"fail_if_events_match":{"items":[]}}"#).unwrap();
        assert_eq!(none.checked_after(), Position::START);
    }
}
