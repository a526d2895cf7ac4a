//! Stream names: validated once, cheap to clone.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest stream name, in bytes of UTF-8.
pub const MAX_STREAM_ID_BYTES: usize = 255;

/// The name of a stream, such as `account-42`.
///
/// A valid name is non-empty, at most [`MAX_STREAM_ID_BYTES`] bytes of UTF-8 and
/// contains no control characters. Names starting with `$` are reserved for the
/// system: [`StreamId::new`] refuses them, [`StreamId::system`] makes them.
///
/// ```
/// use strata_core::StreamId;
/// let id = StreamId::new("account-42").unwrap();
/// assert_eq!(id.category(), "account");
/// assert!(StreamId::new("$all").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// Validates a user stream name.
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        validate_name(name)?;
        if name.starts_with('$') {
            return Err(Error::invalid(format!(
                "stream name `{name}` starts with `$`, which is reserved for system streams"
            )));
        }
        Ok(StreamId(Arc::from(name)))
    }

    /// Makes a system stream name; `name` must start with `$`.
    pub fn system(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        validate_name(name)?;
        if !name.starts_with('$') {
            return Err(Error::invalid(format!(
                "system stream name `{name}` must start with `$`"
            )));
        }
        Ok(StreamId(Arc::from(name)))
    }

    /// Validates a stream name of either kind: a system stream's when it
    /// starts with `$`, else a user stream's. For names that come back from
    /// storage, or that a metadata stream names, where both kinds occur.
    ///
    /// ```
    /// use strata_core::StreamId;
    /// assert!(StreamId::any("account-1").is_ok_and(|s| !s.is_system()));
    /// assert!(StreamId::any("$$account-1").is_ok_and(|s| s.is_system()));
    /// assert!(StreamId::any("").is_err());
    /// ```
    pub fn any(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        validate_name(name)?;
        Ok(StreamId(Arc::from(name)))
    }

    /// Makes a stream id from an aggregate category and an id: `account` + `42`
    /// gives `account-42`.
    pub fn from_parts(category: &str, id: impl fmt::Display) -> Result<Self> {
        Self::new(format!("{category}-{id}"))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is reserved for the system (starts with `$`).
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The stream's category: the part before the first `-`, or the whole
    /// name when it has none (`account-42` → `account`).
    pub fn category(&self) -> &str {
        category_of(&self.0)
    }
}

/// The category of a stream name: the part before the first `-`, or the whole name.
pub fn category_of(name: &str) -> &str {
    match name.find('-') {
        Some(i) => &name[..i],
        None => name,
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("stream name is empty"));
    }
    if name.len() > MAX_STREAM_ID_BYTES {
        return Err(Error::invalid(format!(
            "stream name is {} bytes, the limit is {MAX_STREAM_ID_BYTES}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(format!(
            "stream name contains the control character {:?}",
            c
        )));
    }
    Ok(())
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", &*self.0)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StreamId {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        StreamId::new(value)
    }
}

impl TryFrom<String> for StreamId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        StreamId::new(value)
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        validate_name(&s).map_err(serde::de::Error::custom)?;
        Ok(StreamId(Arc::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert!(StreamId::new("a").is_ok());
        assert!(StreamId::new("").is_err());
        assert!(StreamId::new("a\nb").is_err());
        assert!(StreamId::new("$x").is_err());
        assert!(StreamId::system("$x").is_ok());
        assert!(StreamId::system("x").is_err());
        assert!(StreamId::new("é".repeat(127)).is_ok());
        assert!(StreamId::new("é".repeat(128)).is_err());
        assert!(StreamId::new("x".repeat(255)).is_ok());
        assert!(StreamId::new("x".repeat(256)).is_err());
    }

    #[test]
    fn derives_category() {
        assert_eq!(StreamId::new("account-42").unwrap().category(), "account");
        assert_eq!(StreamId::new("a-b-c").unwrap().category(), "a");
        assert_eq!(StreamId::new("plain").unwrap().category(), "plain");
        assert_eq!(StreamId::new("-x").unwrap().category(), "");
    }
}
