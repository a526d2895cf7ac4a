//! Dynamic consistency boundaries: `POST /dcb/read` and `POST /dcb/append`
//! (`docs/adr/0022-dynamic-consistency-boundaries.md`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_core::{EventStore, Position};
use strata_wire::{
    payload_source, DcbAppendBody, DcbAppendOut, DcbReadBody, DcbReadOut, DcbStreamOut,
    DEFAULT_DCB_READ_LIMIT,
};

use crate::auth::{Access, Role};
use crate::body::{json_body, json_bytes, parse_json};
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::streams::{commit_parts, event_out, page_limit};

/// `POST /dcb/read`: the events matching a query after a position, and the
/// head a decision over them appends after.
#[utoipa::path(
    post,
    path = "/dcb/read",
    tag = "dcb",
    request_body = DcbReadBody,
    responses(
        (status = 200, description = "`{\"events\": [...], \"head\": P}`"),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key may not read", body = ErrorBody),
        (status = 422, description = "Invalid query or limit", body = ErrorBody)
    )
)]
pub(crate) async fn read(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Read)?;
    let body: DcbReadBody = json_body(&headers, body, state.config.max_body_bytes)?;
    let limit = page_limit(&state, Some(body.limit.unwrap_or(DEFAULT_DCB_READ_LIMIT)))?;
    let head = state.store.head_position().await?;
    let after = Position(body.after.unwrap_or(0));
    let mut events = state.store.read_query(&body.query, after, limit).await?;
    // The head was read first: events committed since belong to the next
    // read, so a decision's `after` covers exactly what it saw.
    events.retain(|e| e.position <= head && access.can_see(e.stream_id.as_str()));
    let out = DcbReadOut {
        events: events.iter().map(event_out).collect(),
        head: head.0,
    };
    let json = serde_json::to_vec(&out)
        .map_err(|e| ApiError::internal(format!("encoding a read failed: {e}")))?;
    Ok(([(CONTENT_TYPE, "application/json")], json).into_response())
}

/// `POST /dcb/append`: appends the events, all or none, if no event after
/// the condition's position matches its query and every stream guard holds.
#[utoipa::path(
    post,
    path = "/dcb/append",
    tag = "dcb",
    request_body = DcbAppendBody,
    responses(
        (status = 200, description = "Committed: `first_position`, `last_position` and each stream's result"),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key may not write one of the streams", body = ErrorBody),
        (status = 409, description = "condition_failed (with `position`), wrong_expected_version or idempotency_conflict", body = ErrorBody),
        (status = 413, description = "Over a size limit", body = ErrorBody),
        (status = 422, description = "Invalid input", body = ErrorBody)
    )
)]
pub(crate) async fn append(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Write)?;
    let raw_body = json_bytes(&headers, body, state.config.max_body_bytes)?;
    let body: DcbAppendBody = parse_json(&raw_body)?;
    if body.events.is_empty() {
        return Err(ApiError::invalid("an append needs at least one event"));
    }
    let source = payload_source(&raw_body, body.json_payload_len());
    let (parts, condition) = body
        .into_parts_in(&source)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // Only what `source` shares stays alive through the wait.
    drop(raw_body);
    for p in &parts {
        access.require(Role::Write, p.stream.as_str())?;
    }
    let streams: Vec<String> = parts.iter().map(|p| p.stream.as_str().to_owned()).collect();
    let results = commit_parts(&state, &access, parts, condition.as_ref()).await?;
    let first = results
        .iter()
        .map(|r| r.first_position.0)
        .min()
        .unwrap_or(0);
    let last = results.iter().map(|r| r.last_position.0).max().unwrap_or(0);
    Ok(Json(DcbAppendOut {
        first_position: first,
        last_position: last,
        streams: streams
            .into_iter()
            .zip(results)
            .map(|(stream, r)| DcbStreamOut {
                stream,
                result: r.into(),
            })
            .collect(),
    })
    .into_response())
}
