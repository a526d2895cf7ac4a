//! `GET /`, `GET /health` and unknown paths.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;

memory_store!(
    health_reports_ok_and_head,
    index_links_the_endpoints,
    unknown_path_is_a_json_404
);

async fn health_reports_ok_and_head(h: Harness) {
    let r = h.get("/health").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["head_position"], 0);
}

async fn index_links_the_endpoints(h: Harness) {
    let r = h.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = r.text();
    for needle in [
        "/streams/",
        "/multi",
        "/all",
        "/subscribe/all",
        "href=\"/health\"",
        "href=\"/metrics\"",
        "href=\"/openapi.json\"",
    ] {
        assert!(html.contains(needle), "index lacks {needle}");
    }
}

async fn unknown_path_is_a_json_404(h: Harness) {
    h.get("/nope").await.assert_error(404, "not_found");
}
