//! The KurrentDB Rust client against `strata_grpc::serve` over a memory
//! store: appends with every expected revision, reads both ways, `$all`
//! with filters, delete, tombstone and authentication.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, DeleteStreamOptions, EventData, ReadAllOptions,
    ReadStreamOptions, StreamPosition, StreamState, SubscriptionFilter, TombstoneStreamOptions,
};
use strata_core::{EventStore, MemoryStore};
use strata_server::ApiKeys;
use tokio::net::TcpListener;

/// Serves a fresh memory store; the client's settings for it.
async fn server(keys: ApiKeys) -> (ClientSettings, Arc<dyn EventStore>) {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = strata_grpc::Services::new(Arc::clone(&store)).with_keys(keys);
    tokio::spawn(strata_grpc::serve(
        listener,
        services,
        std::future::pending(),
    ));
    let settings = format!("kurrentdb://{addr}?tls=false").parse().unwrap();
    (settings, store)
}

fn event(n: u64) -> EventData {
    EventData::json("Counted", &serde_json::json!({ "n": n })).unwrap()
}

async fn read_all_of(client: &Client, stream: &str, options: &ReadStreamOptions) -> Vec<u64> {
    let mut read = client.read_stream(stream, options).await.unwrap();
    let mut out = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        let value: serde_json::Value = e.get_original_event().as_json().unwrap();
        out.push(value["n"].as_u64().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_with_every_expected_revision() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let s = "orders-1";
    let first = client
        .append_to_stream(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            vec![event(0), event(1)],
        )
        .await
        .unwrap();
    assert_eq!(first.next_expected_version, 1, "revisions are 0-based");
    assert!(first.position.commit > 0);
    let second = client
        .append_to_stream(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(1)),
            vec![event(2)],
        )
        .await
        .unwrap();
    assert_eq!(second.next_expected_version, 2);
    assert!(second.position.commit > first.position.commit);
    client
        .append_to_stream(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::StreamExists),
            vec![event(3)],
        )
        .await
        .unwrap();
    client
        .append_to_stream(s, &AppendToStreamOptions::default(), vec![event(4)])
        .await
        .unwrap();
    let wrong = client
        .append_to_stream(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(1)),
            vec![event(99)],
        )
        .await
        .unwrap_err();
    match wrong {
        kurrentdb::Error::WrongExpectedVersion { expected, current } => {
            assert_eq!(expected, StreamState::StreamRevision(1));
            assert_eq!(current, kurrentdb::CurrentRevision::Current(4));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    let no_stream = client
        .append_to_stream(
            "orders-2",
            &AppendToStreamOptions::default().stream_state(StreamState::StreamExists),
            vec![event(0)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            no_stream,
            kurrentdb::Error::WrongExpectedVersion {
                current: kurrentdb::CurrentRevision::NoStream,
                ..
            }
        ),
        "{no_stream:?}"
    );
    assert_eq!(
        read_all_of(&client, s, &ReadStreamOptions::default()).await,
        vec![0, 1, 2, 3, 4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_forwards_backwards_and_from_a_revision() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let events: Vec<_> = (0..1_200).map(event).collect();
    client
        .append_to_stream("counter", &AppendToStreamOptions::default(), events)
        .await
        .unwrap();
    let all = read_all_of(&client, "counter", &ReadStreamOptions::default()).await;
    assert_eq!(all, (0..1_200).collect::<Vec<_>>(), "pages join up");
    let back = read_all_of(
        &client,
        "counter",
        &ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(3),
    )
    .await;
    assert_eq!(back, vec![1_199, 1_198, 1_197]);
    let from = read_all_of(
        &client,
        "counter",
        &ReadStreamOptions::default()
            .position(StreamPosition::Position(1_000))
            .max_count(2),
    )
    .await;
    assert_eq!(
        from,
        vec![1_000, 1_001],
        "a revision is 0-based and inclusive"
    );
    let down_from = read_all_of(
        &client,
        "counter",
        &ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::Position(1)),
    )
    .await;
    assert_eq!(down_from, vec![1, 0]);
    let mut missing = client
        .read_stream("nobody", &ReadStreamOptions::default())
        .await
        .unwrap();
    let e = missing.next().await.unwrap_err();
    assert!(matches!(e, kurrentdb::Error::ResourceNotFound), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_all_with_filters_and_event_fields() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let id = uuid::Uuid::new_v4();
    let tagged = EventData::json("Opened", &serde_json::json!({ "n": 7 }))
        .unwrap()
        .id(id)
        .metadata(r#"{"$correlationId":"c-1"}"#.into());
    client
        .append_to_stream("account-1", &AppendToStreamOptions::default(), tagged)
        .await
        .unwrap();
    client
        .append_to_stream("order-1", &AppendToStreamOptions::default(), event(1))
        .await
        .unwrap();
    let options = ReadAllOptions::default()
        .filter(SubscriptionFilter::on_stream_name().add_prefix("account-"))
        .max_count(10);
    let mut read = client.read_all(&options).await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        seen.push(e);
    }
    assert_eq!(seen.len(), 1, "only the account stream passes");
    let e = seen[0].get_original_event();
    assert_eq!(e.stream_id(), "account-1");
    assert_eq!(e.event_type, "Opened");
    assert_eq!(e.id, id);
    assert_eq!(e.revision, 0);
    assert_eq!(e.metadata["content-type"], "application/json");
    assert!(e.is_json);
    let age = chrono_age(e.created);
    assert!(age < 60, "created is the record time ({age} s ago)");
    assert_eq!(&e.custom_metadata[..], br#"{"$correlationId":"c-1"}"#);
    let by_type = ReadAllOptions::default()
        .filter(SubscriptionFilter::on_event_type().regex("^Count"))
        .max_count(10);
    let mut read = client.read_all(&by_type).await.unwrap();
    let mut types = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        types.push(e.get_original_event().event_type.clone());
    }
    assert_eq!(types, vec!["Counted".to_string()]);
}

/// Seconds from `created` to now.
fn chrono_age(created: impl Into<std::time::SystemTime>) -> u64 {
    std::time::SystemTime::now()
        .duration_since(created.into())
        .map_or(0, |d| d.as_secs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_tombstone() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    for s in ["soft", "hard"] {
        client
            .append_to_stream(s, &AppendToStreamOptions::default(), event(0))
            .await
            .unwrap();
    }
    client
        .delete_stream("soft", &DeleteStreamOptions::default())
        .await
        .unwrap();
    let mut read = client
        .read_stream("soft", &ReadStreamOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        read.next().await.unwrap_err(),
        kurrentdb::Error::ResourceNotFound
    ));
    client
        .tombstone_stream("hard", &TombstoneStreamOptions::default())
        .await
        .unwrap();
    let refused = client
        .append_to_stream("hard", &AppendToStreamOptions::default(), event(1))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, kurrentdb::Error::ResourceDeleted),
        "{refused:?}"
    );
    let mut read = client
        .read_stream("hard", &ReadStreamOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        read.next().await.unwrap_err(),
        kurrentdb::Error::ResourceDeleted
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_are_api_keys() {
    use strata_server::{sha256_hex, ApiKey, Role};
    let keys = ApiKeys::new(vec![
        ApiKey::new(
            "ops",
            &sha256_hex("ops-secret"),
            Role::Write,
            vec!["orders-".into()],
        )
        .unwrap(),
        ApiKey::new(
            "viewer",
            &sha256_hex("viewer-secret"),
            Role::Read,
            vec!["*".into()],
        )
        .unwrap(),
    ])
    .unwrap();
    let (settings, _store) = server(keys).await;
    let host = &settings.hosts()[0];
    let addr = format!("{}:{}", host.host, host.port);
    let client_as = |who: &str| {
        let url = format!("kurrentdb://{who}@{addr}?tls=false");
        Client::new(url.parse().unwrap()).unwrap()
    };
    let ops = client_as("ops:ops-secret");
    ops.append_to_stream("orders-1", &AppendToStreamOptions::default(), event(0))
        .await
        .unwrap();
    let outside = ops
        .append_to_stream("users-1", &AppendToStreamOptions::default(), event(0))
        .await
        .unwrap_err();
    assert!(
        matches!(outside, kurrentdb::Error::AccessDenied),
        "{outside:?}"
    );
    let viewer = client_as("viewer:viewer-secret");
    let read = read_all_of(&viewer, "orders-1", &ReadStreamOptions::default()).await;
    assert_eq!(read, vec![0]);
    let refused = viewer
        .append_to_stream("orders-1", &AppendToStreamOptions::default(), event(1))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, kurrentdb::Error::AccessDenied),
        "{refused:?}"
    );
    for bad in ["ops:wrong", "viewer:ops-secret"] {
        let e = client_as(bad)
            .append_to_stream("orders-1", &AppendToStreamOptions::default(), event(2))
            .await
            .unwrap_err();
        assert!(matches!(e, kurrentdb::Error::AccessDenied), "{bad}: {e:?}");
    }
    let anonymous = Client::new(settings)
        .unwrap()
        .append_to_stream("orders-1", &AppendToStreamOptions::default(), event(3))
        .await
        .unwrap_err();
    assert!(
        matches!(anonymous, kurrentdb::Error::AccessDenied),
        "{anonymous:?}"
    );
}

/// A delete's failed guard is a `FailedPrecondition` status whose message
/// carries the stream and 0-based revisions in the form the Python client
/// parses (it raises its wrong-version error from them, and "not found"
/// for an actual revision of -1); the Node.js client reads the same from
/// the `stream-name`, `expected-version` and `actual-version` trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delete_guard_names_the_revisions() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let s = "guarded-1";
    client
        .append_to_stream(
            s,
            &AppendToStreamOptions::default(),
            vec![event(0), event(1)],
        )
        .await
        .unwrap();
    let refused = client
        .delete_stream(
            s,
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(0)),
        )
        .await
        .unwrap_err();
    match refused {
        kurrentdb::Error::Grpc { code, message } => {
            assert_eq!(format!("{code:?}"), "FailedPrecondition");
            assert!(message.starts_with("WrongExpectedVersion"), "{message}");
            assert!(
                message.ends_with(". Stream: guarded-1, Expected version: 0, Actual version: 1"),
                "{message}"
            );
        }
        other => panic!("expected a FailedPrecondition status, got {other:?}"),
    }
    let missing = client
        .delete_stream(
            "guarded-2",
            &DeleteStreamOptions::default().stream_state(StreamState::StreamExists),
        )
        .await
        .unwrap_err();
    // A guarded delete of a missing stream is "not found", as the Python
    // client also reports a failed guard whose actual revision is -1.
    assert!(
        matches!(missing, kurrentdb::Error::ResourceNotFound),
        "{missing:?}"
    );
}
