//! Stream metadata on open. Replay notes the metadata that events after the
//! stream checkpoint set; the checkpoint holds no metadata, so a metadata
//! stream (`$$NAME`) whose events all lie before it is read here: its
//! latest event, one point read each.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_core::metadata::metadata_target;
use strata_core::{Error, Result, StreamId};
use tracing::warn;

use crate::read::at::read_events_at;
use crate::segment::Segment;
use crate::streams::StreamIndex;

/// Gives every stream whose metadata stream replay did not reach its
/// metadata, from the metadata stream's latest event. In a store opened
/// read-only over damage, a latest event that cannot be read is skipped
/// with a warning (its stream then has none); otherwise the error is
/// returned.
pub(super) fn load_checkpointed_metadata(
    streams: &mut StreamIndex,
    segments: &BTreeMap<u32, Arc<Segment>>,
    read_only: bool,
) -> Result<()> {
    let mut latest: Vec<(u64, StreamId)> = streams
        .streams
        .iter()
        .filter(|(name, e)| {
            // An erased metadata stream's events are gone (or going).
            !e.erased
                && metadata_target(name.as_str()).is_some_and(|t| !streams.metadata.contains_key(t))
        })
        .filter_map(|(name, e)| e.head.last_position.map(|p| (p.0, name.clone())))
        .collect();
    if latest.is_empty() {
        return Ok(());
    }
    latest.sort_unstable_by_key(|(p, _)| *p);
    let positions: Vec<u64> = latest.iter().map(|(p, _)| *p).collect();
    let mut events = Vec::with_capacity(latest.len());
    if read_only {
        for p in &positions {
            if let Err(e) = read_events_at(segments, &[*p], |_| true, &mut events) {
                warn!(position = p, error = %e, "a metadata stream's latest event cannot be read; its stream has no metadata");
            }
        }
    } else {
        read_events_at(segments, &positions, |_| true, &mut events)?;
    }
    for e in &events {
        let expected = latest
            .binary_search_by_key(&e.position.0, |(p, _)| *p)
            .ok()
            .and_then(|i| latest.get(i))
            .map(|(_, name)| name);
        if expected != Some(&e.stream_id) {
            let location = format!("position {}", e.position);
            let reason = format!(
                "the stream index points at an event of `{}` as the latest of a metadata stream",
                e.stream_id
            );
            if read_only {
                warn!(location, reason, "skipped: its stream has no metadata");
                continue;
            }
            return Err(Error::Corrupt { location, reason });
        }
        streams.note_metadata(e.stream_id.as_str(), &e.data);
    }
    Ok(())
}
