//! Appending, reading and deleting: `/streams/{stream}`, `/multi`, `/all`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_core::{
    AppendCondition, AppendResult, Direction, Error, EventStore, NewEvent, Position, ReadFilter,
    RecordedEvent, StreamAppend, StreamId, FROM_END,
};

use crate::auth::{Access, Role};
use crate::body::{json_bytes, parse_json, query, StreamPath};
use crate::error::ApiError;
use crate::held::held_bytes;
use crate::openapi::{AppendResultDoc, ErrorBody, MultiResultDoc, PageDoc};
use crate::page::{read_budgeted, PageBounds};
use crate::state::AppState;
use strata_wire::{
    payload_source, AppendBody, AppendOut, DeleteQuery, EventIn, MultiBody, MultiOut, Page,
    ReadAllQuery, ReadStreamQuery, WireEvent,
};
use tokio::sync::OwnedSemaphorePermit;

/// `POST /streams/{stream}`.
#[utoipa::path(
    post,
    path = "/streams/{stream}",
    tag = "streams",
    params(("stream" = String, Path, description = "The stream's name")),
    request_body = AppendBody,
    responses(
        (status = 200, description = "Committed", body = AppendResultDoc),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 409, description = "wrong_expected_version or idempotency_conflict", body = ErrorBody),
        (status = 410, description = "The stream was tombstoned", body = ErrorBody),
        (status = 413, description = "Over a size limit", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody),
        (status = 503, description = "Timeout, or the store refuses writes", body = ErrorBody)
    )
)]
pub(crate) async fn append(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Refuse before reading the body: a key outside its scope learns nothing
    // about what the body would have done.
    access.require(Role::Write, &stream)?;
    let raw_body = json_bytes(&headers, body, state.config.max_body_bytes)?;
    let body: AppendBody = parse_json(&raw_body)?;
    let expected = body.expected_version;
    let stream = StreamId::new(stream)?;
    let source = payload_source(&raw_body, body.json_payload_len());
    let events = to_new_events(body.events, &source)?;
    // Only what `source` shares stays alive through the wait.
    drop(raw_body);
    check_count(&state, events.len())?;
    let (count, bytes) = (events.len(), payload_bytes(events.iter()));
    let started = Instant::now();
    let result = state
        .store
        .append(&stream, expected, events)
        .await
        .map_err(|e| store_error_for(&access, e))?;
    state.metrics.record_append(count, bytes, started.elapsed());
    Ok(Json(AppendOut::from(result)).into_response())
}

/// `POST /multi`.
#[utoipa::path(
    post,
    path = "/multi",
    tag = "streams",
    request_body = MultiBody,
    responses(
        (status = 200, description = "Committed, all parts or none", body = MultiResultDoc),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 409, description = "A part's guard failed", body = ErrorBody),
        (status = 413, description = "Over a size limit", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody)
    )
)]
pub(crate) async fn append_multi(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Write)?;
    let raw_body = json_bytes(&headers, body, state.config.max_body_bytes)?;
    let body: MultiBody = parse_json(&raw_body)?;
    let source = payload_source(&raw_body, body.json_payload_len());
    let mut parts = Vec::with_capacity(body.streams.len());
    for part in body.streams {
        // Every part must be in scope: the append is all or nothing.
        access.require(Role::Write, &part.stream)?;
        let stream = StreamId::new(part.stream)?;
        let events = to_new_events(part.events, &source)?;
        parts.push(StreamAppend::new(stream, part.expected_version, events));
    }
    // Only what `source` shares stays alive through the wait.
    drop(raw_body);
    let results = commit_parts(&state, &access, parts, None).await?;
    Ok(Json(MultiOut {
        results: results.into_iter().map(AppendOut::from).collect(),
    })
    .into_response())
}

/// Appends `parts` atomically — under `condition` when given — after the
/// request's event-count check (the store checks the sizes), counting the
/// append in the metrics.
pub(crate) async fn commit_parts(
    state: &AppState,
    access: &Access,
    parts: Vec<StreamAppend>,
    condition: Option<&AppendCondition>,
) -> Result<Vec<AppendResult>, ApiError> {
    let count = parts.iter().map(|p| p.events.len()).sum();
    check_count(state, count)?;
    let bytes = payload_bytes(parts.iter().flat_map(|p| p.events.iter()));
    let started = Instant::now();
    let results = match condition {
        Some(c) => state.store.append_if(parts, c).await,
        None => state.store.append_multi(parts).await,
    }
    .map_err(|e| store_error_for(access, e))?;
    state.metrics.record_append(count, bytes, started.elapsed());
    Ok(results)
}

/// A store error as `access` may see it. An idempotency conflict's reason
/// can name the stream that holds the event id, which may be outside the
/// key's prefixes: a key that does not see every stream is told only that
/// the id is taken.
fn store_error_for(access: &Access, e: Error) -> ApiError {
    match e {
        Error::IdempotencyConflict { event_id, .. } if !access.sees_everything() => {
            ApiError::from(Error::IdempotencyConflict {
                event_id,
                reason: "it is already recorded, and this append does not repeat that append \
                         exactly; send new events with new ids"
                    .into(),
            })
        }
        other => ApiError::from(other),
    }
}

/// The events of a request, their payloads shared with `source` (the body
/// they were decoded from, or nothing: see [`payload_source`]) rather than
/// copied.
fn to_new_events(events: Vec<EventIn<'_>>, source: &Bytes) -> Result<Vec<NewEvent>, ApiError> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            e.into_new_event_in(source)
                .map_err(|err| ApiError::invalid(format!("event {i}: {err}")))
        })
        .collect()
}

/// Refuses a request of more events than the server takes in one request
/// (`max_events_per_request`) with 413. The store's own size limits are
/// its to check: it measures each event once and refuses with
/// `payload_too_large`, which also answers 413 (ADR 0035).
fn check_count(state: &AppState, count: usize) -> Result<(), ApiError> {
    let max_events = state.config.max_events_per_request;
    if count > max_events {
        return Err(ApiError::too_large(format!(
            "{count} events in one request, the limit is {max_events}: split it"
        )));
    }
    Ok(())
}

/// The bytes of the events' payloads, for `strata_bytes_appended_total`:
/// the length each payload already carries, not a measurement.
fn payload_bytes<'a>(events: impl Iterator<Item = &'a NewEvent>) -> usize {
    events.map(|e| e.data.len()).sum()
}

/// `GET /streams/{stream}`.
#[utoipa::path(
    get,
    path = "/streams/{stream}",
    tag = "streams",
    params(
        ("stream" = String, Path, description = "The stream's name"),
        ("from" = Option<u64>, Query, description = "First version (default 1, or the end when backward)"),
        ("limit" = Option<usize>, Query, description = "Page size"),
        ("direction" = Option<String>, Query, description = "forward (default) or backward")
    ),
    responses(
        (status = 200, description = "A page", body = PageDoc),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
        (status = 410, description = "The stream was tombstoned", body = ErrorBody)
    )
)]
pub(crate) async fn read_stream(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
    q: Result<Query<ReadStreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require(Role::Read, &stream)?;
    let q = query(q)?;
    let stream = StreamId::new(stream)?;
    let limit = page_limit(&state, q.limit)?;
    let direction = q.direction.unwrap_or_default();
    let from = q.from.unwrap_or(match direction {
        Direction::Forward => 1,
        Direction::Backward => FROM_END,
    });
    let after = |v: u64| match direction {
        Direction::Forward => v.checked_add(1),
        Direction::Backward => v.checked_sub(1).filter(|v| *v > 0),
    };
    let store = &state.store;
    let read = read_budgeted(page_bounds(&state, limit), |last, count| {
        let from = last.map_or(Some(from), |e| after(e.version));
        let stream = &stream;
        async move {
            match from {
                Some(from) => store.read_stream(stream, from, count, direction).await,
                None => Ok(Vec::new()),
            }
        }
    })
    .await?;
    let next = match (read.more, read.events.last()) {
        (true, Some(last)) => after(last.version),
        _ => None,
    };
    page(read.events, next, read.share).await
}

/// The `$all` filter from query parameters (`/all` and `/subscribe/all`);
/// `types` is comma-separated. (Not a flattened struct: serde's `flatten`
/// loses the numbers of a query string.)
pub(crate) fn filter_from_query(
    types: Option<String>,
    prefix: Option<String>,
    category: Option<String>,
    correlation_id: Option<String>,
) -> Result<ReadFilter, ApiError> {
    let mut f = ReadFilter::all();
    if let Some(types) = types {
        f = f.event_types(types.split(',').map(str::trim).filter(|t| !t.is_empty()));
    }
    f.stream_prefix = prefix.filter(|p| !p.is_empty());
    f.category = category.filter(|c| !c.is_empty());
    f.correlation_id = correlation_id;
    f.validate()?;
    Ok(f)
}

/// `GET /all`.
#[utoipa::path(
    get,
    path = "/all",
    tag = "streams",
    params(
        ("after" = Option<u64>, Query, description = "Position to start after (default 0); forward only"),
        ("before" = Option<u64>, Query, description = "Position to read below (exclusive; default: the end); backward only"),
        ("direction" = Option<String>, Query, description = "forward (default) or backward (newest first)"),
        ("limit" = Option<usize>, Query, description = "Page size"),
        ("types" = Option<String>, Query, description = "Comma-separated event types"),
        ("prefix" = Option<String>, Query, description = "Stream name prefix"),
        ("category" = Option<String>, Query, description = "Stream category"),
        ("correlation_id" = Option<String>, Query, description = "Correlation id")
    ),
    responses(
        (status = 200, description = "A page (only streams the key covers)", body = PageDoc),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody)
    )
)]
pub(crate) async fn read_all(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    q: Result<Query<ReadAllQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Read)?;
    let q = query(q)?;
    let limit = page_limit(&state, q.limit)?;
    let filter = filter_from_query(q.types, q.prefix, q.category, q.correlation_id)?;
    let Some(filter) = scope_filter(&access, filter) else {
        // The asked prefix and the key's scope have no stream in common.
        return page(Vec::new(), None, None).await;
    };
    let direction = q.direction.unwrap_or_default();
    // `next` is the bound of the next page either way: its `after`
    // forward, its `before` backward.
    let start = match (direction, q.after, q.before) {
        (Direction::Forward, _, Some(_)) => {
            return Err(ApiError::invalid(
                "before is for direction=backward; a forward read starts after `after`",
            ))
        }
        (Direction::Backward, Some(_), _) => {
            return Err(ApiError::invalid(
                "after is for forward reads; a backward read starts below `before`",
            ))
        }
        (Direction::Forward, after, None) => Position(after.unwrap_or(0)).next(),
        (Direction::Backward, None, before) => before.map_or(Position::END, Position),
    };
    let store = &state.store;
    let filter = &filter;
    let read = read_budgeted(page_bounds(&state, limit), |last, count| {
        let bound = last.map_or(start, |e| match direction {
            Direction::Forward => e.position.next(),
            Direction::Backward => e.position,
        });
        async move {
            match direction {
                Direction::Forward => store.read_all(bound, count, filter).await,
                Direction::Backward => store.read_all_backward(bound, count, filter).await,
            }
        }
    })
    .await?;
    let (mut events, share) = (read.events, read.share);
    // `next` comes from the page as read, before events outside the key's
    // scope are taken out: a filtered page may be short, even empty, and
    // still not be the end.
    let next = match (read.more, events.last()) {
        (true, Some(last)) => Some(last.position.0),
        _ => None,
    };
    events.retain(|e| access.can_see(e.stream_id.as_str()));
    page(events, next, share).await
}

/// Narrows an `$all` filter to a key's scope where the store can do it (a key
/// with one prefix); events of other streams are still taken out afterwards.
/// `None` when the asked `prefix` and the key's scope cannot overlap.
pub(crate) fn scope_filter(access: &Access, mut filter: ReadFilter) -> Option<ReadFilter> {
    let Some(key) = access.key() else {
        return Some(filter);
    };
    if key.covers_all() {
        return Some(filter);
    }
    if let [scope] = key.prefixes() {
        match filter.stream_prefix.as_deref() {
            None => filter.stream_prefix = Some(scope.clone()),
            Some(asked) if asked.starts_with(scope.as_str()) => {}
            Some(asked) if scope.starts_with(asked) => filter.stream_prefix = Some(scope.clone()),
            Some(_) => return None,
        }
    }
    Some(filter)
}

/// How a page of at most `limit` events is read: within `max_page_bytes`,
/// under the server's read budget, its first sub-read sized at the store's
/// largest event.
fn page_bounds(state: &AppState, limit: usize) -> PageBounds<'_> {
    PageBounds {
        limit,
        max_bytes: state.config.max_page_bytes,
        largest: state.store.limits().max_event_bytes,
        budget: &state.read_budget,
    }
}

/// The page size: the request's `limit` (at least 1) or the default, capped
/// by the store's `max_read_count`. Capping is safe here because `next` tells
/// a short page from the end.
pub(crate) fn page_limit(state: &AppState, limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(state.config.default_page_events);
    if limit == 0 {
        return Err(ApiError::invalid("limit must be at least 1"));
    }
    Ok(limit.min(state.store.limits().max_read_count).max(1))
}

/// The wire form of an event. Stores check JSON on append, so a JSON event
/// shown as binary is a store bug; it is shown rather than failing the page.
pub(crate) fn event_out(e: &RecordedEvent) -> WireEvent<'_> {
    let out = WireEvent::from_recorded(e);
    if out.content_type != e.content_type {
        tracing::warn!(position = e.position.0, "stored JSON event does not parse");
    }
    out
}

/// Pages of more events than this are encoded on a blocking thread: turning
/// 100,000 events into JSON takes tens of milliseconds, which must not hold
/// a runtime worker that `/health` and every other request need.
const ENCODE_INLINE_MAX_EVENTS: usize = 256;

/// The response for a page: small pages encoded in place, large ones off
/// the runtime. The body keeps the page's share of the read budget until
/// it has been written.
async fn page(
    events: Vec<RecordedEvent>,
    next: Option<u64>,
    share: Option<OwnedSemaphorePermit>,
) -> Result<Response, ApiError> {
    let json = if events.len() <= ENCODE_INLINE_MAX_EVENTS {
        encode_page(&events, next)
    } else {
        tokio::task::spawn_blocking(move || encode_page(&events, next))
            .await
            .map_err(|e| ApiError::internal(format!("encoding a page failed: {e}")))?
    }?;
    let body = held_bytes(json, share);
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

fn encode_page(events: &[RecordedEvent], next: Option<u64>) -> Result<Vec<u8>, ApiError> {
    let page = Page {
        events: events.iter().map(event_out).collect(),
        next,
    };
    serde_json::to_vec(&page)
        .map_err(|e| ApiError::internal(format!("encoding a page failed: {e}")))
}

/// `DELETE /streams/{stream}`: soft by default, a tombstone with `hard=true`,
/// an erasure with `erase=true` (a tombstone, and the events' data removed
/// physically: at once, or at the log store's next scavenge). All need the
/// `admin` role on the stream.
#[utoipa::path(
    delete,
    path = "/streams/{stream}",
    tag = "streams",
    params(
        ("stream" = String, Path, description = "The stream's name"),
        ("expected_version" = Option<String>, Query, description = "any, no_stream, exists or a version"),
        ("hard" = Option<bool>, Query, description = "true for a tombstone"),
        ("erase" = Option<bool>, Query, description = "true to erase the stream: a tombstone, and its events' data removed physically (at once on PostgreSQL and in memory, at the next scavenge on the log store); an erased or tombstoned stream may be erased again with expected_version any")
    ),
    responses(
        (status = 204, description = "Deleted (or erased)"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
        (status = 409, description = "The guard failed", body = ErrorBody),
        (status = 410, description = "The stream was tombstoned (erasing it again needs expected_version any)", body = ErrorBody),
        (status = 501, description = "erase=true and the store cannot erase (`unsupported`)", body = ErrorBody)
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require(Role::Admin, &stream)?;
    let q = query(q)?;
    let stream = StreamId::new(stream)?;
    let expected = match q.expected_version.as_deref() {
        Some(s) => s.parse().map_err(ApiError::invalid)?,
        None => strata_core::ExpectedVersion::Any,
    };
    if q.erase {
        erase(&state, &access, &stream, expected).await?;
    } else if q.hard {
        state.store.tombstone_stream(&stream, expected).await?;
    } else {
        state.store.delete_stream(&stream, expected).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Erases `stream`: in the store, then (before answering) its events still
/// queued on open subscriptions, then its snapshots in the snapshot store
/// the server was given. If that last step fails the stream stays erased;
/// erasing again with `expected_version=any` retries it.
async fn erase(
    state: &AppState,
    access: &Access,
    stream: &StreamId,
    expected: strata_core::ExpectedVersion,
) -> Result<(), ApiError> {
    state.store.erase_stream(stream, expected).await?;
    state.erasures.erased(stream);
    if let Some(snapshots) = &state.snapshots {
        snapshots.erase(stream).await?;
    }
    let key = access.key().map(|k| k.name().to_owned());
    tracing::info!(%stream, key, "stream erased");
    Ok(())
}
