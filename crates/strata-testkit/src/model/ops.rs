//! The generated operations and their strategies.

use proptest::prelude::*;
use serde_json::json;
use strata_core::metadata::{MAX_AGE_SECONDS, METADATA_EVENT_TYPE};
use strata_core::{ReadFilter, StreamId, StreamMetadata};

use super::dcb_ops::{gen_after, gen_query, gen_read_after, gen_tags, GenAfter, GenQuery, GenTags};
use super::MAX_OPS;

/// The streams the generated operations touch: two categories, plus one whose
/// name shares a prefix with a category but not the category.
pub(super) const STREAMS: [&str; 4] = ["account-1", "account-2", "accountant-1", "order-1"];
pub(super) const TYPES: [&str; 3] = ["Opened", "Deposited", "Withdrawn"];
pub(super) const CORRELATIONS: [Option<&str>; 3] = [None, Some("c1"), Some("c2")];
/// Prefixes and categories include the metadata streams' (`$$account-1`).
pub(super) const PREFIXES: [&str; 6] = ["account", "account-", "order", "acc", "x", "$$"];
pub(super) const CATEGORIES: [&str; 5] =
    ["account", "accountant", "order", "account-1", "$$account"];

/// A generated guard, resolved against the model when the op runs.
#[derive(Clone, Debug)]
pub(super) enum GenExpected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
    /// `Exact` of the stream's live version (0 if none) plus this.
    Live(i8),
    /// `Exact` of the stream's last version ever (ignoring deletion) plus this.
    Raw(i8),
}

#[derive(Clone, Debug)]
pub(super) enum GenId {
    /// No id: the store generates one.
    Generated,
    /// A new supplied id.
    Fresh,
    /// An id seen before (supplied or learned), picked by index.
    Reuse(usize),
}

#[derive(Clone, Debug)]
pub(super) enum GenPayload {
    Json,
    Binary,
    BadJson,
}

#[derive(Clone, Debug)]
pub(super) struct GenEvent {
    pub(super) id: GenId,
    pub(super) event_type: usize,
    pub(super) correlation: usize,
    pub(super) payload: GenPayload,
    pub(super) n: u8,
    pub(super) tags: GenTags,
}

/// How a retry differs from the original append.
#[derive(Clone, Debug)]
pub(super) enum Tamper {
    None,
    Reverse,
    DropFirst,
    AddFresh,
    OtherStream(usize),
}

#[derive(Clone, Debug)]
pub(super) enum GenFrom {
    /// Position `rank % (events + 2)`; 0 is `START`, `events + 1` past the end.
    Rank(usize),
    /// Just after the event of that rank.
    After(usize),
}

#[derive(Clone, Debug)]
pub(super) struct GenFilter {
    stream: Option<usize>,
    prefix: Option<usize>,
    category: Option<usize>,
    /// Indexes into `TYPES`; `TYPES.len()` is the metadata event type.
    types: Vec<usize>,
    correlation: Option<usize>,
}

/// A generated read count: small, or one over the store's limit.
#[derive(Clone, Debug)]
pub(super) enum GenCount {
    Small(usize),
    OverLimit,
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    Append {
        stream: usize,
        expected: GenExpected,
        events: Vec<GenEvent>,
    },
    Retry {
        of: usize,
        expected: GenExpected,
        tamper: Tamper,
    },
    Multi {
        parts: Vec<(usize, GenExpected, Vec<GenEvent>)>,
    },
    RetryMulti {
        of: usize,
        extra: Option<(usize, GenEvent)>,
    },
    Delete {
        stream: usize,
        expected: GenExpected,
    },
    Tombstone {
        stream: usize,
        expected: GenExpected,
    },
    ReadStream {
        stream: usize,
        from: Option<u64>,
        count: GenCount,
        backward: bool,
    },
    /// `read_all` from `from`, or `read_all_backward` before it.
    ReadAll {
        from: GenFrom,
        count: GenCount,
        filter: GenFilter,
        backward: bool,
    },
    StreamInfo {
        stream: usize,
    },
    Head,
    Reopen,
    /// Guarded by the metadata version.
    SetMetadata {
        stream: usize,
        expected: GenExpected,
        settings: StreamMetadata,
    },
    GetMetadata {
        stream: usize,
    },
    /// Sent only to a store that supports erasure (the test asks once).
    Erase {
        stream: usize,
        expected: GenExpected,
    },
    ReadQuery {
        query: GenQuery,
        after: GenAfter,
        count: GenCount,
    },
    /// A conditional append: parts with their guards, and a condition.
    AppendIf {
        parts: Vec<(usize, GenExpected, Vec<GenEvent>)>,
        query: GenQuery,
        after: GenAfter,
    },
    /// Sends an earlier multi-stream or conditional append again, exactly,
    /// with a condition.
    RetryIf {
        of: usize,
        query: GenQuery,
        after: GenAfter,
    },
}

pub(super) fn gen_expected() -> impl Strategy<Value = GenExpected> {
    prop_oneof![
        2 => Just(GenExpected::Any),
        2 => Just(GenExpected::NoStream),
        1 => Just(GenExpected::StreamExists),
        1 => (0u64..5).prop_map(GenExpected::Exact),
        4 => prop_oneof![3 => Just(0i8), 1 => -1i8..=1].prop_map(GenExpected::Live),
        1 => (-1i8..=1).prop_map(GenExpected::Raw),
    ]
}

/// A conditional append's guard: mostly `Any`, as a decision sends, else
/// any guard, so that conditions meet failing guards too.
pub(super) fn gen_if_expected() -> impl Strategy<Value = GenExpected> {
    prop_oneof![
        3 => Just(GenExpected::Any),
        2 => gen_expected(),
    ]
}

pub(super) fn gen_event() -> impl Strategy<Value = GenEvent> {
    let id = prop_oneof![
        3 => Just(GenId::Generated),
        5 => Just(GenId::Fresh),
        2 => any::<usize>().prop_map(GenId::Reuse),
    ];
    let payload = prop_oneof![
        30 => Just(GenPayload::Json),
        6 => Just(GenPayload::Binary),
        1 => Just(GenPayload::BadJson),
    ];
    (
        id,
        0..TYPES.len(),
        0..CORRELATIONS.len(),
        payload,
        any::<u8>(),
        gen_tags(),
    )
        .prop_map(|(id, event_type, correlation, payload, n, tags)| GenEvent {
            id,
            event_type,
            correlation,
            payload,
            n,
            tags,
        })
}

pub(super) fn gen_events() -> impl Strategy<Value = Vec<GenEvent>> {
    prop_oneof![
        39 => proptest::collection::vec(gen_event(), 1..=3),
        1 => Just(Vec::new()),
    ]
}

pub(super) fn gen_count() -> impl Strategy<Value = GenCount> {
    prop_oneof![
        2 => Just(GenCount::Small(0)),
        20 => (1usize..10).prop_map(GenCount::Small),
        1 => Just(GenCount::OverLimit),
    ]
}

pub(super) fn gen_filter() -> impl Strategy<Value = GenFilter> {
    use proptest::option::weighted;
    (
        weighted(0.12, 0..STREAMS.len()),
        weighted(0.12, 0..PREFIXES.len()),
        weighted(0.12, 0..CATEGORIES.len()),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec(0..=TYPES.len(), 1..=2),
        ],
        weighted(0.12, 1..CORRELATIONS.len()),
    )
        .prop_map(|(stream, prefix, category, types, correlation)| GenFilter {
            stream,
            prefix,
            category,
            types,
            correlation,
        })
}

/// The streams of a multi-stream append: 1 to 3 distinct ones in random
/// order, or now and then one named twice (which must be refused).
pub(super) fn gen_multi_streams() -> impl Strategy<Value = Vec<usize>> {
    let distinct =
        proptest::sample::subsequence((0..STREAMS.len()).collect::<Vec<_>>(), 1..=3).prop_shuffle();
    prop_oneof![
        12 => distinct.clone(),
        1 => distinct.prop_map(|mut s| {
            s.push(s[0]);
            s
        }),
    ]
}

/// Stream settings: small counts and truncations that cut often, custom
/// JSON of several shapes, ages too long to cut anything within a case (see
/// the `lifecycle` module), and now and then a setting the store must refuse.
pub(super) fn gen_settings() -> impl Strategy<Value = StreamMetadata> {
    use proptest::option::weighted;
    let custom = prop_oneof![
        Just(json!({"owner": "ada"})),
        Just(json!({"tags": [1, 2], "note": null, "nested": {"k": "v"}})),
        Just(json!("just a string")),
        Just(json!(7)),
    ];
    let age = prop_oneof![Just(3600u64), Just(86_400), Just(MAX_AGE_SECONDS)];
    let valid = (
        weighted(0.5, 1u64..=4),
        weighted(0.1, age),
        weighted(0.4, 1u64..=6),
        weighted(0.4, custom),
    )
        .prop_map(
            |(max_count, max_age, truncate_before, custom)| StreamMetadata {
                max_count,
                max_age,
                truncate_before,
                custom,
            },
        );
    let invalid = prop_oneof![
        Just(StreamMetadata {
            max_count: Some(0),
            ..Default::default()
        }),
        Just(StreamMetadata {
            max_age: Some(0),
            ..Default::default()
        }),
        Just(StreamMetadata {
            max_age: Some(MAX_AGE_SECONDS + 1),
            truncate_before: Some(2),
            ..Default::default()
        }),
    ];
    prop_oneof![14 => valid, 1 => invalid]
}

pub(super) fn gen_op() -> impl Strategy<Value = Op> {
    let stream = || 0..STREAM_PICKS;
    let tamper = prop_oneof![
        4 => Just(Tamper::None),
        1 => Just(Tamper::Reverse),
        1 => Just(Tamper::DropFirst),
        1 => Just(Tamper::AddFresh),
        1 => (0..STREAM_PICKS).prop_map(Tamper::OtherStream),
    ];
    let from = prop_oneof![
        3 => any::<usize>().prop_map(GenFrom::Rank),
        1 => any::<usize>().prop_map(GenFrom::After),
    ];
    prop_oneof![
        30 => (stream(), gen_expected(), gen_events())
            .prop_map(|(stream, expected, events)| Op::Append { stream, expected, events }),
        8 => (any::<usize>(), gen_expected(), tamper)
            .prop_map(|(of, expected, tamper)| Op::Retry { of, expected, tamper }),
        8 => (gen_multi_streams(), proptest::collection::vec((gen_expected(), gen_events()), 3))
            .prop_map(|(streams, guards)| Op::Multi {
                parts: streams
                    .into_iter()
                    .zip(guards)
                    .map(|(s, (expected, events))| (s, expected, events))
                    .collect(),
            }),
        3 => (any::<usize>(), proptest::option::weighted(0.3, (stream(), gen_event())))
            .prop_map(|(of, extra)| Op::RetryMulti { of, extra }),
        4 => (stream(), gen_expected())
            .prop_map(|(stream, expected)| Op::Delete { stream, expected }),
        2 => (stream(), gen_expected())
            .prop_map(|(stream, expected)| Op::Tombstone { stream, expected }),
        10 => (
            stream(),
            prop_oneof![4 => (0u64..8).prop_map(Some), 1 => Just(None)],
            gen_count(),
            any::<bool>(),
        )
            .prop_map(|(stream, from, count, backward)| Op::ReadStream {
                stream,
                from,
                count,
                backward,
            }),
        10 => (from, gen_count(), gen_filter(), proptest::bool::weighted(0.3))
            .prop_map(|(from, count, filter, backward)| Op::ReadAll { from, count, filter, backward }),
        5 => stream().prop_map(|stream| Op::StreamInfo { stream }),
        2 => Just(Op::Head),
        2 => Just(Op::Reopen),
        6 => (stream(), gen_expected(), gen_settings())
            .prop_map(|(stream, expected, settings)| Op::SetMetadata { stream, expected, settings }),
        2 => stream().prop_map(|stream| Op::GetMetadata { stream }),
        3 => (stream(), gen_expected())
            .prop_map(|(stream, expected)| Op::Erase { stream, expected }),
        8 => (gen_query(), gen_read_after(), gen_count())
            .prop_map(|(query, after, count)| Op::ReadQuery { query, after, count }),
        12 => (
            gen_multi_streams(),
            proptest::collection::vec((gen_if_expected(), gen_events()), 3),
            gen_query(),
            gen_after(),
        )
            .prop_map(|(streams, guards, query, after)| Op::AppendIf {
                parts: streams
                    .into_iter()
                    .zip(guards)
                    .map(|(s, (expected, events))| (s, expected, events))
                    .collect(),
                query,
                after,
            }),
        3 => (any::<usize>(), gen_query(), gen_after())
            .prop_map(|(of, query, after)| Op::RetryIf { of, query, after }),
    ]
}

/// One generated test case: a seed for fresh ids and the operations.
pub(super) fn gen_case() -> impl Strategy<Value = (u64, Vec<Op>)> {
    (
        any::<u64>(),
        proptest::collection::vec(gen_op(), 1..=MAX_OPS),
    )
}

/// A generated filter as a [`ReadFilter`].
pub(super) fn resolve_filter(filter: &GenFilter) -> ReadFilter {
    ReadFilter {
        stream: filter.stream.map(stream_id),
        stream_prefix: filter.prefix.map(|i| PREFIXES[i].to_string()),
        category: filter.category.map(|i| CATEGORIES[i].to_string()),
        event_types: filter
            .types
            .iter()
            .map(|&i| {
                TYPES
                    .get(i)
                    .copied()
                    .unwrap_or(METADATA_EVENT_TYPE)
                    .to_string()
            })
            .collect(),
        correlation_id: filter
            .correlation
            .and_then(|i| CORRELATIONS[i])
            .map(str::to_string),
    }
}

pub(super) fn stream_id(i: usize) -> StreamId {
    StreamId::new(STREAMS[i]).expect("valid stream name")
}

/// A generated stream pick: below `STREAMS.len()` names a stream directly;
/// above, it prefers a stream that is live at the time the op runs.
pub(super) const STREAM_PICKS: usize = 2 * STREAMS.len();
