//! What the benchmarks write: ~200-byte JSON events and fresh stream names.

use std::fmt::Write as _;

use strata_core::{Bytes, NewEvent, StreamId};

/// Target size of a benchmark event's JSON data, in bytes.
pub const EVENT_DATA_BYTES: usize = 200;
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
    StreamId::new(format!("bench-{run_id}x{i}"))
}

/// A fresh event whose data is about [`EVENT_DATA_BYTES`] of JSON. Each
/// event gets its own buffer, so a memory store holds as many bytes as a
/// real workload would.
pub fn event(seq: u64) -> NewEvent {
    let mut data = String::with_capacity(EVENT_DATA_BYTES + 16);
    // `write!` to a String cannot fail.
    let _ = write!(
        data,
        r#"{{"item":"item-{:08}","seq":{seq},"amount":"{}.{:02}","currency":"EUR","note":""#,
        seq % 100_000_000,
        seq % 10_000,
        seq % 100
    );
    let pad = EVENT_DATA_BYTES.saturating_sub(data.len() + 2);
    data.extend(std::iter::repeat_n('x', pad));
    data.push_str("\"}");
    NewEvent::json_bytes(EVENT_TYPE, Bytes::from(data))
}

/// `n` fresh events numbered from `first_seq`.
pub fn events(first_seq: u64, n: usize) -> Vec<NewEvent> {
    (0..n as u64).map(|i| event(first_seq + i)).collect()
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
        }
    }

    #[test]
    fn stream_names_are_valid() {
        assert_eq!(stream("0a1b2c3d", 5).unwrap().as_str(), "bench-0a1b2c3dx5");
    }
}
