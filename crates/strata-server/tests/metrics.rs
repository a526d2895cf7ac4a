//! `GET /metrics`: the Prometheus text changes with appends, errors and
//! subscriptions, and needs the admin role when keys are configured.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, SseClient};
use serde_json::json;
use strata_core::Limits;
use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ServerConfig};

/// The value of the series written exactly as `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

memory_store!(
    metrics_count_appends_errors_and_subscriptions,
    metrics_need_admin
);

/// The same counts over a store that reports durable syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_durable_syncs_when_the_store_does() {
    metrics_count_appends_errors_and_subscriptions(Harness::sync_counting().await).await
}

async fn metrics_count_appends_errors_and_subscriptions(h: Harness) {
    let r = h.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let before = r.text();
    assert_eq!(value(&before, "strata_appends_total"), Some(0.0));
    assert_eq!(value(&before, "strata_open_subscriptions"), Some(0.0));

    let r = h
        .post(
            "/streams/orders-1",
            &json!({"events": [{"type": "A", "data": {"n": 1}}, {"type": "B", "data": {"n": 2}}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .post(
            "/multi",
            &json!({"streams": [{"stream": "orders-2", "events": [{"type": "A", "data": {}}]}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    // Two errors of one kind, one of another.
    for _ in 0..2 {
        h.post(
            "/streams/orders-1",
            &json!({"expected_version": 99, "events": [{"type": "A", "data": {}}]}),
        )
        .await
        .assert_error(409, "wrong_expected_version");
    }
    h.get("/streams/missing")
        .await
        .assert_error(404, "stream_not_found");
    let from_head = format!("/subscribe/all?after={}", h.head().await);
    let mut sub = SseClient::connect(h.addr, &from_head, &[]).await;
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );

    let text = h.get("/metrics").await.text();
    // A durable store counts its syncs (the stand-in reports none so far);
    // the memory store has nothing to sync and no such series.
    let syncs = value(&text, "strata_store_durable_syncs_total");
    match h.backend {
        common::Backend::SyncCounting => assert_eq!(syncs, Some(0.0), "{text}"),
        common::Backend::Memory => assert_eq!(syncs, None, "{text}"),
    }
    assert_eq!(value(&text, "strata_appends_total"), Some(2.0));
    assert_eq!(value(&text, "strata_events_appended_total"), Some(3.0));
    // The committed payloads as stored: `{"n":1}`, `{"n":2}` and `{}`.
    assert_eq!(value(&text, "strata_bytes_appended_total"), Some(16.0));
    assert_eq!(
        value(&text, "strata_append_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "strata_append_duration_seconds_bucket{le=\"+Inf\"}"),
        Some(2.0)
    );
    assert!(value(&text, "strata_append_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(
        value(
            &text,
            "strata_errors_total{kind=\"wrong_expected_version\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "strata_errors_total{kind=\"stream_not_found\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "strata_http_requests_total{route=\"/streams/{stream}\",status=\"2xx\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "strata_http_requests_total{route=\"/streams/{stream}\",status=\"4xx\"}"
        ),
        Some(3.0)
    );
    assert_eq!(value(&text, "strata_open_subscriptions"), Some(1.0));
    assert!(value(&text, "strata_subscription_lag_messages_max").is_some());
    assert_eq!(
        value(&text, "strata_head_position"),
        Some(h.head().await as f64)
    );
    // Every line is a comment or `series value`.
    for line in text.lines() {
        assert!(
            line.starts_with('#') || line.rsplit_once(' ').unwrap().1.parse::<f64>().is_ok(),
            "{line}"
        );
    }
    drop(sub);
}

async fn metrics_need_admin(h: Harness) {
    let keys = ApiKeys::new(vec![
        ApiKey::new("ops", &sha256_hex("ops-key"), Role::Admin, vec!["*".into()]).unwrap(),
        ApiKey::new("app", &sha256_hex("app-key"), Role::Write, vec!["*".into()]).unwrap(),
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
    h.get("/metrics").await.assert_error(401, "unauthorized");
    h.get_with("/metrics", &[("Authorization", "Bearer app-key")])
        .await
        .assert_error(403, "forbidden");
    let r = h
        .get_with("/metrics", &[("Authorization", "Bearer ops-key")])
        .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(
        value(&text, "strata_errors_total{kind=\"unauthorized\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "strata_errors_total{kind=\"forbidden\"}"),
        Some(1.0)
    );
}
