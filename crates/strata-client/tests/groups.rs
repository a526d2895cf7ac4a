//! The client's consumer-group methods against a real server.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use strata_client::Client;
use strata_core::group::{GroupName, GroupSettings, GroupSource, NackAction};
use strata_core::{ExpectedVersion, NewEvent, StreamId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_method_round_trips() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let stream = StreamId::new("orders-1").unwrap();
    let events: Vec<NewEvent> = (0..3)
        .map(|i| NewEvent::json("T", &serde_json::json!({ "i": i })).unwrap())
        .collect();
    client
        .append(&stream, ExpectedVersion::Any, &events)
        .await
        .unwrap();
    let name = GroupName::new("g").unwrap();
    assert!(client.group_status(&name).await.unwrap().is_none());
    assert!(!client.delete_group(&name).await.unwrap());
    let settings = GroupSettings {
        max_retries: 0,
        ..GroupSettings::new(GroupSource::Stream(stream.clone()))
    };
    let status = client.put_group(&name, &settings).await.unwrap();
    assert_eq!(status.settings, settings);
    assert_eq!(client.list_groups().await.unwrap().len(), 1);

    let read = client
        .read_group(&name, None, 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(read.consumer, "http");
    let mut got = read.deliveries;
    while got.len() < 3 {
        let more = client
            .read_group(&name, None, 10, Duration::from_secs(2))
            .await
            .unwrap();
        got.extend(more.deliveries);
    }
    assert_eq!(got[0].event.stream_id, stream);
    assert_eq!(got[0].delivery_count, 1);
    let ids: Vec<u64> = got.iter().map(|d| d.delivery_id).collect();
    let acked = client.ack(&name, Some("http"), &ids[..2]).await.unwrap();
    assert_eq!(acked.settled, 2);
    let nacked = client
        .nack(&name, None, &ids[2..], NackAction::Park, "bad")
        .await
        .unwrap();
    assert_eq!(nacked.settled, 1);
    let parked = client.parked(&name, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].reason, "bad");
    assert_eq!(parked[0].event.version, 3);
    assert_eq!(client.replay_parked(&name, 10).await.unwrap(), 1);
    let again = client
        .read_group(&name, Some("other"), 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(again.deliveries.len(), 1);
    assert_eq!(again.deliveries[0].event.version, 3);
    let status = client.group_status(&name).await.unwrap().unwrap();
    assert_eq!(status.in_flight, 1);
    // Parked again, then deleted from the list.
    let id = again.deliveries[0].delivery_id;
    client
        .nack(&name, Some("other"), &[id], NackAction::Park, "worse")
        .await
        .unwrap();
    let position = again.deliveries[0].event.position;
    assert_eq!(client.delete_parked(&name, &[position]).await.unwrap(), 1);
    assert!(client.parked(&name, 10).await.unwrap().is_empty());
    assert!(client.delete_group(&name).await.unwrap());
    assert!(client.list_groups().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_pushed_over_sse() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let stream = StreamId::new("orders-1").unwrap();
    let events: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent::json("T", &serde_json::json!({ "i": i })).unwrap())
        .collect();
    client
        .append(&stream, ExpectedVersion::Any, &events)
        .await
        .unwrap();
    let name = GroupName::new("push").unwrap();
    let settings = GroupSettings {
        max_in_flight: 2,
        ..GroupSettings::new(GroupSource::Stream(stream))
    };
    client.put_group(&name, &settings).await.unwrap();
    let mut sub = client.subscribe_group(&name).await.unwrap();
    assert!(sub.consumer().starts_with("sse-"));
    let consumer = sub.consumer().to_owned();
    for version in 1..=5 {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.event.version, version);
        let r = client
            .ack(&name, Some(&consumer), &[d.delivery_id])
            .await
            .unwrap();
        assert_eq!(r.settled, 1);
    }
    assert_eq!(
        client
            .group_status(&name)
            .await
            .unwrap()
            .unwrap()
            .acked_total,
        5
    );
}
