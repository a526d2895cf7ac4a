//! `DELETE /streams/{stream}?erase=true`: the stream is tombstoned and its
//! events leave `$all`; the guard; the admin role on the stream (401 and
//! 403 as elsewhere); 501 from a store that cannot erase; and the server's
//! own memory: events of the stream still queued on an open subscription
//! are not sent after the erasure, and a subscription that saw more
//! erasures than it tracks is ended with `streams_erased`; the stream's
//! snapshots in the snapshot store the server was given are erased too.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, SseClient, SyncCountingStore};
use serde_json::{json, Value};
use strata_core::{
    EventStore, ExpectedVersion, Limits, MemorySnapshotStore, MemoryStore, NewEvent, Snapshot,
    SnapshotStore, StreamId,
};
use strata_server::{
    router_with_backing, serve_with, ApiKeys, Backing, Role, ServerConfig,
    MAX_ERASED_PER_SUBSCRIPTION,
};

memory_store!(
    erase_tombstones_the_stream_and_takes_its_events_out_of_all,
    a_failed_guard_erases_nothing,
    erase_needs_the_admin_role_on_the_stream,
    a_store_that_cannot_erase_answers_501,
    queued_events_of_an_erased_stream_are_never_sent,
    too_many_erasures_end_a_subscription,
    erase_erases_the_snapshots_of_the_store_it_was_given,
);

const SECRET: &str = "SECRET-HTTP-51c9";

async fn append(h: &Harness, stream: &str, n: usize, marker: &str) {
    for i in 0..n {
        let r = h
            .post(
                &format!("/streams/{stream}"),
                &json!({"events": [{"type": "Noted", "data": {"note": format!("{marker}-{i}")}}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

fn streams_in(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stream"].as_str().unwrap().to_string())
        .collect()
}

async fn erase_tombstones_the_stream_and_takes_its_events_out_of_all(h: Harness) {
    append(&h, "person-7", 3, SECRET).await;
    append(&h, "other-1", 2, "kept").await;
    let r = h
        .delete("/streams/person-7?erase=true&expected_version=3")
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.text().is_empty());
    h.get("/streams/person-7")
        .await
        .assert_error(410, "stream_deleted");
    h.post(
        "/streams/person-7",
        &json!({"events": [{"type": "A", "data": {}}]}),
    )
    .await
    .assert_error(410, "stream_deleted");
    let all = h.get("/all").await;
    assert!(!all.text().contains(SECRET), "{}", all.text());
    assert_eq!(streams_in(&all.json()), vec!["other-1", "other-1"]);
    // An erased (or tombstoned) stream is erased again with `any` only.
    assert_eq!(h.delete("/streams/person-7?erase=true").await.status, 204);
    h.delete("/streams/person-7?erase=true&expected_version=3")
        .await
        .assert_error(410, "stream_deleted");
    // A tombstoned stream's data can still be erased.
    append(&h, "gone-1", 1, SECRET).await;
    assert_eq!(h.delete("/streams/gone-1?hard=true").await.status, 204);
    assert!(h.get("/all").await.text().contains(SECRET));
    assert_eq!(h.delete("/streams/gone-1?erase=true").await.status, 204);
    assert!(!h.get("/all").await.text().contains(SECRET));
    // A never-written name is reserved.
    assert_eq!(h.delete("/streams/never-1?erase=true").await.status, 204);
    h.post(
        "/streams/never-1",
        &json!({"events": [{"type": "A", "data": {}}]}),
    )
    .await
    .assert_error(410, "stream_deleted");
    h.delete("/streams/x-1?erase=maybe")
        .await
        .assert_error(400, "invalid_query");
}

async fn a_failed_guard_erases_nothing(h: Harness) {
    append(&h, "person-7", 2, SECRET).await;
    let v = h
        .delete("/streams/person-7?erase=true&expected_version=1")
        .await
        .assert_error(409, "wrong_expected_version");
    assert_eq!(v["actual"], 2);
    h.delete("/streams/person-7?erase=true&expected_version=no_stream")
        .await
        .assert_error(409, "wrong_expected_version");
    h.delete("/streams/person-7?erase=true&expected_version=latest")
        .await
        .assert_error(422, "invalid_input");
    assert_eq!(h.get("/streams/person-7").await.status, 200);
    assert!(h.get("/all").await.text().contains(SECRET));
}

const ADMIN: &str = "admin-secret";
const WRITER: &str = "writer-secret";
const ORDERS_ADMIN: &str = "orders-admin-secret";

fn keys() -> ApiKeys {
    let k = common::api_key;
    ApiKeys::new(vec![
        k("admin", ADMIN, Role::Admin, &["*"]),
        k("writer", WRITER, Role::Write, &["*"]),
        k("orders-admin", ORDERS_ADMIN, Role::Admin, &["orders-"]),
    ])
    .unwrap()
}

async fn erase_needs_the_admin_role_on_the_stream(h: Harness) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                api_keys: keys(),
                ..ServerConfig::default()
            },
        )
        .await;
    let auth = |key: &str| format!("Bearer {key}");
    let r = h
        .post_with(
            "/streams/person-7",
            &json!({"events": [{"type": "A", "data": {}}]}),
            &[("Authorization", &auth(WRITER))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let path = "/streams/person-7?erase=true";
    let r = h.delete(path).await;
    r.assert_error(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    h.delete_with(path, &[("Authorization", &auth("nope"))])
        .await
        .assert_error(401, "unauthorized");
    let v = h
        .delete_with(path, &[("Authorization", &auth(WRITER))])
        .await
        .assert_error(403, "forbidden");
    assert!(v["message"].as_str().unwrap().contains("admin"), "{v}");
    let v = h
        .delete_with(path, &[("X-API-Key", ORDERS_ADMIN)])
        .await
        .assert_error(403, "forbidden");
    assert!(v["message"].as_str().unwrap().contains("person-7"), "{v}");
    // Nothing was erased by the refusals.
    let r = h
        .get_with("/streams/person-7", &[("Authorization", &auth(ADMIN))])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .delete_with(path, &[("Authorization", &auth(ADMIN))])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = h
        .delete_with(
            "/streams/orders-1?erase=true",
            &[("X-API-Key", ORDERS_ADMIN)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

async fn a_store_that_cannot_erase_answers_501(_h: Harness) {
    // This wrapper does not forward `erase_stream`: the default refuses.
    let store = Arc::new(SyncCountingStore(MemoryStore::new()));
    let h = Harness::serve(
        store,
        common::Backend::SyncCounting,
        ServerConfig::default(),
        None,
    )
    .await;
    append(&h, "person-7", 1, SECRET).await;
    let v = h
        .delete("/streams/person-7?erase=true")
        .await
        .assert_error(501, "unsupported");
    assert!(v["message"].as_str().unwrap().contains("eras"), "{v}");
    assert_eq!(h.get("/streams/person-7").await.status, 200);
}

/// Appends `n` events of 16 KiB to `stream`, four per append.
async fn append_big(h: &Harness, stream: &str, n: usize) {
    let stream = StreamId::new(stream).unwrap();
    let blob = "x".repeat(16 * 1024);
    for _ in 0..n / 4 {
        let events = (0..4)
            .map(|_| NewEvent::json("Big", &blob).unwrap())
            .collect();
        h.store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

async fn queued_events_of_an_erased_stream_are_never_sent(h: Harness) {
    // Room for everything, and patience: nothing is dropped for being slow.
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                subscription_buffer_messages: 4_096,
                subscription_buffer_bytes: 64 * 1024 * 1024,
                subscription_buffers_total_bytes: 64 * 1024 * 1024,
                slow_consumer_timeout_ms: 60_000,
                write_timeout_ms: 60_000,
                ..ServerConfig::default()
            },
        )
        .await;
    // A subscriber that does not read yet, with a tiny receive buffer: 16
    // MiB of events ahead fill every socket buffer, so what comes after
    // them waits in the server's queue.
    let mut sub = SseClient::connect_with(h.addr, "/subscribe/all", &[], Some(4096)).await;
    assert_eq!(sub.status, 200);
    append_big(&h, "big", 1024).await;
    append(&h, "person-7", 5, SECRET).await;
    append(&h, "other-1", 1, "last").await;
    // The pump has framed them all by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = h.delete("/streams/person-7?erase=true").await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mut seen = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.next_message())
            .await
            .expect("no message for 30 s")
            .expect("the stream goes on");
        assert_ne!(m.event.as_deref(), Some("error"), "ended: {}", m.data);
        if !m.is_event() {
            continue;
        }
        assert!(!m.data.contains(SECRET), "an erased event was sent");
        let stream = m.json()["stream"].as_str().unwrap().to_string();
        seen.push(stream.clone());
        if stream == "other-1" {
            break;
        }
    }
    assert_eq!(seen.iter().filter(|s| *s == "big").count(), 1024);
    assert!(!seen.iter().any(|s| s == "person-7"));
    // The budget of the dropped frames was given back: a fresh subscriber
    // gets everything still readable.
    let mut fresh = SseClient::connect(h.addr, "/subscribe/streams/other-1", &[]).await;
    let m = fresh.next_message().await.unwrap();
    assert_eq!(m.json()["stream"], "other-1");
}

async fn too_many_erasures_end_a_subscription(h: Harness) {
    let mut all = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    let mut one = SseClient::connect(h.addr, "/subscribe/streams/kept-1", &[]).await;
    assert_eq!((all.status, one.status), (200, 200));
    for i in 0..=MAX_ERASED_PER_SUBSCRIPTION {
        let r = h.delete(&format!("/streams/gone-{i}?erase=true")).await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let m = loop {
        let m = all.next_message().await.expect("an error event");
        assert!(!m.is_event(), "erasures write no event: {}", m.data);
        if m.event.as_deref() == Some("error") {
            break m;
        }
    };
    assert_eq!(m.json()["error"], "streams_erased", "{}", m.data);
    assert!(all.next_message().await.is_none(), "the stream ends");
    // A subscription to another stream is not concerned.
    append(&h, "kept-1", 1, "kept").await;
    let m = loop {
        let m = one.next_message().await.unwrap();
        assert_ne!(m.event.as_deref(), Some("error"), "{}", m.data);
        if m.is_event() {
            break m;
        }
    };
    assert_eq!(m.json()["stream"], "kept-1");
}

async fn erase_erases_the_snapshots_of_the_store_it_was_given(h: Harness) {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backing = Backing {
        snapshots: Some(snapshots.clone()),
        ..Backing::default()
    };
    let app = router_with_backing(h.store.clone(), backing, ServerConfig::default());
    tokio::spawn(async move {
        serve_with(
            listener,
            app,
            &ServerConfig::default(),
            None,
            std::future::pending(),
        )
        .await
    });
    append(&h, "person-7", 2, SECRET).await;
    for s in ["person-7", "other-1"] {
        snapshots
            .save(Snapshot {
                stream: StreamId::new(s).unwrap(),
                aggregate_type: "person".into(),
                version: 2,
                schema_version: 1,
                state: SECRET.as_bytes().to_vec().into(),
                taken_at: strata_core::clock::from_micros(1_700_000_000_000_000),
            })
            .await
            .unwrap();
    }
    let r = common::request(
        addr,
        "DELETE",
        "/streams/person-7?erase=true&expected_version=1",
        &[],
        None,
    )
    .await;
    r.assert_error(409, "wrong_expected_version");
    let person = StreamId::new("person-7").unwrap();
    assert!(snapshots.load(&person, u64::MAX).await.unwrap().is_some());
    let r = common::request(addr, "DELETE", "/streams/person-7?erase=true", &[], None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(snapshots.load(&person, u64::MAX).await.unwrap(), None);
    let other = StreamId::new("other-1").unwrap();
    assert!(snapshots.load(&other, u64::MAX).await.unwrap().is_some());
}
