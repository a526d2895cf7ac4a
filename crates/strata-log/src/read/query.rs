//! Query reads of dynamic consistency boundaries, answered from the tag
//! index, and the index's rebuild when a store opens.

use strata_core::dcb::{Query, QUERY_SCAN_PAGE};
use strata_core::{Position, ReadFilter, RecordedEvent, Result};
use tracing::{info, warn};

use crate::read::at::read_events_at;
use crate::read::retention::RetentionFilter;
use crate::state::OpenStore;

impl OpenStore {
    /// Up to `limit` events after `after` that match `query`, in position
    /// order: their positions from the tag index, the events read at them,
    /// as `$all` shows them (retention applies, removed events are gone).
    pub(crate) fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.state.read().tags.check_complete()?;
        let mut out = Vec::new();
        let mut from = after.0;
        while out.len() < limit {
            let wanted = limit - out.len();
            let (positions, segments, mut retention) = {
                let state = self.state.read();
                (
                    state.tags.matches(query, from, wanted),
                    state.segments.clone(),
                    RetentionFilter::new(self, &state),
                )
            };
            let Some(last) = positions.last().copied() else {
                break;
            };
            read_events_at(&segments, &positions, |v| retention.keeps(v), &mut out)?;
            if positions.len() < wanted {
                break;
            }
            from = last;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Fills the tag index from the events of `$all` from `from` on, in
    /// pages of [`QUERY_SCAN_PAGE`]: how a store opened read-only over
    /// damage builds it. Called on open, before the writer starts. When the
    /// scan meets damage, the index is marked incomplete.
    pub(crate) fn scan_tag_index(&self, from: Position) {
        let mut from = from;
        let mut indexed = 0u64;
        loop {
            let page = match self.read_all(from, QUERY_SCAN_PAGE, &ReadFilter::all()) {
                Ok(page) => page,
                Err(e) => {
                    // Damage found by the scan: the store still opens (reads
                    // report the damage where they meet it), but conditions
                    // and query reads are refused.
                    warn!(error = %e, "the tag index stops at damage; conditional appends and query reads are refused");
                    self.state.write().tags.mark_incomplete(e.to_string());
                    break;
                }
            };
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            let mut state = self.state.write();
            for e in page.iter().filter(|e| !e.stream_id.is_system()) {
                state.tags.add(e.position.0, &e.event_type, &e.tags);
                indexed += 1;
            }
            drop(state);
            from = Position(last.0 + 1);
        }
        self.metrics
            .tag_events_scanned
            .fetch_add(indexed, std::sync::atomic::Ordering::Relaxed);
        info!(events = indexed, "tag index rebuilt by a scan of $all");
    }
}
