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
use strata_core::RecordedEvent;
use strata_wire::WireError;
use tokio::sync::mpsc;

use crate::erasures::{overflow_frame, Erased};
use crate::held::held_bytes;
use crate::queue::Buffered;

/// The most bytes of queued messages written to a subscriber as one chunk.
pub(crate) const MAX_WRITE_BYTES: usize = 256 * 1024;

/// The most queued messages written to a subscriber as one chunk.
pub(crate) const MAX_WRITE_MESSAGES: usize = 1_000;

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

/// The SSE message of an event: `id:` its position, `data:` its JSON
/// ([`strata_wire::write_recorded_json`]), written straight into the frame
/// with the stored JSON payload copied in rather than parsed and encoded
/// again. The same bytes as [`frame`]`(None, Some(position), json)`: a
/// payload with line breaks (JSON whitespace) is one `data:` field a line.
pub(crate) fn event_frame(e: &RecordedEvent) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(e.size_bytes() + FRAME_EXTRA_BYTES);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(e.position.0.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let json_at = out.len();
    strata_wire::write_recorded_json(e, &mut out)?;
    // Only a JSON payload's whitespace can hold a raw line break; the rest
    // of the event's JSON escapes them.
    if out[json_at..].contains(&b'\n') {
        let json = out.split_off(json_at);
        for (i, line) in json.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\ndata: ");
            }
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\n\n");
    Ok(out)
}

/// Room reserved for an event's SSE frame beyond the event's own size: the
/// field names, the id, the numbers and the time of its JSON.
const FRAME_EXTRA_BYTES: usize = 256;

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
                let bytes = with_queued(m, rx, erased);
                if erased.overflowed() {
                    return Some(overflowed());
                }
                return Some(Next::Send(bytes));
            }
            _ = tokio::time::sleep(heartbeat) => {
                return Some(Next::Send(Bytes::from_static(HEARTBEAT)));
            }
        }
    }
}

/// `first`, and the messages queued behind it (those of erased streams
/// left out) up to [`MAX_WRITE_BYTES`] and [`MAX_WRITE_MESSAGES`], as one
/// chunk: a subscriber that is behind gets its backlog in few writes
/// instead of one write (and one HTTP chunk) per event. The chunk holds
/// every message's share of the budgets until it is written.
fn with_queued(first: Buffered, rx: &mut mpsc::Receiver<Buffered>, erased: &Erased) -> Bytes {
    let Ok(next) = rx.try_recv() else {
        return first.into_bytes();
    };
    let (mut frames, share) = first.into_parts();
    let mut shares: Vec<_> = share.into_iter().collect();
    let mut messages = 1;
    let mut next = Some(next);
    while let Some(m) = next.take() {
        if !m.stream().is_some_and(|s| erased.hides(s.as_str())) {
            let (frame, share) = m.into_parts();
            frames.extend_from_slice(&frame);
            shares.extend(share);
            messages += 1;
        }
        if frames.len() >= MAX_WRITE_BYTES || messages >= MAX_WRITE_MESSAGES {
            break;
        }
        next = rx.try_recv().ok();
    }
    held_bytes(frames, Some(shares))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strata_core::{ContentType, EventId, Metadata, Position, StreamId, Tag};

    #[test]
    fn a_frame_has_its_fields_then_a_blank_line() {
        let f = frame(Some("error"), Some("7"), "{\"a\":1}");
        assert_eq!(f, b"event: error\nid: 7\ndata: {\"a\":1}\n\n");
    }

    #[test]
    fn queued_messages_go_out_as_one_chunk_within_the_limits() {
        let erased = crate::erasures::Erasures::default().register(None);
        let (tx, mut rx) = mpsc::channel(MAX_WRITE_MESSAGES * 2);
        let message = |n: usize| Buffered::new(frame(None, None, &n.to_string()), None);
        // Alone, a message is sent as it is.
        let one = with_queued(message(0), &mut rx, &erased);
        assert_eq!(&one[..], b"data: 0\n\n");
        // Behind it, the backlog joins it, in order, up to the count limit.
        for n in 1..=MAX_WRITE_MESSAGES + 5 {
            tx.try_send(message(n)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let chunk = with_queued(first, &mut rx, &erased);
        let expected: Vec<u8> = (1..=MAX_WRITE_MESSAGES)
            .flat_map(|n| frame(None, None, &n.to_string()))
            .collect();
        assert_eq!(&chunk[..], &expected[..]);
        let rest = with_queued(rx.try_recv().unwrap(), &mut rx, &erased);
        let expected: Vec<u8> = (MAX_WRITE_MESSAGES + 1..=MAX_WRITE_MESSAGES + 5)
            .flat_map(|n| frame(None, None, &n.to_string()))
            .collect();
        assert_eq!(&rest[..], &expected[..]);
        // Large messages stop the chunk once it holds the byte limit.
        let big = "x".repeat(MAX_WRITE_BYTES / 2);
        for _ in 0..4 {
            tx.try_send(Buffered::new(frame(None, None, &big), None))
                .unwrap();
        }
        let chunk = with_queued(rx.try_recv().unwrap(), &mut rx, &erased);
        assert!(chunk.len() >= MAX_WRITE_BYTES && chunk.len() < MAX_WRITE_BYTES + big.len() * 2);
        assert!(
            rx.try_recv().is_ok(),
            "what did not fit waits for the next chunk"
        );
    }

    /// An event as the server stored it.
    fn recorded(content_type: ContentType, data: &[u8]) -> RecordedEvent {
        RecordedEvent {
            id: EventId::new(),
            stream_id: StreamId::new("account-1").unwrap(),
            version: 3,
            position: Position(1_234_567),
            event_type: "Deposited".into(),
            data: data.to_vec().into(),
            content_type,
            metadata: Metadata::default(),
            recorded_at: Default::default(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn an_event_frame_is_the_frame_of_its_wire_json() {
        let payloads: [&[u8]; 5] = [
            br#"{"sent_us":1,"seq":2}"#,
            b"{\n  \"pretty\": [1,\r\n 2]\n}\n\n",
            r#"{"esc":"\u00e9\n\ud83d\ude00","raw":"é"}"#.as_bytes(),
            b"\n\"s\"\n",
            b"[]",
        ];
        let cases = payloads
            .iter()
            .map(|d| recorded(ContentType::Json, d))
            .chain([recorded(ContentType::Binary, &[0, b'\n', 255])]);
        for mut e in cases {
            for with_metadata in [false, true] {
                if with_metadata {
                    e.metadata = Metadata::default()
                        .with_correlation_id("c\n1")
                        .with("tenant", "t\"é");
                    e.tags = vec![Tag::new("owner:ada").unwrap()];
                }
                let json = serde_json::to_string(&crate::streams::event_out(&e)).unwrap();
                let old = frame(None, Some(&e.position.to_string()), &json);
                let new = event_frame(&e).unwrap();
                assert_eq!(String::from_utf8_lossy(&new), String::from_utf8_lossy(&old));
                assert_eq!(new, old);
            }
        }
    }

    #[test]
    fn each_line_of_data_is_a_data_field() {
        assert_eq!(frame(None, None, "a\nb"), b"data: a\ndata: b\n\n");
    }
}
