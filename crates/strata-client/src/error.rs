//! What can go wrong talking to a server: the server's own errors, typed as
//! it reports them, and the transport's.

use strata_core::{CurrentVersion, ExpectedVersion, Position};
use strata_wire::{expected, kind, ErrorBody};

/// What went wrong talking to a server.
///
/// The server's refusals are typed after its error kinds
/// ([`strata_wire::kind`]); a kind without a variant of its own is
/// [`ClientError::Api`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not an http(s) URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The CA certificate file could not be used.
    #[error("cannot use CA certificate {path}: {reason}")]
    CaCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The request did not complete (connection refused, TLS, timeout, ...).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The error and its causes, on one line.
        reason: String,
    },
    /// 409: the stream is not at the expected version.
    #[error("server refused (409 wrong_expected_version): {message}")]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// The guard the request had.
        expected: ExpectedVersion,
        /// Where the stream is.
        actual: CurrentVersion,
        /// The server's message.
        message: String,
    },
    /// 409: an event id was already used for another event.
    #[error("server refused (409 idempotency_conflict): {message}")]
    IdempotencyConflict {
        /// The event id.
        event_id: String,
        /// The server's message.
        message: String,
    },
    /// 409: a conditional append's condition failed; nothing was written.
    #[error("server refused (409 condition_failed): {message}")]
    ConditionFailed {
        /// The first event after the condition's position that matches
        /// its query.
        position: Position,
        /// The server's message.
        message: String,
    },
    /// 410: the stream was tombstoned.
    #[error("server refused (410 stream_deleted): {message}")]
    StreamDeleted {
        /// The stream.
        stream: String,
        /// The server's message.
        message: String,
    },
    /// 404: no such stream.
    #[error("server refused (404 stream_not_found): {message}")]
    StreamNotFound {
        /// The stream.
        stream: String,
        /// The server's message.
        message: String,
    },
    /// 401: no API key, or an unknown one.
    #[error("server refused (401 unauthorized): {message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// 403: the key's role or prefixes do not allow the request.
    #[error("server refused (403 forbidden): {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 422: the request is not valid.
    #[error("server refused (422 invalid_input): {message}")]
    InvalidInput {
        /// The server's message.
        message: String,
    },
    /// 413: the request is over a size limit; split it.
    #[error("server refused (413 payload_too_large): {message}")]
    PayloadTooLarge {
        /// The server's message.
        message: String,
    },
    /// Any other error the server answered with.
    #[error("server refused ({status} {kind}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable error kind (`timeout`, `too_many_subscriptions`, ...).
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The server ended a subscription with a final `error` event
    /// (`slow_consumer`, `shutting_down`, or the store's error kind) and it
    /// was not resumed.
    #[error("the server ended the subscription ({kind}): {message}")]
    Ended {
        /// The error kind.
        kind: String,
        /// The server's message.
        message: String,
    },
    /// A subscription was lost too many times in a row without an event in
    /// between.
    #[error("subscription lost {attempts} times in a row without progress: {reason}")]
    SubscriptionLost {
        /// Losses in a row.
        attempts: u32,
        /// The last loss.
        reason: String,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What did not fit.
        reason: String,
    },
}

impl ClientError {
    /// The API error kind, when the server sent one (`wrong_expected_version`,
    /// `slow_consumer`, ...).
    ///
    /// ```
    /// let e = strata_client::ClientError::Forbidden { message: "no".into() };
    /// assert_eq!(e.api_kind(), Some("forbidden"));
    /// ```
    pub fn api_kind(&self) -> Option<&str> {
        match self {
            ClientError::WrongExpectedVersion { .. } => Some(kind::WRONG_EXPECTED_VERSION),
            ClientError::IdempotencyConflict { .. } => Some(kind::IDEMPOTENCY_CONFLICT),
            ClientError::ConditionFailed { .. } => Some(kind::CONDITION_FAILED),
            ClientError::StreamDeleted { .. } => Some(kind::STREAM_DELETED),
            ClientError::StreamNotFound { .. } => Some(kind::STREAM_NOT_FOUND),
            ClientError::Unauthorized { .. } => Some(kind::UNAUTHORIZED),
            ClientError::Forbidden { .. } => Some(kind::FORBIDDEN),
            ClientError::InvalidInput { .. } => Some(kind::INVALID_INPUT),
            ClientError::PayloadTooLarge { .. } => Some(kind::PAYLOAD_TOO_LARGE),
            ClientError::Api { kind, .. } | ClientError::Ended { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The typed error for an error body with `status`.
    pub(crate) fn from_body(status: u16, body: ErrorBody) -> Self {
        let ErrorBody {
            error,
            message,
            stream,
            expected: exp,
            actual,
            event_id,
            position,
        } = body;
        match (status, error.as_str()) {
            (409, kind::WRONG_EXPECTED_VERSION) => {
                let exp = exp.as_ref().and_then(expected::from_json);
                let actual = actual.as_ref().and_then(expected::current_from_json);
                if let (Some(stream), Some(expected), Some(actual)) = (stream, exp, actual) {
                    return ClientError::WrongExpectedVersion {
                        stream,
                        expected,
                        actual,
                        message,
                    };
                }
            }
            (409, kind::IDEMPOTENCY_CONFLICT) => {
                return ClientError::IdempotencyConflict {
                    event_id: event_id.unwrap_or_default(),
                    message,
                }
            }
            (409, kind::CONDITION_FAILED) => {
                if let Some(p) = position {
                    return ClientError::ConditionFailed {
                        position: Position(p),
                        message,
                    };
                }
            }
            (410, kind::STREAM_DELETED) => {
                return ClientError::StreamDeleted {
                    stream: stream.unwrap_or_default(),
                    message,
                }
            }
            (404, kind::STREAM_NOT_FOUND) => {
                return ClientError::StreamNotFound {
                    stream: stream.unwrap_or_default(),
                    message,
                }
            }
            (401, kind::UNAUTHORIZED) => return ClientError::Unauthorized { message },
            (403, kind::FORBIDDEN) => return ClientError::Forbidden { message },
            (422, kind::INVALID_INPUT) => return ClientError::InvalidInput { message },
            (413, kind::PAYLOAD_TOO_LARGE) => return ClientError::PayloadTooLarge { message },
            _ => {}
        }
        ClientError::Api {
            status,
            kind: error,
            message,
        }
    }
}

/// A transport error, named by URL and by what happened.
pub(crate) fn transport(url: &reqwest::Url, e: &reqwest::Error) -> ClientError {
    // reqwest's own message repeats the URL ("error sending request for url
    // (…)"); the causes say what happened.
    let reason = match std::error::Error::source(e) {
        Some(cause) if e.is_request() || e.is_connect() => error_chain(cause),
        _ => error_chain(e),
    };
    let reason = if e.is_timeout() && !reason.contains("timed out") {
        format!("timed out: {reason}")
    } else {
        reason
    };
    ClientError::Transport {
        url: url.to_string(),
        reason,
    }
}

/// One line for an error and its causes (reqwest nests the useful part).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    strata_core::error::error_chain(e).replace('\n', " ")
}
