//! Stream metadata on the wire: `PUT` and `GET /streams/{stream}/metadata`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{ExpectedVersion, StreamMetadata, VersionedMetadata};

/// Body of `PUT /streams/{stream}/metadata`: the settings, and the guard on
/// the metadata version.
///
/// ```
/// let body: strata_wire::MetadataBody =
///     serde_json::from_str(r#"{"expected_metadata_version":"no_stream","max_count":3}"#).unwrap();
/// let (expected, m) = body.into_parts();
/// assert_eq!(expected, strata_core::ExpectedVersion::NoStream);
/// assert_eq!(m.max_count, Some(3));
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MetadataBody {
    /// The guard on the metadata version: `"any"` (default), `"no_stream"`
    /// (never set), or a version.
    #[serde(
        default = "crate::expected::field::any",
        with = "crate::expected::field"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub expected_metadata_version: ExpectedVersion,
    /// Keep only the newest `max_count` events readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Keep only events of the last `max_age` seconds readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Versions below this one are not readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_before: Option<u64>,
    /// Free-form JSON kept with the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl MetadataBody {
    /// The body that sets `m` if the metadata version is `expected`.
    pub fn new(expected: ExpectedVersion, m: &StreamMetadata) -> Self {
        MetadataBody {
            expected_metadata_version: expected,
            max_count: m.max_count,
            max_age: m.max_age,
            truncate_before: m.truncate_before,
            custom: m.custom.clone(),
        }
    }

    /// The guard and the settings.
    pub fn into_parts(self) -> (ExpectedVersion, StreamMetadata) {
        let m = StreamMetadata {
            max_count: self.max_count,
            max_age: self.max_age,
            truncate_before: self.truncate_before,
            custom: self.custom,
        };
        (self.expected_metadata_version, m)
    }
}

/// Answer of `GET` and `PUT /streams/{stream}/metadata`: the settings and
/// their version (0, with no settings, when metadata was never set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetadataOut {
    /// The stream.
    pub stream: String,
    /// The metadata version: 0 when never set.
    pub metadata_version: u64,
    /// See [`MetadataBody`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// See [`MetadataBody`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// See [`MetadataBody`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_before: Option<u64>,
    /// See [`MetadataBody`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl MetadataOut {
    /// The answer for `stream` with `m` (`None`: never set).
    pub fn new(stream: &str, m: Option<VersionedMetadata>) -> Self {
        let (version, m) = m.map_or((0, StreamMetadata::default()), |v| (v.version, v.metadata));
        MetadataOut {
            stream: stream.to_string(),
            metadata_version: version,
            max_count: m.max_count,
            max_age: m.max_age,
            truncate_before: m.truncate_before,
            custom: m.custom,
        }
    }

    /// The settings and version, `None` when never set.
    pub fn into_versioned(self) -> Option<VersionedMetadata> {
        (self.metadata_version > 0).then_some(VersionedMetadata {
            version: self.metadata_version,
            metadata: StreamMetadata {
                max_count: self.max_count,
                max_age: self.max_age,
                truncate_before: self.truncate_before,
                custom: self.custom,
            },
        })
    }
}
