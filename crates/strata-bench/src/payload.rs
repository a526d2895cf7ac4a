//! What the benchmarks write: ~200-byte JSON events and fresh stream names.

use std::fmt::Write as _;

use strata_core::{Bytes, NewEvent, StreamId};

/// Target size of a benchmark event's JSON data, in bytes.
pub const EVENT_DATA_BYTES: usize = 200;
/// The `x`s that pad an event's data to [`EVENT_DATA_BYTES`].
const PADDING: &str = match std::str::from_utf8(&[b'x'; EVENT_DATA_BYTES]) {
    Ok(s) => s,
    Err(_) => "",
};
/// Event type of the benchmark's raw events.
pub const EVENT_TYPE: &str = "BenchItemRecorded";

/// A suffix unique to this run: stream names never collide with earlier
/// runs on the same store (`--in-place`).
pub fn run_id() -> String {
    let id = strata_core::EventId::new().to_string();
    id[id.len() - 8..].to_string()
}

/// The `i`-th benchmark stream of run `run_id`: `bench-{run_id}x{i}`.
pub fn stream(run_id: &str, i: usize) -> Result<StreamId, strata_core::Error> {
    StreamId::new(format!("{}{i}", stream_prefix(run_id)))
}

/// The prefix of every benchmark stream of run `run_id`: `bench-{run_id}x`.
pub fn stream_prefix(run_id: &str) -> String {
    format!("bench-{run_id}x")
}

/// Writes the ~[`EVENT_DATA_BYTES`]-byte JSON data of benchmark event `seq`
/// to `out`, led by `"sent_us"` when given (see [`crate::delivery`]); the
/// padding keeps the size the same either way.
pub fn write_data(out: &mut String, seq: u64, sent_us: Option<u64>) {
    let start = out.len();
    out.push('{');
    // `write!` to a String cannot fail.
    if let Some(sent) = sent_us {
        let _ = write!(out, r#""{}":{sent},"#, crate::delivery::SENT_US_FIELD);
    }
    let _ = write!(
        out,
        r#""item":"item-{:08}","{}":{seq},"amount":"{}.{:02}","currency":"EUR","note":""#,
        seq % 100_000_000,
        crate::delivery::SEQ_FIELD,
        seq % 10_000,
        seq % 100
    );
    let pad = EVENT_DATA_BYTES.saturating_sub(out.len() - start + 2);
    // One copy of a slice, not `pad` pushes of a char: this runs per event
    // on the load generator's hot path.
    out.push_str(&PADDING[..pad.min(PADDING.len())]);
    out.push_str("\"}");
}

/// A fresh event whose data is about [`EVENT_DATA_BYTES`] of JSON. Each
/// event gets its own buffer, so a memory store holds as many bytes as a
/// real workload would.
pub fn event(seq: u64) -> NewEvent {
    stamped_event(seq, None)
}

/// [`event`], with `"sent_us"` when given.
pub fn stamped_event(seq: u64, sent_us: Option<u64>) -> NewEvent {
    let mut data = String::with_capacity(EVENT_DATA_BYTES + 16);
    write_data(&mut data, seq, sent_us);
    NewEvent::json_bytes(EVENT_TYPE, Bytes::from(data))
}

/// `n` fresh events numbered from `first_seq`.
pub fn events(first_seq: u64, n: usize) -> Vec<NewEvent> {
    stamped_events(first_seq, n, None)
}

/// [`events`], each with `"sent_us"` when given.
pub fn stamped_events(first_seq: u64, n: usize, sent_us: Option<u64>) -> Vec<NewEvent> {
    (0..n as u64)
        .map(|i| stamped_event(first_seq + i, sent_us))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_of_the_target_size() {
        for seq in [0, 7, 123_456_789] {
            let e = event(seq);
            assert_eq!(e.data.len(), EVENT_DATA_BYTES);
            let v: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
            assert_eq!(v["seq"], seq);
            let e = stamped_event(seq, Some(1_234_567));
            assert_eq!(e.data.len(), EVENT_DATA_BYTES);
            let v: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
            assert_eq!(v["seq"], seq);
            assert_eq!(v["sent_us"], 1_234_567);
            assert_eq!(
                crate::delivery::stamps(&e.data),
                Some(crate::delivery::Stamps {
                    sent_us: 1_234_567,
                    seq
                })
            );
        }
    }

    #[test]
    fn stream_names_are_valid() {
        assert_eq!(stream("0a1b2c3d", 5).unwrap().as_str(), "bench-0a1b2c3dx5");
        assert!("bench-0a1b2c3dx5".starts_with(&stream_prefix("0a1b2c3d")));
    }
}
