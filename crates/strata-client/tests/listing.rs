//! Listing streams and `whoami` against a real server.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::json;
use strata_client::{Client, ClientError};
use strata_core::{ExpectedVersion, NewEvent, StreamId, StreamState};
use strata_wire::StreamsQuery;

#[tokio::test]
async fn list_streams_pages_by_name_with_states() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    for name in ["orders-2", "orders-1", "users-1"] {
        let event = NewEvent::json("Created", &json!({})).unwrap();
        client
            .append(
                &StreamId::new(name).unwrap(),
                ExpectedVersion::Any,
                &[event],
            )
            .await
            .unwrap();
    }
    client
        .tombstone(&StreamId::new("users-1").unwrap(), ExpectedVersion::Any)
        .await
        .unwrap();
    let mut query = StreamsQuery {
        limit: Some(2),
        ..Default::default()
    };
    let first = client.list_streams(&query).await.unwrap();
    let names: Vec<&str> = first.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(names, ["orders-1", "orders-2"]);
    assert!(first.streams[0].last_written.is_some());
    assert_eq!(first.next.as_deref(), Some("orders-2"));
    query.after = first.next;
    let second = client.list_streams(&query).await.unwrap();
    assert_eq!(second.streams.len(), 1);
    assert_eq!(second.streams[0].state, StreamState::Tombstoned);
    assert_eq!(second.streams[0].last_written, None);
    assert_eq!(second.next, None);
    let bad = client
        .list_streams(&StreamsQuery {
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(bad, ClientError::Api { .. }), "{bad:?}");
    assert_eq!(bad.api_kind(), Some("invalid_query"));
}

#[tokio::test]
async fn whoami_without_keys_is_an_open_admin() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let me = client.whoami().await.unwrap();
    assert_eq!(me.name, None);
    assert_eq!((me.role.as_str(), me.auth.as_str()), ("admin", "none"));
    assert!(me.covers_all && me.prefixes.is_empty());
}
