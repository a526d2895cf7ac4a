//! Subscriptions: live events, and resuming after a lost connection with no
//! gap and no duplicate.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use strata_client::{AllFilter, Client, ClientError, ResumePolicy, SubscriptionMessage};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId, SubscribeFrom};
use strata_server::ServerConfig;

const WAIT: Duration = Duration::from_secs(30);

fn events(from: u64, n: u64) -> Vec<NewEvent> {
    let pad = "x".repeat(300);
    (from..from + n)
        .map(|i| NewEvent::json("Tick", &serde_json::json!({ "i": i, "pad": pad })).unwrap())
        .collect()
}

/// The next event, skipping markers; counts `Resuming` messages.
async fn next_event(
    sub: &mut strata_client::Subscription,
    resumed: &mut u32,
) -> strata_core::RecordedEvent {
    loop {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap();
        match m {
            SubscriptionMessage::Event(e) => return e,
            SubscriptionMessage::CaughtUp(_) => {}
            SubscriptionMessage::Resuming { .. } => *resumed += 1,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_and_stream_subscriptions_deliver_recorded_then_live_events() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let a = StreamId::new("a-1").unwrap();
    let b = StreamId::new("b-1").unwrap();
    client
        .append(&a, ExpectedVersion::Any, &events(0, 2))
        .await
        .unwrap();
    let mut all = client
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .unwrap();
    let mut only_b = client
        .subscribe_stream(&b, SubscribeFrom::Start)
        .await
        .unwrap();
    let mut from_end = client
        .subscribe_all(
            SubscribeFrom::End,
            AllFilter {
                category: Some("b".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut resumed = 0;
    assert_eq!(next_event(&mut all, &mut resumed).await.version, 1);
    assert_eq!(next_event(&mut all, &mut resumed).await.version, 2);
    client
        .append(&b, ExpectedVersion::Any, &events(0, 1))
        .await
        .unwrap();
    let e = next_event(&mut all, &mut resumed).await;
    assert_eq!(e.stream_id, b);
    assert_eq!(all.position(), Some(e.position.0));
    assert_eq!(next_event(&mut only_b, &mut resumed).await.id, e.id);
    assert_eq!(next_event(&mut from_end, &mut resumed).await.id, e.id);
    assert_eq!(resumed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_dropped_by_the_server_resumes_without_gap_or_duplicate() {
    let config = ServerConfig {
        subscription_buffer_messages: 16,
        slow_consumer_timeout_ms: 50,
        ..ServerConfig::default()
    };
    let server = TestServer::with(config, None).await;
    let client = Client::new(&server.url).unwrap();
    let s = StreamId::new("slow-1").unwrap();
    const EVENTS: u64 = 20_000;
    for chunk in 0..EVENTS / 1_000 {
        client
            .append(&s, ExpectedVersion::Any, &events(chunk * 1_000, 1_000))
            .await
            .unwrap();
    }
    let mut sub = client
        .subscribe_stream(&s, SubscribeFrom::Start)
        .await
        .unwrap();
    // Read nothing for a while: the server drops the subscription.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut resumed = 0;
    for version in 1..=EVENTS {
        let e = next_event(&mut sub, &mut resumed).await;
        assert_eq!(e.version, version, "a gap or a duplicate");
    }
    assert!(resumed > 0, "the server never dropped the subscriber");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_resumes_across_a_server_restart_when_asked() {
    let mut server = TestServer::start().await;
    let store = server.store.clone();
    let addr = server.addr;
    let client = Client::new(&server.url).unwrap();
    let s = StreamId::new("r-1").unwrap();
    client
        .append(&s, ExpectedVersion::Any, &events(0, 3))
        .await
        .unwrap();
    let policy = ResumePolicy {
        after_shutdown: true,
        delay: Duration::from_millis(100),
        max_losses_in_a_row: 50,
    };
    let mut sub = client
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .unwrap()
        .with_resume(policy);
    let mut resumed = 0;
    for v in 1..=3 {
        assert_eq!(next_event(&mut sub, &mut resumed).await.version, v);
    }
    server.stop().await;
    // Written while no server runs.
    store
        .append(&s, ExpectedVersion::Exact(3), events(3, 2))
        .await
        .unwrap();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        TestServer::on(store, addr, ServerConfig::default(), None).await
    });
    for v in 4..=5 {
        assert_eq!(next_event(&mut sub, &mut resumed).await.version, v);
    }
    assert!(resumed > 0);
    let _server = restart.await.unwrap();

    // By default a shutdown ends the subscription.
    let mut plain = client
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .unwrap();
    let mut server = _server;
    for v in 1..=5 {
        assert_eq!(next_event(&mut plain, &mut resumed).await.version, v);
    }
    server.stop().await;
    let err = loop {
        match plain.next().await {
            Ok(SubscriptionMessage::CaughtUp(_)) => {}
            Ok(other) => panic!("{other:?}"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(&err, ClientError::Ended { kind, .. } if kind == "shutting_down"),
        "{err:?}"
    );
}

/// A subscription the server ends because more streams were erased while it
/// was open than it tracks (`streams_erased`) is resumed, and misses
/// nothing still readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ended_by_erasures_resumes() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let kept = StreamId::new("kept-1").unwrap();
    client
        .append(&kept, ExpectedVersion::Any, &events(0, 1))
        .await
        .unwrap();
    let mut sub = client
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .unwrap()
        .with_resume(ResumePolicy {
            delay: Duration::from_millis(10),
            ..ResumePolicy::default()
        });
    let mut resumed = 0;
    assert_eq!(next_event(&mut sub, &mut resumed).await.stream_id, kept);
    for i in 0..=strata_server::MAX_ERASED_PER_SUBSCRIPTION {
        let gone = StreamId::new(format!("gone-{i}")).unwrap();
        client.erase(&gone, ExpectedVersion::Any).await.unwrap();
    }
    client
        .append(&kept, ExpectedVersion::Any, &events(1, 1))
        .await
        .unwrap();
    let e = next_event(&mut sub, &mut resumed).await;
    assert_eq!((e.stream_id, e.version), (kept, 2), "no gap, no duplicate");
    assert_eq!(resumed, 1, "the server ended it once");
}
