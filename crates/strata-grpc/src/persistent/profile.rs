//! What a persistent subscription keeps beside its group's settings (ADR
//! 0024): the client's `$all` filter when the group's own filter cannot
//! hold it, and the tuning settings Strata does not use but reports back.
//! Both live in the group's labels, as JSON, so they are created, updated
//! and deleted with the group in one write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_core::group::GroupSettings;
use tonic::Status;

use crate::filter::{EventFilter, FilterSpec};

/// The label holding the client's filter ([`FilterSpec`] as JSON).
pub const FILTER_LABEL: &str = "kurrentdb.filter";

/// The label holding the client's tuning settings ([`Tuning`] as JSON).
pub const TUNING_LABEL: &str = "kurrentdb.tuning";

/// The settings a client sends that Strata's groups have no use for,
/// kept so that GetInfo and List report them as they were set; and the
/// subscriber limit, which the read sessions of this server enforce.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tuning {
    /// Whether link events are resolved (Strata has none to resolve).
    pub resolve_links: bool,
    /// Whether extra statistics are kept.
    pub extra_statistics: bool,
    /// The most readers at once (0: any number).
    pub max_subscriber_count: i32,
    /// The live buffer's size.
    pub live_buffer_size: i32,
    /// How many events one read of the source takes.
    pub read_batch_size: i32,
    /// The history buffer's size.
    pub history_buffer_size: i32,
    /// How often the checkpoint is written, in milliseconds.
    pub checkpoint_after_ms: i32,
    /// The fewest events between checkpoints.
    pub min_checkpoint_count: i32,
    /// The most events between checkpoints.
    pub max_checkpoint_count: i32,
}

/// A subscription's filter and tuning, as read from its group's labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The client's filter, when the group's filter does not hold it.
    pub filter: Option<FilterSpec>,
    /// The tuning settings.
    pub tuning: Tuning,
}

impl Profile {
    /// The profile kept in `settings`' labels (defaults for a group made
    /// over HTTP or before labels were kept). A label that does not parse
    /// is `Internal`: serving the subscription without its filter would
    /// hand its readers events they did not ask for.
    pub fn of(settings: &GroupSettings) -> Result<Self, Status> {
        let filter = match settings.labels.get(FILTER_LABEL) {
            Some(json) => Some(parse(FILTER_LABEL, json)?),
            None => None,
        };
        let tuning = match settings.labels.get(TUNING_LABEL) {
            Some(json) => parse(TUNING_LABEL, json)?,
            None => Tuning::default(),
        };
        Ok(Self { filter, tuning })
    }

    /// The filter the read sessions apply on top of the group's.
    pub fn event_filter(&self) -> Result<EventFilter, Status> {
        match &self.filter {
            Some(spec) => EventFilter::from_spec(spec),
            None => Ok(EventFilter::none()),
        }
    }

    /// The most readers this subscription takes at once (`None`: any).
    pub fn max_subscribers(&self) -> Option<usize> {
        usize::try_from(self.tuning.max_subscriber_count)
            .ok()
            .filter(|n| *n > 0)
    }
}

/// Keeps `filter` in `labels` (or removes it when `None`).
pub fn keep_filter(labels: &mut BTreeMap<String, String>, filter: Option<&FilterSpec>) {
    match filter {
        Some(spec) => {
            labels.insert(FILTER_LABEL.to_string(), to_json(spec));
        }
        None => {
            labels.remove(FILTER_LABEL);
        }
    }
}

/// Keeps `tuning` in `labels`.
pub fn keep_tuning(labels: &mut BTreeMap<String, String>, tuning: &Tuning) {
    labels.insert(TUNING_LABEL.to_string(), to_json(tuning));
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings, numbers and booleans always encode.
    serde_json::to_string(value).unwrap_or_default()
}

fn parse<T: for<'de> Deserialize<'de>>(label: &str, json: &str) -> Result<T, Status> {
    serde_json::from_str(json).map_err(|e| {
        Status::internal(format!(
            "the subscription's `{label}` label does not parse ({e}); \
             update the subscription or create it again"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Subject;
    use strata_core::group::GroupSource;
    use strata_core::ReadFilter;

    #[test]
    fn a_profile_round_trips_through_the_labels() {
        let mut settings = GroupSettings::new(GroupSource::All(ReadFilter::all()));
        assert_eq!(Profile::of(&settings).unwrap(), Profile::default());
        let spec = FilterSpec {
            subject: Subject::EventType,
            prefixes: Vec::new(),
            regex: r"^(?!(\$.+$))".into(),
        };
        let tuning = Tuning {
            max_subscriber_count: 2,
            live_buffer_size: 500,
            ..Tuning::default()
        };
        keep_filter(&mut settings.labels, Some(&spec));
        keep_tuning(&mut settings.labels, &tuning);
        let profile = Profile::of(&settings).unwrap();
        assert_eq!(profile.filter.as_ref(), Some(&spec));
        assert_eq!(profile.tuning, tuning);
        assert_eq!(profile.max_subscribers(), Some(2));
        keep_filter(&mut settings.labels, None);
        assert_eq!(Profile::of(&settings).unwrap().filter, None);
    }

    #[test]
    fn a_label_that_does_not_parse_is_refused_not_ignored() {
        let mut settings = GroupSettings::new(GroupSource::All(ReadFilter::all()));
        settings
            .labels
            .insert(FILTER_LABEL.to_string(), "{not json".to_string());
        assert_eq!(
            Profile::of(&settings).unwrap_err().code(),
            tonic::Code::Internal
        );
    }
}
