//! What the server answers: append results, pages, health, subscription
//! markers and error bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{AppendResult, Position};

use crate::event::WireEvent;

/// An append's answer (also what `strata append --json` prints).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppendOut {
    /// The stream's version after the append.
    pub next_expected_version: u64,
    /// Position of the first event appended.
    pub first_position: u64,
    /// Position of the last event appended.
    pub last_position: u64,
}

impl From<AppendResult> for AppendOut {
    fn from(r: AppendResult) -> Self {
        AppendOut {
            next_expected_version: r.next_expected_version,
            first_position: r.first_position.0,
            last_position: r.last_position.0,
        }
    }
}

impl From<AppendOut> for AppendResult {
    fn from(r: AppendOut) -> Self {
        AppendResult {
            next_expected_version: r.next_expected_version,
            first_position: Position(r.first_position),
            last_position: Position(r.last_position),
        }
    }
}

/// The answer of `POST /multi`: one result per part, in order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MultiOut {
    /// One per stream part.
    pub results: Vec<AppendOut>,
}

/// A page of a read: the events and where the next page starts (`null` when
/// the page was short, that is, the end was reached).
#[derive(Debug, Serialize, Deserialize)]
pub struct Page<'a> {
    /// The events.
    pub events: Vec<WireEvent<'a>>,
    /// `from=` (stream reads) or `after=` (`/all`) for the next page.
    pub next: Option<u64>,
}

/// The data of a subscription's `caught_up` event: everything recorded up
/// to `position` was sent; live events follow.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaughtUp {
    /// The head position when the subscription caught up.
    pub position: u64,
}

/// The answer of `GET /health`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthBody {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Position of the last committed event (when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_position: Option<u64>,
    /// The store's error kind (when `unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The store's error (when `unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every error body, and the data of a subscription's final `error` event.
///
/// ```
/// let body: strata_wire::ErrorBody = serde_json::from_str(
///     r#"{"error":"wrong_expected_version","message":"…","stream":"s-1","expected":3,"actual":"no_stream"}"#,
/// )
/// .unwrap();
/// assert_eq!(body.error, strata_wire::kind::WRONG_EXPECTED_VERSION);
/// assert_eq!(body.stream.as_deref(), Some("s-1"));
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// The stable kind (one of [`crate::kind`]).
    pub error: String,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
    /// The stream (`wrong_expected_version`, `stream_deleted`,
    /// `stream_not_found`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The guard the request had (`wrong_expected_version`), as
    /// [`crate::expected::to_json`] spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// The stream's version (`wrong_expected_version`), as
    /// [`crate::expected::current_to_json`] spells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// The event id used twice (`idempotency_conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The first matching event's position (`condition_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
}

impl ErrorBody {
    /// A body with a kind and a message only.
    ///
    /// ```
    /// let b = strata_wire::ErrorBody::new("forbidden", "no");
    /// assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"error":"forbidden","message":"no"}"#);
    /// ```
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: kind.into(),
            message: message.into(),
            ..ErrorBody::default()
        }
    }
}
