//! Stream metadata: `GET` and `PUT /streams/{stream}/metadata`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_core::{EventStore, StreamId};
use strata_wire::{MetadataBody, MetadataOut};

use crate::auth::{Access, Role};
use crate::body::{json_body, StreamPath};
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// `GET /streams/{stream}/metadata`.
#[utoipa::path(
    get,
    path = "/streams/{stream}/metadata",
    tag = "streams",
    params(("stream" = String, Path, description = "The stream's name")),
    responses(
        (status = 200, description = "The settings and their version (0 when never set)", body = MetadataOut),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody)
    )
)]
pub(crate) async fn get_metadata(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
) -> Result<Response, ApiError> {
    access.require(Role::Read, &stream)?;
    let stream = StreamId::new(stream)?;
    let m = state.store.stream_metadata(&stream).await?;
    Ok(Json(MetadataOut::new(stream.as_str(), m)).into_response())
}

/// `PUT /streams/{stream}/metadata`: retention hides events, so it needs
/// the `admin` role, like deleting.
#[utoipa::path(
    put,
    path = "/streams/{stream}/metadata",
    tag = "streams",
    params(("stream" = String, Path, description = "The stream's name")),
    request_body = MetadataBody,
    responses(
        (status = 200, description = "Set; the answer holds the new metadata version", body = MetadataOut),
        (status = 400, description = "Not JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role or prefixes do not allow it", body = ErrorBody),
        (status = 409, description = "expected_metadata_version does not hold", body = ErrorBody),
        (status = 413, description = "The settings are over the store's event size limit", body = ErrorBody),
        (status = 422, description = "Invalid settings", body = ErrorBody)
    )
)]
pub(crate) async fn put_metadata(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    StreamPath(stream): StreamPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    access.require(Role::Admin, &stream)?;
    let body: MetadataBody = json_body(&headers, body, state.config.max_body_bytes)?;
    let stream = StreamId::new(stream)?;
    let (expected, metadata) = body.into_parts();
    let version = state
        .store
        .set_stream_metadata(&stream, expected, &metadata)
        .await?;
    let out = MetadataOut::new(
        stream.as_str(),
        Some(strata_core::VersionedMetadata { version, metadata }),
    );
    Ok(Json(out).into_response())
}
