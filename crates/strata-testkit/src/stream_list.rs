//! Conformance cases for listing streams (`EventStore::list_streams`):
//! names in ascending byte order, pages that chain through `after` and
//! `next`, prefix and category, every state, system streams only when
//! asked, and the page size cap.

// These functions are test assertions: a panic is how a case reports that
// the store broke the contract.
#![allow(clippy::unwrap_used)]

use strata_core::{
    EventStore, ExpectedVersion, StreamAppend, StreamId, StreamInfo, StreamListQuery,
    StreamMetadata, StreamPage, StreamState, MAX_LIST_STREAMS,
};
use ExpectedVersion::{Any, Exact, NoStream};

use crate::conformance::{append_ok, assert_kind, evs, sid, StoreHarness};

/// Appends one event to each of `names`.
async fn create<S: EventStore>(store: &S, names: &[&str]) {
    for name in names {
        append_ok(store, &sid(name), Any, evs("Created", 1)).await;
    }
}

/// The names on `page`.
fn names(page: &StreamPage) -> Vec<&str> {
    page.streams.iter().map(|s| s.stream.as_str()).collect()
}

/// Every page of `query`, following `next` until the end (at most
/// `max_pages` of them).
async fn every_page<S: EventStore>(
    store: &S,
    query: &StreamListQuery,
    max_pages: usize,
) -> Vec<StreamPage> {
    let mut pages = Vec::new();
    let mut query = query.clone();
    loop {
        assert!(pages.len() < max_pages, "more than {max_pages} pages");
        let page = store.list_streams(&query).await.unwrap();
        let next = page.next.clone();
        pages.push(page);
        match next {
            Some(after) => query.after = Some(after),
            None => return pages,
        }
    }
}

/// The names `query` lists, all pages together.
async fn listed<S: EventStore>(store: &S, query: &StreamListQuery) -> Vec<String> {
    every_page(store, query, 100)
        .await
        .iter()
        .flat_map(|p| names(p).into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Streams come in ascending byte order of their names (not in the order
/// they were written, nor by any locale), each described as `stream_info`
/// describes it.
pub async fn list_streams_in_byte_order<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let written = [
        "b-1", "a-10", "é-1", "a-2", "B-1", "a-1", "z", "a_1", "a-1-x",
    ];
    create(&store, &written).await;
    append_ok(&store, &sid("a-2"), Exact(1), evs("Changed", 2)).await;
    let store = h.reopen(store).await;
    let page = store
        .list_streams(&StreamListQuery::new(100))
        .await
        .unwrap();
    let mut expected: Vec<&str> = written.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names(&page), expected);
    assert_eq!(page.next, None);
    for info in &page.streams {
        let one = store.stream_info(&info.stream).await.unwrap();
        assert_eq!(Some(info), one.as_ref());
    }
    let a2 = page.streams.iter().find(|s| s.stream.as_str() == "a-2");
    assert_eq!(
        a2.map(|s| (s.version, s.state)),
        Some((3, StreamState::Live))
    );
    let empty = h.open().await;
    let none = empty.list_streams(&StreamListQuery::new(10)).await.unwrap();
    assert_eq!(none, StreamPage::default());
}

/// Pages chain: each starts strictly after the `after` given, `next` is
/// the last stream of a page when more follow, and the last page has no
/// `next`. Every stream is listed once.
pub async fn list_streams_pages_through_after_and_next<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let all: Vec<String> = (1..=7).map(|n| format!("orders-{n}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    create(&store, &refs).await;
    let store = h.reopen(store).await;
    let pages = every_page(&store, &StreamListQuery::new(3), 10).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.streams.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    for page in &pages[..2] {
        assert_eq!(page.next.as_ref(), page.streams.last().map(|s| &s.stream));
    }
    assert_eq!(listed(&store, &StreamListQuery::new(3)).await, all);
    // `after` need not be a stream's name, and is exclusive.
    let q = StreamListQuery::new(2).after(sid("orders-3"));
    let page = store.list_streams(&q).await.unwrap();
    assert_eq!(names(&page), ["orders-4", "orders-5"]);
    let q = StreamListQuery::new(10).after(sid("orders-35"));
    let page = store.list_streams(&q).await.unwrap();
    assert_eq!(
        names(&page),
        ["orders-4", "orders-5", "orders-6", "orders-7"]
    );
    let q = StreamListQuery::new(10).after(sid("orders-7"));
    assert_eq!(store.list_streams(&q).await.unwrap(), StreamPage::default());
}

/// A prefix keeps the names that start with it; a category the streams of
/// that category, as `ReadFilter::category` means it (`orders` is
/// `orders` and `orders-…`, not `ordersx-…`); both together must both
/// hold; and they page like everything else.
pub async fn list_streams_by_prefix_and_category<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let written = [
        "orders-2",
        "orders",
        "ordersx-1",
        "order-1",
        "users-1",
        "orders-1",
        "orders-1-a",
    ];
    create(&store, &written).await;
    let store = h.reopen(store).await;
    let q = StreamListQuery::new(2);
    assert_eq!(
        listed(&store, &q.clone().prefix("orders")).await,
        ["orders", "orders-1", "orders-1-a", "orders-2", "ordersx-1"]
    );
    assert_eq!(
        listed(&store, &q.clone().category("orders")).await,
        ["orders", "orders-1", "orders-1-a", "orders-2"]
    );
    assert_eq!(
        listed(&store, &q.clone().category("orders").prefix("orders-1")).await,
        ["orders-1", "orders-1-a"]
    );
    assert_eq!(
        listed(&store, &q.clone().category("orders").prefix("ord")).await,
        ["orders", "orders-1", "orders-1-a", "orders-2"]
    );
    for nothing in [
        q.clone().prefix("zzz"),
        q.clone().category("order-1"),
        q.clone().category("users").prefix("orders"),
        q.clone().category("orders").prefix("ordersx"),
        q.clone().prefix("%"),
        q.clone().prefix("orders_"),
    ] {
        assert_eq!(
            store.list_streams(&nothing).await.unwrap(),
            StreamPage::default(),
            "{nothing:?}"
        );
    }
}

/// Live, soft-deleted, tombstoned (with events or never written) and
/// erased streams are all listed, with their state; an erased stream is
/// tombstoned.
pub async fn list_streams_shows_every_state<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    create(&store, &["s-live", "s-deleted", "s-dead", "s-erased"]).await;
    store
        .delete_stream(&sid("s-deleted"), Exact(1))
        .await
        .unwrap();
    store
        .tombstone_stream(&sid("s-dead"), Exact(1))
        .await
        .unwrap();
    store
        .tombstone_stream(&sid("s-never"), NoStream)
        .await
        .unwrap();
    store
        .erase_stream(&sid("s-erased"), Exact(1))
        .await
        .unwrap();
    let store = h.reopen(store).await;
    let page = store
        .list_streams(&StreamListQuery::new(10).prefix("s-"))
        .await
        .unwrap();
    let states: Vec<(&str, StreamState)> = page
        .streams
        .iter()
        .map(|s| (s.stream.as_str(), s.state))
        .collect();
    assert_eq!(
        states,
        [
            ("s-dead", StreamState::Tombstoned),
            ("s-deleted", StreamState::Deleted),
            ("s-erased", StreamState::Tombstoned),
            ("s-live", StreamState::Live),
            ("s-never", StreamState::Tombstoned),
        ]
    );
    for info in &page.streams {
        let one: Option<StreamInfo> = store.stream_info(&info.stream).await.unwrap();
        assert_eq!(Some(info), one.as_ref());
    }
}

/// System streams (a metadata stream `$$NAME`) are listed only with
/// `include_system`, in byte order with the rest (`$` sorts early).
pub async fn list_streams_hides_system_streams_unless_asked<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    create(&store, &["orders-1"]).await;
    store
        .set_stream_metadata(
            &sid("orders-1"),
            NoStream,
            &StreamMetadata {
                max_count: Some(5),
                ..StreamMetadata::default()
            },
        )
        .await
        .unwrap();
    let store = h.reopen(store).await;
    let q = StreamListQuery::new(10);
    assert_eq!(listed(&store, &q).await, ["orders-1"]);
    assert_eq!(
        listed(&store, &q.clone().prefix("$")).await,
        Vec::<String>::new()
    );
    let with = q.clone().include_system(true);
    assert_eq!(listed(&store, &with).await, ["$$orders-1", "orders-1"]);
    assert_eq!(
        listed(&store, &with.clone().prefix("$$")).await,
        ["$$orders-1"]
    );
    let meta = store
        .list_streams(&with.clone().prefix("$$"))
        .await
        .unwrap();
    let info = &meta.streams[0];
    assert_eq!((info.version, info.state), (1, StreamState::Live));
    assert!(info.stream.is_system());
}

/// A page holds at most `MAX_LIST_STREAMS` streams whatever the limit;
/// a limit of 0 and a NUL in the prefix or category are `invalid_input`.
pub async fn list_streams_caps_the_page_and_checks_the_query<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let total = MAX_LIST_STREAMS + 2;
    let all: Vec<StreamId> = (0..total).map(|n| sid(&format!("s-{n:05}"))).collect();
    let chunk = store.limits().max_streams_per_multi_append.clamp(1, 500);
    for part in all.chunks(chunk) {
        let appends = part
            .iter()
            .map(|s| StreamAppend::new(s.clone(), NoStream, evs("Created", 1)))
            .collect();
        store.append_multi(appends).await.unwrap();
    }
    let store = h.reopen(store).await;
    let page = store
        .list_streams(&StreamListQuery::new(MAX_LIST_STREAMS * 10))
        .await
        .unwrap();
    assert_eq!(page.streams.len(), MAX_LIST_STREAMS);
    assert_eq!(page.next.as_ref(), Some(&all[MAX_LIST_STREAMS - 1]));
    let rest = store
        .list_streams(&StreamListQuery::new(usize::MAX).after(page.next.clone().unwrap()))
        .await
        .unwrap();
    let rest_names: Vec<&StreamId> = rest.streams.iter().map(|s| &s.stream).collect();
    assert_eq!(
        rest_names,
        all[MAX_LIST_STREAMS..].iter().collect::<Vec<_>>()
    );
    assert_eq!(rest.next, None);
    assert_kind(
        store.list_streams(&StreamListQuery::new(0)).await,
        "invalid_input",
    );
    assert_kind(
        store
            .list_streams(&StreamListQuery::new(1).prefix("s-\0"))
            .await,
        "invalid_input",
    );
    assert_kind(
        store
            .list_streams(&StreamListQuery::new(1).category("s\0"))
            .await,
        "invalid_input",
    );
}
