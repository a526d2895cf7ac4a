//! Graceful shutdown: in-flight requests finish, subscriptions end with a
//! final event, and `serve` returns.

#![allow(clippy::unwrap_used)]

mod common;

use common::{GatedStore, Harness, SseClient};
use serde_json::json;
use strata_core::{Direction, StreamId};
use strata_server::ServerConfig;

memory_store!(shutdown_lets_in_flight_requests_finish_and_ends_subscriptions);

async fn shutdown_lets_in_flight_requests_finish_and_ends_subscriptions(h: Harness) {
    let gated = GatedStore::new(h.store.clone());
    let mut server = Harness::serve(gated.clone(), h.backend, ServerConfig::default(), None).await;
    let mut sub = SseClient::connect(server.addr, "/subscribe/all", &[]).await;
    assert_eq!(
        sub.next_message().await.unwrap().event.as_deref(),
        Some("caught_up")
    );

    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        let body = serde_json::to_vec(&json!({"events": [{"type": "A", "data": {}}]})).unwrap();
        common::request(
            addr,
            "POST",
            "/streams/s",
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .await
    });
    gated.entered.notified().await;
    server.begin_shutdown();

    // The subscription is told and closed.
    let m = sub.next_message().await.unwrap();
    assert_eq!(m.event.as_deref(), Some("error"));
    assert_eq!(m.json()["error"], "shutting_down");
    assert!(sub.next_block().await.is_none());

    // The append held at the gate still completes.
    gated.gate.add_permits(1);
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    server.finished().await;
    let s = StreamId::new("s").unwrap();
    let events = h.store.read_stream(&s, 1, 10, Direction::Forward).await;
    assert_eq!(events.unwrap().len(), 1);
}
