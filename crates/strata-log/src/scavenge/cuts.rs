//! What a scavenge may remove: a snapshot, taken once at its start, of the
//! rule every read applies (`strata_core::Retention`), per stream. What it
//! cut then stays cut: deletion, tombstones and retention only move
//! forward unless someone loosens a setting, and events a scavenge removed
//! do not come back then (ADR 0017).

use chrono::{DateTime, Utc};
use strata_core::{Retention, StreamMetadata};

use crate::index::FastMap;
use crate::state::State;

/// One stream's cut.
#[derive(Clone, Copy, Debug)]
struct Cut {
    /// Every event goes (a tombstoned or erased stream).
    all: bool,
    /// Versions below this go.
    first_version: u64,
    /// Events recorded before this (microseconds) go.
    not_before_micros: Option<i64>,
}

/// The cut of every stream that has one.
#[derive(Debug, Default)]
pub(crate) struct Cuts {
    by_stream: FastMap<String, Cut>,
}

impl Cuts {
    /// The cuts as `state` says at `now`; of erased streams only, if
    /// `erased_only`.
    pub(crate) fn snapshot(state: &State, now: DateTime<Utc>, erased_only: bool) -> Self {
        let mut by_stream = FastMap::default();
        for (name, entry) in &state.streams.streams {
            if erased_only && !entry.erased {
                continue;
            }
            let metadata: Option<&StreamMetadata> = state.streams.metadata.get(name.as_str());
            let r = Retention::new(name.as_str(), &entry.head, metadata, now);
            let cut = Cut {
                all: entry.head.tombstoned,
                first_version: r.first_version,
                not_before_micros: r.not_before.map(|t| t.timestamp_micros()),
            };
            if cut.all || cut.first_version > 1 || cut.not_before_micros.is_some() {
                by_stream.insert(name.as_str().to_string(), cut);
            }
        }
        Cuts { by_stream }
    }

    /// Whether the event at `version` of `stream`, recorded at
    /// `recorded_at_micros`, is removable.
    pub(crate) fn removes(&self, stream: &str, version: u64, recorded_at_micros: i64) -> bool {
        match self.by_stream.get(stream) {
            None => false,
            Some(c) => {
                c.all
                    || version < c.first_version
                    || c.not_before_micros.is_some_and(|t| recorded_at_micros < t)
            }
        }
    }

    /// Whether nothing at all is removable.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_stream.is_empty()
    }
}
