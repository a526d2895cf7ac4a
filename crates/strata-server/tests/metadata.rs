//! `GET` and `PUT /streams/{stream}/metadata`: settings with a version of
//! their own, honoured by reads at once.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::json;

memory_store!(
    metadata_is_versioned_and_guarded,
    max_count_hides_older_events_in_reads_and_all,
    bad_settings_are_422,
);

async fn append(h: &Harness, stream: &str, n: usize) {
    let events: Vec<_> = (0..n)
        .map(|i| json!({"type": "A", "data": {"i": i}}))
        .collect();
    let r = h
        .post(&format!("/streams/{stream}"), &json!({ "events": events }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn metadata_is_versioned_and_guarded(h: Harness) {
    let r = h.get("/streams/s-1/metadata").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"stream": "s-1", "metadata_version": 0}));
    let body = json!({
        "expected_metadata_version": "no_stream",
        "max_count": 2,
        "custom": {"owner": "ada"}
    });
    let r = h.put("/streams/s-1/metadata", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["metadata_version"], 1);
    h.put("/streams/s-1/metadata", &body)
        .await
        .assert_error(409, "wrong_expected_version");
    let r = h
        .put(
            "/streams/s-1/metadata",
            &json!({"expected_metadata_version": 1, "max_age": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = h.get("/streams/s-1/metadata").await.json();
    assert_eq!(
        got,
        json!({"stream": "s-1", "metadata_version": 2, "max_age": 60})
    );
}

async fn max_count_hides_older_events_in_reads_and_all(h: Harness) {
    append(&h, "s-1", 5).await;
    let r = h
        .put("/streams/s-1/metadata", &json!({"max_count": 2}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = h.get("/streams/s-1").await.json();
    let versions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![4, 5]);
    let all = h.get("/all?prefix=s-").await.json();
    assert_eq!(all["events"].as_array().unwrap().len(), 2);
    // Appends still count every version.
    let r = h
        .post(
            "/streams/s-1",
            &json!({"expected_version": 5, "events": [{"type": "A", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn bad_settings_are_422(h: Harness) {
    h.put("/streams/s-1/metadata", &json!({"max_count": 0}))
        .await
        .assert_error(422, "invalid_input");
    h.put("/streams/s-1/metadata", &json!({"nope": 1}))
        .await
        .assert_error(422, "invalid_input");
}
