//! Consuming a group by pull: read, ack, nack (`read` on the source).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_core::group::{MAX_READ_MESSAGES, MAX_READ_WAIT, MAX_SETTLE_IDS};
use strata_wire::{AckBody, DeliveryOut, GroupReadBody, GroupReadOut, NackBody};

use super::{consumer_of, groups_of, require_consume, GroupPath};
use crate::auth::Access;
use crate::body::json_body;
use crate::error::ApiError;
use crate::openapi::{ErrorBody, SettleReportDoc};
use crate::state::AppState;

/// `POST /groups/{group}/read`: leases up to `max` messages.
#[utoipa::path(
    post,
    path = "/groups/{group}/read",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body = GroupReadBody,
    responses(
        (status = 200, description = "{\"consumer\": name, \"messages\": [{delivery_id, delivery_count, event}]}", body = serde_json::Value),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key cannot read the group's source", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "max or wait_ms over its limit, or a bad consumer name", body = ErrorBody)
    )
)]
pub(crate) async fn read(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: GroupReadBody = json_body(&headers, body, state.config.max_body_bytes)?;
    if body.max == 0 || body.max > MAX_READ_MESSAGES {
        return Err(ApiError::invalid(format!(
            "max must be 1 to {MAX_READ_MESSAGES}, got {}",
            body.max
        )));
    }
    let wait = Duration::from_millis(body.wait_ms);
    if wait > MAX_READ_WAIT {
        return Err(ApiError::invalid(format!(
            "wait_ms must be at most {}, got {}",
            MAX_READ_WAIT.as_millis(),
            body.wait_ms
        )));
    }
    let groups = groups_of(&state)?;
    require_consume(&access, groups.as_ref(), &name).await?;
    let consumer = consumer_of(&access, body.consumer)?;
    let deliveries = groups.read(&name, &consumer, body.max, wait).await?;
    let out = GroupReadOut {
        consumer: consumer.as_str().into(),
        messages: deliveries.iter().map(DeliveryOut::from_delivery).collect(),
    };
    Ok(Json(out).into_response())
}

fn check_ids(n: usize) -> Result<(), ApiError> {
    if n > MAX_SETTLE_IDS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_SETTLE_IDS} ids may be settled at once, got {n}"
        )));
    }
    Ok(())
}

/// `POST /groups/{group}/ack`.
#[utoipa::path(
    post,
    path = "/groups/{group}/ack",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body = AckBody,
    responses(
        (status = 200, description = "What was settled", body = SettleReportDoc),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key cannot read the group's source", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "Too many ids, or a bad consumer name", body = ErrorBody)
    )
)]
pub(crate) async fn ack(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: AckBody = json_body(&headers, body, state.config.max_body_bytes)?;
    check_ids(body.ids.len())?;
    let groups = groups_of(&state)?;
    require_consume(&access, groups.as_ref(), &name).await?;
    let consumer = consumer_of(&access, body.consumer)?;
    let report = groups.ack(&name, &consumer, &body.ids).await?;
    Ok(Json(report).into_response())
}

/// `POST /groups/{group}/nack`.
#[utoipa::path(
    post,
    path = "/groups/{group}/nack",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    request_body = NackBody,
    responses(
        (status = 200, description = "What was settled", body = SettleReportDoc),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key cannot read the group's source", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 422, description = "Too many ids, a bad action or consumer name, a reason too long", body = ErrorBody)
    )
)]
pub(crate) async fn nack(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: NackBody = json_body(&headers, body, state.config.max_body_bytes)?;
    check_ids(body.ids.len())?;
    let groups = groups_of(&state)?;
    require_consume(&access, groups.as_ref(), &name).await?;
    let consumer = consumer_of(&access, body.consumer)?;
    let report = groups
        .nack(&name, &consumer, &body.ids, body.action, &body.reason)
        .await?;
    Ok(Json(report).into_response())
}
