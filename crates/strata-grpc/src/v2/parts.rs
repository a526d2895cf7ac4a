//! The parts of one multi-stream append as a v2 call's records arrive:
//! one part per stream in first-appearance order, each stream's records in
//! the order sent, checked against the store's limits as they come so an
//! oversized call is refused before the rest of it is read.

use std::collections::HashMap;

use strata_core::{ExpectedVersion, Limits, StreamAppend, StreamId};
use strata_server::Role;
use tonic::Status;

use super::errors;
use super::records;
use crate::auth::Caller;
use crate::proto::v2::AppendRecord;

/// The parts gathered so far and their totals.
pub struct Parts<'a> {
    limits: Limits,
    caller: &'a Caller,
    parts: Vec<StreamAppend>,
    index: HashMap<StreamId, usize>,
    events: usize,
    bytes: usize,
}

impl<'a> Parts<'a> {
    /// No parts yet, to be held to `limits` (the store's: at most
    /// `max_streams_per_multi_append` streams, `max_events_per_append`
    /// records, `max_event_bytes` a record and `max_append_bytes` in all),
    /// on behalf of `caller`.
    pub fn new(limits: Limits, caller: &'a Caller) -> Self {
        Self {
            limits,
            caller,
            parts: Vec::new(),
            index: HashMap::new(),
            events: 0,
            bytes: 0,
        }
    }

    /// The part of `stream`, if it has one.
    pub fn find(&self, stream: &StreamId) -> Option<usize> {
        self.index.get(stream).copied()
    }

    /// A new part for `stream` (which must have none yet), guarded by
    /// `expected`, once the caller may write to it and the call has room
    /// for one more stream.
    pub fn open(&mut self, stream: StreamId, expected: ExpectedVersion) -> Result<usize, Status> {
        self.caller.require(Role::Write, stream.as_str())?;
        let max = self.limits.max_streams_per_multi_append;
        if self.parts.len() >= max {
            return Err(Status::invalid_argument(format!(
                "one append writes to at most {max} streams"
            )));
        }
        let at = self.parts.len();
        self.index.insert(stream.clone(), at);
        self.parts
            .push(StreamAppend::new(stream, expected, Vec::new()));
        Ok(at)
    }

    /// The part's guard.
    pub fn guard(&mut self, part: usize, expected: ExpectedVersion) {
        self.parts[part].expected = expected;
    }

    /// Adds `record` to `part`, refusing a record or a call over the limits.
    pub fn push(&mut self, part: usize, record: AppendRecord) -> Result<(), Status> {
        let event = records::new_event(record)?;
        let stream = &self.parts[part].stream;
        let size = event.size_bytes();
        let max = self.limits.max_event_bytes;
        if size > max {
            return Err(errors::record_too_large(
                stream,
                &records::record_id(&event),
                size,
                max,
            ));
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.limits.max_append_bytes {
            return Err(errors::transaction_too_large(
                self.bytes,
                self.limits.max_append_bytes,
            ));
        }
        self.events += 1;
        if self.events > self.limits.max_events_per_append {
            return Err(Status::invalid_argument(format!(
                "one append holds at most {} records",
                self.limits.max_events_per_append
            )));
        }
        self.parts[part].events.push(event);
        Ok(())
    }

    /// Whether no part was opened.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The parts, in first-appearance order.
    pub fn into_parts(self) -> Vec<StreamAppend> {
        self.parts
    }
}
