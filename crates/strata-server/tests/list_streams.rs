//! `GET /streams` (pages of streams in name order, with states and last
//! write times, scoped to a key's prefixes) and `GET /auth/whoami`.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{json, Value};
use strata_core::{ExpectedVersion, Limits, NewEvent, StreamAppend, StreamId};
use strata_server::{ApiKeys, Role, ServerConfig, MAX_STREAMS_EXAMINED};

const ADMIN: &str = "admin-secret";
const ORDERS_READER: &str = "orders-reader-secret";
const TWO_PREFIXES: &str = "aa-and-zz-secret";

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn keys() -> ApiKeys {
    let k = common::api_key;
    ApiKeys::new(vec![
        k("admin", ADMIN, Role::Admin, &["*"]),
        k("reader", ORDERS_READER, Role::Read, &["orders-"]),
        k("two", TWO_PREFIXES, Role::Read, &["aa-", "zz-"]),
    ])
    .unwrap()
}

async fn secured(h: &Harness) -> Harness {
    h.like(
        Limits::default(),
        ServerConfig {
            api_keys: keys(),
            ..ServerConfig::default()
        },
    )
    .await
}

/// Appends `count` events to each of `streams`, straight into the store.
async fn seed(h: &Harness, streams: &[&str], count: usize) {
    for s in streams {
        let events = (0..count)
            .map(|n| NewEvent::json("Seeded", &json!({ "n": n })).unwrap())
            .collect();
        h.store
            .append(&StreamId::new(s).unwrap(), ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

fn names(v: &Value) -> Vec<String> {
    v["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("no streams in {v}"))
        .iter()
        .map(|s| s["stream"].as_str().unwrap().to_string())
        .collect()
}

/// Every name `path` lists (with `headers`), following `next`, and how
/// many pages it took.
async fn every_name(h: &Harness, path: &str, headers: &[(&str, &str)]) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for pages in 1..=1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &next {
            Some(after) => format!("{path}{sep}after={after}"),
            None => path.to_string(),
        };
        let r = h.get_with(&url, headers).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let v = r.json();
        out.extend(names(&v));
        match v["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => {
                assert!(v["next"].is_null(), "{v}");
                return (out, pages);
            }
        }
    }
    panic!("{path} did not end");
}

memory_store!(
    streams_are_listed_in_name_order_with_their_state,
    streams_filter_by_prefix_category_and_system,
    bad_stream_list_parameters_are_400,
    a_key_lists_only_the_streams_it_covers,
    a_sparse_key_pages_within_the_examined_bound,
    whoami_describes_the_key_or_the_open_server,
);

/// Each stream as the store describes it, with the time of its last
/// readable event (`null` when none is), in name order and page by page.
async fn streams_are_listed_in_name_order_with_their_state(h: Harness) {
    seed(
        &h,
        &["orders-2", "orders-1", "users-1", "gone-1", "dead-1"],
        1,
    )
    .await;
    seed(&h, &["orders-2"], 2).await;
    assert_eq!(h.delete("/streams/gone-1").await.status, 204);
    assert_eq!(h.delete("/streams/dead-1?hard=true").await.status, 204);
    let r = h.get("/streams").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        names(&v),
        ["dead-1", "gone-1", "orders-1", "orders-2", "users-1"]
    );
    assert!(v["next"].is_null());
    let last = h
        .get("/streams/orders-2?direction=backward&limit=1")
        .await
        .json();
    let last = &last["events"][0];
    assert_eq!(
        v["streams"][3],
        json!({
            "stream": "orders-2",
            "version": 3,
            "state": "live",
            "first_readable_version": 1,
            "last_position": last["position"],
            "last_written": last["recorded_at"],
        })
    );
    let states: Vec<(&str, &str, bool)> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stream"].as_str().unwrap(),
                s["state"].as_str().unwrap(),
                s["last_written"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("dead-1", "tombstoned", false),
            ("gone-1", "deleted", false),
            ("orders-1", "live", true),
            ("orders-2", "live", true),
            ("users-1", "live", true),
        ]
    );
    let page = h.get("/streams?limit=2").await.json();
    assert_eq!(names(&page), ["dead-1", "gone-1"]);
    assert_eq!(page["next"], "gone-1");
    let (all, pages) = every_name(&h, "/streams?limit=2", &[]).await;
    assert_eq!(all, names(&v));
    assert_eq!(pages, 3);
}

/// `prefix` and `category` narrow the list as they narrow `/all`; system
/// streams (metadata streams `$$NAME`) only come with `system=true`.
async fn streams_filter_by_prefix_category_and_system(h: Harness) {
    seed(&h, &["orders", "orders-1", "ordersx-1", "users-1"], 1).await;
    let r = h
        .put("/streams/orders-1/metadata", &json!({"max_count": 3}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = |path: &'static str| {
        let h = &h;
        async move { names(&h.get(path).await.json()) }
    };
    assert_eq!(
        list("/streams?prefix=orders").await,
        ["orders", "orders-1", "ordersx-1"]
    );
    assert_eq!(
        list("/streams?category=orders").await,
        ["orders", "orders-1"]
    );
    assert_eq!(
        list("/streams?category=orders&prefix=orders-").await,
        ["orders-1"]
    );
    assert_eq!(
        list("/streams").await,
        ["orders", "orders-1", "ordersx-1", "users-1"]
    );
    assert_eq!(
        list("/streams?system=true").await,
        ["$$orders-1", "orders", "orders-1", "ordersx-1", "users-1"]
    );
    assert_eq!(list("/streams?prefix=%24%24").await, Vec::<String>::new());
    assert_eq!(
        list("/streams?prefix=%24%24&system=true").await,
        ["$$orders-1"]
    );
    // Empty parameters mean "not given", as on `/all`.
    assert_eq!(list("/streams?prefix=&category=&after=").await.len(), 4);
}

/// A limit out of range, an `after` that is no stream name, a NUL, an
/// unknown parameter: 400 with the usual error body.
async fn bad_stream_list_parameters_are_400(h: Harness) {
    for path in [
        "/streams?limit=0",
        "/streams?limit=1001",
        "/streams?limit=many",
        "/streams?after=a%01b",
        "/streams?prefix=a%00",
        "/streams?category=a%00",
        "/streams?system=maybe",
        "/streams?colour=red",
    ] {
        h.get(path).await.assert_error(400, "invalid_query");
    }
    let max = h.get("/streams?limit=1000").await;
    assert_eq!(max.status, 200, "{}", max.text());
}

/// A key sees only the streams its prefixes cover: `users-1` never shows
/// for a key limited to `orders-`, whatever is asked; a key of two
/// prefixes gets full pages across both.
async fn a_key_lists_only_the_streams_it_covers(h: Harness) {
    let h = secured(&h).await;
    seed(
        &h,
        &[
            "aa-1", "aa-2", "mm-1", "orders-1", "orders-2", "users-1", "zz-1",
        ],
        1,
    )
    .await;
    let reader = bearer(ORDERS_READER);
    let as_reader = [("Authorization", reader.as_str())];
    for path in [
        "/streams",
        "/streams?prefix=users",
        "/streams?category=users",
        "/streams?prefix=o",
        "/streams?limit=1",
        "/streams?system=true",
    ] {
        let (seen, _) = every_name(&h, path, &as_reader).await;
        assert!(
            seen.iter().all(|s| s.starts_with("orders-")),
            "{path}: {seen:?}"
        );
    }
    assert_eq!(
        every_name(&h, "/streams", &as_reader).await.0,
        ["orders-1", "orders-2"]
    );
    let two = bearer(TWO_PREFIXES);
    let as_two = [("Authorization", two.as_str())];
    let page = h.get_with("/streams?limit=3", &as_two).await.json();
    assert_eq!(names(&page), ["aa-1", "aa-2", "zz-1"], "a full page");
    assert!(page["next"].is_null(), "{page}");
    let (seen, pages) = every_name(&h, "/streams?limit=1", &as_two).await;
    assert_eq!(
        (seen, pages),
        (vec!["aa-1".into(), "aa-2".into(), "zz-1".into()], 3)
    );
    let admin = bearer(ADMIN);
    let (all, _) = every_name(&h, "/streams", &[("Authorization", admin.as_str())]).await;
    assert_eq!(all.len(), 7);
    h.get("/streams").await.assert_error(401, "unauthorized");
    h.get_with("/streams", &[("Authorization", "Bearer nope")])
        .await
        .assert_error(401, "unauthorized");
}

/// Between a sparse key's streams lie more streams than one request looks
/// at: a page stops there, short (even empty) with a `next`, and following
/// `next` reaches the rest.
async fn a_sparse_key_pages_within_the_examined_bound(h: Harness) {
    let h = secured(&h).await;
    seed(&h, &["aa-1", "zz-1"], 1).await;
    let between: Vec<StreamId> = (0..MAX_STREAMS_EXAMINED + 10)
        .map(|n| StreamId::new(format!("mm-{n:06}")).unwrap())
        .collect();
    for part in between.chunks(1000) {
        let appends = part
            .iter()
            .map(|s| {
                StreamAppend::new(
                    s.clone(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::json("Seeded", &json!({})).unwrap()],
                )
            })
            .collect();
        h.store.append_multi(appends).await.unwrap();
    }
    let two = bearer(TWO_PREFIXES);
    let as_two = [("Authorization", two.as_str())];
    let first = h.get_with("/streams?limit=10", &as_two).await.json();
    assert_eq!(names(&first), ["aa-1"]);
    assert!(
        first["next"].as_str().unwrap().starts_with("mm-"),
        "{first}"
    );
    let (seen, pages) = every_name(&h, "/streams?limit=10", &as_two).await;
    assert_eq!(seen, ["aa-1", "zz-1"]);
    assert!(pages >= 2, "{pages}");
}

/// `GET /auth/whoami`: the presented key's name, role and prefixes; the
/// open server's answer without keys; 401 for a bad key.
async fn whoami_describes_the_key_or_the_open_server(h: Harness) {
    let r = h.get("/auth/whoami").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"name": null, "role": "admin", "prefixes": [], "covers_all": true, "auth": "none"})
    );
    let h = secured(&h).await;
    let reader = bearer(ORDERS_READER);
    let r = h
        .get_with("/auth/whoami", &[("Authorization", reader.as_str())])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"name": "reader", "role": "read", "prefixes": ["orders-"], "covers_all": false, "auth": "key"})
    );
    let r = h.get_with("/auth/whoami", &[("X-API-Key", ADMIN)]).await;
    assert_eq!(
        r.json(),
        json!({"name": "admin", "role": "admin", "prefixes": ["*"], "covers_all": true, "auth": "key"})
    );
    h.get("/auth/whoami")
        .await
        .assert_error(401, "unauthorized");
    h.get_with("/auth/whoami", &[("Authorization", "Bearer nope")])
        .await
        .assert_error(401, "unauthorized");
}
