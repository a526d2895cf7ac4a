//! Graceful shutdown: in-flight requests finish, subscriptions end with a
//! final event, and `serve` returns.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Harness, SseClient};
use serde_json::json;
use strata_core::{
    async_trait, AppendResult, Direction, EventStore, ExpectedVersion, Limits, NewEvent, Position,
    ReadFilter, RecordedEvent, Result, StreamAppend, StreamId, StreamInfo, SubscribeFrom,
    Subscription, Version,
};
use strata_server::ServerConfig;
use tokio::sync::{Notify, Semaphore};

both_stores!(shutdown_lets_in_flight_requests_finish_and_ends_subscriptions);

/// A store whose appends wait at a gate, so a test can hold a request in
/// flight without timing. It also shows the server takes any `EventStore`.
struct GatedStore {
    inner: Arc<dyn EventStore>,
    entered: Notify,
    gate: Semaphore,
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.entered.notify_one();
        let _pass = self.gate.acquire().await.unwrap();
        self.inner.append(stream, expected, events).await
    }
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.inner.append_multi(appends).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner
            .read_stream(stream, from, max_count, direction)
            .await
    }
    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.read_all(from, max_count, filter).await
    }
    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        self.inner.subscribe(from, filter).await
    }
    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        self.inner.stream_info(stream).await
    }
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.inner.delete_stream(stream, expected).await
    }
    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.inner.tombstone_stream(stream, expected).await
    }
    async fn head_position(&self) -> Result<Position> {
        self.inner.head_position().await
    }
    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
}

async fn shutdown_lets_in_flight_requests_finish_and_ends_subscriptions(h: Harness) {
    let gated = Arc::new(GatedStore {
        inner: h.store.clone(),
        entered: Notify::new(),
        gate: Semaphore::new(0),
    });
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
