//! Stream metadata on PostgreSQL: which settings an append to a metadata
//! stream (`$$NAME`) writes, and the columns of the `stream_metadata` rows
//! that keep them beside the events (`migrate/0003_stream_metadata.sql`).

use strata_core::append_rules::check_metadata_append;
use strata_core::metadata::metadata_target;
use strata_core::{Result, StreamAppend, StreamMetadata, Version};

use crate::migrate::to_i64;

/// Checks an append with [`check_metadata_append`] and returns the settings
/// it leaves: those of its last event when `part` appends to a metadata
/// stream, `None` for any other stream.
pub(crate) fn settings_of(part: &StreamAppend) -> Result<Option<StreamMetadata>> {
    check_metadata_append(&part.stream, &part.events)?;
    if metadata_target(part.stream.as_str()).is_none() {
        return Ok(None);
    }
    part.events
        .last()
        .map(|e| StreamMetadata::from_json(&e.data))
        .transpose()
}

/// `stream_metadata` rows as column arrays, for one `UNNEST` upsert: the
/// stream each governs, its metadata version and its retention settings
/// (NULL when absent).
#[derive(Debug, Default)]
pub(crate) struct MetadataColumns<'a> {
    pub streams: Vec<&'a str>,
    pub versions: Vec<i64>,
    pub max_count: Vec<Option<i64>>,
    pub max_age: Vec<Option<i64>>,
    pub truncate_before: Vec<Option<i64>>,
}

impl<'a> MetadataColumns<'a> {
    /// Adds the row of `stream`, whose metadata stream is at `version`
    /// with `settings`. Each stream may be added once.
    pub(crate) fn push(&mut self, stream: &'a str, version: Version, settings: &StreamMetadata) {
        self.streams.push(stream);
        self.versions.push(to_i64(version));
        self.max_count.push(settings.max_count.map(to_i64));
        self.max_age.push(settings.max_age.map(to_i64));
        self.truncate_before
            .push(settings.truncate_before.map(to_i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::{ExpectedVersion, NewEvent, StreamId};

    fn part(stream: &str, events: Vec<NewEvent>) -> StreamAppend {
        StreamAppend::new(
            StreamId::system(stream).unwrap(),
            ExpectedVersion::Any,
            events,
        )
    }

    #[test]
    fn the_last_metadata_event_wins() {
        let one = StreamMetadata {
            max_count: Some(1),
            ..Default::default()
        };
        let two = StreamMetadata {
            max_age: Some(60),
            ..Default::default()
        };
        let p = part(
            "$$account-1",
            vec![one.to_event().unwrap(), two.to_event().unwrap()],
        );
        assert_eq!(settings_of(&p).unwrap(), Some(two));
        let plain = StreamAppend::new(
            StreamId::new("account-1").unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::json_bytes("Opened", &b"{}"[..])],
        );
        assert_eq!(settings_of(&plain).unwrap(), None);
    }

    #[test]
    fn bad_metadata_is_invalid_input() {
        let wrong_type = part(
            "$$account-1",
            vec![NewEvent::json_bytes("Opened", &b"{}"[..])],
        );
        let bad_count = part(
            "$$account-1",
            vec![NewEvent::json_bytes(
                "$metadata",
                &br#"{"max_count": 0}"#[..],
            )],
        );
        for p in [wrong_type, bad_count] {
            assert_eq!(settings_of(&p).unwrap_err().kind(), "invalid_input");
        }
    }
}
