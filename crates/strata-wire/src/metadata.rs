//! Metadata as the API shows it: one flat object of strings, the named
//! fields (`correlation_id`, `causation_id`, `user_id`, `source`) beside the
//! free pairs.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use strata_core::Metadata;

use crate::error::WireError;

/// Metadata as one flat map, the shape the API uses.
///
/// A named field wins over a free pair of the same name, should a
/// (non-HTTP) writer have put one of the reserved names into `extra`.
///
/// ```
/// use strata_core::Metadata;
/// let m = Metadata::default().with_correlation_id("c-1").with("tenant", "t");
/// let map = strata_wire::metadata_to_map(&m);
/// assert_eq!(map["correlation_id"], "c-1");
/// assert_eq!(map["tenant"], "t");
/// ```
pub fn metadata_to_map(m: &Metadata) -> BTreeMap<String, String> {
    let mut out = m.extra.clone();
    let named = [
        ("correlation_id", &m.correlation_id),
        ("causation_id", &m.causation_id),
        ("user_id", &m.user_id),
        ("source", &m.source),
    ];
    for (k, v) in named {
        if let Some(v) = v {
            out.insert(k.to_string(), v.clone());
        }
    }
    out
}

/// The inverse of [`metadata_to_map`].
///
/// ```
/// use std::collections::BTreeMap;
/// let map = BTreeMap::from([("user_id".to_string(), "ada".to_string())]);
/// assert_eq!(strata_wire::metadata_from_map(map).user_id.as_deref(), Some("ada"));
/// ```
pub fn metadata_from_map(map: BTreeMap<String, String>) -> Metadata {
    let mut out = Metadata::default();
    for (k, v) in map {
        set(&mut out, k, v);
    }
    out
}

/// Metadata from a request's JSON object, whose values must be strings.
pub(crate) fn metadata_from_json(m: Map<String, Value>) -> Result<Metadata, WireError> {
    let mut out = Metadata::default();
    for (k, v) in m {
        let Value::String(s) = v else {
            return Err(WireError::MetadataNotString { key: k });
        };
        set(&mut out, k, s);
    }
    Ok(out)
}

fn set(out: &mut Metadata, k: String, v: String) {
    match k.as_str() {
        "correlation_id" => out.correlation_id = Some(v),
        "causation_id" => out.causation_id = Some(v),
        "user_id" => out.user_id = Some(v),
        "source" => out.source = Some(v),
        _ => {
            out.extra.insert(k, v);
        }
    }
}
