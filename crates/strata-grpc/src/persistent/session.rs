//! `PersistentSubscriptions.Read`: one consumer of a group for as long as
//! the call lasts.
//!
//! The client sends its options, the server confirms, then leases events
//! to it (at most `buffer_size` unsettled at once) and the client acks or
//! nacks them by event id. Strata settles by delivery id, so the session
//! keeps the map from event id to delivery id of what it has handed out.
//! When the call ends, for whatever reason, the consumer leaves the group
//! and its leases go back at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strata_core::group::{ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, NackAction};
use strata_core::group::{MAX_REASON_BYTES, MAX_SETTLE_IDS};
use strata_core::EventId;
use tokio::sync::{mpsc, watch, Notify};
use tonic::{Code, Status, Streaming};

use super::names::Key;
use super::settings::MAX_BUFFER_SIZE;
use crate::filter::EventFilter;
use crate::mapping;
use crate::proto::persistent::read_req::nack::Action;
use crate::proto::persistent::read_req::{self, options};
use crate::proto::persistent::read_resp::{self, read_event, ReadEvent, SubscriptionConfirmation};
use crate::proto::persistent::subscription_info::ConnectionInfo;
use crate::proto::persistent::{ReadReq, ReadResp};
use crate::proto::shared;
use crate::status;
use crate::streams::Answers;

/// The longest one read of the group waits for events before the session
/// looks again whether its client is still there.
pub const POLL_WAIT: Duration = Duration::from_millis(500);

/// Answers buffered between the session and its client.
pub const SESSION_CHANNEL_MESSAGES: usize = 64;

/// The most read sessions one server holds open at once; past it a read
/// is refused with `ResourceExhausted`.
pub const MAX_OPEN_SESSIONS: usize = 10_000;

/// The reason given when a session skips an event its filter rejects.
pub const FILTERED_OUT: &str = "rejected by the subscription's filter";

/// The reason given when a session parks an event whose leases timed out
/// more often than the group retries.
pub const RETRIES_EXHAUSTED: &str = "retries exhausted: the message timed out unsettled";

/// The prefix of the consumer name each session takes (then a UUID).
pub const CONSUMER_PREFIX: &str = "grpc-";

type Sender = mpsc::Sender<Result<ReadResp, Status>>;

/// What a session has handed out and not seen settled.
struct Leases {
    /// Event id → (delivery id, when it was leased).
    by_event: HashMap<EventId, (DeliveryId, Instant)>,
    /// Set when the client has gone or the session must end.
    closed: bool,
}

/// The state the reader and the settler share.
struct Shared {
    groups: Arc<dyn ConsumerGroups>,
    name: GroupName,
    consumer: ConsumerId,
    /// The most leases this session holds (the client's buffer size).
    cap: usize,
    /// How long a lease lasts: older entries are forgotten.
    lease: Duration,
    structured_ids: bool,
    /// Who is reading, as GetInfo lists the connection.
    peer: Peer,
    /// The client's filter: events it rejects are skipped, not sent.
    filter: EventFilter,
    /// Retries before an event is parked: one delivered more often than
    /// this (its leases having timed out) is parked, not sent again.
    max_retries: u32,
    /// Deliveries this session settled (acks and nacks).
    settled: AtomicU64,
    leases: Mutex<Leases>,
    /// Wakes the reader when leases were settled or the session closed.
    changed: Notify,
}

impl Shared {
    fn leases(&self) -> MutexGuard<'_, Leases> {
        self.leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn close(&self) {
        self.leases().closed = true;
        self.changed.notify_one();
    }
}

/// Where a session's client is and who it is.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    /// Its address, when known.
    pub from: String,
    /// The API key's name (empty when keys are off).
    pub user: String,
}

/// The read sessions open on this server, by group: what GetInfo and List
/// show as a subscription's connections.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<GroupName, Vec<Arc<Shared>>>>,
}

impl Sessions {
    fn open(&self) -> MutexGuard<'_, HashMap<GroupName, Vec<Arc<Shared>>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a session: `ResourceExhausted` past [`MAX_OPEN_SESSIONS`],
    /// and `FailedPrecondition` when the group already has `max` readers
    /// here (the clients' "maximum subscriptions reached").
    fn add(&self, shared: &Arc<Shared>, max: Option<usize>) -> Result<(), Status> {
        let mut open = self.open();
        if open.values().map(Vec::len).sum::<usize>() >= MAX_OPEN_SESSIONS {
            return Err(Status::resource_exhausted(format!(
                "this server holds at most {MAX_OPEN_SESSIONS} persistent subscription readers"
            )));
        }
        let readers = open.entry(shared.name.clone()).or_default();
        if let Some(max) = max.filter(|max| readers.len() >= *max) {
            let message = format!(
                "Maximum subscriptions reached: the subscription takes at most {max} readers"
            );
            if readers.is_empty() {
                open.remove(&shared.name);
            }
            return Err(status::with_exception(
                Code::FailedPrecondition,
                message,
                status::MAXIMUM_SUBSCRIBERS_REACHED,
            ));
        }
        readers.push(Arc::clone(shared));
        Ok(())
    }

    fn remove(&self, shared: &Arc<Shared>) {
        let mut open = self.open();
        if let Some(list) = open.get_mut(&shared.name) {
            list.retain(|s| !Arc::ptr_eq(s, shared));
            if list.is_empty() {
                open.remove(&shared.name);
            }
        }
    }

    /// The connections reading `name` through this server.
    pub fn connections(&self, name: &GroupName) -> Vec<ConnectionInfo> {
        let open = self.open();
        let Some(list) = open.get(name) else {
            return Vec::new();
        };
        list.iter()
            .map(|s| {
                let in_flight = s.leases().by_event.len();
                let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
                ConnectionInfo {
                    from: s.peer.from.clone(),
                    username: s.peer.user.clone(),
                    average_items_per_second: 0,
                    total_items: i64::try_from(s.settled.load(Ordering::Relaxed))
                        .unwrap_or(i64::MAX),
                    count_since_last_measurement: 0,
                    observed_measurements: Vec::new(),
                    available_slots: count(s.cap.saturating_sub(in_flight)),
                    in_flight_messages: count(in_flight),
                    connection_name: s.consumer.to_string(),
                }
            })
            .collect()
    }
}

/// The options a read session starts with.
pub struct Start {
    /// The subscription.
    pub key: Key,
    /// The most unsettled events the client takes at once.
    pub buffer_size: usize,
    /// Whether event ids go out structured.
    pub structured_ids: bool,
}

/// Checks a session's first message.
pub fn start(options: read_req::Options) -> Result<Start, Status> {
    let source = match &options.stream_option {
        Some(options::StreamOption::StreamIdentifier(s)) => {
            super::names::Source::of(Some(s), false)?
        }
        Some(options::StreamOption::All(_)) => super::names::Source::All,
        None => return Err(Status::invalid_argument("a read names a stream or $all")),
    };
    let key = Key::new(source, &options.group_name)?;
    let buffer_size = u32::try_from(options.buffer_size)
        .ok()
        .filter(|b| (1..=MAX_BUFFER_SIZE).contains(b))
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "buffer_size must be 1 to {MAX_BUFFER_SIZE}, got {}",
                options.buffer_size
            ))
        })?;
    let structured_ids = matches!(
        options.uuid_option.and_then(|u| u.content),
        Some(options::uuid_option::Content::Structured(_))
    );
    Ok(Start {
        key,
        buffer_size: buffer_size as usize,
        structured_ids,
    })
}

/// Where a session runs: the groups, the open sessions, the group's name
/// and lease length, and who reads.
pub struct Context {
    /// The store's groups.
    pub groups: Arc<dyn ConsumerGroups>,
    /// The server's open sessions, which this one joins while it lasts.
    pub sessions: Arc<Sessions>,
    /// The group (it exists).
    pub name: GroupName,
    /// How long a lease lasts (the group's ack timeout).
    pub lease: Duration,
    /// Who reads.
    pub peer: Peer,
    /// The subscription's own filter, on top of the group's.
    pub filter: EventFilter,
    /// The most readers the subscription takes at once (`None`: any).
    pub max_subscribers: Option<usize>,
    /// The group's retries before an event is parked.
    pub max_retries: u32,
}

/// Runs a session for `start`: confirms, then serves until the client
/// goes.
pub fn run(
    context: Context,
    start: Start,
    incoming: Streaming<ReadReq>,
) -> Result<Answers<ReadResp>, Status> {
    let Context {
        groups,
        sessions,
        name,
        lease,
        peer,
        filter,
        max_subscribers,
        max_retries,
    } = context;
    let consumer = ConsumerId::new(format!(
        "{CONSUMER_PREFIX}{}",
        uuid::Uuid::new_v4().simple()
    ))
    .map_err(|e| Status::internal(e.to_string()))?;
    let shared = Arc::new(Shared {
        groups,
        name,
        consumer,
        cap: start.buffer_size,
        lease,
        structured_ids: start.structured_ids,
        peer,
        filter,
        max_retries,
        settled: AtomicU64::new(0),
        leases: Mutex::new(Leases {
            by_event: HashMap::new(),
            closed: false,
        }),
        changed: Notify::new(),
    });
    sessions.add(&shared, max_subscribers)?;
    let (tx, rx) = mpsc::channel(SESSION_CHANNEL_MESSAGES);
    let confirmation = ReadResp {
        content: Some(read_resp::Content::SubscriptionConfirmation(
            SubscriptionConfirmation {
                subscription_id: start.key.subscription_id(),
            },
        )),
    };
    let (ended, ended_rx) = watch::channel(false);
    let settler = tokio::spawn(settle_loop(
        Arc::clone(&shared),
        incoming,
        tx.clone(),
        ended_rx,
    ));
    tokio::spawn(async move {
        if tx.send(Ok(confirmation)).await.is_ok() {
            if let Err(status) = read_loop(&shared, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        }
        shared.close();
        // The settler finishes the settle it is in (never cut halfway),
        // then stops; only then do the leases go back.
        let _ = ended.send(true);
        let _ = settler.await;
        sessions.remove(&shared);
        if let Err(e) = shared.groups.leave(&shared.name, &shared.consumer).await {
            tracing::debug!(group = %shared.name, error = %e, "leaving the group failed");
        }
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|answer| (answer, rx))
    })))
}

/// Leases events while the client has room and is there.
async fn read_loop(shared: &Shared, tx: &Sender) -> Result<(), Status> {
    loop {
        let room = {
            let mut leases = shared.leases();
            if leases.closed || tx.is_closed() {
                return Ok(());
            }
            let now = Instant::now();
            leases
                .by_event
                .retain(|_, (_, at)| now.duration_since(*at) < shared.lease);
            shared.cap.saturating_sub(leases.by_event.len())
        };
        if room == 0 {
            // Woken when a lease is settled; otherwise a lease times out
            // here at the next look, up to `POLL_WAIT` after its timeout
            // (an ack sent late but before that look still counts).
            tokio::select! {
                () = shared.changed.notified() => {}
                () = tokio::time::sleep(POLL_WAIT) => {}
            }
            continue;
        }
        let got = shared
            .groups
            .read(&shared.name, &shared.consumer, room, POLL_WAIT)
            .await
            .map_err(|e| match e {
                strata_core::Error::GroupNotFound { .. } => dropped("the subscription was deleted"),
                e => status::from_error(&e),
            })?;
        let got = skip_filtered(shared, got).await?;
        let got = park_exhausted(shared, got).await?;
        {
            let mut leases = shared.leases();
            let now = Instant::now();
            for d in &got {
                leases.by_event.insert(d.event.id, (d.delivery_id, now));
            }
        }
        for delivery in got {
            if tx
                .send(Ok(answer(&delivery, shared.structured_ids)))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

/// The deliveries the subscription's filter passes; the others are
/// skipped at once (settled without reaching the client), as events the
/// subscription never asked for.
async fn skip_filtered(shared: &Shared, got: Vec<Delivery>) -> Result<Vec<Delivery>, Status> {
    if shared.filter.passes_everything() {
        return Ok(got);
    }
    let (pass, rejected): (Vec<Delivery>, Vec<Delivery>) = got
        .into_iter()
        .partition(|d| shared.filter.passes(&d.event));
    let ids: Vec<DeliveryId> = rejected.iter().map(|d| d.delivery_id).collect();
    nack_quietly(shared, &ids, NackAction::Skip, FILTERED_OUT).await?;
    Ok(pass)
}

/// The deliveries that still have retries left; those delivered more
/// than `max_retries + 1` times (every earlier lease timed out) are
/// parked, as a nack to retry would have parked them.
async fn park_exhausted(shared: &Shared, got: Vec<Delivery>) -> Result<Vec<Delivery>, Status> {
    let limit = shared.max_retries.saturating_add(1);
    if got.iter().all(|d| d.delivery_count <= limit) {
        return Ok(got);
    }
    let (pass, exhausted): (Vec<Delivery>, Vec<Delivery>) =
        got.into_iter().partition(|d| d.delivery_count <= limit);
    let ids: Vec<DeliveryId> = exhausted.iter().map(|d| d.delivery_id).collect();
    nack_quietly(shared, &ids, NackAction::Park, RETRIES_EXHAUSTED).await?;
    Ok(pass)
}

/// Nacks deliveries the client never saw, in chunks the group takes.
async fn nack_quietly(
    shared: &Shared,
    ids: &[DeliveryId],
    action: NackAction,
    reason: &str,
) -> Result<(), Status> {
    for chunk in ids.chunks(MAX_SETTLE_IDS) {
        shared
            .groups
            .nack(&shared.name, &shared.consumer, chunk, action, reason)
            .await
            .map_err(|e| match e {
                strata_core::Error::GroupNotFound { .. } => dropped("the subscription was deleted"),
                e => status::from_error(&e),
            })?;
    }
    Ok(())
}

/// A status ending the session that the clients report as a dropped
/// subscription.
fn dropped(message: &str) -> Status {
    status::with_exception(Code::Cancelled, message, status::SUBSCRIPTION_DROPPED)
}

fn answer(delivery: &Delivery, structured_ids: bool) -> ReadResp {
    let e = mapping::recorded_event(&delivery.event, structured_ids);
    let event = read_event::RecordedEvent {
        id: e.id,
        stream_identifier: e.stream_identifier,
        stream_revision: e.stream_revision,
        prepare_position: e.prepare_position,
        commit_position: e.commit_position,
        metadata: e.metadata,
        custom_metadata: e.custom_metadata,
        data: e.data,
    };
    let retries = delivery.delivery_count.saturating_sub(1);
    ReadResp {
        content: Some(read_resp::Content::Event(ReadEvent {
            event: Some(event),
            link: None,
            position: Some(read_event::Position::CommitPosition(
                mapping::commit_position(delivery.event.position),
            )),
            count: Some(read_event::Count::RetryCount(
                i32::try_from(retries).unwrap_or(i32::MAX),
            )),
        })),
    }
}

/// Settles what the client acks and nacks until it goes or the session
/// has `ended`.
async fn settle_loop(
    shared: Arc<Shared>,
    mut incoming: Streaming<ReadReq>,
    tx: Sender,
    mut ended: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = incoming.message() => next,
            _ = ended.wait_for(|ended| *ended) => break,
        };
        let message = match next {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => break,
        };
        let done = match message.content {
            Some(read_req::Content::Ack(ack)) => {
                let ids = take(&shared, &ack.ids);
                settle(&shared, &ids, None, "").await
            }
            Some(read_req::Content::Nack(nack)) => {
                let ids = take(&shared, &nack.ids);
                match Action::try_from(nack.action).unwrap_or(Action::Unknown) {
                    Action::Stop => {
                        let _ = tx.send(Err(dropped("the consumer stopped"))).await;
                        break;
                    }
                    Action::Park => {
                        settle(&shared, &ids, Some(NackAction::Park), &nack.reason).await
                    }
                    Action::Skip => {
                        settle(&shared, &ids, Some(NackAction::Skip), &nack.reason).await
                    }
                    Action::Retry | Action::Unknown => {
                        settle(&shared, &ids, Some(NackAction::Retry), &nack.reason).await
                    }
                }
            }
            Some(read_req::Content::Options(_)) => Err(Status::invalid_argument(
                "a read session sends its options once, first",
            )),
            None => Ok(()),
        };
        if let Err(status) = done {
            let _ = tx.send(Err(status)).await;
            break;
        }
    }
    shared.close();
}

/// The delivery ids of the events named, forgetting them (ids this
/// session does not hold are left out: already settled, or timed out).
fn take(shared: &Shared, ids: &[shared::Uuid]) -> Vec<DeliveryId> {
    let mut leases = shared.leases();
    let out = ids
        .iter()
        .filter_map(|id| mapping::event_id(Some(id)).ok().flatten())
        .filter_map(|id| leases.by_event.remove(&id).map(|(d, _)| d))
        .collect();
    shared.changed.notify_one();
    out
}

/// Acks (`action` none) or nacks the deliveries, in chunks the group
/// takes.
async fn settle(
    shared: &Shared,
    ids: &[DeliveryId],
    action: Option<NackAction>,
    reason: &str,
) -> Result<(), Status> {
    let reason = truncate(reason, MAX_REASON_BYTES);
    for chunk in ids.chunks(MAX_SETTLE_IDS) {
        let done = match action {
            None => {
                shared
                    .groups
                    .ack(&shared.name, &shared.consumer, chunk)
                    .await
            }
            Some(a) => {
                shared
                    .groups
                    .nack(&shared.name, &shared.consumer, chunk, a, reason)
                    .await
            }
        };
        if done.is_ok() {
            shared
                .settled
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        done.map_err(|e| match e {
            strata_core::Error::GroupNotFound { .. } => dropped("the subscription was deleted"),
            e => status::from_error(&e),
        })?;
    }
    Ok(())
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
    }

    #[test]
    fn buffer_size_is_checked() {
        let options = |buffer_size| read_req::Options {
            stream_option: Some(options::StreamOption::All(shared::Empty {})),
            group_name: "g".into(),
            buffer_size,
            uuid_option: None,
        };
        assert_eq!(start(options(10)).unwrap().buffer_size, 10);
        for bad in [0, -1, i32::try_from(MAX_BUFFER_SIZE).unwrap() + 1] {
            assert_eq!(
                start(options(bad)).err().unwrap().code(),
                Code::InvalidArgument
            );
        }
    }
}
