//! Reading request bodies and query strings into typed values, with the
//! 400 / 413 / 422 split the API promises.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::error::Category;

use crate::error::ApiError;
use strata_wire::kind;

/// Parses a JSON body: 413 over the size limit, 400 for a wrong content type
/// or broken JSON, 422 for JSON of the wrong shape.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max_body_bytes: usize,
) -> Result<T, ApiError> {
    parse_json(&json_bytes(headers, body, max_body_bytes)?)
}

/// A JSON body's bytes, checked as [`json_body`] checks them, for a value
/// that borrows from them ([`parse_json`]).
pub(crate) fn json_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max_body_bytes: usize,
) -> Result<Bytes, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "request body is over the limit of {max_body_bytes} bytes"
            ))
        } else {
            ApiError::bad_request("bad_body", r.body_text())
        }
    })?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(
            "unsupported_content_type",
            format!(
                "request body must be sent with `Content-Type: application/json`, got {:?}",
                content_type
            ),
        ));
    }
    Ok(body)
}

/// Parses checked body bytes ([`json_bytes`]): 400 for broken JSON, 422 for
/// JSON of the wrong shape. The value may borrow from `body`.
pub(crate) fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => ApiError::invalid(format!("request body is not valid: {e}")),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("request body is not JSON: {e}"))
        }
    })
}

/// Unwraps a query string: 400 when it does not parse.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|r| ApiError::bad_request(kind::INVALID_QUERY, r.body_text()))
}

/// The `{stream}` segment of a path, decoded. A segment that does not
/// decode (`/streams/%FF` is not UTF-8) is a 400 `invalid_path` in the
/// API's JSON error shape, like every other rejection.
pub(crate) struct StreamPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for StreamPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(stream)| StreamPath(stream))
            .map_err(|r| ApiError::bad_request(kind::INVALID_PATH, r.body_text()))
    }
}
