//! HTTP errors: every failure is a JSON body `{"error": kind, "message": ...}`
//! with a status that says whose fault it was.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use strata_core::Error;

use strata_wire::{expected, kind};

/// Seconds an overloaded store asks a client to wait (`Retry-After`).
const OVERLOADED_RETRY_AFTER_SECS: &str = "1";

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    /// Extra fields merged into the body (`stream`, `expected`, `actual`).
    extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    /// An error with a status, a stable kind and a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// 400: the request could not be parsed (syntax, content type, query string).
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    /// 422: the request parsed but is not valid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind::INVALID_INPUT,
            message,
        )
    }

    /// 500: something the server should have been able to do failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, kind::INTERNAL, message)
    }

    /// 413: the request is over a size limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            kind::PAYLOAD_TOO_LARGE,
            message,
        )
    }

    /// The status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra.push((key, value));
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::WrongExpectedVersion { .. }
            | Error::IdempotencyConflict { .. }
            | Error::ConditionFailed { .. } => StatusCode::CONFLICT,
            Error::StreamDeleted { .. } => StatusCode::GONE,
            Error::StreamNotFound { .. } | Error::GroupNotFound { .. } => StatusCode::NOT_FOUND,
            Error::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            Error::Poisoned { .. }
            | Error::Closed
            | Error::Timeout { .. }
            | Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(kind = e.kind(), error = %e, "store error");
        }
        let base = ApiError::new(status, e.kind(), e.to_string());
        match e {
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => base
                .with("stream", json!(stream.as_str()))
                .with("expected", expected::to_json(expected))
                .with("actual", expected::current_to_json(actual)),
            Error::StreamDeleted { stream } | Error::StreamNotFound { stream } => {
                base.with("stream", json!(stream.as_str()))
            }
            Error::GroupNotFound { group } => base.with("group", json!(group)),
            Error::ConditionFailed { position } => base.with("position", json!(position.0)),
            Error::IdempotencyConflict { event_id, .. } => {
                base.with("event_id", json!(event_id.to_string()))
            }
            _ => base,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), json!(self.kind));
        body.insert("message".into(), json!(self.message));
        for (k, v) in self.extra {
            body.insert(k.into(), v);
        }
        let mut resp = (self.status, Json(Value::Object(body))).into_response();
        if self.kind == kind::OVERLOADED {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS),
            );
        }
        resp.extensions_mut().insert(ErrorKind(self.kind));
        resp
    }
}

/// The `error` kind of an error response, for the metrics middleware.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorKind(pub &'static str);

impl ApiError {
    /// The stable kind (the body's `error` field).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}
