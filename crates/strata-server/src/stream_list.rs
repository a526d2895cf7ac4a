//! `GET /streams`: the streams a key may read, page by page, in byte order
//! of their names, each with its last write time (ADR 0026).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::{StreamExt, TryStreamExt};
use strata_core::{
    Direction, Error, ReadFilter, RecordedEvent, StreamId, StreamInfo, StreamListQuery, FROM_END,
    MAX_LIST_STREAMS,
};
use strata_wire::{kind, StreamList, StreamOut, StreamsQuery, DEFAULT_STREAMS_LIMIT};

use crate::auth::{Access, Role};
use crate::body::query;
use crate::error::ApiError;
use crate::openapi::{ErrorBody, StreamListDoc};
use crate::state::AppState;
use crate::streams::scope_filter;

/// The most streams one request looks at for a key that sees only some of
/// them: past it, the page is answered as it is (short, even empty) with
/// `next` where the looking stopped.
pub const MAX_STREAMS_EXAMINED: usize = 10 * MAX_LIST_STREAMS;

/// How many streams' last events are read at once for one page.
const LAST_EVENT_READS_IN_FLIGHT: usize = 16;

/// `GET /streams`.
#[utoipa::path(
    get,
    path = "/streams",
    tag = "streams",
    params(
        ("prefix" = Option<String>, Query, description = "Only streams whose names start with this"),
        ("category" = Option<String>, Query, description = "Only streams of this category (`orders`: `orders` and `orders-…`)"),
        ("after" = Option<String>, Query, description = "Start strictly after this name (the `next` of the page before)"),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("system" = Option<bool>, Query, description = "List system streams (`$…`) too (default false)")
    ),
    responses(
        (status = 200, description = "A page (only streams the key covers)", body = StreamListDoc),
        (status = 400, description = "A bad limit, name or parameter", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 501, description = "The store cannot list streams", body = ErrorBody)
    )
)]
pub(crate) async fn list_streams(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    q: Result<Query<StreamsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Read)?;
    let asked = store_query(query(q)?)?;
    let Some(scoped) = narrow_to_scope(&access, &asked) else {
        // The asked prefix and the key's scope have no stream in common.
        return Ok(Json(StreamList::default()).into_response());
    };
    let (infos, next) = visible_page(&state, &access, scoped).await?;
    let streams = with_last_events(&state, infos).await?;
    Ok(Json(StreamList {
        streams,
        next: next.map(|n| n.to_string()),
    })
    .into_response())
}

/// The store's query for the request's parameters: 400 for a limit out of
/// range, an `after` that is no stream name, or a NUL.
fn store_query(q: StreamsQuery) -> Result<StreamListQuery, ApiError> {
    let bad = |message: String| ApiError::bad_request(kind::INVALID_QUERY, message);
    let limit = q.limit.unwrap_or(DEFAULT_STREAMS_LIMIT);
    if !(1..=MAX_LIST_STREAMS).contains(&limit) {
        return Err(bad(format!(
            "limit must be 1 to {MAX_LIST_STREAMS}, got {limit}"
        )));
    }
    let after = match q.after.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(StreamId::any(&a).map_err(|e| bad(format!("after: {e}")))?),
    };
    let query = StreamListQuery {
        prefix: q.prefix.filter(|p| !p.is_empty()),
        category: q.category.filter(|c| !c.is_empty()),
        after,
        limit,
        include_system: q.system.unwrap_or(false),
    };
    query.validate().map_err(|e| bad(e.to_string()))?;
    Ok(query)
}

/// `asked` with its prefix narrowed to the key's one prefix where it has
/// one (as `/all` narrows its filter); `None` when the two cannot overlap.
fn narrow_to_scope(access: &Access, asked: &StreamListQuery) -> Option<StreamListQuery> {
    let filter = ReadFilter {
        stream_prefix: asked.prefix.clone(),
        ..ReadFilter::all()
    };
    let scoped = scope_filter(access, filter)?;
    Some(StreamListQuery {
        prefix: scoped.stream_prefix,
        ..asked.clone()
    })
}

/// Up to `query.limit` streams the key may see, with the `next` to go on
/// from: streams it may not see are taken out before the page is cut, so
/// pages are full where they can be, and at most
/// [`MAX_STREAMS_EXAMINED`] streams are looked at.
async fn visible_page(
    state: &AppState,
    access: &Access,
    mut query: StreamListQuery,
) -> Result<(Vec<StreamInfo>, Option<StreamId>), ApiError> {
    let limit = query.limit;
    // Where the key's scope did not become the store's prefix, the store's
    // pages hold streams the key may not see: read them whole.
    let narrowed = access
        .key()
        .is_none_or(|k| k.covers_all() || k.prefixes().len() == 1);
    if !narrowed {
        query.limit = MAX_LIST_STREAMS;
    }
    let mut kept = Vec::with_capacity(limit);
    let mut examined = 0;
    loop {
        let page = state.store.list_streams(&query).await?;
        examined += page.streams.len();
        let count = page.streams.len();
        for (i, info) in page.streams.into_iter().enumerate() {
            if !access.can_see(info.stream.as_str()) {
                continue;
            }
            kept.push(info);
            if kept.len() == limit {
                // Everything up to this stream was looked at; nothing
                // follows when it ends the store's last page.
                let ends = i + 1 == count && page.next.is_none();
                let next = kept.last().map(|s| s.stream.clone()).filter(|_| !ends);
                return Ok((kept, next));
            }
        }
        match page.next {
            None => return Ok((kept, None)),
            Some(next) if examined >= MAX_STREAMS_EXAMINED => return Ok((kept, Some(next))),
            Some(next) => query.after = Some(next),
        }
    }
}

/// The wire form of `infos`, each with the time of its last readable event.
async fn with_last_events(
    state: &AppState,
    infos: Vec<StreamInfo>,
) -> Result<Vec<StreamOut>, ApiError> {
    futures::stream::iter(infos)
        .map(|info| async move {
            let last = last_event(state, &info.stream).await?;
            Ok::<_, ApiError>(StreamOut::new(&info, last.as_ref()))
        })
        .buffered(LAST_EVENT_READS_IN_FLIGHT)
        .try_collect()
        .await
}

/// The last readable event of `stream`, if it has one.
async fn last_event(
    state: &AppState,
    stream: &StreamId,
) -> Result<Option<RecordedEvent>, ApiError> {
    match state
        .store
        .read_stream(stream, FROM_END, 1, Direction::Backward)
        .await
    {
        Ok(mut events) => Ok(events.pop()),
        Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
