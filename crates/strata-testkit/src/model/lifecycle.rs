//! The model's stream metadata, retention and erasure, by the contract's
//! words (see `docs/adr/0017-stream-metadata-retention-and-scavenging.md`
//! and the crate's retention conformance cases), recomputed on every read.
//!
//! - Settings are a `$metadata` event in the stream `$$NAME`, whose version
//!   is the metadata version; setting them is an ordinary append there.
//! - The first readable version of a stream is the largest of
//!   `deleted_through + 1`, `truncate_before` and `version - max_count + 1`;
//!   a `$$` stream keeps its latest event only. `$all` applies the same cut
//!   except deletion's. Loosening the settings brings cut events back: the
//!   model assumes nothing is reclaimed during a case (no backend scavenges
//!   on its own, and the test never asks it to).
//! - `max_age` cuts by the store's clock, which the model cannot read: the
//!   generated ages are an hour or more, so they cut nothing within a case
//!   and only their validation and round trip are compared (the
//!   conformance case `max_age_hides_old_events` tests the cut).
//! - An erased stream is tombstoned, and none of its events is readable,
//!   `$all` included; its metadata stream `$$NAME` is erased with it, so
//!   its settings read `None` and can never be set again
//!   (`docs/adr/0019-postgres-scavenging.md`).

use strata_core::metadata::{
    MAX_AGE_SECONDS, MAX_METADATA_BYTES, METADATA_EVENT_TYPE, METADATA_STREAM_PREFIX,
};
use strata_core::{
    ContentType, ExpectedVersion, Metadata, NewEvent, StreamId, StreamMetadata, Version,
    VersionedMetadata,
};

use super::reference::{guard_accepts, Model, ModelAppend, ModelError, ModelEvent, ModelStream};

/// The metadata stream of `stream` (`$$NAME`).
pub(super) fn metadata_stream(stream: &StreamId) -> StreamId {
    StreamId::system(format!("{METADATA_STREAM_PREFIX}{stream}")).expect("valid metadata stream")
}

fn is_metadata_stream(stream: &StreamId) -> bool {
    stream
        .as_str()
        .strip_prefix(METADATA_STREAM_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

/// Whether the store must accept `settings`: counts and ages of at least 1,
/// ages of at most [`MAX_AGE_SECONDS`], at most [`MAX_METADATA_BYTES`] of JSON.
fn settings_valid(settings: &StreamMetadata) -> bool {
    let json = serde_json::to_vec(settings).expect("settings serialize");
    settings.max_count != Some(0)
        && settings
            .max_age
            .is_none_or(|a| (1..=MAX_AGE_SECONDS).contains(&a))
        && json.len() <= MAX_METADATA_BYTES
}

impl Model {
    /// The first version of `stream` (at `s`) that its settings leave
    /// readable, deletion aside.
    fn kept_from(&self, stream: &StreamId, s: &ModelStream) -> Version {
        let settings = self.metadata.get(stream);
        let implicit = is_metadata_stream(stream).then_some(1);
        let by_count = settings
            .and_then(|m| m.max_count)
            .or(implicit)
            .map_or(1, |n| (s.version + 1).saturating_sub(n));
        let by_truncation = settings.and_then(|m| m.truncate_before).unwrap_or(1);
        by_count.max(by_truncation).max(1)
    }

    /// The first version of `stream` (at `s`) a read may return: after the
    /// deleted ones and the ones retention cuts. Past `s.version` when
    /// nothing is readable.
    pub(super) fn first_readable(&self, stream: &StreamId, s: &ModelStream) -> Version {
        self.kept_from(stream, s).max(s.deleted_through + 1)
    }

    /// Whether `$all` shows `e`: not when its stream is erased or retention
    /// cuts it; deletion does not hide events from `$all`.
    pub(super) fn shows(&self, e: &ModelEvent) -> bool {
        let s = self.streams.get(&e.stream).copied().unwrap_or_default();
        !s.erased && e.version >= self.kept_from(&e.stream, &s)
    }

    /// `set_stream_metadata`: validation, then an append of the settings'
    /// event to the metadata stream under `expected`. The result's version
    /// is the new metadata version.
    pub fn set_stream_metadata(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        settings: &StreamMetadata,
    ) -> Result<ModelAppend, ModelError> {
        if !settings_valid(settings) {
            return Err(ModelError::InvalidInput);
        }
        let event = NewEvent {
            id: None,
            event_type: METADATA_EVENT_TYPE.to_string(),
            data: serde_json::to_vec(settings)
                .expect("settings serialize")
                .into(),
            content_type: ContentType::Json,
            metadata: Metadata::default(),
            tags: Vec::new(),
            json_checked: strata_core::JsonChecked::NO,
        };
        let written = self.append(&metadata_stream(stream), expected, &[event])?;
        self.metadata.insert(stream.clone(), settings.clone());
        Ok(written)
    }

    /// `stream_metadata`: the latest settings and their version.
    pub fn stream_metadata(&self, stream: &StreamId) -> Option<VersionedMetadata> {
        let version = self.streams.get(&metadata_stream(stream))?.version;
        let metadata = self.metadata.get(stream)?.clone();
        Some(VersionedMetadata { version, metadata })
    }

    /// `erase_stream`: allowed where a tombstone is, and on a stream already
    /// tombstoned or erased under `ExpectedVersion::Any` only.
    pub fn erase_stream(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ModelError> {
        let s = self.streams.get(stream).copied().unwrap_or_default();
        let again = s.tombstoned && expected == ExpectedVersion::Any;
        if s.tombstoned && !again {
            return Err(ModelError::StreamDeleted(stream.clone()));
        }
        if !again && !guard_accepts(expected, s.current()) {
            return Err(ModelError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: s.current(),
            });
        }
        for erased in [stream.clone(), metadata_stream(stream)] {
            let entry = self.streams.entry(erased).or_default();
            entry.tombstoned = true;
            entry.erased = true;
        }
        self.metadata.remove(stream);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use strata_core::{Direction, Limits, Position, ReadFilter, StreamState, FROM_END};

    use super::*;

    fn s(name: &str) -> StreamId {
        StreamId::new(name).unwrap()
    }

    fn append(m: &mut Model, stream: &StreamId, n: usize) {
        let events: Vec<NewEvent> = (0..n)
            .map(|_| NewEvent::json_bytes("E", &b"{}"[..]))
            .collect();
        m.append(stream, ExpectedVersion::Any, &events).unwrap();
    }

    fn versions(events: &[ModelEvent], stream: &StreamId) -> Vec<Version> {
        events
            .iter()
            .filter(|e| &e.stream == stream)
            .map(|e| e.version)
            .collect()
    }

    fn all(m: &Model) -> Vec<ModelEvent> {
        m.read_all(Position::START, 100, &ReadFilter::all())
            .unwrap()
    }

    fn settings(max_count: Option<u64>, truncate_before: Option<u64>) -> StreamMetadata {
        StreamMetadata {
            max_count,
            truncate_before,
            ..Default::default()
        }
    }

    #[test]
    fn settings_are_versioned_and_cut_reads_all_and_info() {
        let mut m = Model::new(Limits::default());
        let a = s("account-1");
        append(&mut m, &a, 5);
        assert_eq!(m.stream_metadata(&a), None);
        let bad = settings(Some(0), None);
        assert_eq!(
            m.set_stream_metadata(&a, ExpectedVersion::NoStream, &bad),
            Err(ModelError::InvalidInput)
        );
        let two = settings(Some(2), None);
        let r = m
            .set_stream_metadata(&a, ExpectedVersion::NoStream, &two)
            .unwrap();
        assert_eq!(r.result.next_expected_version, 1);
        let stale = m.set_stream_metadata(&a, ExpectedVersion::NoStream, &two);
        assert!(matches!(
            stale,
            Err(ModelError::WrongExpectedVersion { .. })
        ));
        let got = m.stream_metadata(&a).unwrap();
        assert_eq!((got.version, got.metadata), (1, two));
        let forward = m.read_stream(&a, 1, 10, Direction::Forward).unwrap();
        assert_eq!(versions(&forward, &a), vec![4, 5]);
        let back = m
            .read_stream(&a, FROM_END, 10, Direction::Backward)
            .unwrap();
        assert_eq!(versions(&back, &a), vec![5, 4]);
        assert_eq!(versions(&all(&m), &a), vec![4, 5]);
        assert_eq!(m.stream_info(&a).unwrap().first_readable_version, 4);
        // Truncating past the head leaves nothing readable: `version + 1`.
        m.set_stream_metadata(&a, ExpectedVersion::Exact(1), &settings(None, Some(9)))
            .unwrap();
        assert!(m
            .read_stream(&a, 1, 10, Direction::Forward)
            .unwrap()
            .is_empty());
        assert_eq!(m.stream_info(&a).unwrap().first_readable_version, 6);
        // Loosening brings the events back; the metadata stream shows its latest only.
        m.set_stream_metadata(&a, ExpectedVersion::Exact(2), &StreamMetadata::default())
            .unwrap();
        assert_eq!(versions(&all(&m), &a), vec![1, 2, 3, 4, 5]);
        assert_eq!(versions(&all(&m), &metadata_stream(&a)), vec![3]);
    }

    #[test]
    fn deletion_cuts_reads_but_not_all() {
        let mut m = Model::new(Limits::default());
        let a = s("account-1");
        append(&mut m, &a, 3);
        m.delete_stream(&a, ExpectedVersion::Any).unwrap();
        append(&mut m, &a, 2);
        m.set_stream_metadata(&a, ExpectedVersion::Any, &settings(Some(4), None))
            .unwrap();
        let read = m.read_stream(&a, 1, 10, Direction::Forward).unwrap();
        assert_eq!(versions(&read, &a), vec![4, 5]);
        assert_eq!(versions(&all(&m), &a), vec![2, 3, 4, 5]);
    }

    #[test]
    fn erasure_is_a_tombstone_that_empties_all() {
        let mut m = Model::new(Limits::default());
        let (a, b) = (s("account-1"), s("account-2"));
        append(&mut m, &a, 2);
        append(&mut m, &b, 1);
        m.set_stream_metadata(&a, ExpectedVersion::Any, &settings(None, None))
            .unwrap();
        assert!(matches!(
            m.erase_stream(&a, ExpectedVersion::Exact(1)),
            Err(ModelError::WrongExpectedVersion { .. })
        ));
        m.erase_stream(&a, ExpectedVersion::Exact(2)).unwrap();
        assert_eq!(
            m.read_stream(&a, 1, 10, Direction::Forward),
            Err(ModelError::StreamDeleted(a.clone()))
        );
        assert_eq!(versions(&all(&m), &a), Vec::<Version>::new());
        assert_eq!(versions(&all(&m), &b), vec![1]);
        // The metadata stream goes with it.
        assert_eq!(
            versions(&all(&m), &metadata_stream(&a)),
            Vec::<Version>::new()
        );
        assert_eq!(m.stream_metadata(&a), None);
        assert!(matches!(
            m.set_stream_metadata(&a, ExpectedVersion::Any, &settings(None, None)),
            Err(ModelError::StreamDeleted(_))
        ));
        let info = m.stream_info(&a).unwrap();
        assert_eq!(
            (info.state, info.first_readable_version),
            (StreamState::Tombstoned, 3)
        );
        // Again: only under `Any`.
        m.erase_stream(&a, ExpectedVersion::Any).unwrap();
        assert_eq!(
            m.erase_stream(&a, ExpectedVersion::Exact(2)),
            Err(ModelError::StreamDeleted(a.clone()))
        );
        // A never-written name is reserved.
        let c = s("order-1");
        m.erase_stream(&c, ExpectedVersion::NoStream).unwrap();
        assert_eq!(m.stream_info(&c).unwrap().state, StreamState::Tombstoned);
    }
}
