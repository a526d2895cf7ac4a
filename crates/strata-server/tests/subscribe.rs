//! Server-sent-event subscriptions: catch-up, live, resume by `Last-Event-ID`,
//! heartbeats, the subscription budget, and dropping slow clients.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Harness, SseClient, SseMessage};
use serde_json::json;
use strata_core::{ExpectedVersion, Limits, NewEvent, StreamId};
use strata_server::ServerConfig;

memory_store!(
    subscribe_all_catches_up_then_goes_live,
    resume_by_last_event_id_while_appending_has_no_gap_or_duplicate,
    subscribe_stream_after_version,
    subscribe_errors_are_4xx,
    heartbeats_are_sent_while_idle,
    too_many_subscriptions_is_503_until_one_closes,
    slow_subscriber_is_dropped_with_a_final_error_event,
    the_byte_budget_drops_a_stalled_subscriber_of_large_events,
    a_client_that_pauses_less_than_the_timeout_keeps_its_subscription,
    stalled_subscribers_share_one_budget_and_a_fresh_one_gets_everything,
    batched_subscriptions_carry_every_event_once_in_order,
);

async fn append(h: &Harness, stream: &str, n: usize) {
    let events: Vec<_> = (0..n).map(|i| json!({"type": "N", "data": i})).collect();
    let r = h
        .post(&format!("/streams/{stream}"), &json!({ "events": events }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn subscribe_all_catches_up_then_goes_live(h: Harness) {
    append(&h, "a-1", 2).await;
    append(&h, "b-1", 1).await;
    let mut sub = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    assert_eq!(sub.status, 200);
    let ct = sub
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .unwrap();
    assert!(ct.1.starts_with("text/event-stream"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = sub.next_message().await.unwrap();
        assert!(m.is_event(), "{m:?}");
        let e = m.json();
        assert_eq!(m.id.as_deref().unwrap(), e["position"].to_string());
        seen.push(e["position"].as_u64().unwrap());
    }
    let m = sub.next_message().await.unwrap();
    assert_eq!(m.event.as_deref(), Some("caught_up"));
    assert_eq!(m.json()["position"].as_u64(), seen.last().copied());
    append(&h, "a-1", 1).await;
    let m = sub.next_message().await.unwrap();
    assert!(m.is_event());
    let e = m.json();
    assert_eq!(e["stream"], "a-1");
    assert_eq!(e["version"], 3);
    assert!(e["position"].as_u64().unwrap() > *seen.last().unwrap());

    // `after=` starts after a position; filters apply.
    let mut sub = SseClient::connect(
        h.addr,
        &format!("/subscribe/all?after={}&prefix=a-", seen[0]),
        &[],
    )
    .await;
    let m = sub.next_message().await.unwrap();
    assert_eq!(m.json()["position"].as_u64(), Some(seen[1]));
    let m = sub.next_message().await.unwrap();
    assert_eq!(m.json()["version"], 3);
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
}

async fn resume_by_last_event_id_while_appending_has_no_gap_or_duplicate(h: Harness) {
    const APPENDS: usize = 150;
    let store = h.store.clone();
    let writer = tokio::spawn(async move {
        for i in 0..APPENDS {
            let stream = StreamId::new(format!("s-{}", i % 7)).unwrap();
            let events = (0..2)
                .map(|j| NewEvent::json("N", &json!([i, j])).unwrap())
                .collect();
            store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut positions = Vec::new();
    // First connection: read some events, then drop it mid-stream.
    let mut sub = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    let mut last_id = String::new();
    while positions.len() < 40 {
        let m = sub.next_message().await.unwrap();
        if m.is_event() {
            positions.push(m.json()["position"].as_u64().unwrap());
        }
        last_id = m.id.unwrap_or(last_id);
    }
    drop(sub);
    // Reconnect with the last id seen, while the writer keeps going.
    let mut sub =
        SseClient::connect(h.addr, "/subscribe/all", &[("Last-Event-ID", &last_id)]).await;
    assert_eq!(sub.status, 200);
    let total = APPENDS * 2;
    while positions.len() < total {
        let m = sub.next_message().await.unwrap();
        if m.is_event() {
            positions.push(m.json()["position"].as_u64().unwrap());
        }
    }
    writer.await.unwrap();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "duplicate or out of order"
    );
    let all: Vec<u64> = h
        .store
        .read_all(
            strata_core::Position::START,
            total + 10,
            &Default::default(),
        )
        .await
        .unwrap()
        .iter()
        .map(|e| e.position.0)
        .collect();
    assert_eq!(positions, all, "gap");
}

async fn subscribe_stream_after_version(h: Harness) {
    append(&h, "s", 3).await;
    append(&h, "other", 2).await;
    let mut sub = SseClient::connect(h.addr, "/subscribe/streams/s?after_version=1", &[]).await;
    assert_eq!(sub.status, 200);
    for v in [2, 3] {
        let e = sub.next_message().await.unwrap().json();
        assert_eq!(
            (e["stream"].as_str(), e["version"].as_u64()),
            (Some("s"), Some(v))
        );
    }
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    append(&h, "other", 1).await;
    append(&h, "s", 1).await;
    let e = sub.next_message().await.unwrap().json();
    assert_eq!(
        (e["stream"].as_str(), e["version"].as_u64()),
        (Some("s"), Some(4))
    );

    // A stream that does not exist yet: its first event arrives live.
    let mut sub = SseClient::connect(h.addr, "/subscribe/streams/later", &[]).await;
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    append(&h, "later", 1).await;
    let e = sub.next_message().await.unwrap().json();
    assert_eq!(
        (e["stream"].as_str(), e["version"].as_u64()),
        (Some("later"), Some(1))
    );

    // Without after_version: the whole stream.
    let mut sub = SseClient::connect(h.addr, "/subscribe/streams/s", &[]).await;
    let e = sub.next_message().await.unwrap().json();
    assert_eq!(e["version"], 1);
}

async fn subscribe_errors_are_4xx(h: Harness) {
    append(&h, "t", 1).await;
    assert_eq!(h.delete("/streams/t?hard=true").await.status, 204);
    let sub = SseClient::connect(h.addr, "/subscribe/streams/t", &[]).await;
    assert_eq!(sub.status, 410);
    assert_eq!(sub.error.unwrap()["error"], "stream_deleted");
    let sub = SseClient::connect(h.addr, "/subscribe/all", &[("Last-Event-ID", "abc")]).await;
    assert_eq!(sub.status, 400);
    assert_eq!(sub.error.unwrap()["error"], "invalid_last_event_id");
    let sub = SseClient::connect(h.addr, "/subscribe/all?after=x", &[]).await;
    assert_eq!(sub.status, 400);
    let sub = SseClient::connect(h.addr, "/subscribe/streams/$x", &[]).await;
    assert_eq!(sub.status, 422);
}

async fn heartbeats_are_sent_while_idle(h: Harness) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                heartbeat_interval_ms: 20,
                ..ServerConfig::default()
            },
        )
        .await;
    let mut sub = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    loop {
        let b = sub.next_block().await.unwrap();
        if b.comments.iter().any(|c| c == "heartbeat") {
            break;
        }
    }
}

async fn too_many_subscriptions_is_503_until_one_closes(h: Harness) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                max_open_subscriptions: 1,
                // Heartbeats are how the server notices a silent client left.
                heartbeat_interval_ms: 10,
                ..ServerConfig::default()
            },
        )
        .await;
    let mut first = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    assert_eq!(first.status, 200);
    assert!(first.next_message().await.is_some());
    let second = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    assert_eq!(second.status, 503);
    assert_eq!(second.error.unwrap()["error"], "too_many_subscriptions");
    drop(first);
    // The slot frees once the server notices; poll for it (no timing assert).
    for attempt in 0.. {
        assert!(attempt < 3000, "the slot was never freed");
        let again = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
        if again.status == 200 {
            break;
        }
        assert_eq!(again.status, 503);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server with a 4-message subscription buffer and the given patience,
/// and a subscriber on `$all` with a tiny, fixed receive buffer that does
/// not read yet.
async fn stalled_subscriber(h: Harness, slow_consumer_timeout_ms: u64) -> (Harness, SseClient) {
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                subscription_buffer_messages: 4,
                slow_consumer_timeout_ms,
                ..ServerConfig::default()
            },
        )
        .await;
    let sub = SseClient::connect_with(h.addr, "/subscribe/all", &[], Some(4096)).await;
    assert_eq!(sub.status, 200);
    (h, sub)
}

/// Appends `appends` × 4 events of 16 KiB to one stream.
async fn append_big(h: &Harness, appends: usize) {
    let stream = StreamId::new("big").unwrap();
    let blob = "x".repeat(16 * 1024);
    for _ in 0..appends {
        let events = (0..4)
            .map(|_| NewEvent::json("Big", &blob).unwrap())
            .collect();
        h.store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
}

/// Reads a subscription to its final `error` event: the positions of the
/// events before it, and the error. Fails if the stream ends without one
/// or delivers all 1,024 events (it was not cut off), or stays silent for
/// 30 s (the subscriber was never dropped).
async fn read_until_error(sub: &mut SseClient) -> (Vec<u64>, SseMessage) {
    let mut positions = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.next_message())
            .await
            .expect("no message for 30 s: the subscriber was not dropped")
            .expect("stream ended without an error event");
        if m.is_event() {
            positions.push(m.json()["position"].as_u64().unwrap());
            assert!(
                positions.len() < 1024,
                "every event arrived: was not cut off"
            );
        } else if m.event.as_deref() == Some("error") {
            return (positions, m);
        }
    }
}

/// The positions of `$all`, in order (at most 1,024).
async fn all_positions(h: &Harness) -> Vec<u64> {
    h.store
        .read_all(strata_core::Position::START, 1024, &Default::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.position.0)
        .collect()
}

async fn slow_subscriber_is_dropped_with_a_final_error_event(h: Harness) {
    let (h, mut sub) = stalled_subscriber(h, 50).await;
    // Far more is written than the buffer and the kernel's socket buffers
    // hold (16 MiB), and the client still does not read, for far longer
    // than `slow_consumer_timeout_ms`: the server gives up on it.
    append_big(&h, 256).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Now read: everything buffered arrives in order, then the final error.
    let (positions, last) = read_until_error(&mut sub).await;
    let err = last.json();
    assert_eq!(err["error"], "slow_consumer", "{err}");
    assert!(err["message"].as_str().unwrap().contains("Last-Event-ID"));
    assert!(
        sub.next_block().await.is_none(),
        "stream goes on after the error"
    );
    assert!(positions.len() < 1024, "was not cut off");
    // What did arrive is a prefix of `$all`: no gap, no duplicate.
    let all = all_positions(&h).await;
    assert_eq!(positions, all[..positions.len()]);
}

async fn a_client_that_pauses_less_than_the_timeout_keeps_its_subscription(h: Harness) {
    let (h, mut sub) = stalled_subscriber(h, 60_000).await;
    // 2 MiB written while the client does not read (far more than the
    // buffer and the sockets hold), then it reads.
    append_big(&h, 32).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every event arrives, in order, and no error: the pause was shorter
    // than `slow_consumer_timeout_ms`.
    let mut positions = Vec::new();
    while positions.len() < 128 {
        let m = sub.next_message().await.expect("the stream goes on");
        assert_ne!(m.event.as_deref(), Some("error"), "dropped: {}", m.data);
        if m.is_event() {
            positions.push(m.json()["position"].as_u64().unwrap());
        }
    }
    assert_eq!(positions, all_positions(&h).await);
}

async fn the_byte_budget_drops_a_stalled_subscriber_of_large_events(h: Harness) {
    // Room for every message by count; the byte budget (64 KiB, four of
    // these events) is what fills.
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                subscription_buffer_messages: 4_096,
                subscription_buffer_bytes: 64 * 1024,
                slow_consumer_timeout_ms: 50,
                ..ServerConfig::default()
            },
        )
        .await;
    let mut sub = SseClient::connect_with(h.addr, "/subscribe/all", &[], Some(4096)).await;
    assert_eq!(sub.status, 200);
    append_big(&h, 256).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (positions, last) = read_until_error(&mut sub).await;
    assert_eq!(last.json()["error"], "slow_consumer");
    assert!(positions.len() < 1024, "was not cut off");
    let all = all_positions(&h).await;
    assert_eq!(positions, all[..positions.len()]);
}

async fn stalled_subscribers_share_one_budget_and_a_fresh_one_gets_everything(h: Harness) {
    // Eight subscribers that never read, each allowed 128 KiB, all together
    // 256 KiB: the server's budget is what fills first.
    let h = h
        .like(
            Limits::default(),
            ServerConfig {
                subscription_buffer_messages: 4_096,
                subscription_buffer_bytes: 128 * 1024,
                subscription_buffers_total_bytes: 256 * 1024,
                slow_consumer_timeout_ms: 100,
                write_timeout_ms: 300,
                ..ServerConfig::default()
            },
        )
        .await;
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let sub = SseClient::connect_with(h.addr, "/subscribe/all", &[], Some(4096)).await;
        assert_eq!(sub.status, 200);
        stalled.push(sub);
    }
    append_big(&h, 64).await;
    // A fresh subscriber that reads gets every event, in order: the stalled
    // ones are dropped and closed and give the budget back.
    let mut fresh = SseClient::connect_with(h.addr, "/subscribe/all", &[], None).await;
    assert_eq!(fresh.status, 200);
    let all = all_positions(&h).await;
    let mut positions = Vec::new();
    while positions.len() < all.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), fresh.next_message())
            .await
            .expect("the fresh subscriber waited more than 30 s")
            .expect("the stream goes on");
        assert_ne!(m.event.as_deref(), Some("error"), "dropped: {}", m.data);
        if m.is_event() {
            positions.push(m.json()["position"].as_u64().unwrap());
        }
    }
    assert_eq!(positions, all);
    drop(stalled);
}

/// The events of `batch=true` messages until `n` arrived: each message is
/// an `events` array whose `id` is its last event's position.
async fn read_batched(sub: &mut SseClient, n: usize) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    while events.len() < n {
        let m = sub.next_message().await.unwrap();
        if m.event.as_deref() != Some(strata_wire::SSE_BATCH_EVENT) {
            assert_eq!(m.event.as_deref(), Some("caught_up"), "{m:?}");
            continue;
        }
        let batch = m.json();
        let batch = batch.as_array().unwrap();
        assert!(!batch.is_empty());
        let last = batch.last().unwrap()["position"].to_string();
        assert_eq!(m.id.as_deref(), Some(last.as_str()));
        events.extend(batch.iter().cloned());
    }
    events
}

async fn batched_subscriptions_carry_every_event_once_in_order(h: Harness) {
    append(&h, "a-1", 5).await;
    append(&h, "b-1", 3).await;
    let positions = all_positions(&h).await;

    let mut sub = SseClient::connect(h.addr, "/subscribe/all?batch=true", &[]).await;
    assert_eq!(sub.status, 200);
    let got = read_batched(&mut sub, 8).await;
    let got_positions: Vec<u64> = got
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(got_positions, positions);
    assert_eq!(got[0]["data"], json!(0));
    assert_eq!(got[0]["stream"], "a-1");
    // Live events come in batches too.
    append(&h, "a-1", 2).await;
    let live = read_batched(&mut sub, 2).await;
    assert_eq!(live[1]["version"], 7);

    // Resuming from a batch's id starts after its last event.
    let resume = got_positions[4].to_string();
    let mut again = SseClient::connect(
        h.addr,
        "/subscribe/all?batch=true",
        &[("Last-Event-ID", &resume)],
    )
    .await;
    let rest = read_batched(&mut again, 5).await;
    assert_eq!(rest[0]["position"].as_u64(), Some(got_positions[5]));

    // A stream's subscription and a DCB one take the flag as well.
    let mut stream = SseClient::connect(h.addr, "/subscribe/streams/b-1?batch=true", &[]).await;
    let b = read_batched(&mut stream, 3).await;
    assert!(b.iter().all(|e| e["stream"] == "b-1"));
    let mut dcb = SseClient::connect(h.addr, "/dcb/subscribe?batch=true", &[]).await;
    assert_eq!(read_batched(&mut dcb, 10).await.len(), 10);

    // Without the flag, one event to a message, as before.
    let mut plain = SseClient::connect(h.addr, "/subscribe/all", &[]).await;
    let m = plain.next_message().await.unwrap();
    assert!(m.is_event(), "{m:?}");
    assert_eq!(m.json()["position"].as_u64(), Some(positions[0]));
}
