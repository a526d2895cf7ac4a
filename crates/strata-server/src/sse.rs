//! Server-sent-event framing and the body of a subscription's response.
//!
//! The body is written here rather than with a generic SSE helper so that
//! each message's bytes carry their share of the byte budgets until the
//! connection has written them (see [`crate::queue`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::queue::Buffered;

/// The comment sent on an idle stream every heartbeat interval.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// One SSE message: optional `event:` and `id:` lines, then `data` (one
/// `data:` line per line of it).
pub(crate) fn frame(event: Option<&str>, id: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(event) = event {
        push_field(&mut out, "event", event);
    }
    if let Some(id) = id {
        push_field(&mut out, "id", id);
    }
    for line in data.split('\n') {
        push_field(&mut out, "data", line);
    }
    out.push(b'\n');
    out
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// The `text/event-stream` response draining `rx`, with a heartbeat comment
/// after every `heartbeat` of silence. It ends when the queue's sender is
/// gone and the queue is empty.
pub(crate) fn response(rx: mpsc::Receiver<Buffered>, heartbeat: Duration) -> Response {
    let stream = futures::stream::unfold(rx, move |mut rx| async move {
        tokio::select! {
            next = rx.recv() => next.map(|m| (Ok::<Bytes, Infallible>(m.into_bytes()), rx)),
            _ = tokio::time::sleep(heartbeat) => Some((Ok(Bytes::from_static(HEARTBEAT)), rx)),
        }
    });
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_has_its_fields_then_a_blank_line() {
        let f = frame(Some("error"), Some("7"), "{\"a\":1}");
        assert_eq!(f, b"event: error\nid: 7\ndata: {\"a\":1}\n\n");
    }

    #[test]
    fn each_line_of_data_is_a_data_field() {
        assert_eq!(frame(None, None, "a\nb"), b"data: a\ndata: b\n\n");
    }
}
