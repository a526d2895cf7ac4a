//! Server-sent-event subscriptions: `/subscribe/all` and
//! `/subscribe/streams/{stream}`.
//!
//! Each connection gets a task that pulls from a `strata_core::Subscription`
//! and pushes SSE messages into a bounded channel that the response body
//! drains. The task never waits for the client: when the channel is full the
//! client is too slow, so the task puts a final `error` event in the one slot
//! kept for it and stops. The SSE `id` of every event is its position, so the
//! client reconnects with `Last-Event-ID` and misses nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::json;
use strata_core::{
    Direction, Error, EventStore, Position, ReadFilter, RecordedEvent, SubscribeFrom, Subscription,
    SubscriptionMessage,
};

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::auth::{Access, Role};
use crate::body::{query, StreamPath};
use crate::budget::{BufferBudget, Pool, Refused, Share};
use crate::erasures::Erased;
use crate::error::ApiError;
use crate::metrics::SubscriptionGuard;
use crate::openapi::ErrorBody;
use crate::queue::Buffered;
use crate::sse;
use crate::state::AppState;
use crate::streams::{filter_from_query, scope_filter};
use strata_wire::{kind, CaughtUp, DcbSubscribeQuery, SubscribeAllQuery, SubscribeStreamQuery};

/// Fires when [`serve`](crate::serve) begins a graceful shutdown, so that
/// subscriptions (which never end by themselves) close and let it finish.
#[derive(Clone)]
pub(crate) struct ShutdownSignal(pub watch::Receiver<bool>);

impl ShutdownSignal {
    pub(crate) async fn wait(&mut self) {
        // A dropped sender means the server is gone: stop as well.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// `GET /subscribe/all`.
#[utoipa::path(
    get,
    path = "/subscribe/all",
    tag = "subscriptions",
    params(
        ("after" = Option<u64>, Query, description = "Position to start after (default: the start)"),
        ("types" = Option<String>, Query, description = "Comma-separated event types"),
        ("prefix" = Option<String>, Query, description = "Stream name prefix"),
        ("category" = Option<String>, Query, description = "Stream category"),
        ("correlation_id" = Option<String>, Query, description = "Correlation id"),
        ("batch" = Option<bool>, Query, description = "true: several events to a message, as a JSON array (`event: events`)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position")
    ),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 429, description = "The key's subscription limit", body = ErrorBody),
        (status = 503, description = "The server's subscription limit", body = ErrorBody)
    )
)]
pub(crate) async fn subscribe_all(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    shutdown: Option<Extension<ShutdownSignal>>,
    q: Result<Query<SubscribeAllQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Read)?;
    let q = query(q)?;
    let from = from_after(&headers, q.after)?;
    let filter = filter_from_query(q.types, q.prefix, q.category, q.correlation_id)?;
    follow_all(state, access, shutdown, from, filter, None, q.batch).await
}

/// Where a `$all` subscription starts: after `Last-Event-ID` when sent,
/// else after `after`, else at the start.
fn from_after(headers: &HeaderMap, after: Option<u64>) -> Result<SubscribeFrom, ApiError> {
    Ok(match last_event_id(headers)?.or(after) {
        Some(p) => SubscribeFrom::After(Position(p)),
        None => SubscribeFrom::Start,
    })
}

/// Opens a `$all` subscription through `filter` (narrowed to the key's
/// scope) and, when given, a DCB query, and answers with its stream.
async fn follow_all(
    state: AppState,
    access: Access,
    shutdown: Option<Extension<ShutdownSignal>>,
    from: SubscribeFrom,
    filter: ReadFilter,
    dcb_query: Option<strata_core::dcb::Query>,
    batch: bool,
) -> Result<Response, ApiError> {
    // With a prefix outside the key's scope nothing matches: the pump's own
    // check (which every scoped subscription gets) drops every event.
    let filter = scope_filter(&access, filter.clone()).unwrap_or(filter);
    let permit = permit(&state, &access)?;
    // Registered before the store hands over any event: an erasure from
    // now on holds its stream's events back from this subscription.
    let erased = state.erasures.register(None);
    let mut sub = state.store.subscribe(from, filter).await?;
    if let Some(q) = dcb_query {
        sub = sub.with_query(q);
    }
    let open = Open {
        permit,
        shutdown: shutdown.map(|e| e.0),
        access,
        batch,
        erased,
    };
    Ok(respond(&state, sub, open))
}

/// `GET /dcb/subscribe`: the events of `$all` matching a DCB query after
/// `after` (or `Last-Event-ID`), then live ones, as `/subscribe/all`
/// sends them.
#[utoipa::path(
    get,
    path = "/dcb/subscribe",
    tag = "dcb",
    params(
        ("query" = Option<String>, Query, description = "The query as URL-encoded JSON, `{\"items\": [...]}` (default: every event)"),
        ("after" = Option<u64>, Query, description = "Position to start after (default: the start)"),
        ("batch" = Option<bool>, Query, description = "true: several events to a message, as a JSON array (`event: events`)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position")
    ),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key may not read", body = ErrorBody),
        (status = 422, description = "The query is not valid", body = ErrorBody),
        (status = 429, description = "The key's subscription limit", body = ErrorBody),
        (status = 503, description = "The server's subscription limit", body = ErrorBody)
    )
)]
pub(crate) async fn subscribe_dcb(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    shutdown: Option<Extension<ShutdownSignal>>,
    q: Result<Query<DcbSubscribeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Read)?;
    let q = query(q)?;
    let dcb_query: strata_core::dcb::Query = match &q.query {
        Some(text) => {
            serde_json::from_str(text).map_err(|e| ApiError::invalid(format!("query: {e}")))?
        }
        None => strata_core::dcb::Query::all(),
    };
    dcb_query.validate()?;
    let from = from_after(&headers, q.after)?;
    follow_all(
        state,
        access,
        shutdown,
        from,
        ReadFilter::all(),
        Some(dcb_query),
        q.batch,
    )
    .await
}

/// `GET /subscribe/streams/{stream}`: the stream's events after
/// `after_version` (all of them when absent), then live ones.
#[utoipa::path(
    get,
    path = "/subscribe/streams/{stream}",
    tag = "subscriptions",
    params(
        ("stream" = String, Path, description = "The stream's name"),
        ("after_version" = Option<u64>, Query, description = "Version to start after (default: the whole stream)"),
        ("batch" = Option<bool>, Query, description = "true: several events to a message, as a JSON array (`event: events`)"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position")
    ),
    responses(
        (status = 200, description = "Server-sent events", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 429, description = "The key's subscription limit", body = ErrorBody),
        (status = 503, description = "The server's subscription limit", body = ErrorBody)
    )
)]
pub(crate) async fn subscribe_stream(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
    headers: HeaderMap,
    shutdown: Option<Extension<ShutdownSignal>>,
    q: Result<Query<SubscribeStreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require(Role::Read, &stream)?;
    let q = query(q)?;
    let stream = strata_core::StreamId::new(stream)?;
    let permit = permit(&state, &access)?;
    let erased = state.erasures.register(Some(stream.clone()));
    let from = match last_event_id(&headers)? {
        Some(p) => Position(p),
        None => {
            // Read the head first: if the stream has nothing after
            // `after_version` now, whatever it gets later is past this head.
            let head = state.store.head_position().await?;
            let after = q.after_version.unwrap_or(0);
            let first = after.saturating_add(1);
            match state
                .store
                .read_stream(&stream, first, 1, Direction::Forward)
                .await
            {
                Ok(events) => match events.first() {
                    Some(e) => Position(e.position.0.saturating_sub(1)),
                    None => head,
                },
                Err(Error::StreamNotFound { .. }) => head,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let filter = ReadFilter::all().stream(stream);
    let sub = state
        .store
        .subscribe(SubscribeFrom::After(from), filter)
        .await?;
    let open = Open {
        permit,
        shutdown: shutdown.map(|e| e.0),
        access,
        batch: q.batch,
        erased,
    };
    Ok(respond(&state, sub, open))
}

/// What a subscription being opened holds besides the store's.
struct Open {
    permit: Permits,
    shutdown: Option<ShutdownSignal>,
    access: Access,
    /// Whether events go out several to a message (`batch=true`).
    batch: bool,
    /// Streams erased since it was registered.
    erased: Arc<Erased>,
}

/// The permits one subscription holds: one of the server's and, with a key,
/// one of the key's.
pub(crate) struct Permits {
    _server: OwnedSemaphorePermit,
    _key: Option<OwnedSemaphorePermit>,
}

pub(crate) fn permit(state: &AppState, access: &Access) -> Result<Permits, ApiError> {
    let key = match access.key() {
        Some(k) => {
            let budget = state.key_subscriptions.get(k.name()).ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("no subscription budget for key `{}`", k.name()),
                )
            })?;
            Some(budget.clone().try_acquire_owned().map_err(|_| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_subscriptions_for_key",
                    format!(
                        "key `{}` already has {} open subscriptions (max_subscriptions_per_key); close one first",
                        k.name(),
                        state.config.max_subscriptions_per_key
                    ),
                )
            })?)
        }
        None => None,
    };
    let server = state
        .subscriptions
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_subscriptions",
                format!(
                    "the server already has {} open subscriptions; retry later",
                    state.config.max_open_subscriptions
                ),
            )
        })?;
    Ok(Permits {
        _server: server,
        _key: key,
    })
}

/// The `Last-Event-ID` header as a position; 400 if it is not a number.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID must be a position (a number) sent by this server",
            )
        })
}

fn respond(state: &AppState, sub: Subscription, open: Open) -> Response {
    let Open {
        permit,
        shutdown,
        access,
        batch,
        erased,
    } = open;
    // One slot more than the buffer: it is kept for the final error event.
    let capacity = state.config.subscription_buffer_messages.max(1) + 1;
    let (tx, rx) = mpsc::channel::<Buffered>(capacity);
    let counted = state.metrics.open_subscription(tx.downgrade(), capacity);
    let scope = (!access.sees_everything()).then_some(access);
    let budget = BufferBudget {
        own: Pool::new(
            state.config.subscription_buffer_bytes,
            Duration::from_millis(state.config.slow_consumer_timeout_ms),
        ),
        server: state.subscription_bytes.share_of(),
    };
    let filter = Filter {
        scope,
        erased: Arc::clone(&erased),
    };
    tokio::spawn(pump(sub, tx, shutdown, (permit, counted), filter, budget));
    let heartbeat = Duration::from_millis(state.config.heartbeat_interval_ms.max(1));
    sse::response(rx, heartbeat, erased, batch)
}

/// Which events a subscription does not send: those outside the key's
/// scope (when it does not see everything) and those of erased streams.
struct Filter {
    scope: Option<Access>,
    erased: Arc<Erased>,
}

impl Filter {
    fn drops(&self, stream: &str) -> bool {
        self.scope.as_ref().is_some_and(|s| !s.can_see(stream)) || self.erased.hides(stream)
    }
}

/// Moves messages from the subscription to the connection until the client
/// leaves, falls behind, or the server shuts down.
async fn pump(
    mut sub: Subscription,
    tx: mpsc::Sender<Buffered>,
    mut shutdown: Option<ShutdownSignal>,
    _held: (Permits, SubscriptionGuard),
    filter: Filter,
    budget: BufferBudget,
) {
    loop {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return,
            _ = shutting_down(&mut shutdown) => {
                finish_shutting_down(&tx);
                return;
            }
            next = sub.next() => next,
        };
        let step = match encode(next, &filter, &budget, &mut shutdown).await {
            Ok(None) => continue,
            Ok(Some(message)) => send(&tx, message, budget.slow(), &mut shutdown).await,
            Err(stop) => Err(stop),
        };
        if let Err(stop) = step {
            stop.finish(&tx, budget.slow());
            return;
        }
    }
}

/// Why a subscription's stream ends.
#[derive(Debug)]
enum Stop {
    /// The client went away: nothing to say.
    ClientLeft,
    /// The server is shutting down.
    ShuttingDown,
    /// The client did not make room in time.
    TooSlow,
    /// The subscription ended with this error kind and message.
    Ended(String, String),
}

impl From<Refused> for Stop {
    fn from(r: Refused) -> Self {
        match r {
            Refused::TooSlow => Stop::TooSlow,
            Refused::Closed => Stop::ClientLeft,
            Refused::Overloaded => Stop::Ended(
                kind::OVERLOADED.into(),
                "the server's subscription buffers stayed full; reconnect with Last-Event-ID"
                    .into(),
            ),
        }
    }
}

impl Stop {
    /// Sends the final `error` event this end calls for.
    fn finish(self, tx: &mpsc::Sender<Buffered>, waited: Duration) {
        match self {
            Stop::ClientLeft => {}
            Stop::ShuttingDown => finish_shutting_down(tx),
            Stop::TooSlow => drop_slow_consumer(tx, waited),
            Stop::Ended(kind, message) => finish(tx, &kind, &message),
        }
    }
}

/// The SSE message for one subscription message, with its share of the
/// byte budgets; `None` for an event the filter drops.
async fn encode(
    next: Option<strata_core::Result<SubscriptionMessage>>,
    filter: &Filter,
    budget: &BufferBudget,
    shutdown: &mut Option<ShutdownSignal>,
) -> Result<Option<Buffered>, Stop> {
    match next {
        Some(Ok(SubscriptionMessage::Event(e))) => {
            if filter.drops(e.stream_id.as_str()) {
                return Ok(None);
            }
            let stream = e.stream_id.clone();
            let position = e.position.0;
            let frame = if e.size_bytes() > ENCODE_INLINE_MAX_BYTES {
                tokio::task::spawn_blocking(move || encode_event(e))
                    .await
                    .map_err(|err| Stop::Ended(kind::INTERNAL.into(), err.to_string()))??
            } else {
                encode_event(e)?
            };
            let share = take_bytes(budget, frame.len(), shutdown).await?;
            Ok(Some(Buffered::event(frame, share, stream, position)))
        }
        Some(Ok(SubscriptionMessage::CaughtUp(p))) => {
            let data = json!(CaughtUp { position: p.0 }).to_string();
            let frame = sse::frame(Some("caught_up"), Some(&p.to_string()), &data);
            Ok(Some(Buffered::new(frame, None)))
        }
        Some(Err(e)) => Err(Stop::Ended(e.kind().into(), e.to_string())),
        None => Err(Stop::Ended(
            kind::CLOSED.into(),
            "the store was closed".into(),
        )),
    }
}

/// Events larger than this are encoded on a blocking thread: a hundred
/// subscribers encoding megabyte events would otherwise hold the runtime's
/// workers for seconds.
const ENCODE_INLINE_MAX_BYTES: usize = 64 * 1024;

/// An event's SSE frame. The event is dropped here, before the frame waits
/// for room: a waiting subscription holds one copy, not two.
fn encode_event(e: RecordedEvent) -> Result<Vec<u8>, Stop> {
    sse::event_frame(&e).map_err(|err| {
        Stop::Ended(
            kind::INTERNAL.into(),
            format!("could not encode an event: {err}"),
        )
    })
}

/// Queues `message` for the connection. Two free slots are needed: one for
/// this message, one kept for the final error event. Usually they are there
/// at once; otherwise it waits, at most `slow`.
async fn send(
    tx: &mpsc::Sender<Buffered>,
    message: Buffered,
    slow: Duration,
    shutdown: &mut Option<ShutdownSignal>,
) -> Result<(), Stop> {
    let mut permits = match tx.try_reserve_many(2) {
        Ok(permits) => permits,
        Err(_) => tokio::select! {
            biased;
            _ = shutting_down(shutdown) => return Err(Stop::ShuttingDown),
            permits = tokio::time::timeout(slow, tx.reserve_many(2)) => match permits {
                Ok(Ok(permits)) => permits,
                Ok(Err(_)) => return Err(Stop::ClientLeft),
                Err(_) => return Err(Stop::TooSlow),
            },
        },
    };
    if let Some(permit) = permits.next() {
        permit.send(message);
    }
    Ok(())
}

/// Takes a share of `bytes` of the budgets, unless the server shuts down
/// first.
async fn take_bytes(
    budget: &BufferBudget,
    bytes: usize,
    shutdown: &mut Option<ShutdownSignal>,
) -> Result<Share, Stop> {
    tokio::select! {
        biased;
        _ = shutting_down(shutdown) => Err(Stop::ShuttingDown),
        taken = budget.take(bytes) => taken.map_err(Stop::from),
    }
}

/// Resolves once the server begins to shut down; never without a signal.
async fn shutting_down(shutdown: &mut Option<ShutdownSignal>) {
    match shutdown.as_mut() {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

fn drop_slow_consumer(tx: &mpsc::Sender<Buffered>, waited: Duration) {
    tracing::info!(
        waited_ms = waited.as_millis() as u64,
        "dropping a subscriber that is not keeping up"
    );
    finish(
        tx,
        kind::SLOW_CONSUMER,
        "the client did not read fast enough and was dropped; reconnect with Last-Event-ID",
    );
}

/// Ends the stream because the server is shutting down.
fn finish_shutting_down(tx: &mpsc::Sender<Buffered>) {
    finish(
        tx,
        kind::SHUTTING_DOWN,
        "the server is shutting down; reconnect with Last-Event-ID",
    );
}

/// Sends the final `error` event. The slot kept free makes room for it.
fn finish(tx: &mpsc::Sender<Buffered>, kind: &str, message: &str) {
    let data = json!(strata_wire::ErrorBody::new(kind, message)).to_string();
    let _ = tx.try_send(Buffered::new(sse::frame(Some("error"), None, &data), None));
}
