//! Named limits on what one call may carry, and the input checks that enforce them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::append::StreamAppend;
use crate::error::{Error, Result};
use crate::event::{ContentType, NewEvent};

/// Limits every store enforces before writing anything. The defaults are safe
/// for a shared server; embedders may raise them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest event: type + data + metadata, in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Most events in one append (or one multi-stream append). Default 10,000.
    pub max_events_per_append: usize,
    /// Largest append in total bytes. Default 64 MiB.
    pub max_append_bytes: usize,
    /// Longest event type name, in bytes. Default 255.
    pub max_event_type_bytes: usize,
    /// Most streams in one multi-stream append. Default 1,000.
    pub max_streams_per_multi_append: usize,
    /// Most events one read may ask for. Default 100,000.
    pub max_read_count: usize,
    /// Most bytes of appends a store holds queued for its writer at once,
    /// across all callers; an append that would go over is refused at once
    /// with `Overloaded` (retry later) rather than queued. Default 256 MiB.
    #[serde(default = "default_max_queued_append_bytes")]
    pub max_queued_append_bytes: usize,
}

fn default_max_queued_append_bytes() -> usize {
    256 * 1024 * 1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1024 * 1024,
            max_events_per_append: 10_000,
            max_append_bytes: 64 * 1024 * 1024,
            max_event_type_bytes: 255,
            max_streams_per_multi_append: 1_000,
            max_read_count: 100_000,
            max_queued_append_bytes: default_max_queued_append_bytes(),
        }
    }
}

impl Limits {
    /// Checks one append's events; returns their size in bytes (the sum of
    /// [`NewEvent::size_bytes`]), measured once here so a store need not
    /// measure them again. An append over a size limit (`max_event_bytes`,
    /// `max_events_per_append`, `max_append_bytes`) is
    /// [`Error::TooLarge`]; any other fault is [`Error::InvalidInput`].
    pub fn check_events(&self, events: &[NewEvent]) -> Result<usize> {
        self.check_count_and_events(events.len(), events.iter())
    }

    /// Checks a multi-stream append: every part, the total, and that no stream
    /// appears twice. Returns the events' size in bytes, as
    /// [`check_events`](Self::check_events) does.
    pub fn check_multi(&self, parts: &[StreamAppend]) -> Result<usize> {
        if parts.is_empty() {
            return Err(Error::invalid(
                "a multi-stream append needs at least one stream",
            ));
        }
        if parts.len() > self.max_streams_per_multi_append {
            return Err(Error::invalid(format!(
                "{} streams in one multi-stream append, the limit is {}",
                parts.len(),
                self.max_streams_per_multi_append
            )));
        }
        let mut seen = HashSet::with_capacity(parts.len());
        for p in parts {
            if !seen.insert(p.stream.as_str()) {
                return Err(Error::invalid(format!(
                    "stream `{}` appears twice in one multi-stream append",
                    p.stream
                )));
            }
            if p.events.is_empty() {
                return Err(Error::invalid(format!(
                    "no events for stream `{}` in a multi-stream append",
                    p.stream
                )));
            }
        }
        let total: usize = parts.iter().map(|p| p.events.len()).sum();
        self.check_count_and_events(total, parts.iter().flat_map(|p| p.events.iter()))
    }

    /// Checks the `max_count` of a read.
    pub fn check_read_count(&self, max_count: usize) -> Result<()> {
        if max_count > self.max_read_count {
            return Err(Error::invalid(format!(
                "a read of {max_count} events exceeds the limit of {}; read in pages",
                self.max_read_count
            )));
        }
        Ok(())
    }

    fn check_count_and_events<'a>(
        &self,
        count: usize,
        events: impl Iterator<Item = &'a NewEvent>,
    ) -> Result<usize> {
        if count == 0 {
            return Err(Error::invalid("an append needs at least one event"));
        }
        if count > self.max_events_per_append {
            return Err(Error::too_large(format!(
                "{count} events in one append, the limit is {}: split it",
                self.max_events_per_append
            )));
        }
        let mut total = 0usize;
        let mut ids = HashSet::new();
        for (i, e) in events.enumerate() {
            total += self.check_event(i, e)?;
            if let Some(id) = e.id {
                if !ids.insert(id) {
                    return Err(Error::invalid(format!(
                        "event id {id} appears twice in one append"
                    )));
                }
            }
        }
        if total > self.max_append_bytes {
            return Err(Error::too_large(format!(
                "the events total {total} bytes, the limit for one append is {}",
                self.max_append_bytes
            )));
        }
        Ok(total)
    }

    /// Checks one event; returns its size.
    fn check_event(&self, index: usize, e: &NewEvent) -> Result<usize> {
        if e.event_type.is_empty() {
            return Err(Error::invalid(format!("event {index} has an empty type")));
        }
        if e.event_type.len() > self.max_event_type_bytes {
            return Err(Error::invalid(format!(
                "event {index} has a type of {} bytes, the limit is {}",
                e.event_type.len(),
                self.max_event_type_bytes
            )));
        }
        if e.event_type.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "event {index} has a control character in its type"
            )));
        }
        crate::dcb::check_tags(&e.tags)
            .map_err(|err| Error::invalid(format!("event {index}: {err}")))?;
        let size = e.size_bytes();
        if size > self.max_event_bytes {
            return Err(Error::too_large(format!(
                "event {index} (`{}`) is {size} bytes, the limit is {}",
                e.event_type, self.max_event_bytes
            )));
        }
        if e.content_type == ContentType::Json && !e.json_checked.covers(&e.data) {
            if let Err(err) = ContentType::check_json(&e.data) {
                return Err(Error::invalid(format!(
                    "event {index} (`{}`) is declared JSON but its data does not parse: {err}",
                    e.event_type
                )));
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;

    #[test]
    fn vouched_json_is_counted_and_replaced_data_is_parsed() {
        let limits = Limits::default();
        let e = NewEvent::json("A", &serde_json::json!({"n": 1})).unwrap();
        assert_eq!(
            limits.check_events(std::slice::from_ref(&e)).unwrap(),
            e.size_bytes()
        );
        let swapped = NewEvent {
            data: Bytes::from_static(b"{\"n\": 1"),
            ..e
        };
        let err = limits.check_events(&[swapped]).unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
    }

    #[test]
    fn the_size_returned_is_the_sum_over_every_part() {
        let limits = Limits::default();
        let part = |name: &str, n: usize| {
            let events = (0..n)
                .map(|i| NewEvent::json_bytes("Typed", format!("{{\"i\":{i}}}")))
                .collect::<Vec<_>>();
            StreamAppend::new(
                crate::StreamId::new(name).unwrap(),
                crate::ExpectedVersion::Any,
                events,
            )
        };
        let parts = [part("a-1", 3), part("b-1", 12)];
        let want: usize = parts
            .iter()
            .flat_map(|p| &p.events)
            .map(NewEvent::size_bytes)
            .sum();
        assert_eq!(limits.check_multi(&parts).unwrap(), want);
    }

    #[test]
    fn each_size_limit_is_too_large_and_other_faults_are_invalid() {
        let limits = Limits {
            max_event_bytes: 100,
            max_events_per_append: 3,
            max_append_bytes: 250,
            ..Limits::default()
        };
        let sized = |n: usize| NewEvent::new("A", vec![b'x'; n], ContentType::Binary);
        let kind = |events: &[NewEvent]| limits.check_events(events).unwrap_err().kind();
        assert_eq!(kind(&[sized(100)]), "payload_too_large");
        assert_eq!(
            kind(&[sized(1), sized(1), sized(1), sized(1)]),
            "payload_too_large"
        );
        assert_eq!(
            kind(&[sized(90), sized(90), sized(90)]),
            "payload_too_large"
        );
        assert_eq!(kind(&[]), "invalid_input");
        let untyped = NewEvent::new("", Bytes::new(), ContentType::Binary);
        assert_eq!(kind(&[untyped]), "invalid_input");
        // At the limits exactly, the append passes and its size is returned.
        let at = [sized(99), sized(99)];
        assert_eq!(limits.check_events(&at).unwrap(), 2 * at[0].size_bytes());
        // A multi-stream append counts its parts together.
        let part = |name: &str| {
            StreamAppend::new(
                crate::StreamId::new(name).unwrap(),
                crate::ExpectedVersion::Any,
                vec![sized(1), sized(1)],
            )
        };
        let err = limits.check_multi(&[part("a-1"), part("b-1")]).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("4 events"), "{err}");
    }
}
