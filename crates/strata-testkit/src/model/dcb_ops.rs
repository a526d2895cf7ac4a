//! The generated parts of DCB operations: tags, queries and the position a
//! condition or a query read starts after.

use proptest::prelude::*;
use strata_core::dcb::{Query, QueryItem, Tag, MAX_QUERY_ITEMS, MAX_TAGS_PER_EVENT};
use strata_core::metadata::METADATA_EVENT_TYPE;

use super::ops::TYPES;

/// The tags generated events carry and queries ask for: few, so that
/// queries match often.
pub(super) const TAGS: [&str; 4] = ["course:c1", "course:c2", "student:s1", "student:s2"];

/// A generated event's tags.
#[derive(Clone, Debug)]
pub(super) enum GenTags {
    /// Indexes into [`TAGS`], duplicates allowed (the store keeps a set).
    Some(Vec<usize>),
    /// One more distinct tag than an event may carry (refused).
    TooMany,
}

/// A generated query.
#[derive(Clone, Debug)]
pub(super) enum GenQuery {
    /// Items of (types, tags): indexes into `TYPES` (`TYPES.len()` is the
    /// metadata event type, which no query ever matches) and into [`TAGS`].
    /// No items matches every event of a user stream.
    Items(Vec<(Vec<usize>, Vec<usize>)>),
    /// One item more than a query may hold (refused).
    TooManyItems,
}

/// Where a query read or a condition starts, resolved when the op runs.
#[derive(Clone, Debug)]
pub(super) enum GenAfter {
    /// No position: a condition counts every event (a read starts at the
    /// beginning).
    None,
    /// After the event of model position `rank % (events + 1)` (0 is `START`).
    Rank(usize),
    /// After the last event: what a decision that read up to the head names.
    Head,
    /// After a position past the last event.
    PastHead,
}

pub(super) fn gen_tags() -> impl Strategy<Value = GenTags> {
    prop_oneof![
        80 => proptest::collection::vec(0..TAGS.len(), 1..=3).prop_map(GenTags::Some),
        16 => Just(GenTags::Some(Vec::new())),
        1 => Just(GenTags::TooMany),
    ]
}

pub(super) fn gen_query() -> impl Strategy<Value = GenQuery> {
    let item = (
        prop_oneof![
            3 => Just(Vec::new()),
            2 => proptest::collection::vec(0..=TYPES.len(), 1..=2),
        ],
        prop_oneof![
            1 => Just(Vec::new()),
            4 => proptest::collection::vec(0..TAGS.len(), 1..=1),
            1 => proptest::collection::vec(0..TAGS.len(), 2..=2),
        ],
    );
    prop_oneof![
        3 => Just(GenQuery::Items(Vec::new())),
        60 => proptest::collection::vec(item, 1..=3).prop_map(GenQuery::Items),
        1 => Just(GenQuery::TooManyItems),
    ]
}

pub(super) fn gen_after() -> impl Strategy<Value = GenAfter> {
    prop_oneof![
        2 => Just(GenAfter::None),
        4 => any::<usize>().prop_map(GenAfter::Rank),
        4 => Just(GenAfter::Head),
        1 => Just(GenAfter::PastHead),
    ]
}

/// Where a query read starts: mostly somewhere inside the history.
pub(super) fn gen_read_after() -> impl Strategy<Value = GenAfter> {
    prop_oneof![
        2 => Just(GenAfter::None),
        6 => any::<usize>().prop_map(GenAfter::Rank),
        1 => Just(GenAfter::Head),
        1 => Just(GenAfter::PastHead),
    ]
}

pub(super) fn tag(i: usize) -> Tag {
    Tag::new(TAGS[i]).expect("valid tag")
}

/// A generated event's tags as sent.
pub(super) fn resolve_tags(g: &GenTags) -> Vec<Tag> {
    match g {
        GenTags::Some(ix) => ix.iter().map(|&i| tag(i)).collect(),
        GenTags::TooMany => (0..=MAX_TAGS_PER_EVENT)
            .map(|i| Tag::new(format!("many:{i}")).expect("valid tag"))
            .collect(),
    }
}

/// A generated query as sent (unchecked: a refused one is sent too).
pub(super) fn resolve_query(g: &GenQuery) -> Query {
    match g {
        GenQuery::Items(items) => Query {
            items: items
                .iter()
                .map(|(types, tags)| {
                    let types = types
                        .iter()
                        .map(|&i| TYPES.get(i).copied().unwrap_or(METADATA_EVENT_TYPE));
                    QueryItem::new(types, tags.iter().map(|&i| tag(i)))
                })
                .collect(),
        },
        GenQuery::TooManyItems => Query {
            items: vec![QueryItem::new(["Opened"], []); MAX_QUERY_ITEMS + 1],
        },
    }
}
