//! `POST /streams/{stream}`: results, conflicts, and every way a request is refused.

#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::json;
use strata_core::Limits;
use strata_server::ServerConfig;

memory_store!(
    append_returns_positions_and_round_trips,
    append_wrong_expected_version_is_409,
    append_to_tombstoned_stream_is_410,
    append_retry_with_same_ids_is_idempotent,
    binary_event_round_trips_as_base64,
    malformed_json_is_400_and_writes_nothing,
    wrong_content_type_is_400_and_writes_nothing,
    oversized_body_is_413_and_writes_nothing,
    too_many_events_is_413_and_writes_nothing,
    oversized_event_is_413,
    unknown_expected_version_is_422_and_writes_nothing,
    invalid_stream_names_are_422_and_write_nothing,
    invalid_events_are_422_and_write_nothing,
    payloads_arrive_verbatim_whether_shared_or_copied,
);

async fn append_returns_positions_and_round_trips(h: Harness) {
    let r = h
        .post(
            "/streams/account-1",
            &json!({
                "expected_version": "no_stream",
                "events": [
                    {"id": "0190c2a4-6f1e-7000-8000-000000000001", "type": "Opened",
                     "data": {"owner": "ada", "balance": "10.50"},
                     "metadata": {"correlation_id": "c-1", "causation_id": "cmd-1",
                                  "user_id": "u-1", "source": "test", "tenant": "t-9"}},
                    {"type": "Deposited", "data": {"amount": "1.25"}}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["next_expected_version"], 2);
    let first = v["first_position"].as_u64().unwrap();
    let last = v["last_position"].as_u64().unwrap();
    assert!(first >= 1 && last > first);

    let r = h
        .post(
            "/streams/account-1",
            &json!({"expected_version": 2, "events": [{"type": "Closed", "data": null}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["next_expected_version"], 3);
    let r = h
        .post(
            "/streams/account-1",
            &json!({"expected_version": "exists", "events": [{"type": "Noted", "data": 1}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let page = h.get("/streams/account-1").await.json();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    let e = &events[0];
    assert_eq!(e["id"], "0190c2a4-6f1e-7000-8000-000000000001");
    assert_eq!(e["stream"], "account-1");
    assert_eq!(e["version"], 1);
    assert_eq!(e["position"].as_u64().unwrap(), first);
    assert_eq!(e["type"], "Opened");
    assert_eq!(e["content_type"], "json");
    assert_eq!(e["data"], json!({"owner": "ada", "balance": "10.50"}));
    assert_eq!(
        e["metadata"],
        json!({"correlation_id": "c-1", "causation_id": "cmd-1", "user_id": "u-1",
               "source": "test", "tenant": "t-9"})
    );
    assert!(e["recorded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(events[1]["metadata"], json!({}));
    assert_eq!(events[2]["data"], json!(null));
    assert_eq!(page["next"], json!(null));
}

async fn append_wrong_expected_version_is_409(h: Harness) {
    let ok = h
        .post(
            "/streams/s-1",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    assert_eq!(ok.status, 200);
    let head = h.head().await;
    let r = h
        .post(
            "/streams/s-1",
            &json!({"expected_version": 5, "events": [{"type": "B", "data": {}}]}),
        )
        .await;
    let v = r.assert_error(409, "wrong_expected_version");
    assert_eq!(v["stream"], "s-1");
    assert_eq!(v["expected"], 5);
    assert_eq!(v["actual"], 1);
    let r = h
        .post(
            "/streams/s-2",
            &json!({"expected_version": "exists", "events": [{"type": "B", "data": {}}]}),
        )
        .await;
    let v = r.assert_error(409, "wrong_expected_version");
    assert_eq!(v["expected"], "exists");
    assert_eq!(v["actual"], "no_stream");
    assert_eq!(h.head().await, head);
}

async fn append_to_tombstoned_stream_is_410(h: Harness) {
    let r = h
        .post(
            "/streams/gone",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.delete("/streams/gone?hard=true").await.status, 204);
    let head = h.head().await;
    let r = h
        .post(
            "/streams/gone",
            &json!({"events": [{"type": "A", "data": {}}]}),
        )
        .await;
    r.assert_error(410, "stream_deleted");
    assert_eq!(h.head().await, head);
}

async fn append_retry_with_same_ids_is_idempotent(h: Harness) {
    let body = json!({"expected_version": "no_stream", "events": [
        {"id": "0190c2a4-6f1e-7000-8000-0000000000aa", "type": "A", "data": {}},
        {"id": "0190c2a4-6f1e-7000-8000-0000000000ab", "type": "B", "data": {}}
    ]});
    let first = h.post("/streams/retry-1", &body).await;
    assert_eq!(first.status, 200);
    let head = h.head().await;
    let again = h.post("/streams/retry-1", &body).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), first.json());
    assert_eq!(h.head().await, head);
}

async fn binary_event_round_trips_as_base64(h: Harness) {
    // "\x00\x01binary" in standard base64.
    let r = h
        .post(
            "/streams/bin-1",
            &json!({"events": [{"type": "Blob", "content_type": "binary", "data": "AAFiaW5hcnk="}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = h.get("/streams/bin-1").await.json();
    assert_eq!(page["events"][0]["content_type"], "binary");
    assert_eq!(page["events"][0]["data"], "AAFiaW5hcnk=");
    let r = h
        .post(
            "/streams/bin-1",
            &json!({"events": [{"type": "Blob", "content_type": "binary", "data": "not base64!"}]}),
        )
        .await;
    r.assert_error(422, "invalid_input");
}

async fn malformed_json_is_400_and_writes_nothing(h: Harness) {
    for body in [
        &b"{\"events\": ["[..],
        b"",
        b"not json",
        b"{\"events\": []} trailing",
    ] {
        let r = h.post_raw("/streams/s", "application/json", body).await;
        r.assert_error(400, "malformed_json");
    }
    assert_eq!(h.head().await, 0);
    let r = h.post_raw("/multi", "application/json", b"{").await;
    r.assert_error(400, "malformed_json");
    assert_eq!(h.head().await, 0);
}

async fn wrong_content_type_is_400_and_writes_nothing(h: Harness) {
    let body = br#"{"events": [{"type": "A", "data": {}}]}"#;
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = h.post_raw("/streams/s", ct, body).await;
        let v = r.assert_error(400, "unsupported_content_type");
        assert!(v["message"].as_str().unwrap().contains("application/json"));
    }
    let r = common::request(h.addr, "POST", "/streams/s", &[], Some(body)).await;
    r.assert_error(400, "unsupported_content_type");
    assert_eq!(h.head().await, 0);
    // Parameters after the media type are fine.
    let r = h
        .post_raw("/streams/s", "application/json; charset=utf-8", body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn oversized_body_is_413_and_writes_nothing(h: Harness) {
    let small = h
        .like(
            Limits::default(),
            ServerConfig {
                max_body_bytes: 1024,
                ..ServerConfig::default()
            },
        )
        .await;
    let big = "x".repeat(2048);
    let r = small
        .post(
            "/streams/s",
            &json!({"events": [{"type": "A", "data": big}]}),
        )
        .await;
    let v = r.assert_error(413, "payload_too_large");
    assert!(v["message"].as_str().unwrap().contains("1024"));
    assert_eq!(small.head().await, 0);
}

async fn too_many_events_is_413_and_writes_nothing(h: Harness) {
    let small = h
        .like(
            Limits::default(),
            ServerConfig {
                max_events_per_request: 3,
                ..ServerConfig::default()
            },
        )
        .await;
    let events: Vec<_> = (0..4).map(|_| json!({"type": "A", "data": {}})).collect();
    let r = small.post("/streams/s", &json!({ "events": events })).await;
    r.assert_error(413, "payload_too_large");
    let r = small
        .post(
            "/multi",
            &json!({"streams": [{"stream": "a", "events": events[..2]},
                                 {"stream": "b", "events": events[..2]}]}),
        )
        .await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(small.head().await, 0);
    let r = small
        .post("/streams/s", &json!({ "events": events[..3] }))
        .await;
    assert_eq!(r.status, 200);
}

async fn oversized_event_is_413(h: Harness) {
    let small = h
        .like(
            Limits {
                max_event_bytes: 100,
                ..Limits::default()
            },
            ServerConfig::default(),
        )
        .await;
    let r = small
        .post(
            "/streams/s",
            &json!({"events": [{"type": "A", "data": "y".repeat(200)}]}),
        )
        .await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(small.head().await, 0);
    // The store measures and refuses; the server only answers. Its limit on
    // one append's total answers 413 as well, on every append route.
    let total = h
        .like(
            Limits {
                max_append_bytes: 150,
                ..Limits::default()
            },
            ServerConfig::default(),
        )
        .await;
    let two = json!([{"type": "A", "data": "y".repeat(80)}, {"type": "A", "data": "y".repeat(80)}]);
    let v = total
        .post("/streams/s", &json!({ "events": two }))
        .await
        .assert_error(413, "payload_too_large");
    assert!(v["message"].as_str().unwrap().contains("150"), "{v}");
    total
        .post(
            "/multi",
            &json!({"streams": [{"stream": "s", "events": two}]}),
        )
        .await
        .assert_error(413, "payload_too_large");
    let dcb = json!([{"type": "A", "stream": "s", "data": "y".repeat(80)},
                     {"type": "A", "stream": "t", "data": "y".repeat(80)}]);
    total
        .post("/dcb/append", &json!({ "events": dcb }))
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(total.head().await, 0);
    // The store's own count limit, below the server's, answers 413 too.
    let few = h
        .like(
            Limits {
                max_events_per_append: 3,
                ..Limits::default()
            },
            ServerConfig::default(),
        )
        .await;
    let four: Vec<_> = (0..4).map(|_| json!({"type": "A", "data": {}})).collect();
    let v = few
        .post("/streams/s", &json!({ "events": four }))
        .await
        .assert_error(413, "payload_too_large");
    assert!(v["message"].as_str().unwrap().contains("4 events"), "{v}");
    assert_eq!(few.head().await, 0);
}

async fn unknown_expected_version_is_422_and_writes_nothing(h: Harness) {
    for ev in [
        json!("latest"),
        json!(-1),
        json!(1.5),
        json!(true),
        json!({}),
    ] {
        let r = h
            .post(
                "/streams/s",
                &json!({"expected_version": ev, "events": [{"type": "A", "data": {}}]}),
            )
            .await;
        let v = r.assert_error(422, "invalid_input");
        assert!(
            v["message"].as_str().unwrap().contains("expected_version"),
            "{v}"
        );
    }
    assert_eq!(h.head().await, 0);
}

async fn invalid_stream_names_are_422_and_write_nothing(h: Harness) {
    let long = "x".repeat(256);
    for path in [
        "/streams/$system",
        "/streams/a%0Ab",
        &format!("/streams/{long}"),
    ] {
        let r = h
            .post(path, &json!({"events": [{"type": "A", "data": {}}]}))
            .await;
        let v = r.assert_error(422, "invalid_input");
        assert!(
            v["message"].as_str().unwrap().contains("stream name"),
            "{v}"
        );
    }
    let r = h
        .post(
            "/multi",
            &json!({"streams": [{"stream": "", "events": [{"type": "A", "data": {}}]}]}),
        )
        .await;
    r.assert_error(422, "invalid_input");
    assert_eq!(h.head().await, 0);
}

async fn invalid_events_are_422_and_write_nothing(h: Harness) {
    let cases = [
        json!({"events": [{"type": "", "data": {}}]}),
        json!({"events": []}),
        json!({"events": [{"data": {}}]}),
        json!({"events": [{"type": "A"}]}),
        json!({"events": [{"type": "A", "data": {}, "id": "not-a-uuid"}]}),
        json!({"events": [{"type": "A", "data": {}, "metadata": {"user_id": 7}}]}),
        json!({"events": [{"type": "A", "data": {}, "colour": "red"}]}),
        json!({"evnts": []}),
        json!([1, 2]),
    ];
    for body in cases {
        let r = h.post("/streams/s", &body).await;
        r.assert_error(422, "invalid_input");
    }
    assert_eq!(h.head().await, 0);
}

/// A body that is mostly its payloads has them shared, one padded around a
/// small payload has it copied (`strata_wire::payload_source`); either way
/// each endpoint stores the payload's text exactly as sent.
async fn payloads_arrive_verbatim_whether_shared_or_copied(h: Harness) {
    let payload = r#"{"b": 1.50,  "a": [1, 2]}"#;
    let padding = " ".repeat(4096);
    let dense = format!(r#"{{"events": [{{"type": "A", "data": {payload}}}]}}"#);
    let padded = format!(r#"{{"events": [{{"type": "A", "data": {payload}}}]}}{padding}"#);
    let multi = format!(
        r#"{{"streams": [{{"stream": "m-1", "events": [{{"type": "A", "data": {payload}}}]}}]}}{padding}"#
    );
    let dcb =
        format!(r#"{{"events": [{{"stream": "d-1", "type": "A", "data": {payload}}}]}}{padding}"#);
    for (path, body) in [
        ("/streams/s-1", &dense),
        ("/streams/s-2", &padded),
        ("/multi", &multi),
        ("/dcb/append", &dcb),
    ] {
        let r = h.post_raw(path, "application/json", body.as_bytes()).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    for stream in ["s-1", "s-2", "m-1", "d-1"] {
        let r = h.get(&format!("/streams/{stream}")).await;
        assert_eq!(r.status, 200, "{stream}: {}", r.text());
        assert!(
            r.text().contains(&format!(r#""data":{payload}"#)),
            "{stream}: {}",
            r.text()
        );
    }
}
