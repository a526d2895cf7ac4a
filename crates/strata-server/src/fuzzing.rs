//! Entry points for fuzzing what the API parses from a request: the JSON
//! bodies of `POST /streams/{stream}` and `POST /multi`, and the `$all`
//! filter of `GET /all`. Not part of the API: the fuzz targets (`fuzz/` at
//! the repository root) and the corpus replay test of `strata-integration`
//! call these same functions.
//!
//! Each sends the bytes through the whole router (authentication, body
//! limit, timeout, parsing, the store) over the store the caller gives, on
//! a current-thread runtime, and asserts that the answer is never a server
//! error (5xx) but for the documented 503 (timeout, or a store refusing
//! writes). Any other 5xx, or a panic, is what a fuzzer reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Request, StatusCode};
use strata_core::EventStore;
use tower_service::Service;

use crate::config::ServerConfig;
use crate::streams::filter_from_query;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// The bytes as the body of `POST /streams/fuzz-1`. Returns whether the
/// append was answered 2xx.
pub fn append_body(store: Arc<dyn EventStore>, data: &[u8]) -> bool {
    send(store, Method::POST, "/streams/fuzz-1".into(), data).is_success()
}

/// The bytes as the body of `POST /multi`. Returns whether the append was
/// answered 2xx.
pub fn multi_body(store: Arc<dyn EventStore>, data: &[u8]) -> bool {
    send(store, Method::POST, "/multi".into(), data).is_success()
}

/// The bytes as the query string of `GET /all` (bytes a URI cannot hold
/// percent-encoded), and, split at line breaks into `types`, `prefix`,
/// `category` and `correlation_id`, as the `$all` filter directly: a filter
/// that parses is valid and holds no empty or untrimmed type; one that does
/// not parse held a NUL. The first line is also a stream name in the path
/// of `GET /streams/{stream}`. Returns whether the filter parsed.
pub fn all_query(store: Arc<dyn EventStore>, data: &[u8]) -> bool {
    let query = encode(data, b"&=,+%");
    send(
        Arc::clone(&store),
        Method::GET,
        format!("/all?{query}"),
        b"",
    );
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(str::to_owned);
    let name = encode(lines.clone().next().unwrap_or_default().as_bytes(), b"");
    send(store, Method::GET, format!("/streams/{name}"), b"");
    let fields: [Option<String>; 4] = std::array::from_fn(|_| lines.next());
    let [types, prefix, category, correlation_id] = fields;
    let had_nul = text.contains('\0');
    match filter_from_query(types, prefix, category, correlation_id) {
        Ok(f) => {
            assert!(f.validate().is_ok(), "a parsed filter is valid");
            assert!(f.event_types.iter().all(|t| !t.is_empty() && t.trim() == t));
            true
        }
        Err(_) => {
            assert!(had_nul, "only a NUL makes a filter fail");
            false
        }
    }
}

/// Percent-encodes every byte but unreserved ones and those of `keep`.
fn encode(data: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 3);
    for &b in data {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request through a fresh router over `store`; the status.
fn send(store: Arc<dyn EventStore>, method: Method, uri: String, body: &[u8]) -> StatusCode {
    let Ok(req) = Request::builder()
        .method(method)
        .uri(&uri)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return StatusCode::BAD_REQUEST;
    };
    let mut app = crate::router(store, ServerConfig::default());
    let status = RUNTIME.with(|rt| rt.block_on(app.call(req)).map(|r| r.status()));
    let Ok(status) = status;
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{uri} answered {status}"
    );
    status
}
