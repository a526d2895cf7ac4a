//! `GET /streams/{stream}` and `GET /all` (both directions): pages,
//! filters, limits, 404 and 410.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{json, Value};
use strata_core::Limits;
use strata_server::ServerConfig;

memory_store!(
    read_stream_pages_forward_and_backward,
    read_missing_stream_is_404,
    read_tombstoned_stream_is_410,
    read_all_pages_and_filters,
    read_all_backward_pages_and_filters,
    limit_is_capped_by_the_store_max_read_count,
    bad_read_queries_are_4xx,
    pages_of_large_events_stop_at_the_byte_budget,
);

async fn append(h: &Harness, stream: &str, events: Value) {
    let r = h
        .post(&format!("/streams/{stream}"), &json!({ "events": events }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn versions(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect()
}

fn positions(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect()
}

async fn read_stream_pages_forward_and_backward(h: Harness) {
    let events: Vec<_> = (0..5).map(|i| json!({"type": "N", "data": i})).collect();
    append(&h, "s-1", json!(events)).await;

    let p = h.get("/streams/s-1?limit=2").await.json();
    assert_eq!(versions(&p), [1, 2]);
    assert_eq!(p["next"], 3);
    let p = h.get("/streams/s-1?from=3&limit=2").await.json();
    assert_eq!(versions(&p), [3, 4]);
    assert_eq!(p["next"], 5);
    let p = h.get("/streams/s-1?from=5&limit=2").await.json();
    assert_eq!(versions(&p), [5]);
    assert_eq!(p["next"], Value::Null);
    assert_eq!(p["events"][0]["data"], 4);

    let p = h
        .get("/streams/s-1?direction=backward&limit=2")
        .await
        .json();
    assert_eq!(versions(&p), [5, 4]);
    assert_eq!(p["next"], 3);
    let p = h
        .get("/streams/s-1?direction=backward&from=2&limit=2")
        .await
        .json();
    assert_eq!(versions(&p), [2, 1]);
    assert_eq!(p["next"], Value::Null);

    let p = h.get("/streams/s-1").await.json();
    assert_eq!(versions(&p), [1, 2, 3, 4, 5]);
}

async fn read_missing_stream_is_404(h: Harness) {
    let v = h
        .get("/streams/nobody")
        .await
        .assert_error(404, "stream_not_found");
    assert_eq!(v["stream"], "nobody");
}

async fn read_tombstoned_stream_is_410(h: Harness) {
    append(&h, "t-1", json!([{"type": "A", "data": {}}])).await;
    assert_eq!(h.delete("/streams/t-1?hard=true").await.status, 204);
    h.get("/streams/t-1")
        .await
        .assert_error(410, "stream_deleted");
}

async fn read_all_pages_and_filters(h: Harness) {
    append(
        &h,
        "account-1",
        json!([{"type": "Opened", "data": {}, "metadata": {"correlation_id": "c1"}},
               {"type": "Deposited", "data": {}}]),
    )
    .await;
    append(
        &h,
        "order-1",
        json!([{"type": "Placed", "data": {}, "metadata": {"correlation_id": "c1"}}]),
    )
    .await;
    append(&h, "account-2", json!([{"type": "Opened", "data": {}}])).await;

    let all = h.get("/all").await.json();
    let ps = positions(&all);
    assert_eq!(ps.len(), 4);
    assert!(ps.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all["next"], Value::Null);

    let p = h.get("/all?limit=3").await.json();
    assert_eq!(positions(&p), ps[..3]);
    assert_eq!(p["next"], ps[2]);
    let p = h.get(&format!("/all?after={}&limit=3", ps[2])).await.json();
    assert_eq!(positions(&p), ps[3..]);
    assert_eq!(p["next"], Value::Null);

    let p = h.get("/all?types=Opened,Placed").await.json();
    assert_eq!(positions(&p), [ps[0], ps[2], ps[3]]);
    let p = h.get("/all?prefix=account-").await.json();
    assert_eq!(positions(&p), [ps[0], ps[1], ps[3]]);
    let p = h.get("/all?correlation_id=c1").await.json();
    assert_eq!(positions(&p), [ps[0], ps[2]]);
    let p = h.get("/all?prefix=account-&types=Opened").await.json();
    assert_eq!(positions(&p), [ps[0], ps[3]]);
    assert_eq!(p["events"][1]["stream"], "account-2");
}

async fn read_all_backward_pages_and_filters(h: Harness) {
    append(
        &h,
        "account-1",
        json!([{"type": "Opened", "data": {}, "metadata": {"correlation_id": "c1"}},
               {"type": "Deposited", "data": {}}]),
    )
    .await;
    append(
        &h,
        "order-1",
        json!([{"type": "Placed", "data": {}, "metadata": {"correlation_id": "c1"}}]),
    )
    .await;
    append(&h, "account-2", json!([{"type": "Opened", "data": {}}])).await;
    let ps = positions(&h.get("/all").await.json());
    assert_eq!(ps.len(), 4);

    let all = h.get("/all?direction=backward").await.json();
    assert_eq!(positions(&all), [ps[3], ps[2], ps[1], ps[0]]);
    assert_eq!(all["next"], Value::Null);
    // Pages: `next` is the `before` of the next page, which is exclusive.
    let p = h.get("/all?direction=backward&limit=3").await.json();
    assert_eq!(positions(&p), [ps[3], ps[2], ps[1]]);
    assert_eq!(p["next"], ps[1]);
    let p = h
        .get(&format!("/all?direction=backward&before={}&limit=3", ps[1]))
        .await
        .json();
    assert_eq!(positions(&p), [ps[0]]);
    assert_eq!(p["next"], Value::Null);
    let p = h
        .get(&format!("/all?direction=backward&before={}", ps[2]))
        .await
        .json();
    assert_eq!(positions(&p), [ps[1], ps[0]]);
    let p = h.get("/all?direction=backward&before=0").await.json();
    assert!(positions(&p).is_empty());
    // `direction=forward` is the default.
    let p = h.get("/all?direction=forward&limit=2").await.json();
    assert_eq!(positions(&p), ps[..2]);

    let p = h
        .get("/all?direction=backward&types=Opened,Placed")
        .await
        .json();
    assert_eq!(positions(&p), [ps[3], ps[2], ps[0]]);
    let p = h
        .get("/all?direction=backward&prefix=account-")
        .await
        .json();
    assert_eq!(positions(&p), [ps[3], ps[1], ps[0]]);
    let p = h
        .get("/all?direction=backward&correlation_id=c1&limit=1")
        .await
        .json();
    assert_eq!(positions(&p), [ps[2]]);
    assert_eq!(p["next"], ps[2]);
    let p = h
        .get("/all?direction=backward&category=account")
        .await
        .json();
    assert_eq!(positions(&p), [ps[3], ps[1], ps[0]]);

    // Each bound belongs to one direction.
    h.get("/all?direction=backward&after=1")
        .await
        .assert_error(422, "invalid_input");
    h.get("/all?before=3")
        .await
        .assert_error(422, "invalid_input");
    for path in [
        "/all?direction=sideways",
        "/all?direction=backward&before=x",
    ] {
        h.get(path).await.assert_error(400, "invalid_query");
    }
}

async fn limit_is_capped_by_the_store_max_read_count(h: Harness) {
    let h = h
        .like(
            Limits {
                max_read_count: 3,
                ..Limits::default()
            },
            ServerConfig::default(),
        )
        .await;
    let events: Vec<_> = (0..5).map(|i| json!({"type": "N", "data": i})).collect();
    append(&h, "s", json!(events)).await;
    // The default page (100) and an explicit larger limit are both capped,
    // and `next` says there is more.
    for path in ["/streams/s", "/streams/s?limit=1000"] {
        let p = h.get(path).await.json();
        assert_eq!(versions(&p), [1, 2, 3]);
        assert_eq!(p["next"], 4);
    }
    let p = h.get("/all?limit=1000").await.json();
    assert_eq!(positions(&p).len(), 3);
    assert!(p["next"].is_u64());
}

async fn bad_read_queries_are_4xx(h: Harness) {
    append(&h, "s", json!([{"type": "A", "data": {}}])).await;
    for path in [
        "/streams/s?limit=abc",
        "/streams/s?direction=sideways",
        "/streams/s?from=-1",
        "/streams/s?colour=red",
        "/all?after=x",
        "/all?limit=1.5",
    ] {
        h.get(path).await.assert_error(400, "invalid_query");
    }
    h.get("/streams/s?limit=0")
        .await
        .assert_error(422, "invalid_input");
    h.get("/streams/$all")
        .await
        .assert_error(422, "invalid_input");
}

async fn pages_of_large_events_stop_at_the_byte_budget(h: Harness) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                max_page_bytes: 512 * 1024,
                ..ServerConfig::default()
            },
        )
        .await;
    // 20 events of ~100 KB: about five fit in a page.
    let blob = "x".repeat(100_000);
    for i in 0..20 {
        append(
            &h,
            "big",
            json!([{"type": "Big", "data": {"i": i, "blob": blob}}]),
        )
        .await;
    }
    // Forward through the stream, following `next`.
    let mut seen = Vec::new();
    let mut path = "/streams/big?limit=100".to_string();
    loop {
        let p = h.get(&path).await.json();
        let got = versions(&p);
        assert!(
            !got.is_empty() && got.len() <= 6,
            "a page of {} events",
            got.len()
        );
        seen.extend(got);
        match p["next"].as_u64() {
            Some(next) => path = format!("/streams/big?limit=100&from={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    // Backward.
    let mut seen = Vec::new();
    let mut path = "/streams/big?limit=100&direction=backward".to_string();
    loop {
        let p = h.get(&path).await.json();
        let got = versions(&p);
        assert!(!got.is_empty() && got.len() <= 6);
        seen.extend(got);
        match p["next"].as_u64() {
            Some(next) => path = format!("/streams/big?limit=100&direction=backward&from={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=20).rev().collect::<Vec<_>>());
    // `$all`, following `next`: every event once, in order.
    let mut seen = Vec::new();
    let mut path = "/all?limit=100000".to_string();
    loop {
        let p = h.get(&path).await.json();
        let got = positions(&p);
        assert!(got.len() <= 6);
        seen.extend(got);
        match p["next"].as_u64() {
            Some(next) => path = format!("/all?limit=100000&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // `$all` backwards, following `next` as `before`: the same, newest first.
    let forward = seen;
    let mut seen = Vec::new();
    let mut path = "/all?limit=100000&direction=backward".to_string();
    loop {
        let p = h.get(&path).await.json();
        let got = positions(&p);
        assert!(!got.is_empty() && got.len() <= 6);
        seen.extend(got);
        match p["next"].as_u64() {
            Some(next) => path = format!("/all?limit=100000&direction=backward&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, forward.into_iter().rev().collect::<Vec<_>>());
}
