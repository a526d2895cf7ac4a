//! The KurrentDB Rust client against `strata_grpc::serve` over a memory
//! store: appends with every expected revision, reads both ways, `$all`
//! with filters, delete, tombstone and authentication.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, DeleteStreamOptions, EventData, ReadAllOptions,
    ReadStreamOptions, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscribeToStreamOptions, SubscriptionEvent, SubscriptionFilter, TombstoneStreamOptions,
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

/// The next event of a subscription, within a bound (a hang fails the
/// test instead of stalling it); other messages are collected in `seen`.
async fn next_event(
    sub: &mut kurrentdb::Subscription,
    seen: &mut Vec<SubscriptionEvent>,
) -> kurrentdb::ResolvedEvent {
    loop {
        let got = tokio::time::timeout(SUBSCRIPTION_WAIT, sub.next_subscription_event())
            .await
            .expect("a subscription message in time")
            .unwrap();
        match got {
            SubscriptionEvent::EventAppeared(e) => return e,
            other => seen.push(other),
        }
    }
}

fn n_of(e: &kurrentdb::ResolvedEvent) -> u64 {
    let value: serde_json::Value = e.get_original_event().as_json().unwrap();
    value["n"].as_u64().unwrap()
}

/// How long a test waits for one subscription message.
const SUBSCRIPTION_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_subscriptions_catch_up_then_go_live() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let s = "ticks-1";
    client
        .append_to_stream(
            s,
            &Default::default(),
            (0..3).map(event).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    client
        .append_to_stream("other-1", &Default::default(), vec![event(99)])
        .await
        .unwrap();

    // From the start: the three recorded, caught up, then live ones.
    let mut sub = client
        .subscribe_to_stream(
            s,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let mut seen = Vec::new();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(n_of(&next_event(&mut sub, &mut seen).await));
    }
    assert_eq!(got, vec![0, 1, 2]);
    // Exclusive start: from revision 1, the first event is revision 2.
    let mut from_one = client
        .subscribe_to_stream(
            s,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Position(1)),
        )
        .await;
    let mut seen_one = Vec::new();
    let first = next_event(&mut from_one, &mut seen_one).await;
    assert_eq!(first.get_original_event().revision, 2);
    // From the end: only what is appended later.
    let mut from_end = client
        .subscribe_to_stream(
            s,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::End),
        )
        .await;
    let mut seen_end = Vec::new();
    // Wait until the live subscriptions have confirmed before appending.
    let confirmed = tokio::time::timeout(SUBSCRIPTION_WAIT, from_end.next_subscription_event())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(confirmed, SubscriptionEvent::Confirmed(_)),
        "{confirmed:?}"
    );
    client
        .append_to_stream(s, &Default::default(), vec![event(3), event(4)])
        .await
        .unwrap();
    client
        .append_to_stream("other-1", &Default::default(), vec![event(98)])
        .await
        .unwrap();
    for want in [3, 4] {
        assert_eq!(n_of(&next_event(&mut sub, &mut seen).await), want);
        assert_eq!(n_of(&next_event(&mut from_end, &mut seen_end).await), want);
    }
    assert_eq!(n_of(&next_event(&mut from_one, &mut seen_one).await), 3);
    assert!(
        matches!(seen.first(), Some(SubscriptionEvent::Confirmed(_))),
        "confirmation first: {seen:?}"
    );
    let caught_up = seen
        .iter()
        .find_map(|m| match m {
            SubscriptionEvent::CaughtUp(Some(c)) => Some(c.stream_revision),
            _ => None,
        })
        .expect("caught_up before the live events");
    assert_eq!(caught_up, Some(2));

    // A subscription to a stream that does not exist yet waits for it.
    let mut later = client
        .subscribe_to_stream(
            "later-1",
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let mut seen_later = Vec::new();
    let confirmed = tokio::time::timeout(SUBSCRIPTION_WAIT, later.next_subscription_event())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(confirmed, SubscriptionEvent::Confirmed(_)),
        "{confirmed:?}"
    );
    client
        .append_to_stream("later-1", &Default::default(), vec![event(7)])
        .await
        .unwrap();
    assert_eq!(n_of(&next_event(&mut later, &mut seen_later).await), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_subscriptions_filter_checkpoint_and_resume() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    for i in 0..40 {
        let stream = if i % 10 == 0 { "match-1" } else { "noise-1" };
        client
            .append_to_stream(stream, &Default::default(), vec![event(i)])
            .await
            .unwrap();
    }
    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("match-")
        .max(5);
    let mut sub = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter.clone()))
        .await;
    let mut seen = Vec::new();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(n_of(&next_event(&mut sub, &mut seen).await));
    }
    assert_eq!(got, vec![0, 10, 20, 30]);
    client
        .append_to_stream("match-1", &Default::default(), vec![event(40)])
        .await
        .unwrap();
    let live = next_event(&mut sub, &mut seen).await;
    assert_eq!(n_of(&live), 40);
    let checkpoints: Vec<u64> = seen
        .iter()
        .filter_map(|m| match m {
            SubscriptionEvent::Checkpoint(p) => Some(p.commit),
            _ => None,
        })
        .collect();
    assert!(
        checkpoints.len() >= 7,
        "a checkpoint every 5 events examined: {checkpoints:?}"
    );
    assert!(
        checkpoints.windows(2).all(|w| w[0] < w[1]),
        "{checkpoints:?}"
    );
    assert!(seen
        .iter()
        .any(|m| matches!(m, SubscriptionEvent::CaughtUp(Some(c)) if c.position.is_some())));

    // Resuming after an event's position starts after it.
    let resume = got_position(&client, 20).await;
    let mut again = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default()
                .filter(filter)
                .position(StreamPosition::Position(resume)),
        )
        .await;
    let mut seen_again = Vec::new();
    assert_eq!(n_of(&next_event(&mut again, &mut seen_again).await), 30);
}

/// The `$all` position of the event numbered `n`.
async fn got_position(client: &Client, n: u64) -> kurrentdb::Position {
    let mut read = client.read_all(&ReadAllOptions::default()).await.unwrap();
    while let Some(e) = read.next().await.unwrap() {
        if n_of(&e) == n {
            return e.get_original_event().position;
        }
    }
    panic!("no event {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_appends_answer_each_append_under_its_id() {
    let (settings, store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let batch = client
        .batch_append(&kurrentdb::BatchAppendOptions::default())
        .await
        .unwrap();
    let first = batch
        .append_to_stream("batch-1", StreamState::NoStream, vec![event(0), event(1)])
        .await
        .unwrap();
    assert_eq!(first.current_revision(), Some(1));
    assert!(first.current_position().unwrap().commit > 0);
    // Many at once over the one call, each answered.
    let appends = (0..20u64).map(|i| {
        let batch = &batch;
        async move {
            batch
                .append_to_stream(format!("batch-many-{i}"), StreamState::Any, vec![event(i)])
                .await
        }
    });
    let results = futures::future::join_all(appends).await;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.stream_name(), format!("batch-many-{i}"));
        assert_eq!(r.current_revision(), Some(0));
    }
    // A failed guard fails that append and writes nothing (this client
    // then closes its batch session; a new one carries on).
    let wrong = batch
        .append_to_stream("batch-1", StreamState::StreamRevision(7), vec![event(2)])
        .await;
    assert!(wrong.is_err(), "{wrong:?}");
    let batch = client
        .batch_append(&kurrentdb::BatchAppendOptions::default())
        .await
        .unwrap();
    let next = batch
        .append_to_stream("batch-1", StreamState::StreamRevision(1), vec![event(2)])
        .await
        .unwrap();
    assert_eq!(next.current_revision(), Some(2));
    let s = strata_core::StreamId::new("batch-1").unwrap();
    let stored = store
        .read_stream(&s, 1, 10, strata_core::Direction::Forward)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "the failed append wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_metadata_is_strata_metadata() {
    let (settings, store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let s = "meta-1";
    client
        .append_to_stream(
            s,
            &Default::default(),
            (0..5).map(event).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let none = client
        .get_stream_metadata(s, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert!(none.is_not_found(), "{none:?}");
    let metadata = kurrentdb::StreamMetadata::builder()
        .max_count(2)
        .insert_custom_property("team", "billing")
        .build();
    let written = client
        .set_stream_metadata(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            &metadata,
        )
        .await
        .unwrap();
    assert_eq!(written.next_expected_version, 0);
    // Strata applies it: the stream keeps its last two events.
    let kept = read_all_of(&client, s, &ReadStreamOptions::default().max_count(10)).await;
    assert_eq!(kept, vec![3, 4]);
    let id = strata_core::StreamId::new(s).unwrap();
    let stored = store.stream_metadata(&id).await.unwrap().unwrap();
    assert_eq!(stored.metadata.max_count, Some(2));
    assert_eq!(
        stored.metadata.custom,
        Some(serde_json::json!({ "team": "billing" }))
    );
    // Read back in the clients' form.
    let back = client
        .get_stream_metadata(s, &ReadStreamOptions::default())
        .await
        .unwrap();
    let kurrentdb::StreamMetadataResult::Success(back) = back else {
        panic!("{back:?}");
    };
    assert_eq!(back.metadata(), &metadata);
    assert_eq!(back.version(), 0);
    // The metadata stream's revision guards the next write.
    let stale = client
        .set_stream_metadata(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            &metadata,
        )
        .await;
    assert!(
        matches!(stale, Err(kurrentdb::Error::WrongExpectedVersion { .. })),
        "{stale:?}"
    );
    let truncate = kurrentdb::StreamMetadata::builder()
        .truncate_before(4)
        .build();
    client
        .set_stream_metadata(
            s,
            &AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(0)),
            &truncate,
        )
        .await
        .unwrap();
    let kept = read_all_of(&client, s, &ReadStreamOptions::default().max_count(10)).await;
    assert_eq!(kept, vec![4], "truncate before revision 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_verify_the_servers_certificate() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../strata-server/tests/data");
    let (cert, key) = (
        data.join("localhost.cert.pem"),
        data.join("localhost.key.pem"),
    );
    let acceptor = strata_server::tls_acceptor_h2(&cert, &key).unwrap();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = strata_grpc::Services::new(Arc::clone(&store));
    tokio::spawn(strata_grpc::serve_tls(
        listener,
        services,
        acceptor,
        std::future::pending(),
    ));
    let url = format!(
        "kurrentdb://localhost:{}?tls=true&tlsCaFile={}",
        addr.port(),
        cert.display()
    );
    let client = Client::new(url.parse().unwrap()).unwrap();
    client
        .append_to_stream("secure-1", &Default::default(), vec![event(1)])
        .await
        .unwrap();
    let got = read_all_of(&client, "secure-1", &ReadStreamOptions::default()).await;
    assert_eq!(got, vec![1]);
    // A cleartext client cannot talk to the TLS endpoint.
    let plain = format!("kurrentdb://localhost:{}?tls=false", addr.port());
    let plain = Client::new(plain.parse().unwrap()).unwrap();
    let refused = tokio::time::timeout(
        SUBSCRIPTION_WAIT,
        plain.append_to_stream("secure-1", &Default::default(), vec![event(2)]),
    )
    .await
    .expect("a cleartext client fails in time");
    assert!(refused.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_reach_the_end_say_the_streams_first_and_last_revision() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    let s = "ends-1";
    client
        .append_to_stream(
            s,
            &Default::default(),
            (0..4).map(event).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    async fn tail(client: &Client, options: &ReadStreamOptions) -> (usize, Vec<String>) {
        let mut read = client.read_stream("ends-1", options).await.unwrap();
        let (mut events, mut marks) = (0, Vec::new());
        while let Some(m) = read.next_read_event().await.unwrap() {
            match m {
                kurrentdb::ReadEvent::Event(_) => events += 1,
                kurrentdb::ReadEvent::FirstStreamPosition(r) => marks.push(format!("first {r}")),
                kurrentdb::ReadEvent::LastStreamPosition(r) => marks.push(format!("last {r}")),
                kurrentdb::ReadEvent::LastAllStreamPosition(_) => marks.push("all".into()),
            }
        }
        (events, marks)
    }
    let forwards = tail(&client, &ReadStreamOptions::default().max_count(10)).await;
    assert_eq!(forwards, (4, vec!["last 3".to_string()]));
    let backwards = tail(
        &client,
        &ReadStreamOptions::default()
            .max_count(10)
            .position(StreamPosition::End)
            .backwards(),
    )
    .await;
    assert_eq!(backwards, (4, vec!["first 0".to_string()]));
    // A read that stops at its count has not reached the end.
    let part = tail(&client, &ReadStreamOptions::default().max_count(2)).await;
    assert_eq!(part, (2, Vec::new()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_all_backwards_from_the_end_and_below_a_position() {
    let (settings, _store) = server(ApiKeys::none()).await;
    let client = Client::new(settings).unwrap();
    for i in 0..6 {
        let stream = if i % 2 == 0 { "even-1" } else { "odd-1" };
        client
            .append_to_stream(stream, &Default::default(), vec![event(i)])
            .await
            .unwrap();
    }
    let backwards = ReadAllOptions::default()
        .backwards()
        .position(StreamPosition::End);
    let newest: Vec<u64> = {
        let mut read = client
            .read_all(&backwards.clone().max_count(3))
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(e) = read.next().await.unwrap() {
            out.push(n_of(&e));
        }
        out
    };
    assert_eq!(newest, vec![5, 4, 3]);
    // Below an event's position: the events before it, newest first.
    let below = got_position(&client, 3).await;
    let mut read = client
        .read_all(
            &ReadAllOptions::default()
                .backwards()
                .position(StreamPosition::Position(below))
                .max_count(10),
        )
        .await
        .unwrap();
    let mut older = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        older.push(n_of(&e));
    }
    assert_eq!(older, vec![2, 1, 0]);
    // Filtered, backwards.
    let filtered = backwards
        .max_count(10)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("odd-"));
    let mut read = client.read_all(&filtered).await.unwrap();
    let mut odd = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        odd.push(n_of(&e));
    }
    assert_eq!(odd, vec![5, 3, 1]);
}
