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
use strata_wire::{WireError, SSE_BATCH_EVENT};
use tokio::sync::mpsc;

use crate::budget::Share;
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

/// The `data` of the frame [`event_frame`] wrote for the event at
/// `position`: its JSON, a line break inside it followed by `data: ` as in
/// the frame, so that it joins others in a batch's `data` field unchanged.
fn event_frame_data(frame: &[u8], position: u64) -> &[u8] {
    let digits = position.checked_ilog10().map_or(1, |l| l as usize + 1);
    let start = b"id: ".len() + digits + b"\ndata: ".len();
    debug_assert!(frame[..start].ends_with(b"\ndata: ") && frame.ends_with(b"\n\n"));
    &frame[start..frame.len() - 2]
}

/// Writes one [`SSE_BATCH_EVENT`] message carrying `events` (frames of
/// [`event_frame`], each with its event's position) as a JSON array, its
/// `id` the last one's position, and empties `events`. Writes nothing for
/// no events.
fn write_batch(out: &mut Vec<u8>, events: &mut Vec<(Vec<u8>, u64)>) {
    let Some(&(_, last)) = events.last() else {
        return;
    };
    push_field(out, "event", SSE_BATCH_EVENT);
    push_field(out, "id", &last.to_string());
    out.extend_from_slice(b"data: [");
    for (i, (frame, position)) in events.drain(..).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(event_frame_data(&frame, position));
    }
    out.extend_from_slice(b"]\n\n");
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
    batch: bool,
) -> Response {
    let stream = futures::stream::unfold(Some(rx), move |rx| {
        let erased = Arc::clone(&erased);
        async move {
            let mut rx = rx?;
            let (bytes, last) = match next_bytes(&mut rx, heartbeat, &erased, batch).await? {
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
    batch: bool,
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
                let bytes = with_queued(m, rx, erased, batch);
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
/// instead of one write (and one HTTP chunk) per event. With `batch`, each
/// run of events in it goes out as one [`SSE_BATCH_EVENT`] message. The
/// chunk holds every message's share of the budgets until it is written.
fn with_queued(
    first: Buffered,
    rx: &mut mpsc::Receiver<Buffered>,
    erased: &Erased,
    batch: bool,
) -> Bytes {
    let mut next = rx.try_recv().ok();
    if next.is_none() && !(batch && first.position().is_some()) {
        return first.into_bytes();
    }
    let mut chunk = Chunk::new(batch);
    chunk.push(first);
    while let Some(m) = next.take() {
        if !m.stream().is_some_and(|s| erased.hides(s.as_str())) {
            chunk.push(m);
        }
        if chunk.is_full() {
            break;
        }
        next = rx.try_recv().ok();
    }
    chunk.into_bytes()
}

/// Messages gathered into one write.
struct Chunk {
    bytes: Vec<u8>,
    shares: Vec<Share>,
    /// Frame bytes taken in, events waiting for their batch included.
    size: usize,
    messages: usize,
    /// With batches: the events of the run not yet written, each frame
    /// with its position.
    run: Option<Vec<(Vec<u8>, u64)>>,
}

impl Chunk {
    fn new(batch: bool) -> Self {
        Chunk {
            bytes: Vec::new(),
            shares: Vec::new(),
            size: 0,
            messages: 0,
            run: batch.then(Vec::new),
        }
    }

    /// Takes `m` in: an event joins the run of a batching chunk; any other
    /// message ends the run (written first), then follows it.
    fn push(&mut self, m: Buffered) {
        let position = m.position();
        let (frame, share) = m.into_parts();
        self.shares.extend(share);
        self.size += frame.len();
        self.messages += 1;
        match (&mut self.run, position) {
            (Some(run), Some(position)) => run.push((frame, position)),
            (Some(run), None) => {
                write_batch(&mut self.bytes, run);
                self.bytes.extend_from_slice(&frame);
            }
            (None, _) if self.bytes.is_empty() => self.bytes = frame,
            (None, _) => self.bytes.extend_from_slice(&frame),
        }
    }

    fn is_full(&self) -> bool {
        self.size >= MAX_WRITE_BYTES || self.messages >= MAX_WRITE_MESSAGES
    }

    fn into_bytes(mut self) -> Bytes {
        if let Some(run) = &mut self.run {
            write_batch(&mut self.bytes, run);
        }
        held_bytes(self.bytes, Some(self.shares))
    }
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
        let one = with_queued(message(0), &mut rx, &erased, false);
        assert_eq!(&one[..], b"data: 0\n\n");
        // Behind it, the backlog joins it, in order, up to the count limit.
        for n in 1..=MAX_WRITE_MESSAGES + 5 {
            tx.try_send(message(n)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let chunk = with_queued(first, &mut rx, &erased, false);
        let expected: Vec<u8> = (1..=MAX_WRITE_MESSAGES)
            .flat_map(|n| frame(None, None, &n.to_string()))
            .collect();
        assert_eq!(&chunk[..], &expected[..]);
        let rest = with_queued(rx.try_recv().unwrap(), &mut rx, &erased, false);
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
        let chunk = with_queued(rx.try_recv().unwrap(), &mut rx, &erased, false);
        assert!(chunk.len() >= MAX_WRITE_BYTES && chunk.len() < MAX_WRITE_BYTES + big.len() * 2);
        assert!(
            rx.try_recv().is_ok(),
            "what did not fit waits for the next chunk"
        );
    }

    /// Events queued behind one another, each with its share of a budget
    /// large enough for all of them.
    async fn queued_events(events: &[RecordedEvent]) -> Vec<Buffered> {
        use crate::budget::{BufferBudget, Pool};
        let wait = Duration::from_secs(1);
        let budget = BufferBudget {
            own: Pool::new(1 << 20, wait),
            server: Pool::new(1 << 20, wait).share_of(),
        };
        let mut out = Vec::new();
        for e in events {
            let frame = event_frame(e).unwrap();
            let share = budget.take(frame.len()).await.unwrap();
            out.push(Buffered::event(
                frame,
                share,
                e.stream_id.clone(),
                e.position.0,
            ));
        }
        out
    }

    /// The `data` of each message of `chunk` with its `event` and `id`.
    fn messages(chunk: &[u8]) -> Vec<(Option<String>, String, String)> {
        let text = std::str::from_utf8(chunk).unwrap();
        assert!(text.ends_with("\n\n"), "{text}");
        text.trim_end_matches('\n')
            .split("\n\n")
            .map(|m| {
                let (mut event, mut id, mut data) = (None, String::new(), Vec::new());
                for line in m.split('\n') {
                    let (field, value) = line.split_once(": ").unwrap();
                    match field {
                        "event" => event = Some(value.to_owned()),
                        "id" => id = value.to_owned(),
                        "data" => data.push(value),
                        other => panic!("field {other}"),
                    }
                }
                (event, id, data.join("\n"))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_carries_a_run_of_events_as_one_array() {
        let erased = crate::erasures::Erasures::default().register(None);
        let (tx, mut rx) = mpsc::channel(16);
        let payloads: [&[u8]; 4] = [b"{\"n\":1}", b"{\n  \"n\": 2\n}", b"[3]", b"4"];
        let events: Vec<RecordedEvent> = payloads
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut e = recorded(ContentType::Json, d);
                e.position = Position(9 + i as u64);
                e
            })
            .collect();
        let mut queued = queued_events(&events).await.into_iter();
        // Two events, a caught-up notice, two more: two batches around it.
        tx.try_send(queued.next().unwrap()).unwrap();
        tx.try_send(Buffered::new(
            frame(Some("caught_up"), Some("10"), "{}"),
            None,
        ))
        .unwrap();
        for m in queued {
            tx.try_send(m).unwrap();
        }
        let head = rx.try_recv().unwrap();
        let chunk = with_queued(head, &mut rx, &erased, true);
        let got = messages(&chunk);
        assert_eq!(got.len(), 3, "{got:?}");
        let json = |e: &RecordedEvent| serde_json::to_value(crate::streams::event_out(e)).unwrap();
        let array = |data: &str| serde_json::from_str::<Vec<serde_json::Value>>(data).unwrap();
        assert_eq!(got[0].0.as_deref(), Some(SSE_BATCH_EVENT));
        assert_eq!(got[0].1, "9");
        assert_eq!(array(&got[0].2), vec![json(&events[0])]);
        assert_eq!(got[1].0.as_deref(), Some("caught_up"));
        assert_eq!(got[2].0.as_deref(), Some(SSE_BATCH_EVENT));
        assert_eq!(got[2].1, "12");
        assert_eq!(
            array(&got[2].2),
            vec![json(&events[1]), json(&events[2]), json(&events[3])]
        );
        // A lone event is a batch of one; without batches, its own frame.
        let lone = queued_events(&events[..1]).await.pop().unwrap();
        let got = messages(&with_queued(lone, &mut rx, &erased, true));
        assert_eq!(got.len(), 1);
        assert_eq!(array(&got[0].2), vec![json(&events[0])]);
        let lone = queued_events(&events[..1]).await.pop().unwrap();
        let plain = with_queued(lone, &mut rx, &erased, false);
        assert_eq!(&plain[..], &event_frame(&events[0]).unwrap()[..]);
    }

    #[tokio::test]
    async fn a_batch_leaves_out_events_of_erased_streams() {
        let erasures = crate::erasures::Erasures::default();
        let erased = erasures.register(None);
        let (tx, mut rx) = mpsc::channel(16);
        let mut events = Vec::new();
        for (i, stream) in ["keep-1", "gone-1", "keep-1"].iter().enumerate() {
            let mut e = recorded(ContentType::Json, b"{}");
            e.stream_id = StreamId::new(stream).unwrap();
            e.position = Position(1 + i as u64);
            events.push(e);
        }
        let mut queued = queued_events(&events).await.into_iter();
        let head = queued.next().unwrap();
        for m in queued {
            tx.try_send(m).unwrap();
        }
        erasures.erased(&StreamId::new("gone-1").unwrap());
        let got = messages(&with_queued(head, &mut rx, &erased, true));
        assert_eq!(got.len(), 1);
        let positions: Vec<u64> = serde_json::from_str::<Vec<serde_json::Value>>(&got[0].2)
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, vec![1, 3]);
        assert_eq!(got[0].1, "3");
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
