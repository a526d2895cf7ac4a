//! Managing groups (`admin`): define, list, show, delete, parked messages.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_core::group::{GroupSettings, MAX_SETTLE_IDS};
use strata_core::Position;
use strata_wire::{
    DeleteParkedBody, DeleteParkedOut, GroupList, ParkedList, ParkedOut, ParkedQuery, ReplayBody,
    ReplayOut, MAX_PARKED_LIMIT,
};

use super::{groups_of, not_found, GroupPath};
use crate::auth::{Access, Role};
use crate::body::{json_body, query};
use crate::error::ApiError;
use crate::openapi::{ErrorBody, GroupStatusDoc};
use crate::state::AppState;

/// `PUT /groups/{group}`: creates the group, or updates its settings.
#[utoipa::path(
    put,
    path = "/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body(content = serde_json::Value, description = "The definition: source, start, strategy, max_in_flight, ack_timeout_ms, max_retries, retry_backoff_ms"),
    responses(
        (status = 200, description = "Created or updated; its status", body = GroupStatusDoc),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 422, description = "Invalid name or settings, or a different source", body = ErrorBody)
    )
)]
pub(crate) async fn put_group(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let settings: GroupSettings = json_body(&headers, body, state.config.max_body_bytes)?;
    let status = groups_of(&state)?.put_group(&name, settings).await?;
    Ok(Json(status).into_response())
}

/// `GET /groups`.
#[utoipa::path(
    get,
    path = "/groups",
    tag = "groups",
    responses(
        (status = 200, description = "Every group's status: {\"groups\": [...]}", body = serde_json::Value),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody)
    )
)]
pub(crate) async fn list_groups(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let groups = groups_of(&state)?.list_groups().await?;
    Ok(Json(GroupList { groups }).into_response())
}

/// `GET /groups/{group}`: the group's status.
#[utoipa::path(
    get,
    path = "/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    responses(
        (status = 200, description = "Checkpoint, lag, in flight, parked, consumers, acked", body = GroupStatusDoc),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody)
    )
)]
pub(crate) async fn get_group(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let status = groups_of(&state)?.group_status(&name).await?;
    let status = status.ok_or_else(|| not_found(&name))?;
    Ok(Json(status).into_response())
}

/// `DELETE /groups/{group}`: the group, its checkpoint and parked list.
#[utoipa::path(
    delete,
    path = "/groups/{group}",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody)
    )
)]
pub(crate) async fn delete_group(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    if !groups_of(&state)?.delete_group(&name).await? {
        return Err(not_found(&name));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /groups/{group}/parked`: parked messages, oldest first.
#[utoipa::path(
    get,
    path = "/groups/{group}/parked",
    tag = "groups",
    params(
        ("group" = String, Path, description = "The group's name"),
        ("limit" = Option<usize>, Query, description = "The most messages to list (default 100, at most 10000)")
    ),
    responses(
        (status = 200, description = "{\"messages\": [{event, delivery_count, reason, parked_at}]}", body = serde_json::Value),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "limit over the maximum", body = ErrorBody)
    )
)]
pub(crate) async fn parked(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    q: Result<Query<ParkedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let q = query(q)?;
    check_limit(q.limit)?;
    let messages = groups_of(&state)?.parked(&name, q.limit).await?;
    let out = ParkedList {
        messages: messages.iter().map(ParkedOut::from_parked).collect(),
    };
    Ok(Json(out).into_response())
}

/// `POST /groups/{group}/parked/replay`: offers parked messages again.
#[utoipa::path(
    post,
    path = "/groups/{group}/parked/replay",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body(content = ReplayBody, description = "Optional: {\"limit\": N} (default 100)"),
    responses(
        (status = 200, description = "{\"replayed\": N}", body = serde_json::Value),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "limit over the maximum", body = ErrorBody)
    )
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let body: ReplayBody = if empty {
        ReplayBody::default()
    } else {
        json_body(&headers, body, state.config.max_body_bytes)?
    };
    check_limit(body.limit)?;
    let replayed = groups_of(&state)?.replay_parked(&name, body.limit).await?;
    Ok(Json(ReplayOut { replayed }).into_response())
}

/// `POST /groups/{group}/parked/delete`: removes parked messages from the
/// list without offering them again.
#[utoipa::path(
    post,
    path = "/groups/{group}/parked/delete",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body(content = DeleteParkedBody, description = "{\"positions\": [...]}"),
    responses(
        (status = 200, description = "{\"deleted\": N}", body = serde_json::Value),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Needs the admin role", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "Too many positions, or a bad body", body = ErrorBody)
    )
)]
pub(crate) async fn delete_parked(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let body: DeleteParkedBody = json_body(&headers, body, state.config.max_body_bytes)?;
    if body.positions.len() > MAX_SETTLE_IDS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_SETTLE_IDS} positions at once, got {}",
            body.positions.len()
        )));
    }
    let positions: Vec<Position> = body.positions.into_iter().map(Position).collect();
    let deleted = groups_of(&state)?.delete_parked(&name, &positions).await?;
    Ok(Json(DeleteParkedOut { deleted }).into_response())
}

fn check_limit(limit: usize) -> Result<(), ApiError> {
    if limit == 0 || limit > MAX_PARKED_LIMIT {
        return Err(ApiError::invalid(format!(
            "limit must be 1 to {MAX_PARKED_LIMIT}, got {limit}"
        )));
    }
    Ok(())
}
