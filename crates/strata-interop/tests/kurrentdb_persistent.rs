//! The KurrentDB Rust client's persistent subscriptions against
//! `strata_grpc::serve` over a memory store and its consumer groups:
//! create (a stream, `$all` with a filter), duplicates, sharing between
//! subscribers, acks and the checkpoint, parking and replay, retries,
//! disconnects, update, delete, list and authentication.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, DeletePersistentSubscriptionOptions, EventData,
    GetPersistentSubscriptionInfoOptions, ListPersistentSubscriptionsOptions, NakAction,
    PersistentSubscription, PersistentSubscriptionEvent, PersistentSubscriptionOptions,
    PersistentSubscriptionToAllOptions, ReplayParkedMessagesOptions, StreamPosition,
    SubscribeToPersistentSubscriptionOptions, SubscriptionFilter, SystemConsumerStrategy,
};
use strata_core::{EventStore, MemoryStore};
use strata_server::ApiKeys;
use tokio::net::TcpListener;

/// How long a test waits for an event before it fails (a guard against a
/// hang, not a measure of speed).
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Serves a fresh memory store with consumer groups; the address.
async fn server(keys: ApiKeys) -> String {
    common::serve("127.0.0.1:0", keys).await.to_string()
}

async fn open_client() -> Client {
    let addr = server(ApiKeys::none()).await;
    let settings: ClientSettings = format!("kurrentdb://{addr}?tls=false").parse().unwrap();
    Client::new(settings).unwrap()
}

fn event(n: u64) -> EventData {
    EventData::json("Counted", &serde_json::json!({ "n": n })).unwrap()
}

async fn append(client: &Client, stream: &str, ns: std::ops::Range<u64>) {
    client
        .append_to_stream(
            stream,
            &AppendToStreamOptions::default(),
            ns.map(event).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
}

fn from_start() -> PersistentSubscriptionOptions {
    PersistentSubscriptionOptions::default().start_from(StreamPosition::Start)
}

async fn subscribe(client: &Client, stream: &str, group: &str) -> PersistentSubscription {
    client
        .subscribe_to_persistent_subscription(
            stream,
            group,
            &SubscribeToPersistentSubscriptionOptions::default(),
        )
        .await
        .unwrap()
}

/// The next event: its `n` and its retry count.
async fn next(sub: &mut PersistentSubscription) -> (u64, usize, kurrentdb::ResolvedEvent) {
    loop {
        let got = tokio::time::timeout(EVENT_WAIT, sub.next_subscription_event())
            .await
            .expect("an event within the wait")
            .unwrap();
        if let PersistentSubscriptionEvent::EventAppeared { retry_count, event } = got {
            let value: serde_json::Value = event.get_original_event().as_json().unwrap();
            return (value["n"].as_u64().unwrap(), retry_count, event);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_a_stream_and_on_all_then_list_and_refuse_duplicates() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    let to_all = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("orders-"));
    client
        .create_persistent_subscription_to_all("audit", &to_all)
        .await
        .unwrap();

    let again = client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap_err();
    assert!(
        matches!(again, kurrentdb::Error::ResourceAlreadyExists),
        "{again:?}"
    );
    // The same group name on another stream is another subscription.
    client
        .create_persistent_subscription("orders-2", "workers", &from_start())
        .await
        .unwrap();

    let listed = client
        .list_all_persistent_subscriptions(&ListPersistentSubscriptionsOptions::default())
        .await
        .unwrap();
    let keys: BTreeSet<(String, String)> = listed
        .iter()
        .map(|i| (i.event_source.clone(), i.group_name.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("$all", "audit"),
        ("orders-1", "workers"),
        ("orders-2", "workers"),
    ]
    .iter()
    .map(|(s, g)| ((*s).to_string(), (*g).to_string()))
    .collect();
    assert_eq!(keys, expected);
    let of_stream = client
        .list_persistent_subscriptions_for_stream(
            "orders-1",
            &ListPersistentSubscriptionsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(of_stream.len(), 1);
    assert_eq!(of_stream[0].group_name, "workers");
    let of_all = client
        .list_persistent_subscriptions_to_all(&ListPersistentSubscriptionsOptions::default())
        .await
        .unwrap();
    assert_eq!(of_all.len(), 1);
    assert_eq!(of_all[0].group_name, "audit");

    // Filters on event types and regular expressions are kept with the
    // subscription; an expression the engine cannot run is refused at
    // create time, not loosened.
    let regex = PersistentSubscriptionToAllOptions::default()
        .filter(SubscriptionFilter::on_event_type().regex("^Order"));
    client
        .create_persistent_subscription_to_all("typed", &regex)
        .await
        .unwrap();
    let look_behind = PersistentSubscriptionToAllOptions::default()
        .filter(SubscriptionFilter::on_event_type().regex("(?<=a)b"));
    let e = client
        .create_persistent_subscription_to_all("behind", &look_behind)
        .await
        .unwrap_err();
    assert_invalid_argument(e, "filter expression");
}

/// `e` is the client's unmapped `InvalidArgument` whose message holds
/// `words`.
fn assert_invalid_argument(e: kurrentdb::Error, words: &str) {
    let kurrentdb::Error::Grpc { code, message } = e else {
        panic!("expected InvalidArgument, got {e:?}");
    };
    assert_eq!(format!("{code:?}"), "InvalidArgument", "{message}");
    assert!(message.contains(words), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_revision_is_the_first_event_delivered() {
    let client = open_client().await;
    append(&client, "orders-1", 0..5).await;
    let options = PersistentSubscriptionOptions::default().start_from(StreamPosition::Position(2));
    client
        .create_persistent_subscription("orders-1", "late", &options)
        .await
        .unwrap();
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "late",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    assert!(matches!(
        info.settings.unwrap().start_from,
        StreamPosition::Position(2)
    ));
    let mut sub = subscribe(&client, "orders-1", "late").await;
    for expected in 2..5 {
        let (n, _, e) = next(&mut sub).await;
        assert_eq!(n, expected);
        assert_eq!(e.get_original_event().revision, expected);
        sub.ack(&e).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_delete_drop_the_reader() {
    let client = open_client().await;
    let options = from_start().message_timeout(Duration::from_secs(3_600));
    client
        .create_persistent_subscription("orders-1", "workers", &options)
        .await
        .unwrap();
    append(&client, "orders-1", 0..1).await;
    let mut first = subscribe(&client, "orders-1", "workers").await;
    let (n, _, e) = next(&mut first).await;
    assert_eq!(n, 0);
    first
        .nack(&e, NakAction::Stop, "shutting down")
        .await
        .unwrap();
    let ended = tokio::time::timeout(EVENT_WAIT, first.next_subscription_event())
        .await
        .expect("the session ends within the wait");
    assert!(
        matches!(ended, Err(kurrentdb::Error::IllegalStateError(_))),
        "{ended:?}"
    );
    // The stopped reader's lease went back: the next reader gets the event.
    let mut second = subscribe(&client, "orders-1", "workers").await;
    let (n, retry, _) = next(&mut second).await;
    assert_eq!((n, retry), (0, 1));
    client
        .delete_persistent_subscription(
            "orders-1",
            "workers",
            &DeletePersistentSubscriptionOptions::default(),
        )
        .await
        .unwrap();
    let ended = tokio::time::timeout(EVENT_WAIT, second.next_subscription_event())
        .await
        .expect("the session ends within the wait");
    assert!(
        matches!(ended, Err(kurrentdb::Error::IllegalStateError(_))),
        "{ended:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_groups_persistent_subscriptions_are_not_offered() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(strata_grpc::serve(
        listener,
        strata_grpc::Services::new(store),
        std::future::pending(),
    ));
    let client = Client::new(format!("kurrentdb://{addr}?tls=false").parse().unwrap()).unwrap();
    let to_all = client
        .create_persistent_subscription_to_all(
            "audit",
            &PersistentSubscriptionToAllOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(to_all, kurrentdb::Error::UnsupportedFeature),
        "{to_all:?}"
    );
    let stream = client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap_err();
    assert!(
        matches!(stream, kurrentdb::Error::UnsupportedFeature),
        "{stream:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_with_a_prefix_filter_delivers_only_matching_streams() {
    let client = open_client().await;
    let to_all = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .filter(SubscriptionFilter::on_stream_name().add_prefix("orders-"));
    client
        .create_persistent_subscription_to_all("audit", &to_all)
        .await
        .unwrap();
    append(&client, "users-1", 0..2).await;
    append(&client, "orders-1", 10..12).await;
    append(&client, "orders-2", 20..21).await;
    let mut sub = client
        .subscribe_to_persistent_subscription_to_all(
            "audit",
            &SubscribeToPersistentSubscriptionOptions::default(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut last = 0;
    for _ in 0..3 {
        let (n, retry, e) = next(&mut sub).await;
        assert_eq!(retry, 0);
        assert!(e.get_original_event().stream_id().starts_with("orders-"));
        last = last.max(e.get_original_event().position.commit);
        sub.ack(&e).await.unwrap();
        seen.push(n);
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![10, 11, 20]);
    // The checkpoint of `$all` is a position, reached once the acks land.
    let mut checkpoint = None;
    for _ in 0..200 {
        let info = client
            .get_persistent_subscription_info_to_all(
                "audit",
                &GetPersistentSubscriptionInfoOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(info.event_source, "$all");
        assert!(info.stats.last_known_position.unwrap().commit >= last);
        checkpoint = info.stats.last_checkpointed_position.map(|p| p.commit);
        if checkpoint.is_some_and(|c| c >= last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        checkpoint.is_some_and(|c| c >= last),
        "{checkpoint:?} {last}"
    );
}

fn typed(event_type: &str, n: u64) -> EventData {
    EventData::json(event_type, &serde_json::json!({ "n": n })).unwrap()
}

/// Reads `count` events, acking each; their `n`s in delivery order.
async fn take_acked(sub: &mut PersistentSubscription, count: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let (n, _, e) = next(sub).await;
        sub.ack(&e).await.unwrap();
        seen.push(n);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_with_type_and_regex_filters_skips_what_they_reject() {
    let client = open_client().await;
    let by_type = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .filter(
            SubscriptionFilter::on_event_type()
                .add_prefix("Order")
                .add_prefix("Invoice"),
        );
    client
        .create_persistent_subscription_to_all("typed", &by_type)
        .await
        .unwrap();
    // The form the clients use to leave streams out: a leading negative
    // look-ahead.
    let not_users = PersistentSubscriptionToAllOptions::default()
        .start_from(StreamPosition::Start)
        .filter(SubscriptionFilter::on_stream_name().regex("^(?!(users-.*))"));
    client
        .create_persistent_subscription_to_all("not-users", &not_users)
        .await
        .unwrap();
    let events = [
        ("orders-1", "OrderPlaced", 1),
        ("users-1", "UserJoined", 2),
        ("orders-1", "OrderShipped", 3),
        ("users-1", "OrderPlaced", 4),
        ("billing-1", "InvoiceSent", 5),
        ("billing-1", "Paid", 6),
    ];
    for (stream, event_type, n) in events {
        client
            .append_to_stream(
                stream,
                &AppendToStreamOptions::default(),
                typed(event_type, n),
            )
            .await
            .unwrap();
    }
    let options = SubscribeToPersistentSubscriptionOptions::default();
    let mut sub = client
        .subscribe_to_persistent_subscription_to_all("typed", &options)
        .await
        .unwrap();
    let mut seen = take_acked(&mut sub, 4).await;
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 3, 4, 5]);
    let mut sub = client
        .subscribe_to_persistent_subscription_to_all("not-users", &options)
        .await
        .unwrap();
    let mut seen = take_acked(&mut sub, 4).await;
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 3, 5, 6]);
    // Nothing else arrives: what the filters rejected was skipped, and
    // the checkpoint passes it.
    client
        .append_to_stream(
            "orders-2",
            &AppendToStreamOptions::default(),
            typed("OrderPlaced", 7),
        )
        .await
        .unwrap();
    assert_eq!(take_acked(&mut sub, 1).await, vec![7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_settings_are_reported_and_the_subscriber_limit_holds() {
    let client = open_client().await;
    let mut options = from_start()
        .max_subscriber_count(1)
        .live_buffer_size(321)
        .read_batch_size(17)
        .history_buffer_size(99)
        .checkpoint_after(Duration::from_millis(1_500))
        .checkpoint_lower_bound(3)
        .checkpoint_upper_bound(40);
    options.settings_mut().extra_statistics = true;
    client
        .create_persistent_subscription("orders-1", "solo", &options)
        .await
        .unwrap();
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "solo",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    let settings = info.settings.unwrap();
    assert_eq!(settings.max_subscriber_count, 1);
    assert_eq!(settings.live_buffer_size, 321);
    assert_eq!(settings.read_batch_size, 17);
    assert_eq!(settings.history_buffer_size, 99);
    assert_eq!(settings.checkpoint_after, Duration::from_millis(1_500));
    assert_eq!(
        (
            settings.checkpoint_lower_bound,
            settings.checkpoint_upper_bound
        ),
        (3, 40)
    );
    assert!(settings.extra_statistics);

    append(&client, "orders-1", 0..1).await;
    let mut first = subscribe(&client, "orders-1", "solo").await;
    let (n, _, e) = next(&mut first).await;
    assert_eq!(n, 0);
    first.ack(&e).await.unwrap();
    let refused = client
        .subscribe_to_persistent_subscription(
            "orders-1",
            "solo",
            &SubscribeToPersistentSubscriptionOptions::default(),
        )
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("Maximum subscriptions reached"),
        "{refused:?}"
    );
    // Once the first reader goes, another may take its place.
    drop(first);
    let mut third = None;
    for _ in 0..200 {
        let options = SubscribeToPersistentSubscriptionOptions::default();
        match client
            .subscribe_to_persistent_subscription("orders-1", "solo", &options)
            .await
        {
            Ok(sub) => {
                third = Some(sub);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    let mut third = third.expect("a new reader once the first has gone");
    append(&client, "orders-1", 1..2).await;
    assert_eq!(next(&mut third).await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_share_events_each_exactly_once() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    append(&client, "orders-1", 0..40).await;
    let options = SubscribeToPersistentSubscriptionOptions::default().buffer_size(5);
    let mut a = client
        .subscribe_to_persistent_subscription("orders-1", "workers", &options)
        .await
        .unwrap();
    let mut b = client
        .subscribe_to_persistent_subscription("orders-1", "workers", &options)
        .await
        .unwrap();
    let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
    // Each takes its first event before either acks, so both hold leases.
    let (first_a, _, ea) = next(&mut a).await;
    let (first_b, _, eb) = next(&mut b).await;
    from_a.push(first_a);
    from_b.push(first_b);
    a.ack(&ea).await.unwrap();
    b.ack(&eb).await.unwrap();
    while from_a.len() + from_b.len() < 40 {
        tokio::select! {
            (n, _, e) = next(&mut a) => { a.ack(&e).await.unwrap(); from_a.push(n); }
            (n, _, e) = next(&mut b) => { b.ack(&e).await.unwrap(); from_b.push(n); }
        }
    }
    assert!(!from_a.is_empty() && !from_b.is_empty());
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.connections.len(), 2, "both readers are listed");
    for c in &info.connections {
        assert!(c.connection_name.starts_with("grpc-"), "{c:?}");
        assert!(c.total_items >= 1, "{c:?}");
    }
    let mut all: Vec<u64> = from_a.iter().chain(&from_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..40).collect::<Vec<_>>(), "each event exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_move_the_checkpoint() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    append(&client, "orders-1", 0..5).await;
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.stats.last_checkpointed_event_revision, None);
    assert_eq!(info.stats.last_known_event_revision, Some(4));
    let mut sub = subscribe(&client, "orders-1", "workers").await;
    for expected in 0..3 {
        let (n, _, e) = next(&mut sub).await;
        assert_eq!(n, expected);
        sub.ack(&e).await.unwrap();
    }
    // The acks travel on the read call; look until the checkpoint shows them.
    let mut revision = None;
    for _ in 0..200 {
        let info = client
            .get_persistent_subscription_info(
                "orders-1",
                "workers",
                &GetPersistentSubscriptionInfoOptions::default(),
            )
            .await
            .unwrap();
        revision = info.stats.last_checkpointed_event_revision;
        if revision == Some(2) {
            assert_eq!(info.stats.total_items, 3);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(revision, Some(2), "revisions 0 to 2 were acked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_come_back_on_replay() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    append(&client, "orders-1", 0..2).await;
    let mut sub = subscribe(&client, "orders-1", "workers").await;
    let (n, _, e) = next(&mut sub).await;
    assert_eq!(n, 0);
    sub.nack(&e, NakAction::Park, "poison").await.unwrap();
    let (n, _, e) = next(&mut sub).await;
    assert_eq!(n, 1);
    sub.ack(&e).await.unwrap();
    let mut parked = 0;
    for _ in 0..200 {
        let info = client
            .get_persistent_subscription_info(
                "orders-1",
                "workers",
                &GetPersistentSubscriptionInfoOptions::default(),
            )
            .await
            .unwrap();
        parked = info.stats.parked_message_count;
        if parked == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(parked, 1);
    client
        .replay_parked_messages(
            "orders-1",
            "workers",
            &ReplayParkedMessagesOptions::default(),
        )
        .await
        .unwrap();
    let (n, _, e) = next(&mut sub).await;
    assert_eq!(n, 0, "the parked event is delivered again");
    sub.ack(&e).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_leases_keep_timing_out_is_parked_after_its_retries() {
    let client = open_client().await;
    let options = from_start()
        .message_timeout(Duration::from_millis(100))
        .max_retry_count(2);
    client
        .create_persistent_subscription("orders-1", "slow", &options)
        .await
        .unwrap();
    append(&client, "orders-1", 0..2).await;
    let mut sub = client
        .subscribe_to_persistent_subscription(
            "orders-1",
            "slow",
            &SubscribeToPersistentSubscriptionOptions::default().buffer_size(1),
        )
        .await
        .unwrap();
    // Never acked: delivered once, then twice more as its leases time out.
    for retry in 0..3 {
        let (n, count, _) = next(&mut sub).await;
        assert_eq!((n, count), (0, retry));
    }
    // Its retries spent, it is parked and the next event comes.
    let (n, count, e) = next(&mut sub).await;
    assert_eq!((n, count), (1, 0));
    sub.ack(&e).await.unwrap();
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "slow",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.stats.parked_message_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_events_come_back_with_a_retry_count() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    append(&client, "orders-1", 0..1).await;
    let mut sub = subscribe(&client, "orders-1", "workers").await;
    let (n, retry, e) = next(&mut sub).await;
    assert_eq!((n, retry), (0, 0));
    sub.nack(&e, NakAction::Retry, "later").await.unwrap();
    let (n, retry, e) = next(&mut sub).await;
    assert_eq!((n, retry), (0, 1));
    sub.ack(&e).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_leaves_hands_its_events_back() {
    let client = open_client().await;
    // A lease lasts an hour: the events can only come back because the
    // first subscriber left.
    let options = from_start().message_timeout(Duration::from_secs(3_600));
    client
        .create_persistent_subscription("orders-1", "workers", &options)
        .await
        .unwrap();
    append(&client, "orders-1", 0..3).await;
    let mut first = subscribe(&client, "orders-1", "workers").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next(&mut first).await.0);
    }
    held.sort_unstable();
    assert_eq!(held, vec![0, 1, 2]);
    drop(first);
    let mut second = subscribe(&client, "orders-1", "workers").await;
    let mut again = Vec::new();
    for _ in 0..3 {
        let (n, retry, e) = next(&mut second).await;
        assert_eq!(retry, 1, "a second delivery");
        second.ack(&e).await.unwrap();
        again.push(n);
    }
    again.sort_unstable();
    assert_eq!(again, vec![0, 1, 2]);
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(info.connections.len(), 1, "the first reader is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_settings_and_delete_ends_the_subscription() {
    let client = open_client().await;
    client
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    let settings = info.settings.unwrap();
    assert_eq!(settings.message_timeout, Duration::from_secs(30));
    assert_eq!(settings.max_retry_count, 10);
    assert!(matches!(settings.start_from, StreamPosition::Start));
    assert_eq!(
        settings.consumer_strategy_name,
        SystemConsumerStrategy::RoundRobin
    );

    let changed = from_start()
        .message_timeout(Duration::from_secs(5))
        .max_retry_count(3)
        .consumer_strategy_name(SystemConsumerStrategy::DispatchToSingle);
    client
        .update_persistent_subscription("orders-1", "workers", &changed)
        .await
        .unwrap();
    let settings = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap()
        .settings
        .unwrap();
    assert_eq!(settings.message_timeout, Duration::from_secs(5));
    assert_eq!(settings.max_retry_count, 3);
    assert_eq!(
        settings.consumer_strategy_name,
        SystemConsumerStrategy::DispatchToSingle
    );

    let out_of_range = from_start().max_retry_count(-1);
    let e = client
        .update_persistent_subscription("orders-1", "workers", &out_of_range)
        .await
        .unwrap_err();
    assert_invalid_argument(e, "max_retry_count");
    let missing = client
        .update_persistent_subscription("orders-1", "nobody", &from_start())
        .await
        .unwrap_err();
    assert!(
        matches!(missing, kurrentdb::Error::ResourceNotFound),
        "{missing:?}"
    );

    client
        .delete_persistent_subscription(
            "orders-1",
            "workers",
            &DeletePersistentSubscriptionOptions::default(),
        )
        .await
        .unwrap();
    let read = client
        .subscribe_to_persistent_subscription(
            "orders-1",
            "workers",
            &SubscribeToPersistentSubscriptionOptions::default(),
        )
        .await;
    assert!(
        matches!(read, Err(kurrentdb::Error::ResourceNotFound)),
        "reading a deleted subscription is NotFound"
    );
    let again = client
        .delete_persistent_subscription(
            "orders-1",
            "workers",
            &DeletePersistentSubscriptionOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, kurrentdb::Error::ResourceNotFound),
        "{again:?}"
    );
    let info = client
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(info, kurrentdb::Error::ResourceNotFound),
        "{info:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decide_who_manages_and_who_reads() {
    use strata_server::{sha256_hex, ApiKey, Role};
    let keys = ApiKeys::new(vec![
        ApiKey::new(
            "ops",
            &sha256_hex("ops-secret"),
            Role::Admin,
            vec!["*".into()],
        )
        .unwrap(),
        ApiKey::new(
            "worker",
            &sha256_hex("worker-secret"),
            Role::Read,
            vec!["orders-".into()],
        )
        .unwrap(),
    ])
    .unwrap();
    let addr = server(keys).await;
    let client_as = |who: &str| {
        let url = format!("kurrentdb://{who}@{addr}?tls=false");
        Client::new(url.parse().unwrap()).unwrap()
    };
    let ops = client_as("ops:ops-secret");
    let worker = client_as("worker:worker-secret");
    let stranger = client_as("ops:wrong");

    let e = worker
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap_err();
    assert!(matches!(e, kurrentdb::Error::AccessDenied), "{e:?}");
    let e = stranger
        .create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap_err();
    assert!(matches!(e, kurrentdb::Error::AccessDenied), "{e:?}");
    ops.create_persistent_subscription("orders-1", "workers", &from_start())
        .await
        .unwrap();
    ops.create_persistent_subscription("users-1", "workers", &from_start())
        .await
        .unwrap();
    ops.create_persistent_subscription_to_all(
        "audit",
        &PersistentSubscriptionToAllOptions::default().start_from(StreamPosition::Start),
    )
    .await
    .unwrap();
    append(&ops, "orders-1", 0..1).await;

    let mut sub = subscribe(&worker, "orders-1", "workers").await;
    let (n, _, e) = next(&mut sub).await;
    assert_eq!(n, 0);
    sub.ack(&e).await.unwrap();
    let info = ops
        .get_persistent_subscription_info(
            "orders-1",
            "workers",
            &GetPersistentSubscriptionInfoOptions::default(),
        )
        .await
        .unwrap();
    let users: Vec<&str> = info
        .connections
        .iter()
        .map(|c| c.username.as_str())
        .collect();
    assert_eq!(users, vec!["worker"]);
    let options = SubscribeToPersistentSubscriptionOptions::default();
    let outside = worker
        .subscribe_to_persistent_subscription("users-1", "workers", &options)
        .await;
    assert!(matches!(outside, Err(kurrentdb::Error::AccessDenied)));
    let all = worker
        .subscribe_to_persistent_subscription_to_all("audit", &options)
        .await;
    assert!(
        matches!(all, Err(kurrentdb::Error::AccessDenied)),
        "$all needs a key that covers every stream"
    );
    let listed = worker
        .list_all_persistent_subscriptions(&ListPersistentSubscriptionsOptions::default())
        .await;
    assert!(matches!(listed, Err(kurrentdb::Error::AccessDenied)));
}
