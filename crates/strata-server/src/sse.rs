//! Server-sent-event framing and the body of a subscription's response.
//!
//! The body is written here rather than with a generic SSE helper so that
//! each message's bytes carry their share of the byte budgets until the
//! connection has written them (see [`crate::queue`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::erasures::{overflow_frame, Erased};
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
/// gone and the queue is empty. Events of streams erased since the
/// subscription opened are dropped rather than sent; once `erased` has
/// overflowed, what is queued is dropped and a final `streams_erased` error
/// ends it.
pub(crate) fn response(
    rx: mpsc::Receiver<Buffered>,
    heartbeat: Duration,
    erased: Arc<Erased>,
) -> Response {
    let stream = futures::stream::unfold(Some(rx), move |rx| {
        let erased = Arc::clone(&erased);
        async move {
            let mut rx = rx?;
            let (bytes, last) = match next_bytes(&mut rx, heartbeat, &erased).await? {
                Next::Send(bytes) => (bytes, false),
                Next::Last(bytes) => (bytes, true),
            };
            Some((Ok::<Bytes, Infallible>(bytes), (!last).then_some(rx)))
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

/// What the body sends next.
enum Next {
    /// These bytes, then more.
    Send(Bytes),
    /// These bytes, and nothing after them.
    Last(Bytes),
}

/// The next bytes to send: a queued message (skipping events of erased
/// streams), a heartbeat after `heartbeat` of silence, or the final error
/// once `erased` overflowed; `None` when the queue is closed and empty.
async fn next_bytes(
    rx: &mut mpsc::Receiver<Buffered>,
    heartbeat: Duration,
    erased: &Erased,
) -> Option<Next> {
    let overflowed = || Next::Last(Bytes::from(overflow_frame()));
    loop {
        if erased.overflowed() {
            return Some(overflowed());
        }
        tokio::select! {
            biased;
            () = erased.overflowing() => return Some(overflowed()),
            next = rx.recv() => {
                let m = next?;
                if m.stream().is_some_and(|s| erased.hides(s.as_str())) {
                    continue;
                }
                return Some(Next::Send(m.into_bytes()));
            }
            _ = tokio::time::sleep(heartbeat) => {
                return Some(Next::Send(Bytes::from_static(HEARTBEAT)));
            }
        }
    }
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
