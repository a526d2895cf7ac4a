//! How a filtered `$all` read finds its candidates.

use strata_core::{ReadFilter, StreamId};

use crate::format::RecordView;
use crate::index::{key_hash, Postings};

/// Cheap pre-check of a record against a filter (before building the event).
pub(crate) fn filter_view(filter: &ReadFilter, v: &RecordView<'_>) -> bool {
    filter.matches_stream(v.stream)
        && filter.matches_type(v.event_type)
        && match &filter.correlation_id {
            Some(c) => v.correlation_id() == Some(c.as_str()),
            None => true,
        }
}

/// How a filtered `read_all` finds its candidates.
pub(crate) enum Plan {
    /// Read every frame from the start position.
    Scan,
    /// Follow one stream's positions.
    Stream(StreamId),
    /// Follow posting lists of one kind, for these key hashes.
    Postings(Postings, Vec<u64>),
    /// Follow the positions of every stream whose name starts with this
    /// (a prefix that is not a category, such as `tenant-42-`).
    Prefix(String),
}

impl Plan {
    /// The cheapest plan that finds every event `f` selects.
    pub(crate) fn for_filter(f: &ReadFilter) -> Plan {
        if let Some(s) = &f.stream {
            return Plan::Stream(s.clone());
        }
        if let Some(c) = &f.correlation_id {
            return Plan::Postings(Postings::Correlation, vec![key_hash(c)]);
        }
        if !f.event_types.is_empty() {
            return Plan::Postings(
                Postings::Type,
                f.event_types.iter().map(|t| key_hash(t)).collect(),
            );
        }
        if let Some(c) = &f.category {
            return Plan::Postings(Postings::Category, vec![key_hash(c)]);
        }
        if let Some(p) = &f.stream_prefix {
            // `account-` selects a subset of category `account`.
            if let Some(cat) = p.strip_suffix('-') {
                if !cat.contains('-') {
                    return Plan::Postings(Postings::Category, vec![key_hash(cat)]);
                }
            }
            return Plan::Prefix(p.clone());
        }
        Plan::Scan
    }
}
