//! `DELETE /streams/{stream}`: soft deletes and tombstones.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::json;

memory_store!(
    soft_delete_hides_the_stream_and_append_continues_it,
    hard_delete_tombstones_the_stream,
    delete_missing_stream_is_404,
    delete_with_wrong_expected_version_is_409,
    delete_with_unknown_expected_version_is_422,
);

async fn append_two(h: &Harness, stream: &str) {
    let r = h
        .post(
            &format!("/streams/{stream}"),
            &json!({"events": [{"type": "A", "data": {}}, {"type": "B", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn soft_delete_hides_the_stream_and_append_continues_it(h: Harness) {
    append_two(&h, "s").await;
    let r = h.delete("/streams/s?expected_version=2").await;
    assert_eq!(r.status, 204, "{}", r.text());
    h.get("/streams/s")
        .await
        .assert_error(404, "stream_not_found");
    let r = h
        .post(
            "/streams/s",
            &json!({"expected_version": "no_stream", "events": [{"type": "C", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["next_expected_version"], 3);
    let page = h.get("/streams/s").await.json();
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["version"], 3);
    // `$all` keeps the deleted events.
    let all = h.get("/all").await.json();
    assert_eq!(all["events"].as_array().unwrap().len(), 3);
}

async fn hard_delete_tombstones_the_stream(h: Harness) {
    append_two(&h, "s").await;
    let r = h
        .delete("/streams/s?hard=true&expected_version=exists")
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    h.get("/streams/s")
        .await
        .assert_error(410, "stream_deleted");
    h.delete("/streams/s")
        .await
        .assert_error(410, "stream_deleted");
    // A never-written stream may be tombstoned to reserve its name.
    assert_eq!(h.delete("/streams/reserved?hard=true").await.status, 204);
    h.post(
        "/streams/reserved",
        &json!({"events": [{"type": "A", "data": {}}]}),
    )
    .await
    .assert_error(410, "stream_deleted");
}

async fn delete_missing_stream_is_404(h: Harness) {
    h.delete("/streams/nobody")
        .await
        .assert_error(404, "stream_not_found");
}

async fn delete_with_wrong_expected_version_is_409(h: Harness) {
    append_two(&h, "s").await;
    let v = h
        .delete("/streams/s?expected_version=1")
        .await
        .assert_error(409, "wrong_expected_version");
    assert_eq!(v["actual"], 2);
    assert_eq!(h.get("/streams/s").await.status, 200);
}

async fn delete_with_unknown_expected_version_is_422(h: Harness) {
    append_two(&h, "s").await;
    h.delete("/streams/s?expected_version=latest")
        .await
        .assert_error(422, "invalid_input");
    h.delete("/streams/s?hard=maybe")
        .await
        .assert_error(400, "invalid_query");
    assert_eq!(h.get("/streams/s").await.status, 200);
}
