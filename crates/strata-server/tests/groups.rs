//! Consumer groups over HTTP: every `/groups` route, its errors (400, 401,
//! 403, 404, 422), push delivery over SSE, and the `/metrics` lines.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{request, Harness, Resp, SseClient};
use serde_json::{json, Value};
use strata_core::Limits;
use strata_server::{ApiKeys, Role, ServerConfig};

const ADMIN: &str = "admin-secret";
const READER: &str = "reader-secret";
const ORDERS_READER: &str = "orders-reader-secret";

fn keys() -> ApiKeys {
    let k = common::api_key;
    ApiKeys::new(vec![
        k("admin", ADMIN, Role::Admin, &["*"]),
        k("reader", READER, Role::Read, &["*"]),
        k("orders-reader", ORDERS_READER, Role::Read, &["orders-"]),
    ])
    .unwrap()
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    request(h.addr, method, path, &headers, bytes.as_deref()).await
}

async fn append(h: &Harness, stream: &str, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "T", "data": {"i": i}}))
        .collect();
    let r = call(
        h,
        "POST",
        &format!("/streams/{stream}"),
        Some(ADMIN),
        Some(&json!({"events": events})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

memory_store!(
    manage_a_group,
    read_ack_and_nack,
    park_and_replay,
    errors_and_limits,
    keys_and_roles,
    push_over_sse,
    metrics_show_groups
);

async fn manage_a_group(h: Harness) {
    let def = json!({"source": {"stream": "orders-1"}, "strategy": "pinned", "max_in_flight": 5});
    let r = h.put("/groups/billing", &def).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["name"], "billing");
    assert_eq!(v["settings"]["strategy"], "pinned");
    assert_eq!(v["settings"]["max_in_flight"], 5);
    // An update keeps the group.
    let r = h
        .put(
            "/groups/billing",
            &json!({"source": {"stream": "orders-1"}, "max_in_flight": 7}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = h.get("/groups").await.json();
    let names: Vec<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing"]);
    let status = h.get("/groups/billing").await.json();
    assert_eq!(status["settings"]["max_in_flight"], 7);
    for field in [
        "checkpoint",
        "lag_events",
        "lag_seconds",
        "in_flight",
        "parked",
        "consumers",
        "acked_total",
        "acked_per_second",
    ] {
        assert!(status[field].is_number(), "{field} in {status}");
    }
    assert_eq!(h.delete("/groups/billing").await.status, 204);
    h.get("/groups/billing")
        .await
        .assert_error(404, "group_not_found");
    h.delete("/groups/billing")
        .await
        .assert_error(404, "group_not_found");
    assert_eq!(h.get("/groups").await.json()["groups"], json!([]));
}

async fn read_ack_and_nack(h: Harness) {
    append(&h, "orders-1", 10).await;
    let r = h
        .put("/groups/g", &json!({"source": {"stream": "orders-1"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .post("/groups/g/read", &json!({"max": 4, "wait_ms": 1000}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["consumer"], "http");
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0]["delivery_count"], 1);
    assert_eq!(msgs[0]["event"]["stream"], "orders-1");
    assert_eq!(msgs[0]["event"]["version"], 1);
    assert_eq!(msgs[0]["event"]["data"], json!({"i": 0}));
    let ids: Vec<u64> = msgs
        .iter()
        .map(|m| m["delivery_id"].as_u64().unwrap())
        .collect();
    let r = h.post("/groups/g/ack", &json!({"ids": ids[..3]})).await;
    assert_eq!(r.json(), json!({"settled": 3, "unknown": 0, "parked": 0}));
    // Acking again: unknown.
    let r = h.post("/groups/g/ack", &json!({"ids": [ids[0]]})).await;
    assert_eq!(r.json()["unknown"], 1);
    // A retry comes back with a higher delivery count.
    let r = h
        .post(
            "/groups/g/nack",
            &json!({"ids": [ids[3]], "action": "retry", "reason": "later"}),
        )
        .await;
    assert_eq!(r.json()["settled"], 1);
    let mut seen_again = false;
    for _ in 0..20 {
        let v = h
            .post(
                "/groups/g/read",
                &json!({"max": 100, "wait_ms": 500, "consumer": "c2"}),
            )
            .await
            .json();
        assert_eq!(v["consumer"], "c2");
        let msgs = v["messages"].as_array().unwrap().clone();
        if msgs.is_empty() {
            break;
        }
        for m in &msgs {
            if m["event"]["version"] == 4 {
                assert_eq!(m["delivery_count"], 2);
                seen_again = true;
            }
        }
        let ids: Vec<u64> = msgs
            .iter()
            .map(|m| m["delivery_id"].as_u64().unwrap())
            .collect();
        let r = h
            .post("/groups/g/ack", &json!({"ids": ids, "consumer": "c2"}))
            .await;
        assert_eq!(r.json()["settled"].as_u64().unwrap() as usize, msgs.len());
    }
    assert!(seen_again, "the retried message came back");
    let status = h.get("/groups/g").await.json();
    assert_eq!(status["in_flight"], 0);
    assert_eq!(status["lag_events"], 0);
    assert_eq!(status["acked_total"], 10);
}

async fn park_and_replay(h: Harness) {
    append(&h, "orders-1", 3).await;
    let def = json!({"source": {"all": {}}, "max_retries": 0});
    assert_eq!(h.put("/groups/p", &def).await.status, 200);
    let v = h
        .post("/groups/p/read", &json!({"max": 10, "wait_ms": 1000}))
        .await
        .json();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let first = msgs[0]["delivery_id"].as_u64().unwrap();
    let rest: Vec<u64> = msgs[1..]
        .iter()
        .map(|m| m["delivery_id"].as_u64().unwrap())
        .collect();
    let r = h
        .post(
            "/groups/p/nack",
            &json!({"ids": [first], "action": "park", "reason": "poison"}),
        )
        .await;
    assert_eq!(r.json()["settled"], 1);
    h.post("/groups/p/ack", &json!({"ids": rest})).await;
    let parked = h.get("/groups/p/parked").await.json();
    let list = parked["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["reason"], "poison");
    assert_eq!(list[0]["event"]["version"], 1);
    assert!(list[0]["parked_at"].is_string());
    assert_eq!(h.get("/groups/p").await.json()["parked"], 1);
    let r = h.post("/groups/p/parked/replay", &json!({})).await;
    assert_eq!(r.json(), json!({"replayed": 1}));
    let v = h
        .post("/groups/p/read", &json!({"max": 10, "wait_ms": 2000}))
        .await
        .json();
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["event"]["version"], 1);
    // Parked again, then deleted from the list without a replay.
    let again = msgs[0]["delivery_id"].as_u64().unwrap();
    let position = msgs[0]["event"]["position"].as_u64().unwrap();
    h.post(
        "/groups/p/nack",
        &json!({"ids": [again], "action": "park", "reason": "still poison"}),
    )
    .await;
    assert_eq!(h.get("/groups/p").await.json()["parked"], 1);
    let r = h
        .post(
            "/groups/p/parked/delete",
            &json!({"positions": [position, 999_999]}),
        )
        .await;
    assert_eq!(r.json(), json!({"deleted": 1}));
    assert_eq!(h.get("/groups/p").await.json()["parked"], 0);
    let parked = h.get("/groups/p/parked").await.json();
    assert!(parked["messages"].as_array().unwrap().is_empty());
    // An empty replay body uses the default limit.
    let r = request(h.addr, "POST", "/groups/p/parked/replay", &[], None).await;
    assert_eq!(r.json(), json!({"replayed": 0}));
}

async fn errors_and_limits(h: Harness) {
    h.put("/groups/bad%20name", &json!({"source": {"all": {}}}))
        .await
        .assert_error(422, "invalid_input");
    h.put(
        "/groups/g",
        &json!({"source": {"all": {}}, "max_in_flight": 0}),
    )
    .await
    .assert_error(422, "invalid_input");
    h.put("/groups/g", &json!({"source": {"stream": "$groups"}}))
        .await
        .assert_error(422, "invalid_input");
    h.put("/groups/g", &json!({"nope": 1}))
        .await
        .assert_error(422, "invalid_input");
    let r = request(
        h.addr,
        "PUT",
        "/groups/g",
        &[("Content-Type", "application/json")],
        Some(b"{"),
    )
    .await;
    r.assert_error(400, "malformed_json");
    h.post("/groups/none/read", &json!({"max": 1}))
        .await
        .assert_error(404, "group_not_found");
    h.post("/groups/none/ack", &json!({"ids": [1]}))
        .await
        .assert_error(404, "group_not_found");
    h.get("/groups/none/parked")
        .await
        .assert_error(404, "group_not_found");
    h.post("/groups/none/parked/replay", &json!({}))
        .await
        .assert_error(404, "group_not_found");
    h.post("/groups/none/parked/delete", &json!({"positions": [1]}))
        .await
        .assert_error(404, "group_not_found");
    assert_eq!(
        h.put("/groups/g", &json!({"source": {"all": {}}}))
            .await
            .status,
        200
    );
    // A different source is refused.
    h.put("/groups/g", &json!({"source": {"stream": "x"}}))
        .await
        .assert_error(422, "invalid_input");
    h.post("/groups/g/read", &json!({"max": 0}))
        .await
        .assert_error(422, "invalid_input");
    h.post("/groups/g/read", &json!({"max": 10_001}))
        .await
        .assert_error(422, "invalid_input");
    h.post("/groups/g/read", &json!({"max": 1, "wait_ms": 60_001}))
        .await
        .assert_error(422, "invalid_input");
    h.post("/groups/g/read", &json!({"max": 1, "consumer": "a b"}))
        .await
        .assert_error(422, "invalid_input");
    let ids: Vec<u64> = (0..10_001).collect();
    h.post("/groups/g/ack", &json!({"ids": ids}))
        .await
        .assert_error(422, "invalid_input");
    h.post("/groups/g/nack", &json!({"ids": [1], "action": "explode"}))
        .await
        .assert_error(422, "invalid_input");
    h.post(
        "/groups/g/nack",
        &json!({"ids": [1], "action": "retry", "reason": "x".repeat(5000)}),
    )
    .await
    .assert_error(422, "invalid_input");
    h.get("/groups/g/parked?limit=0")
        .await
        .assert_error(422, "invalid_input");
    h.get("/groups/g/parked?limit=x")
        .await
        .assert_error(400, "invalid_query");
    h.post("/groups/g/parked/replay", &json!({"limit": 10_001}))
        .await
        .assert_error(422, "invalid_input");
    let too_many: Vec<u64> = (1..=10_001).collect();
    h.post("/groups/g/parked/delete", &json!({"positions": too_many}))
        .await
        .assert_error(422, "invalid_input");
    let sse = SseClient::connect(h.addr, "/groups/none/subscribe", &[]).await;
    assert_eq!(sse.status, 404);
    assert_eq!(sse.error.unwrap()["error"], "group_not_found");
}

async fn keys_and_roles(h: Harness) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                api_keys: keys(),
                ..ServerConfig::default()
            },
        )
        .await;
    append(&h, "orders-1", 2).await;
    let all = json!({"source": {"all": {}}});
    let orders = json!({"source": {"stream": "orders-1"}});
    call(&h, "PUT", "/groups/all", None, Some(&all))
        .await
        .assert_error(401, "unauthorized");
    call(&h, "PUT", "/groups/all", Some(READER), Some(&all))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        call(&h, "PUT", "/groups/all", Some(ADMIN), Some(&all))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&h, "PUT", "/groups/orders", Some(ADMIN), Some(&orders))
            .await
            .status,
        200
    );
    for (m, p) in [
        ("GET", "/groups"),
        ("GET", "/groups/all"),
        ("DELETE", "/groups/all"),
        ("GET", "/groups/all/parked"),
        ("POST", "/groups/all/parked/replay"),
    ] {
        call(&h, m, p, Some(READER), Some(&json!({})))
            .await
            .assert_error(403, "forbidden");
        call(&h, m, p, None, Some(&json!({})))
            .await
            .assert_error(401, "unauthorized");
    }
    let read = json!({"max": 10, "wait_ms": 500});
    call(&h, "POST", "/groups/all/read", None, Some(&read))
        .await
        .assert_error(401, "unauthorized");
    // A key scoped to a prefix cannot consume `$all`, but can its stream.
    call(
        &h,
        "POST",
        "/groups/all/read",
        Some(ORDERS_READER),
        Some(&read),
    )
    .await
    .assert_error(403, "forbidden");
    call(
        &h,
        "POST",
        "/groups/all/ack",
        Some(ORDERS_READER),
        Some(&json!({"ids": [1]})),
    )
    .await
    .assert_error(403, "forbidden");
    let r = call(
        &h,
        "POST",
        "/groups/orders/read",
        Some(ORDERS_READER),
        Some(&read),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["consumer"], "http-orders-reader");
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    // Without naming a consumer, the ack uses the same per-key default.
    let ids: Vec<u64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delivery_id"].as_u64().unwrap())
        .collect();
    let r = call(
        &h,
        "POST",
        "/groups/orders/ack",
        Some(ORDERS_READER),
        Some(&json!({"ids": ids})),
    )
    .await;
    assert_eq!(r.json()["settled"], 2);
    // A read key that covers everything consumes `$all`.
    let r = call(&h, "POST", "/groups/all/read", Some(READER), Some(&read)).await;
    assert_eq!(r.json()["messages"].as_array().unwrap().len(), 2);
    let sse = SseClient::connect(
        h.addr,
        "/groups/all/subscribe",
        &[("Authorization", &format!("Bearer {ORDERS_READER}"))],
    )
    .await;
    assert_eq!(sse.status, 403);
}

async fn push_over_sse(h: Harness) {
    append(&h, "orders-1", 5).await;
    let def =
        json!({"source": {"stream": "orders-1"}, "max_in_flight": 2, "ack_timeout_ms": 60000});
    assert_eq!(h.put("/groups/push", &def).await.status, 200);
    let mut sse = SseClient::connect(h.addr, "/groups/push/subscribe", &[]).await;
    assert_eq!(sse.status, 200);
    let hello = sse.next_message().await.unwrap();
    assert_eq!(hello.event.as_deref(), Some("consumer"));
    let consumer = hello.json()["consumer"].as_str().unwrap().to_string();
    assert!(consumer.starts_with("sse-"));
    let mut versions = BTreeSet::new();
    while versions.len() < 5 {
        let m = sse.next_message().await.unwrap();
        assert_eq!(m.event.as_deref(), Some("message"));
        let v = m.json();
        versions.insert(v["event"]["version"].as_u64().unwrap());
        // Never more than max_in_flight unacked.
        let status = h.get("/groups/push").await.json();
        assert!(status["in_flight"].as_u64().unwrap() <= 2, "{status}");
        let r = h
            .post(
                "/groups/push/ack",
                &json!({"ids": [v["delivery_id"]], "consumer": consumer}),
            )
            .await;
        assert_eq!(r.json()["settled"], 1);
    }
    assert_eq!(versions, (1..=5).collect());
    assert_eq!(h.get("/groups/push").await.json()["consumers"], 1);
    // Closing the connection leaves the group, and its leases go back.
    append(&h, "orders-1", 1).await;
    let m = sse.next_message().await.unwrap();
    assert_eq!(m.json()["event"]["version"], 6);
    drop(sse);
    let mut left = false;
    for _ in 0..100 {
        let status = h.get("/groups/push").await.json();
        if status["consumers"] == 0 && status["in_flight"] == 0 {
            left = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(left, "the consumer left when the connection closed");
    let v = h
        .post("/groups/push/read", &json!({"max": 10, "wait_ms": 1000}))
        .await
        .json();
    assert_eq!(v["messages"][0]["event"]["version"], 6);
    assert_eq!(v["messages"][0]["delivery_count"], 2);
}

async fn metrics_show_groups(h: Harness) {
    append(&h, "orders-1", 3).await;
    assert_eq!(
        h.put("/groups/m", &json!({"source": {"all": {}}}))
            .await
            .status,
        200
    );
    let v = h
        .post("/groups/m/read", &json!({"max": 2, "wait_ms": 1000}))
        .await
        .json();
    let id = v["messages"][0]["delivery_id"].clone();
    h.post("/groups/m/ack", &json!({"ids": [id]})).await;
    let text = h.get("/metrics").await.text();
    assert!(
        text.contains("strata_group_acked_total{group=\"m\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("strata_group_in_flight{group=\"m\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("strata_group_parked{group=\"m\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("strata_group_lag_events{group=\"m\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("strata_group_lag_seconds{group=\"m\"}"),
        "{text}"
    );
}
