//! Idempotency: whether an append re-sends events already recorded.

use std::collections::HashMap;

use strata_core::append_rules::{check_retry, RecordedRef};
use strata_core::{AppendResult, Error, EventId, Position, Result, StreamAppend};

use crate::format::RecordView;
use crate::state::{damaged_index_segment, State};
use crate::writer::pending::Pending;
use crate::writer::Writer;

impl Writer {
    /// Decides whether `part` is an exact retry: `Some` with the original
    /// outcome if it is, an error if it re-sends ids in a different way.
    pub(super) fn retry_of(
        &self,
        state: &State,
        pending: &Pending,
        part: &StreamAppend,
    ) -> Result<Option<AppendResult>> {
        // Resolve every supplied id that is recorded (in a turn not yet
        // published, this one included, or before).
        let mut found: HashMap<EventId, (String, u64, u64)> = HashMap::new();
        for e in &part.events {
            let Some(id) = e.id else { continue };
            if let Some((s, v, p)) = pending.id(&id) {
                found.insert(id, (s.as_str().to_owned(), *v, *p));
            } else if let Some(p) = self.lookup_or_repair(state, id)? {
                let (stream, version) = read_stream_version(state, p)?;
                found.insert(id, (stream, version, p));
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        check_retry(&part.stream, &part.events, |id| {
            found.get(id).map(|(s, v, p)| RecordedRef {
                stream: s.as_str(),
                version: *v,
                position: Position(*p),
            })
        })
    }

    /// Looks an id up; a damaged sealed index fails this append and is
    /// rebuilt in the background, so a retry succeeds.
    fn lookup_or_repair(&self, state: &State, id: EventId) -> Result<Option<u64>> {
        match state.lookup_id(id.0.as_u128()) {
            Err(Error::Corrupt { location, reason }) => {
                if let Some(n) = damaged_index_segment(&location) {
                    self.store.spawn_index_repair(n);
                }
                Err(Error::Corrupt { location, reason })
            }
            other => other,
        }
    }
}

/// The stream and version of the event recorded at position `p`.
fn read_stream_version(state: &State, p: u64) -> Result<(String, u64)> {
    state.with_record_at(p, |_, record, corrupt| {
        let view = RecordView::parse(record).map_err(|reason| corrupt(reason.to_string()))?;
        Ok((view.stream.to_owned(), view.version))
    })
}
