//! API keys: 401 without one, 403 outside a key's role or prefixes, `/all`
//! and subscriptions filtered to a key's streams, admin-only deletes, keys
//! from a file and from the environment, and the per-key subscription limit.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, SseClient};
use serde_json::{json, Value};
use strata_core::Limits;
use strata_server::{check_listen, sha256_hex, ApiKeys, Role, ServerConfig};

const ADMIN: &str = "admin-secret";
const ORDERS_WRITER: &str = "orders-writer-secret";
const ORDERS_READER: &str = "orders-reader-secret";
const ORDERS_ADMIN: &str = "orders-admin-secret";
const TWO_PREFIXES: &str = "orders-and-audit-secret";

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn keys() -> ApiKeys {
    let k = common::api_key;
    ApiKeys::new(vec![
        k("admin", ADMIN, Role::Admin, &["*"]),
        k("orders-writer", ORDERS_WRITER, Role::Write, &["orders-"]),
        k("orders-reader", ORDERS_READER, Role::Read, &["orders-"]),
        k("orders-admin", ORDERS_ADMIN, Role::Admin, &["orders-"]),
        k("two", TWO_PREFIXES, Role::Read, &["orders-", "audit-"]),
    ])
    .unwrap()
}

async fn secured(h: &Harness, config: ServerConfig) -> Harness {
    h.like(
        Limits::default(),
        ServerConfig {
            api_keys: keys(),
            ..config
        },
    )
    .await
}

fn one_event(t: &str) -> Value {
    json!({"events": [{"type": t, "data": {"n": 1}}]})
}

/// Appends one event to each stream with the admin key.
async fn seed(h: &Harness, streams: &[&str]) {
    let auth = bearer(ADMIN);
    for s in streams {
        let r = h
            .post_with(
                &format!("/streams/{s}"),
                &one_event("Seeded"),
                &[("Authorization", &auth)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

fn streams_of(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stream"].as_str().unwrap().to_string())
        .collect()
}

memory_store!(
    an_id_conflict_does_not_name_a_stream_outside_the_scope,
    missing_or_unknown_key_is_401,
    public_pages_need_no_key,
    x_api_key_header_works,
    append_and_read_outside_scope_are_403,
    read_role_cannot_append,
    all_is_filtered_to_the_key_scope,
    multi_needs_every_part_in_scope,
    delete_needs_admin_within_prefixes,
    subscriptions_are_filtered_and_scoped,
    per_key_subscription_limit,
);

async fn missing_or_unknown_key_is_401(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    for path in [
        "/all",
        "/streams/orders-1",
        "/metrics",
        "/subscribe/all",
        "/nope",
    ] {
        let r = h.get(path).await;
        r.assert_error(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    h.post("/streams/orders-1", &one_event("A"))
        .await
        .assert_error(401, "unauthorized");
    let wrong = bearer("not-a-key");
    let r = h.get_with("/all", &[("Authorization", &wrong)]).await;
    let v = r.assert_error(401, "unauthorized");
    assert!(v["message"].as_str().unwrap().contains("unknown"));
    // The digest itself is not a key.
    let digest = bearer(&sha256_hex(ADMIN));
    h.get_with("/all", &[("Authorization", &digest)])
        .await
        .assert_error(401, "unauthorized");
    // Nothing was written by the refused append.
    assert_eq!(h.head().await, 0);
}

async fn public_pages_need_no_key(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    assert_eq!(h.get("/").await.status, 200);
    assert_eq!(h.get("/health").await.status, 200);
    assert_eq!(h.get("/openapi.json").await.status, 200);
}

async fn x_api_key_header_works(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    let r = h
        .post_with(
            "/streams/orders-1",
            &one_event("A"),
            &[("X-API-Key", ORDERS_WRITER)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .get_with("/streams/orders-1", &[("x-api-key", ORDERS_READER)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(streams_of(&r.json()), ["orders-1"]);
}

async fn append_and_read_outside_scope_are_403(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    seed(&h, &["account-42"]).await;
    let auth = bearer(ORDERS_WRITER);
    let r = h
        .post_with(
            "/streams/account-42",
            &one_event("A"),
            &[("Authorization", &auth)],
        )
        .await;
    let v = r.assert_error(403, "forbidden");
    assert!(v["message"].as_str().unwrap().contains("account-42"), "{v}");
    h.get_with("/streams/account-42", &[("Authorization", &auth)])
        .await
        .assert_error(403, "forbidden");
    // A prefix matches from the start of the name only.
    h.get_with("/streams/x-orders-1", &[("Authorization", &auth)])
        .await
        .assert_error(403, "forbidden");
    // Inside its scope the same key works.
    let r = h
        .post_with(
            "/streams/orders-9",
            &one_event("A"),
            &[("Authorization", &auth)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // account-42 still has only the seeded event.
    let admin = bearer(ADMIN);
    let r = h
        .get_with("/streams/account-42", &[("Authorization", &admin)])
        .await;
    assert_eq!(r.json()["events"].as_array().unwrap().len(), 1);
}

async fn read_role_cannot_append(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    let auth = bearer(ORDERS_READER);
    let v = h
        .post_with(
            "/streams/orders-1",
            &one_event("A"),
            &[("Authorization", &auth)],
        )
        .await
        .assert_error(403, "forbidden");
    assert!(v["message"].as_str().unwrap().contains("`write`"), "{v}");
    assert_eq!(h.head().await, 0);
}

async fn all_is_filtered_to_the_key_scope(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    seed(
        &h,
        &[
            "orders-1",
            "account-42",
            "audit-7",
            "orders-2",
            "account-43",
        ],
    )
    .await;
    let auth = bearer(ORDERS_READER);
    let r = h.get_with("/all", &[("Authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(streams_of(&r.json()), ["orders-1", "orders-2"]);
    // A prefix the key does not cover: nothing, not an error.
    let r = h
        .get_with("/all?prefix=account-", &[("Authorization", &auth)])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(streams_of(&r.json()), Vec::<String>::new());
    // A key with two prefixes: the server filters after reading, so paging
    // still reaches every one of its events.
    let two = bearer(TWO_PREFIXES);
    let mut seen = Vec::new();
    let mut after = 0u64;
    loop {
        let r = h
            .get_with(
                &format!("/all?limit=2&after={after}"),
                &[("Authorization", &two)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        seen.extend(streams_of(&v));
        match v["next"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(seen, ["orders-1", "audit-7", "orders-2"]);
    // The admin key sees everything.
    let admin = bearer(ADMIN);
    let r = h.get_with("/all", &[("Authorization", &admin)]).await;
    assert_eq!(streams_of(&r.json()).len(), 5);
}

async fn multi_needs_every_part_in_scope(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    let auth = bearer(ORDERS_WRITER);
    let body = json!({"streams": [
        {"stream": "orders-1", "events": [{"type": "A", "data": {}}]},
        {"stream": "account-42", "events": [{"type": "A", "data": {}}]},
    ]});
    h.post_with("/multi", &body, &[("Authorization", &auth)])
        .await
        .assert_error(403, "forbidden");
    assert_eq!(h.head().await, 0, "nothing of a refused /multi is written");
    let ok = json!({"streams": [
        {"stream": "orders-1", "events": [{"type": "A", "data": {}}]},
        {"stream": "orders-2", "events": [{"type": "A", "data": {}}]},
    ]});
    let r = h
        .post_with("/multi", &ok, &[("Authorization", &auth)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn delete_needs_admin_within_prefixes(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    seed(&h, &["orders-1", "orders-2", "account-42"]).await;
    let writer = bearer(ORDERS_WRITER);
    for path in ["/streams/orders-1", "/streams/orders-1?hard=true"] {
        let v = h
            .delete_with(path, &[("Authorization", &writer)])
            .await
            .assert_error(403, "forbidden");
        assert!(v["message"].as_str().unwrap().contains("`admin`"), "{v}");
    }
    let orders_admin = bearer(ORDERS_ADMIN);
    h.delete_with("/streams/account-42", &[("Authorization", &orders_admin)])
        .await
        .assert_error(403, "forbidden");
    let r = h
        .delete_with("/streams/orders-1", &[("Authorization", &orders_admin)])
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = h
        .delete_with(
            "/streams/orders-2?hard=true",
            &[("Authorization", &orders_admin)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let admin = bearer(ADMIN);
    h.get_with("/streams/orders-1", &[("Authorization", &admin)])
        .await
        .assert_error(404, "stream_not_found");
    h.get_with("/streams/orders-2", &[("Authorization", &admin)])
        .await
        .assert_error(410, "stream_deleted");
    let r = h
        .get_with("/streams/account-42", &[("Authorization", &admin)])
        .await;
    assert_eq!(r.status, 200);
}

async fn subscriptions_are_filtered_and_scoped(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    seed(&h, &["account-42", "orders-1"]).await;
    let reader = bearer(ORDERS_READER);
    let headers = [("Authorization", reader.as_str())];
    let mut sub = SseClient::connect(h.addr, "/subscribe/all", &headers).await;
    assert_eq!(sub.status, 200);
    let m = sub.next_message().await.unwrap();
    assert_eq!(m.json()["stream"], "orders-1");
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    // Live events: only the covered stream's come through, in order.
    seed(&h, &["account-42", "orders-2", "account-43", "orders-3"]).await;
    for expected in ["orders-2", "orders-3"] {
        let m = sub.next_message().await.unwrap();
        assert!(m.is_event(), "{m:?}");
        assert_eq!(m.json()["stream"], expected);
    }
    // A key with two prefixes is filtered in the server (the store's filter
    // takes one prefix): history, then caught_up, with nothing else.
    let two = bearer(TWO_PREFIXES);
    let mut both = SseClient::connect(h.addr, "/subscribe/all", &[("Authorization", &two)]).await;
    assert_eq!(both.status, 200);
    for expected in ["orders-1", "orders-2", "orders-3"] {
        let m = both.next_message().await.unwrap();
        assert!(m.is_event(), "{m:?}");
        assert_eq!(m.json()["stream"], expected);
    }
    assert_eq!(
        both.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    seed(&h, &["account-44", "audit-1"]).await;
    let m = both.next_message().await.unwrap();
    assert_eq!(m.json()["stream"], "audit-1");
    // A subscription to a stream outside the scope is refused.
    let denied = SseClient::connect(h.addr, "/subscribe/streams/account-42", &headers).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.error.unwrap()["error"], "forbidden");
    // Without a key: 401.
    let anonymous = SseClient::connect(h.addr, "/subscribe/streams/orders-1", &[]).await;
    assert_eq!(anonymous.status, 401);
    // With a prefix outside the scope: it opens, and shows nothing.
    let mut other = SseClient::connect(h.addr, "/subscribe/all?prefix=account-", &headers).await;
    assert_eq!(other.status, 200);
    assert_eq!(
        other.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
}

async fn per_key_subscription_limit(h: Harness) {
    let h = secured(
        &h,
        ServerConfig {
            max_subscriptions_per_key: 1,
            // Heartbeats find a closed client quickly.
            heartbeat_interval_ms: 50,
            ..ServerConfig::default()
        },
    )
    .await;
    let reader = bearer(ORDERS_READER);
    let headers = [("Authorization", reader.as_str())];
    let mut first = SseClient::connect(h.addr, "/subscribe/all", &headers).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    let second = SseClient::connect(h.addr, "/subscribe/streams/orders-1", &headers).await;
    assert_eq!(second.status, 429);
    assert_eq!(
        second.error.unwrap()["error"],
        "too_many_subscriptions_for_key"
    );
    // Another key has its own budget.
    let admin = bearer(ADMIN);
    let third = SseClient::connect(h.addr, "/subscribe/all", &[("Authorization", &admin)]).await;
    assert_eq!(third.status, 200);
    // Closing the first frees the key's slot.
    drop(first);
    let mut retried = None;
    for _ in 0..250 {
        let c = SseClient::connect(h.addr, "/subscribe/all", &headers).await;
        if c.status == 200 {
            retried = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(retried.is_some(), "the key's slot was not freed");
}

#[test]
fn non_loopback_listen_needs_keys() {
    let none = ApiKeys::none();
    for ok in ["127.0.0.1:7700", "[::1]:7700", "127.0.0.2:1"] {
        assert!(check_listen(ok.parse().unwrap(), &none).is_ok(), "{ok}");
    }
    for refused in ["0.0.0.0:7700", "[::]:7700", "192.168.1.10:80"] {
        let e = check_listen(refused.parse().unwrap(), &none).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("loopback") && text.contains("--keys"),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
    }
    assert!(check_listen("0.0.0.0:7700".parse().unwrap(), &keys()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    std::fs::write(
        &file,
        format!(
            "# printf %s KEY | sha256sum\n[[key]]\nname = \"from-file\"\nsha256 = \"{}\"\nrole = \"write\"\nprefixes = [\"orders-\"]\n",
            sha256_hex("file-key")
        ),
    )
    .unwrap();
    let mut keys = ApiKeys::from_file(&file).unwrap();
    // This test is the only one in this binary that touches the variable.
    std::env::set_var(
        strata_server::API_KEYS_ENV,
        format!(
            r#"key = [{{name = "from-env", sha256 = "{}", role = "read", prefixes = ["*"]}}]"#,
            sha256_hex("env-key")
        ),
    );
    let env_keys = ApiKeys::from_env().unwrap().unwrap();
    std::env::remove_var(strata_server::API_KEYS_ENV);
    keys.extend(env_keys.iter().cloned()).unwrap();
    assert_eq!(keys.len(), 2);

    let h = Harness::with(
        common::Backend::Memory,
        Limits::default(),
        ServerConfig {
            api_keys: keys,
            ..ServerConfig::default()
        },
    )
    .await;
    let r = h
        .post_with(
            "/streams/orders-1",
            &one_event("A"),
            &[("Authorization", "Bearer file-key")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .get_with("/all", &[("Authorization", "Bearer env-key")])
        .await;
    assert_eq!(streams_of(&r.json()), ["orders-1"]);
    h.post_with(
        "/streams/orders-2",
        &one_event("A"),
        &[("Authorization", "Bearer env-key")],
    )
    .await
    .assert_error(403, "forbidden");

    // A broken file names itself.
    std::fs::write(&file, "[[key]]\nname = \"x\"\n").unwrap();
    let e = ApiKeys::from_file(&file).unwrap_err().to_string();
    assert!(e.contains("keys.toml"), "{e}");
    let e = ApiKeys::from_file(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
}

async fn an_id_conflict_does_not_name_a_stream_outside_the_scope(h: Harness) {
    let h = secured(&h, ServerConfig::default()).await;
    let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let event = json!({"events": [{"id": id, "type": "T", "data": {"n": 1}}]});
    let admin = bearer(ADMIN);
    let r = h
        .post_with(
            "/streams/audit-secret",
            &event,
            &[("Authorization", &admin)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A key scoped to `orders-` reuses the id: refused, without learning
    // where the id lives.
    let writer = bearer(ORDERS_WRITER);
    let r = h
        .post_with("/streams/orders-1", &event, &[("Authorization", &writer)])
        .await;
    let v = r.assert_error(409, "idempotency_conflict");
    assert!(!r.text().contains("audit-secret"), "{}", r.text());
    assert_eq!(v["event_id"], id);
    // The same through /multi.
    let multi = json!({"streams": [{"stream": "orders-2", "events": [{"id": id, "type": "T", "data": {}}]}]});
    let r = h
        .post_with("/multi", &multi, &[("Authorization", &writer)])
        .await;
    r.assert_error(409, "idempotency_conflict");
    assert!(!r.text().contains("audit-secret"), "{}", r.text());
    // A key that sees every stream is told where the id is.
    let r = h
        .post_with("/streams/orders-1", &event, &[("Authorization", &admin)])
        .await;
    r.assert_error(409, "idempotency_conflict");
    assert!(r.text().contains("audit-secret"), "{}", r.text());
}
