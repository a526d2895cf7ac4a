//! Listing streams and asking who a key is: `GET /streams` and
//! `GET /auth/whoami` (`docs/http-api.md`, "Listing streams" and
//! "Who am I").
//!
//! ```
//! use strata_wire::{StreamList, StreamsQuery};
//! let q: StreamsQuery = serde_json::from_str(r#"{"prefix": "orders-", "limit": 50}"#).unwrap();
//! assert_eq!(q.limit, Some(50));
//! let page: StreamList = serde_json::from_str(
//!     r#"{"streams": [{"stream": "orders-1", "version": 3, "state": "live",
//!         "first_readable_version": 1, "last_position": 17,
//!         "last_written": "2026-12-07T12:00:00.123456Z"}], "next": null}"#,
//! ).unwrap();
//! assert_eq!(page.streams[0].version, 3);
//! ```

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use strata_core::{RecordedEvent, StreamInfo, StreamState};

/// [`StreamsQuery::limit`] when left out.
pub const DEFAULT_STREAMS_LIMIT: usize = 100;

/// Query of `GET /streams`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsQuery {
    /// Only streams whose names start with this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only streams of this category (`orders` is `orders` and `orders-…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Start strictly after this name: the `next` of the page before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Page size: 1 to `strata_core::MAX_LIST_STREAMS` (default
    /// [`DEFAULT_STREAMS_LIMIT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// List system streams (names starting with `$`) too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<bool>,
}

/// One stream of `GET /streams`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOut {
    /// The stream's name.
    pub stream: String,
    /// Version of its last event ever appended (0 if none).
    pub version: u64,
    /// `live`, `deleted` or `tombstoned` (an erased stream is tombstoned).
    pub state: StreamState,
    /// First version a read can return (`version + 1` when none can).
    pub first_readable_version: u64,
    /// Position of its last event, if it ever had one.
    pub last_position: Option<u64>,
    /// When its last readable event was recorded (RFC 3339 UTC with
    /// microseconds, as events' `recorded_at`); `null` when none is
    /// readable.
    pub last_written: Option<String>,
}

impl StreamOut {
    /// The wire form of `info`, whose last readable event is `last` (if
    /// any).
    pub fn new(info: &StreamInfo, last: Option<&RecordedEvent>) -> Self {
        StreamOut {
            stream: info.stream.to_string(),
            version: info.version,
            state: info.state,
            first_readable_version: info.first_readable_version,
            last_position: info.last_position.map(|p| p.0),
            last_written: last.map(|e| e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }
}

/// Answer of `GET /streams`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamList {
    /// The streams, in ascending byte order of their names.
    pub streams: Vec<StreamOut>,
    /// `after=` of the next page; `null` at the end.
    pub next: Option<String>,
}

/// Answer of `GET /auth/whoami`: the key a request presented, or the open
/// server's answer when it has no keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The key's name; `null` when the server runs without keys.
    pub name: Option<String>,
    /// `read`, `write` or `admin`, as the key file spells roles (`admin`
    /// without keys).
    pub role: String,
    /// The stream prefixes the key covers (`*` for every stream); empty
    /// without keys.
    pub prefixes: Vec<String>,
    /// Whether the key covers every stream.
    pub covers_all: bool,
    /// `key` (a key was presented) or `none` (the server has no keys).
    pub auth: String,
}
