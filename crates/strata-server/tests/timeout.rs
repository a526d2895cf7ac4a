//! The request timeout and the JSON 405.

#![allow(clippy::unwrap_used)]

mod common;

use common::{GatedStore, Harness};
use serde_json::json;
use strata_server::ServerConfig;

memory_store!(
    slow_request_is_503_timeout,
    wrong_method_is_a_json_405,
    an_overloaded_store_is_503_with_retry_after
);

async fn slow_request_is_503_timeout(h: Harness) {
    // The gate never opens, so the append can only end by the timeout.
    let gated = GatedStore::new(h.store.clone());
    let server = Harness::serve(
        gated,
        h.backend,
        ServerConfig {
            request_timeout_ms: 50,
            ..ServerConfig::default()
        },
        None,
    )
    .await;
    let r = server
        .post(
            "/streams/s",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    let v = r.assert_error(503, "timeout");
    assert!(v["message"].as_str().unwrap().contains("50 ms"));
    // Other requests are unaffected.
    assert_eq!(server.get("/health").await.status, 200);
}

async fn wrong_method_is_a_json_405(h: Harness) {
    h.request_method("PUT", "/streams/s")
        .await
        .assert_error(405, "method_not_allowed");
    h.request_method("POST", "/all")
        .await
        .assert_error(405, "method_not_allowed");
}

async fn an_overloaded_store_is_503_with_retry_after(h: Harness) {
    let store = GatedStore::new(h.store.clone());
    store
        .overloaded
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let server = Harness::serve(store, h.backend, ServerConfig::default(), None).await;
    let r = server
        .post(
            "/streams/s",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    r.assert_error(503, "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
}
