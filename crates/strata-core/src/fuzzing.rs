//! Entry points for fuzzing stream-name validation and read filters. Not
//! part of the API: the fuzz targets (`fuzz/` at the repository root) and
//! the corpus replay test of `strata-integration` call these same functions.
//!
//! Each takes arbitrary bytes and never panics on any input; it panics only
//! when validation breaks its own contract, which is what a fuzzer reports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::stream_id::{category_of, MAX_STREAM_ID_BYTES};
use crate::{ReadFilter, StreamId};

/// The bytes as a stream name (UTF-8, or lossily decoded): a user name or
/// a system name, never both; a valid name keeps its text, its category is
/// its prefix, it survives JSON, and a filter on its prefix or category
/// matches it. Returns whether the name was valid.
pub fn stream_name(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let name = text.as_ref();
    let user = StreamId::new(name);
    let system = StreamId::system(name);
    assert!(
        !(user.is_ok() && system.is_ok()),
        "{name:?} is user and system"
    );
    let from_json = serde_json::to_string(name)
        .ok()
        .and_then(|j| serde_json::from_str::<StreamId>(&j).ok());
    assert_eq!(from_json.is_some(), user.is_ok() || system.is_ok());
    let Some(id) = user.ok().or(system.ok()) else {
        return false;
    };
    assert_eq!(id.as_str(), name);
    assert!(name.len() <= MAX_STREAM_ID_BYTES && !name.is_empty());
    assert_eq!(id.is_system(), name.starts_with('$'));
    assert!(name.starts_with(id.category()));
    assert_eq!(id.category(), category_of(name));
    assert_eq!(from_json.as_ref(), Some(&id));
    let by_prefix = ReadFilter::all().stream_prefix(name);
    assert!(by_prefix.validate().is_ok() && by_prefix.matches_stream(name));
    let by_category = ReadFilter::all().category(id.category());
    assert!(by_category.validate().is_ok() && by_category.matches_stream(name));
    assert!(ReadFilter::all().stream(id.clone()).matches_stream(name));
    true
}
