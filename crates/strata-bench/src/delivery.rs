//! Subscription delivery latency and the exactly-once, in-order check.
//!
//! A writer stamps each event's data with `"sent_us"`: microseconds on a
//! process-local clock ([`now_us`]) taken just before the append is sent.
//! The benchmark is one process (writers and subscriber alike, also when the
//! server is a child process), so the stamps and the subscriber's own reading
//! of the clock are on the same base. The subscriber hands every event to a
//! [`DeliveryCheck`], which records `now - sent_us` and checks that each of
//! the run's events (numbered by their `"seq"`) arrives exactly once and in
//! position order.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::latency::Latency;

/// The data field carrying the send time, in microseconds on [`now_us`]'s clock.
pub const SENT_US_FIELD: &str = "sent_us";
/// The data field carrying the event's number within the run.
pub const SEQ_FIELD: &str = "seq";

const SENT_US_KEY: &[u8] = b"\"sent_us\":";
const SEQ_KEY: &[u8] = b"\"seq\":";

/// Most events of a run whose delivery time is kept for the
/// after-acknowledgement latency (8 bytes each: 80 MB at most).
pub const MAX_ACK_TRACKED_EVENTS: u64 = 10_000_000;

static CLOCK_BASE: OnceLock<Instant> = OnceLock::new();

/// Microseconds since this process first asked (a monotonic, process-local clock).
pub fn now_us() -> u64 {
    let base = CLOCK_BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Where the value after the first `"key":` in `json` starts, by a plain
/// scan (no JSON parse: the subscriber must stay cheap at 100,000s of events
/// per second). `key` is one of the byte patterns above.
fn find_key(json: &[u8], key: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = json[from..].iter().position(|&b| b == b'"') {
        let at = from + off;
        if json[at..].starts_with(key) {
            return Some(at + key.len());
        }
        from = at + 1;
    }
    None
}

/// The unsigned integer starting at `json[at..]` (after optional spaces).
fn parse_u64_at(json: &[u8], at: usize) -> Option<u64> {
    let rest = json.get(at..)?;
    let skip = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &rest[skip..];
    let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    std::str::from_utf8(&rest[..len]).ok()?.parse().ok()
}

/// The `"sent_us"` and `"seq"` stamps of an event whose data (or whose whole
/// JSON form) is `json`.
pub fn stamps(json: &[u8]) -> Option<Stamps> {
    let sent_at = find_key(json, SENT_US_KEY)?;
    let sent_us = parse_u64_at(json, sent_at)?;
    // The benchmark writes `seq` after `sent_us`: look there first.
    let seq_at = match find_key(&json[sent_at..], SEQ_KEY) {
        Some(at) => sent_at + at,
        None => find_key(json, SEQ_KEY)?,
    };
    let seq = parse_u64_at(json, seq_at)?;
    Some(Stamps { sent_us, seq })
}

/// What a benchmark event carries for the delivery check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    /// When it was sent, on [`now_us`]'s clock.
    pub sent_us: u64,
    /// Its number in the run, `0..events`.
    pub seq: u64,
}

/// Why a subscriber's feed was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// An event came at or before a position already delivered.
    OutOfOrder {
        /// Its position.
        position: u64,
        /// The position delivered before it.
        after: u64,
    },
    /// An event's `"seq"` is not one of this run's.
    UnknownSeq {
        /// The event's position.
        position: u64,
        /// Its `"seq"`.
        seq: u64,
        /// Events in the run (seqs are `0..expected`).
        expected: u64,
    },
    /// An event was delivered twice.
    Duplicate {
        /// Its `"seq"`.
        seq: u64,
        /// The position of the second delivery.
        position: u64,
    },
    /// An event without the stamps.
    Unstamped {
        /// Its position.
        position: u64,
    },
    /// Not every event arrived.
    Missing {
        /// Events delivered.
        seen: u64,
        /// Events appended.
        expected: u64,
        /// The lowest `"seq"` not delivered.
        first_missing: u64,
    },
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::OutOfOrder { position, after } => write!(
                f,
                "the subscriber got position {position} after position {after}: not in position order"
            ),
            DeliveryError::UnknownSeq {
                position,
                seq,
                expected,
            } => write!(
                f,
                "the subscriber got an event with seq {seq} at position {position}, but the run has only {expected} events"
            ),
            DeliveryError::Duplicate { seq, position } => write!(
                f,
                "the subscriber got event seq {seq} twice (again at position {position})"
            ),
            DeliveryError::Unstamped { position } => write!(
                f,
                "the subscriber got an event without \"{SENT_US_FIELD}\" and \"{SEQ_FIELD}\" at position {position}"
            ),
            DeliveryError::Missing {
                seen,
                expected,
                first_missing,
            } => write!(
                f,
                "the subscriber got {seen} of {expected} events (the first missing is seq {first_missing})"
            ),
        }
    }
}

impl std::error::Error for DeliveryError {}

impl Delivery {
    /// Computes [`Delivery::after_ack`] from the writers' acknowledgements
    /// (events numbered in appends of `batch`) and frees the delivery times.
    pub fn add_after_ack(&mut self, acks: &AckLog, batch: u64) {
        self.after_ack = acks.after_ack(&self.delivered_us, batch);
        self.delivered_us = Vec::new();
    }
}

/// When each append of a run was acknowledged, on [`now_us`]'s clock.
#[derive(Debug, Default)]
pub struct AckLog {
    acked_us: Vec<AtomicU64>,
}

impl AckLog {
    /// A log for `appends` appends of a run of `events` events; it keeps
    /// nothing when the run has more than [`MAX_ACK_TRACKED_EVENTS`].
    pub fn new(appends: u64, events: u64) -> Self {
        let n = if events <= MAX_ACK_TRACKED_EVENTS {
            usize::try_from(appends).unwrap_or(0)
        } else {
            0
        };
        AckLog {
            acked_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Notes that append `i` was acknowledged at `now_us`.
    pub fn acked(&self, i: u64, now_us: u64) {
        if let Some(a) = usize::try_from(i).ok().and_then(|i| self.acked_us.get(i)) {
            a.store(now_us, Ordering::Relaxed);
        }
    }

    /// Delivery minus acknowledgement for each event `seq` (in append
    /// `seq / batch`), zero when it was delivered first; `None` unless both
    /// times were kept for every event.
    pub fn after_ack(&self, delivered_us: &[u64], batch: u64) -> Option<Latency> {
        if delivered_us.is_empty() || self.acked_us.is_empty() || batch == 0 {
            return None;
        }
        let mut l = Latency::new();
        for (seq, d) in delivered_us.iter().enumerate() {
            let acked = self
                .acked_us
                .get(seq / batch as usize)?
                .load(Ordering::Relaxed);
            l.record(Duration::from_micros(d.saturating_sub(acked)));
        }
        Some(l)
    }
}

/// What a subscriber measured.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    /// Time from send to delivery, per event.
    pub latency: Latency,
    /// Time from the append's acknowledgement to delivery, per event (zero
    /// when delivered first); set by [`Delivery::add_after_ack`].
    pub after_ack: Option<Latency>,
    /// When each event (by seq) was delivered, on [`now_us`]'s clock; empty
    /// once [`Delivery::add_after_ack`] used it, or for runs over
    /// [`MAX_ACK_TRACKED_EVENTS`].
    pub delivered_us: Vec<u64>,
    /// Events delivered (each once, in position order).
    pub events: u64,
    /// Times the subscriber had to reconnect (HTTP: dropped as a slow consumer).
    pub reconnects: u64,
}

/// Checks a subscriber's feed event by event and records delivery latency.
///
/// Holds one bit per expected event (125 MB for the largest run of
/// [`MAX_EVENTS`](crate::MAX_EVENTS) events, 125 KB for a million).
#[derive(Debug)]
pub struct DeliveryCheck {
    expected: u64,
    seen_bits: Vec<u64>,
    seen: u64,
    last_position: Option<u64>,
    latency: Latency,
    reconnects: u64,
    delivered_us: Vec<u64>,
}

impl DeliveryCheck {
    /// A check for events with seqs `0..expected`.
    pub fn new(expected: u64) -> Self {
        let words = usize::try_from(expected.div_ceil(64)).unwrap_or(usize::MAX);
        DeliveryCheck {
            expected,
            seen_bits: vec![0; words],
            seen: 0,
            last_position: None,
            latency: Latency::new(),
            reconnects: 0,
            delivered_us: if expected <= MAX_ACK_TRACKED_EVENTS {
                // At most MAX_ACK_TRACKED_EVENTS: fits in a usize.
                vec![0; expected as usize]
            } else {
                Vec::new()
            },
        }
    }

    /// Records one delivered event, seen at `now_us` on [`now_us`]'s clock.
    pub fn record(
        &mut self,
        position: u64,
        stamps: Option<Stamps>,
        now_us: u64,
    ) -> Result<(), DeliveryError> {
        if let Some(after) = self.last_position {
            if position <= after {
                return Err(DeliveryError::OutOfOrder { position, after });
            }
        }
        self.last_position = Some(position);
        let Some(Stamps { sent_us, seq }) = stamps else {
            return Err(DeliveryError::Unstamped { position });
        };
        if seq >= self.expected {
            return Err(DeliveryError::UnknownSeq {
                position,
                seq,
                expected: self.expected,
            });
        }
        // `seq < expected`, whose word count fits in memory, so these index.
        let word = (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if self.seen_bits[word] & bit != 0 {
            return Err(DeliveryError::Duplicate { seq, position });
        }
        self.seen_bits[word] |= bit;
        self.seen += 1;
        if let Some(d) = self.delivered_us.get_mut(seq as usize) {
            *d = now_us;
        }
        self.latency
            .record(Duration::from_micros(now_us.saturating_sub(sent_us)));
        Ok(())
    }

    /// The position of the last event delivered, if any (where to resume).
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }

    /// Reconnections so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Counts a reconnection.
    pub fn reconnected(&mut self) {
        self.reconnects += 1;
    }

    /// Whether every expected event was delivered.
    pub fn is_complete(&self) -> bool {
        self.seen == self.expected
    }

    /// The result, or [`DeliveryError::Missing`] unless every event came.
    pub fn finish(self) -> Result<Delivery, DeliveryError> {
        if !self.is_complete() {
            let first_missing = self
                .seen_bits
                .iter()
                .enumerate()
                .find(|(_, w)| **w != u64::MAX)
                .map(|(i, w)| i as u64 * 64 + u64::from(w.trailing_ones()))
                .unwrap_or(self.expected)
                .min(self.expected);
            return Err(DeliveryError::Missing {
                seen: self.seen,
                expected: self.expected,
                first_missing,
            });
        }
        Ok(Delivery {
            latency: self.latency,
            after_ack: None,
            delivered_us: self.delivered_us,
            events: self.seen,
            reconnects: self.reconnects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sent_us: u64, seq: u64) -> Option<Stamps> {
        Some(Stamps { sent_us, seq })
    }

    #[test]
    fn scans_stamps_from_event_data_and_from_the_wire_form() {
        let data = br#"{"sent_us":12345,"item":"item-00000007","seq":7,"note":"xx"}"#;
        assert_eq!(
            stamps(data),
            Some(Stamps {
                sent_us: 12345,
                seq: 7
            })
        );
        let wire = br#"{"id":"0190","stream":"bench-ab","version":3,"position":17,"type":"T","data":{"sent_us": 99,"seq":0},"metadata":{}}"#;
        assert_eq!(
            stamps(wire),
            Some(Stamps {
                sent_us: 99,
                seq: 0
            })
        );
        assert_eq!(stamps(br#"{"seq":1}"#), None);
        assert_eq!(
            stamps(br#"{"seq":4,"sent_us":5}"#),
            Some(Stamps { sent_us: 5, seq: 4 })
        );
        assert_eq!(stamps(br#"{"sent_us":"x","seq":1}"#), None);
        assert_eq!(stamps(b""), None);
    }

    #[test]
    fn records_latency_of_each_event_in_order() {
        let mut c = DeliveryCheck::new(3);
        c.record(10, st(1_000, 2), 1_500).unwrap();
        c.record(11, st(1_000, 0), 3_000).unwrap();
        assert!(!c.is_complete());
        c.record(15, st(2_000, 1), 2_100).unwrap();
        assert!(c.is_complete());
        assert_eq!(c.last_position(), Some(15));
        let d = c.finish().unwrap();
        assert_eq!(d.events, 3);
        assert_eq!(d.latency.count(), 3);
        let p50 = d.latency.quantile_us(0.5).unwrap();
        let max = d.latency.quantile_us(1.0).unwrap();
        assert!((499.0..=501.0).contains(&p50), "{p50}");
        assert!((1_998.0..=2_002.0).contains(&max), "{max}");
    }

    #[test]
    fn a_clock_running_backwards_counts_as_zero_not_a_panic() {
        let mut c = DeliveryCheck::new(1);
        c.record(1, st(5_000, 0), 4_000).unwrap();
        let d = c.finish().unwrap();
        assert!(d.latency.quantile_us(1.0).unwrap() < 0.01);
    }

    #[test]
    fn rejects_out_of_order_duplicate_unknown_and_unstamped_events() {
        let mut c = DeliveryCheck::new(200);
        c.record(5, st(0, 130), 1).unwrap();
        assert_eq!(
            c.record(5, st(0, 1), 1),
            Err(DeliveryError::OutOfOrder {
                position: 5,
                after: 5
            })
        );
        let mut c = DeliveryCheck::new(200);
        c.record(5, st(0, 130), 1).unwrap();
        assert_eq!(
            c.record(6, st(0, 130), 1),
            Err(DeliveryError::Duplicate {
                seq: 130,
                position: 6
            })
        );
        assert_eq!(
            c.record(7, st(0, 200), 1),
            Err(DeliveryError::UnknownSeq {
                position: 7,
                seq: 200,
                expected: 200
            })
        );
        assert_eq!(
            c.record(8, None, 1),
            Err(DeliveryError::Unstamped { position: 8 })
        );
        let msg = DeliveryError::Duplicate {
            seq: 130,
            position: 6,
        }
        .to_string();
        assert!(msg.contains("seq 130 twice"), "{msg}");
    }

    #[test]
    fn finish_names_the_first_missing_event() {
        let mut c = DeliveryCheck::new(130);
        for seq in 0..130u64 {
            if seq != 70 {
                c.record(seq + 1, st(0, seq), 0).unwrap();
            }
        }
        assert_eq!(
            c.finish().unwrap_err(),
            DeliveryError::Missing {
                seen: 129,
                expected: 130,
                first_missing: 70
            }
        );
        // Nothing delivered at all: the first missing is 0.
        let err = DeliveryCheck::new(3).finish().unwrap_err();
        assert_eq!(
            err,
            DeliveryError::Missing {
                seen: 0,
                expected: 3,
                first_missing: 0
            }
        );
    }

    #[test]
    fn after_ack_latency_is_delivery_minus_the_appends_ack() {
        // Two appends of 2 events: acked at 1,000 and 5,000 µs.
        let acks = AckLog::new(2, 4);
        acks.acked(0, 1_000);
        acks.acked(1, 5_000);
        let mut c = DeliveryCheck::new(4);
        c.record(1, st(0, 0), 1_100).unwrap();
        c.record(2, st(0, 1), 1_300).unwrap();
        // Delivered before its append's ack arrived: counts as zero.
        c.record(3, st(0, 2), 4_900).unwrap();
        c.record(4, st(0, 3), 5_700).unwrap();
        let mut d = c.finish().unwrap();
        assert_eq!(d.delivered_us, vec![1_100, 1_300, 4_900, 5_700]);
        d.add_after_ack(&acks, 2);
        assert!(d.delivered_us.is_empty());
        let a = d.after_ack.unwrap();
        assert_eq!(a.count(), 4);
        assert!(a.quantile_us(0.0).unwrap() < 0.01);
        let max = a.quantile_us(1.0).unwrap();
        assert!((699.0..=701.0).contains(&max), "{max}");
        // Too many events to keep: no after-ack figure.
        let big = AckLog::new(1, MAX_ACK_TRACKED_EVENTS + 1);
        assert_eq!(big.after_ack(&[1, 2], 1).map(|l| l.count()), None);
    }

    #[test]
    fn now_us_is_monotonic() {
        let a = now_us();
        std::thread::sleep(Duration::from_millis(2));
        let b = now_us();
        assert!(b >= a + 1_000, "{a} {b}");
    }
}
