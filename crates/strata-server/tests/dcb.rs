//! `POST /dcb/read` and `POST /dcb/append`: tagged events, query reads with
//! the head a decision appends after, conditions that fail with 409 naming
//! the first matching position, stream guards beside them, the default
//! stream of an event sent without one, and API keys by the events' streams.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, SseClient};
use serde_json::{json, Value};
use strata_core::Limits;
use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ServerConfig};

memory_store!(
    tags_travel_and_query_reads_return_the_head,
    a_matching_event_after_the_read_fails_the_append_with_its_position,
    guards_apply_beside_the_condition,
    events_without_a_stream_go_to_the_default_stream,
    bad_bodies_are_refused_and_write_nothing,
    keys_apply_by_the_events_streams,
    a_query_subscription_delivers_only_matching_events,
);

fn subscribed(course: &str, student: &str) -> Value {
    json!({"type": "Subscribed", "data": {}, "tags": [format!("course:{course}"), format!("student:{student}")]})
}

fn course_query(course: &str) -> Value {
    json!({"items": [{"types": ["Subscribed"], "tags": [format!("course:{course}")]}]})
}

async fn tags_travel_and_query_reads_return_the_head(h: Harness) {
    let r = h
        .post(
            "/dcb/append",
            &json!({"events": [
                {"stream": "subs-1", "type": "Subscribed", "data": {}, "tags": ["student:s1", "course:c1", "course:c1"]},
                {"stream": "subs-1", "type": "Subscribed", "data": {}, "tags": ["course:c2", "student:s1"]},
                {"stream": "other", "type": "Opened", "data": {}}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["first_position"], 1);
    assert_eq!(v["last_position"], 3);
    assert_eq!(v["streams"][0]["stream"], "subs-1");
    assert_eq!(v["streams"][0]["next_expected_version"], 2);
    // Tags come back as sets wherever events are read.
    let all = h.get("/all").await.json();
    assert_eq!(all["events"][0]["tags"], json!(["course:c1", "student:s1"]));
    assert!(all["events"][2].get("tags").is_none());
    let read = h
        .post("/dcb/read", &json!({"query": course_query("c1")}))
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let read = read.json();
    assert_eq!(read["head"], 3);
    assert_eq!(read["events"].as_array().unwrap().len(), 1);
    assert_eq!(read["events"][0]["position"], 1);
    let by_student = h
        .post(
            "/dcb/read",
            &json!({"query": {"items": [{"tags": ["student:s1"]}]}, "after": 1, "limit": 5}),
        )
        .await
        .json();
    assert_eq!(by_student["events"][0]["position"], 2);
    let everything = h.post("/dcb/read", &json!({})).await.json();
    assert_eq!(everything["events"].as_array().unwrap().len(), 3);
}

async fn a_matching_event_after_the_read_fails_the_append_with_its_position(h: Harness) {
    let head = h
        .post("/dcb/read", &json!({"query": course_query("c1")}))
        .await
        .json()["head"]
        .as_u64()
        .unwrap();
    let decide = |student: &str| {
        json!({"events": [subscribed("c1", student)],
               "condition": {"fail_if_events_match": course_query("c1"), "after": head}})
    };
    assert_eq!(h.post("/dcb/append", &decide("s1")).await.status, 200);
    // A second decision made on the same read conflicts with the first.
    let r = h.post("/dcb/append", &decide("s2")).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"], "condition_failed");
    assert_eq!(v["position"], 1);
    assert_eq!(
        h.get("/all").await.json()["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Read again: the condition after the new head holds.
    let head = h
        .post("/dcb/read", &json!({"query": course_query("c1")}))
        .await
        .json()["head"]
        .clone();
    let r = h
        .post(
            "/dcb/append",
            &json!({"events": [subscribed("c1", "s2")],
                    "condition": {"fail_if_events_match": course_query("c1"), "after": head}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn guards_apply_beside_the_condition(h: Harness) {
    let body = json!({
        "events": [{"stream": "user-ada", "type": "Registered", "data": {}, "tags": ["user:ada"]}],
        "condition": {"fail_if_events_match": {"items": [{"tags": ["user:ada"]}]}},
        "expected_versions": {"user-ada": "no_stream"}
    });
    assert_eq!(h.post("/dcb/append", &body).await.status, 200);
    // The condition now fails too; with a condition that holds the guard
    // still does.
    let guarded = json!({
        "events": [{"stream": "user-ada", "type": "Renamed", "data": {}}],
        "condition": {"fail_if_events_match": {"items": [{"types": ["Never"]}]}},
        "expected_versions": {"user-ada": "no_stream"}
    });
    let r = h.post("/dcb/append", &guarded).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "wrong_expected_version");
    let stray = json!({
        "events": [{"stream": "user-ada", "type": "Renamed", "data": {}}],
        "expected_versions": {"user-bob": 1}
    });
    assert_eq!(h.post("/dcb/append", &stray).await.status, 422);
    let bad = json!({
        "events": [{"stream": "user-ada", "type": "Renamed", "data": {}}],
        "expected_versions": {"user-ada": "sometimes"}
    });
    assert_eq!(h.post("/dcb/append", &bad).await.status, 422);
}

async fn events_without_a_stream_go_to_the_default_stream(h: Harness) {
    let r = h
        .post(
            "/dcb/append",
            &json!({"events": [subscribed("c9", "s9"), {"type": "Noted", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["streams"][0]["stream"], "dcb-course:c9");
    assert_eq!(v["streams"][1]["stream"], "dcb");
    let s = h.get("/streams/dcb-course:c9").await;
    assert_eq!(s.status, 200, "{}", s.text());
}

async fn bad_bodies_are_refused_and_write_nothing(h: Harness) {
    for body in [
        json!({"events": []}),
        json!({"events": [{"type": "A", "data": {}, "tags": ["has space"]}]}),
        json!({"events": [{"type": "A", "data": {}, "tags": (0..17).map(|i| format!("t:{i}")).collect::<Vec<_>>()}]}),
        json!({"events": [{"type": "A", "data": {}}], "condition": {"fail_if_events_match": {"items": [{"types": [""]}]}}}),
        json!({"events": [{"type": "A", "data": {}, "surprise": 1}]}),
    ] {
        let r = h.post("/dcb/append", &body).await;
        assert!(
            r.status == 422 || r.status == 400,
            "{body}: {} {}",
            r.status,
            r.text()
        );
    }
    assert!(h.get("/all").await.json()["events"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = h.post("/dcb/read", &json!({"limit": 0})).await;
    assert_eq!(r.status, 422);
    let r = h
        .post("/dcb/read", &json!({"query": {"items": [{"tags": [""]}]}}))
        .await;
    assert!(r.status == 422 || r.status == 400, "{}", r.text());
}

async fn keys_apply_by_the_events_streams(h: Harness) {
    let k = |name: &str, secret: &str, role, prefix: &str| {
        ApiKey::new(name, &sha256_hex(secret), role, vec![prefix.to_string()]).unwrap()
    };
    let keys = ApiKeys::new(vec![
        k("admin", "admin-secret", Role::Admin, "*"),
        k("orders", "orders-secret", Role::Write, "orders-"),
    ])
    .unwrap();
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                api_keys: keys,
                ..ServerConfig::default()
            },
        )
        .await;
    let admin = [("Authorization", "Bearer admin-secret")];
    let orders = [("Authorization", "Bearer orders-secret")];
    let body = |stream: &str| json!({"events": [{"stream": stream, "type": "Placed", "data": {}, "tags": ["k:v"]}]});
    assert_eq!(
        h.post_with("/dcb/append", &body("audit-1"), &admin)
            .await
            .status,
        200
    );
    assert_eq!(
        h.post_with("/dcb/append", &body("orders-1"), &orders)
            .await
            .status,
        200
    );
    assert_eq!(
        h.post_with("/dcb/append", &body("audit-2"), &orders)
            .await
            .status,
        403
    );
    // A default stream outside the key's prefixes is refused too.
    let unnamed = json!({"events": [{"type": "Placed", "data": {}, "tags": ["k:v"]}]});
    assert_eq!(
        h.post_with("/dcb/append", &unnamed, &orders).await.status,
        403
    );
    let q = json!({"query": {"items": [{"tags": ["k:v"]}]}});
    let seen = h.post_with("/dcb/read", &q, &orders).await.json();
    let streams: Vec<&str> = seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stream"].as_str().unwrap())
        .collect();
    assert_eq!(streams, vec!["orders-1"]);
    assert_eq!(h.post("/dcb/read", &q).await.status, 401);
}

async fn a_query_subscription_delivers_only_matching_events(h: Harness) {
    let events =
        json!({"events": [subscribed("c1", "s1"), subscribed("c2", "s1"), subscribed("c1", "s2")]});
    assert_eq!(h.post("/dcb/append", &events).await.status, 200);
    let q = serde_json::to_string(&course_query("c1")).unwrap();
    let path = format!("/dcb/subscribe?query={}", urlencode(&q));
    let mut sub = SseClient::connect(h.addr, &path, &[]).await;
    assert_eq!(sub.status, 200);
    let first = sub.next_message().await.unwrap();
    assert_eq!(first.json()["position"], 1);
    assert_eq!(first.json()["tags"][0], "course:c1");
    // The two c1 events share their default stream, so they were written
    // together, before the c2 one.
    let second = sub.next_message().await.unwrap().json();
    assert_eq!(second["position"], 2);
    assert_eq!(second["tags"], json!(["course:c1", "student:s2"]));
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    // Live: a non-matching event is skipped, a matching one arrives.
    let more = json!({"events": [subscribed("c2", "s3"), subscribed("c1", "s4")]});
    assert_eq!(h.post("/dcb/append", &more).await.status, 200);
    let live = sub.next_message().await.unwrap();
    assert_eq!(live.json()["position"], 5);
    assert!(live.json()["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "student:s4"));
    // A query that is not valid is refused before the stream starts.
    let bad = SseClient::connect(h.addr, "/dcb/subscribe?query=%7B%22items%22%3A1%7D", &[]).await;
    assert_eq!(bad.status, 422);
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
