//! Appends, reads, deletes and typed errors against a real server.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::json;
use strata_client::{AllFilter, Client, ClientError};
use strata_core::{
    ContentType, CurrentVersion, Direction, ExpectedVersion, Metadata, NewEvent, StreamId,
};

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn event(t: &str, n: u64) -> NewEvent {
    NewEvent::json(t, &json!({ "n": n })).unwrap()
}

#[tokio::test]
async fn append_and_read_a_stream_keep_data_and_metadata() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let s = stream("account-1");
    let json_event = NewEvent {
        id: None,
        event_type: "Opened".into(),
        data: br#"{"owner": "ada",  "limit": 1.50}"#.to_vec().into(),
        content_type: ContentType::Json,
        metadata: Metadata::default()
            .with_correlation_id("c-1")
            .with("tenant", "t"),
        tags: Vec::new(),
        json_checked: strata_core::JsonChecked::NO,
    };
    let binary = NewEvent {
        content_type: ContentType::Binary,
        data: vec![0u8, 159, 255].into(),
        ..event("Blob", 0)
    };
    let r = client
        .append(&s, ExpectedVersion::NoStream, &[json_event.clone(), binary])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 2);
    assert!(r.first_position < r.last_position);

    let page = client
        .read_stream(&s, None, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.events.len(), 2);
    assert_eq!(page.events[0].data, json_event.data);
    assert_eq!(page.events[0].metadata, json_event.metadata);
    assert_eq!(&page.events[1].data[..], &[0, 159, 255]);
    assert_eq!(page.events[1].content_type, ContentType::Binary);

    // Paging backward, one at a time.
    let page = client
        .read_stream(&s, None, 1, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(page.events[0].version, 2);
    assert_eq!(page.next, Some(1));
    let page = client
        .read_stream(&s, page.next, 1, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(page.events[0].version, 1);
    assert_eq!(page.next, None);
    assert_eq!(client.head_position().await.unwrap(), r.last_position.0);
}

#[tokio::test]
async fn append_multi_and_read_all_with_filters() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let results = client
        .append_multi(&[
            (
                stream("order-1"),
                ExpectedVersion::NoStream,
                vec![event("Placed", 1)],
            ),
            (
                stream("invoice-1"),
                ExpectedVersion::Any,
                vec![
                    event("Issued", 2),
                    event("Paid", 3).with_metadata(Metadata::default().with_correlation_id("k")),
                ],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1].next_expected_version, 2);

    let all = client
        .read_all(0, 100, &AllFilter::default())
        .await
        .unwrap();
    assert_eq!(all.events.len(), 3);
    let two = client.read_all(0, 2, &AllFilter::default()).await.unwrap();
    assert_eq!(two.events.len(), 2);
    let rest = client
        .read_all(two.next.unwrap(), 2, &AllFilter::default())
        .await
        .unwrap();
    assert_eq!(rest.events.len(), 1);
    assert_eq!(rest.next, None);

    let by = |f: AllFilter| {
        let client = client.clone();
        async move {
            let page = client.read_all(0, 100, &f).await.unwrap();
            page.events
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<Vec<_>>()
        }
    };
    let types = AllFilter {
        types: vec!["Placed".into(), "Paid".into()],
        ..Default::default()
    };
    assert_eq!(by(types).await, ["Placed", "Paid"]);
    let prefix = AllFilter {
        prefix: Some("inv".into()),
        ..Default::default()
    };
    assert_eq!(by(prefix).await, ["Issued", "Paid"]);
    let category = AllFilter {
        category: Some("order".into()),
        ..Default::default()
    };
    assert_eq!(by(category).await, ["Placed"]);
    let correlation = AllFilter {
        correlation_id: Some("k".into()),
        ..Default::default()
    };
    assert_eq!(by(correlation).await, ["Paid"]);
}

#[tokio::test]
async fn errors_are_typed_after_the_server_kinds() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let s = stream("cart-1");
    client
        .append(&s, ExpectedVersion::Any, &[event("A", 1)])
        .await
        .unwrap();

    let err = client
        .append(&s, ExpectedVersion::Exact(5), &[event("A", 2)])
        .await
        .unwrap_err();
    match &err {
        ClientError::WrongExpectedVersion {
            stream,
            expected,
            actual,
            ..
        } => {
            assert_eq!(stream, "cart-1");
            assert_eq!(*expected, ExpectedVersion::Exact(5));
            assert_eq!(*actual, CurrentVersion::Current(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.api_kind(), Some("wrong_expected_version"));
    assert!(err.to_string().contains("409"), "{err}");

    let err = client
        .read_stream(&stream("none-1"), None, 10, Direction::Forward)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::StreamNotFound { stream, .. } if stream == "none-1"),
        "{err:?}"
    );

    let bad = NewEvent {
        event_type: String::new(),
        ..event("A", 1)
    };
    let err = client
        .append(&s, ExpectedVersion::Any, &[bad])
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidInput { .. }), "{err:?}");

    // The same id in another stream is a conflict.
    let id = strata_core::EventId::new();
    let first = NewEvent {
        id: Some(id),
        ..event("A", 1)
    };
    let other = NewEvent {
        id: Some(id),
        ..event("B", 2)
    };
    client
        .append(&s, ExpectedVersion::Any, &[first])
        .await
        .unwrap();
    let err = client
        .append(&stream("cart-9"), ExpectedVersion::Any, &[other])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::IdempotencyConflict { event_id, .. } if *event_id == id.to_string()),
        "{err:?}"
    );

    // Nothing listens on port 1.
    let err = Client::new("http://127.0.0.1:1")
        .unwrap()
        .head_position()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(matches!(
        Client::new("ftp://localhost"),
        Err(ClientError::InvalidUrl { .. })
    ));
}

#[tokio::test]
async fn delete_then_tombstone() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let s = stream("cart-2");
    client
        .append(&s, ExpectedVersion::Any, &[event("A", 1)])
        .await
        .unwrap();
    let err = client
        .delete(&s, ExpectedVersion::Exact(9))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::WrongExpectedVersion { .. }),
        "{err:?}"
    );
    client.delete(&s, ExpectedVersion::Exact(1)).await.unwrap();
    let err = client
        .read_stream(&s, None, 10, Direction::Forward)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::StreamNotFound { .. }), "{err:?}");

    // Appending re-creates it; a tombstone ends it for good.
    client
        .append(&s, ExpectedVersion::NoStream, &[event("A", 2)])
        .await
        .unwrap();
    client.tombstone(&s, ExpectedVersion::Any).await.unwrap();
    let err = client
        .append(&s, ExpectedVersion::Any, &[event("A", 3)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::StreamDeleted { stream, .. } if stream == "cart-2"),
        "{err:?}"
    );
}

#[tokio::test]
async fn erase_tombstones_and_takes_the_events_out_of_all() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let s = stream("person-7");
    let kept = stream("other-1");
    client
        .append(&s, ExpectedVersion::Any, &[event("A", 1), event("A", 2)])
        .await
        .unwrap();
    client
        .append(&kept, ExpectedVersion::Any, &[event("B", 1)])
        .await
        .unwrap();
    let err = client
        .erase(&s, ExpectedVersion::Exact(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::WrongExpectedVersion { .. }),
        "{err:?}"
    );
    client.erase(&s, ExpectedVersion::Exact(2)).await.unwrap();
    let err = client
        .read_stream(&s, None, 10, Direction::Forward)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::StreamDeleted { .. }), "{err:?}");
    let page = client
        .read_all(0, 100, &AllFilter::default())
        .await
        .unwrap();
    let streams: Vec<&str> = page.events.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, vec!["other-1"]);
    // Again with `any`; any other guard is refused as deleted.
    client.erase(&s, ExpectedVersion::Any).await.unwrap();
    let err = client
        .erase(&s, ExpectedVersion::Exact(2))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::StreamDeleted { .. }), "{err:?}");
}
