//! The expected-version guard as the API spells it: `"any"`, `"no_stream"`,
//! `"exists"` or a version number, in a JSON body (a string or a number),
//! in a query string (`?expected_version=7`) and in error bodies
//! (`"expected"`, and `"actual"`: `"no_stream"` or a number).
//!
//! Parsing is [`ExpectedVersion`]'s own `FromStr`; this module adds the JSON
//! and query forms.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use serde_json::{json, Value};
use strata_core::{CurrentVersion, ExpectedVersion, EXPECTED_VERSION_SYNTAX};

/// The spelling of `e` in a JSON body: a string, or a number for a version.
///
/// ```
/// use strata_core::ExpectedVersion;
/// assert_eq!(strata_wire::expected::to_json(ExpectedVersion::Exact(3)), serde_json::json!(3));
/// assert_eq!(strata_wire::expected::to_json(ExpectedVersion::Any), serde_json::json!("any"));
/// ```
pub fn to_json(e: ExpectedVersion) -> Value {
    match e {
        ExpectedVersion::Exact(v) => json!(v),
        other => json!(word(other)),
    }
}

/// The spelling of `e` in a query string.
///
/// ```
/// use strata_core::ExpectedVersion;
/// assert_eq!(strata_wire::expected::to_param(ExpectedVersion::StreamExists), "exists");
/// assert_eq!(strata_wire::expected::to_param(ExpectedVersion::Exact(7)), "7");
/// ```
pub fn to_param(e: ExpectedVersion) -> String {
    match e {
        ExpectedVersion::Exact(v) => v.to_string(),
        other => word(other).to_string(),
    }
}

/// The word for a guard that is not a version number.
fn word(e: ExpectedVersion) -> &'static str {
    match e {
        ExpectedVersion::Any => "any",
        ExpectedVersion::NoStream => "no_stream",
        ExpectedVersion::StreamExists => "exists",
        // Not a word; callers handle `Exact` before asking.
        ExpectedVersion::Exact(_) => "",
    }
}

/// Reads a guard back from its JSON spelling; `None` if it is not one.
///
/// ```
/// use strata_core::ExpectedVersion;
/// let v = serde_json::json!("no_stream");
/// assert_eq!(strata_wire::expected::from_json(&v), Some(ExpectedVersion::NoStream));
/// ```
pub fn from_json(v: &Value) -> Option<ExpectedVersion> {
    match v {
        Value::Number(n) => n.as_u64().map(ExpectedVersion::Exact),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The spelling of a stream's current version in an error body (`"actual"`).
///
/// ```
/// use strata_core::CurrentVersion;
/// assert_eq!(strata_wire::expected::current_to_json(CurrentVersion::Current(4)), serde_json::json!(4));
/// ```
pub fn current_to_json(c: CurrentVersion) -> Value {
    match c {
        CurrentVersion::NoStream => json!("no_stream"),
        CurrentVersion::Current(v) => json!(v),
    }
}

/// Reads a current version back; `None` if `v` is not one.
///
/// ```
/// use strata_core::CurrentVersion;
/// let v = serde_json::json!("no_stream");
/// assert_eq!(strata_wire::expected::current_from_json(&v), Some(CurrentVersion::NoStream));
/// ```
pub fn current_from_json(v: &Value) -> Option<CurrentVersion> {
    match v {
        Value::Number(n) => n.as_u64().map(CurrentVersion::Current),
        Value::String(s) if s == "no_stream" => Some(CurrentVersion::NoStream),
        _ => None,
    }
}

/// `#[serde(with = "strata_wire::expected::field")]` for an
/// [`ExpectedVersion`] field of a body: written as [`to_json`] writes it,
/// read from a string or a number.
pub mod field {
    use super::*;

    /// Writes the guard as [`to_json`](super::to_json) does.
    pub fn serialize<S: Serializer>(e: &ExpectedVersion, s: S) -> Result<S::Ok, S::Error> {
        match e {
            ExpectedVersion::Exact(v) => s.serialize_u64(*v),
            other => s.serialize_str(word(*other)),
        }
    }

    /// Reads `"any"`, `"no_stream"`, `"exists"`, a version number, or a
    /// number in a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ExpectedVersion, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExpectedVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED_VERSION_SYNTAX)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ExpectedVersion::Exact(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }

    /// The default of an absent guard: [`ExpectedVersion::Any`].
    pub fn any() -> ExpectedVersion {
        ExpectedVersion::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guard_round_trips_through_json_and_query() {
        for e in [
            ExpectedVersion::Any,
            ExpectedVersion::NoStream,
            ExpectedVersion::StreamExists,
            ExpectedVersion::Exact(0),
            ExpectedVersion::Exact(42),
        ] {
            assert_eq!(from_json(&to_json(e)), Some(e));
            assert_eq!(to_param(e).parse::<ExpectedVersion>(), Ok(e));
        }
        for c in [CurrentVersion::NoStream, CurrentVersion::Current(9)] {
            assert_eq!(current_from_json(&current_to_json(c)), Some(c));
        }
        assert_eq!(from_json(&json!("seven")), None);
    }
}
