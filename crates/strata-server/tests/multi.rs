//! `POST /multi`: atomic appends to several streams.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::json;

memory_store!(
    multi_appends_atomically,
    multi_conflict_is_409_naming_the_stream_and_writes_nothing,
    multi_refuses_duplicate_and_empty_parts_with_422,
);

async fn multi_appends_atomically(h: Harness) {
    let r = h
        .post(
            "/multi",
            &json!({"streams": [
                {"stream": "order-1", "expected_version": "no_stream",
                 "events": [{"type": "Placed", "data": {"qty": 3}}]},
                {"stream": "stock-9", "events": [{"type": "Reserved", "data": {}},
                                                  {"type": "Picked", "data": {}}]}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["next_expected_version"], 1);
    assert_eq!(results[1]["next_expected_version"], 2);
    assert!(results[1]["first_position"].as_u64() > results[0]["last_position"].as_u64());
    assert_eq!(
        h.get("/streams/order-1").await.json()["events"][0]["type"],
        "Placed"
    );
    assert_eq!(
        h.get("/streams/stock-9").await.json()["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn multi_conflict_is_409_naming_the_stream_and_writes_nothing(h: Harness) {
    let r = h
        .post(
            "/streams/b",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let head = h.head().await;
    let r = h
        .post(
            "/multi",
            &json!({"streams": [
                {"stream": "a", "expected_version": "no_stream", "events": [{"type": "A", "data": {}}]},
                {"stream": "b", "expected_version": "no_stream", "events": [{"type": "A", "data": {}}]}
            ]}),
        )
        .await;
    let v = r.assert_error(409, "wrong_expected_version");
    assert_eq!(v["stream"], "b");
    assert_eq!(v["expected"], "no_stream");
    assert_eq!(v["actual"], 1);
    assert!(v["message"].as_str().unwrap().contains("`b`"));
    assert_eq!(h.head().await, head);
    h.get("/streams/a")
        .await
        .assert_error(404, "stream_not_found");
}

async fn multi_refuses_duplicate_and_empty_parts_with_422(h: Harness) {
    let e = json!([{"type": "A", "data": {}}]);
    for body in [
        json!({"streams": []}),
        json!({"streams": [{"stream": "a", "events": e}, {"stream": "a", "events": e}]}),
        json!({"streams": [{"stream": "a", "events": []}]}),
        json!({"streams": [{"stream": "a", "expected_version": "never", "events": e}]}),
    ] {
        h.post("/multi", &body)
            .await
            .assert_error(422, "invalid_input");
    }
    assert_eq!(h.head().await, 0);
}
