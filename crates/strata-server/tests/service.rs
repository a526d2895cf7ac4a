//! `GET /`, `GET /health` and unknown paths.

#![allow(clippy::unwrap_used)]

mod common;

use common::{GatedStore, Harness};
use strata_server::ServerConfig;

memory_store!(
    health_reports_ok_and_head,
    an_unwell_store_is_503_without_its_raw_error,
    undecodable_paths_and_nul_filters_are_json_errors,
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

async fn an_unwell_store_is_503_without_its_raw_error(h: Harness) {
    let store = GatedStore::new(h.store.clone());
    *store.unwell.lock().unwrap() = Some("/var/lib/strata/segments/00000001.seg".into());
    let server = Harness::serve(store, h.backend, ServerConfig::default(), None).await;
    let r = server.get("/health").await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["error"], "corrupt");
    assert!(!r.text().contains("/var/lib"), "{}", r.text());
}

async fn undecodable_paths_and_nul_filters_are_json_errors(h: Harness) {
    // Not UTF-8 once decoded: the API's error shape, not a plain-text 400.
    let v = h
        .get("/streams/%FF")
        .await
        .assert_error(400, "invalid_path");
    assert!(v["message"].is_string());
    h.delete("/streams/%FF%FE")
        .await
        .assert_error(400, "invalid_path");
    h.get("/subscribe/streams/%C3%28")
        .await
        .assert_error(400, "invalid_path");
    // A NUL in any filter string is invalid input, for reads and
    // subscriptions.
    for q in [
        "types=A,%00",
        "prefix=a%00",
        "category=%00",
        "correlation_id=%00",
    ] {
        h.get(&format!("/all?{q}"))
            .await
            .assert_error(422, "invalid_input");
        h.get(&format!("/subscribe/all?{q}"))
            .await
            .assert_error(422, "invalid_input");
    }
    // A query that does not parse.
    h.get("/all?limit=many")
        .await
        .assert_error(400, "invalid_query");
}
