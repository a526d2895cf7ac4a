//! Entry points for fuzzing the wire types. Not part of the API: the fuzz
//! targets (`fuzz/` at the repository root) and the corpus replay test of
//! `strata-integration` call these same functions.
//!
//! Each takes arbitrary bytes and never panics on any input; it panics only
//! when a type breaks its own contract (what decodes does not convert back
//! to the same value), which is what a fuzzer reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use strata_core::NewEvent;

use crate::{expected, stream_id, AppendBody, EventIn, MultiBody, WireEvent};

/// The JSON bodies of the API: the bytes decoded as an append body, a multi
/// body, a wire event and an expected version. What decodes is converted to
/// the store's types and back, and must come back equal. Returns whether
/// the bytes were a valid append or multi body (every event convertible) or
/// a valid wire event.
pub fn bodies(data: &[u8]) -> bool {
    let mut valid = false;
    if let Ok(body) = serde_json::from_slice::<AppendBody>(data) {
        valid |= append_body(body);
    }
    if let Ok(body) = serde_json::from_slice::<MultiBody>(data) {
        let mut all = true;
        for part in body.streams {
            all &= stream_id(&part.stream).is_ok();
            all &= events(part.events);
            assert_expected(part.expected_version);
        }
        valid |= all;
    }
    if let Ok(w) = serde_json::from_slice::<WireEvent<'_>>(data) {
        valid |= wire_event(w);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        if let Some(e) = expected::from_json(&v) {
            assert_expected(e);
        }
    }
    valid
}

fn append_body(body: AppendBody) -> bool {
    assert_expected(body.expected_version);
    let text = serde_json::to_string(&body).expect("an append body serializes");
    let again: AppendBody = serde_json::from_str(&text).expect("an append body decodes again");
    assert_eq!(again.expected_version, body.expected_version);
    events(body.events)
}

/// Converts each event to a `NewEvent`, back to the wire and again: the two
/// `NewEvent`s must be equal. Whether every event converted.
fn events(events: Vec<EventIn>) -> bool {
    events.into_iter().all(|e| match e.into_new_event() {
        Ok(first) => {
            assert_eq!(again(&first), first, "an event converts back to itself");
            true
        }
        Err(_) => false,
    })
}

fn again(e: &NewEvent) -> NewEvent {
    let text = serde_json::to_string(&EventIn::from_new(e)).expect("an event serializes");
    let w: EventIn = serde_json::from_str(&text).expect("a serialized event decodes");
    w.into_new_event()
        .expect("a converted event converts again")
}

/// A guard's JSON and query spellings read back as itself.
fn assert_expected(e: strata_core::ExpectedVersion) {
    assert_eq!(expected::from_json(&expected::to_json(e)), Some(e));
    assert_eq!(expected::to_param(e).parse().ok(), Some(e));
}

/// A wire event read as a recorded event, shown and read again: equal, but
/// for `recorded_at`, which is shown to the microsecond. Whether it
/// converted.
fn wire_event(w: WireEvent<'_>) -> bool {
    let Ok(mut first) = w.into_recorded() else {
        return false;
    };
    let text = serde_json::to_string(&WireEvent::from_recorded(&first)).expect("serializes");
    let w: WireEvent<'_> = serde_json::from_str(&text).expect("a shown event decodes");
    let second = w.into_recorded().expect("a shown event converts");
    let drift = (first.recorded_at - second.recorded_at).num_microseconds();
    assert_eq!(drift, Some(0), "recorded_at survives to the microsecond");
    first.recorded_at = second.recorded_at;
    assert_eq!(first, second, "a wire event converts back to itself");
    true
}
