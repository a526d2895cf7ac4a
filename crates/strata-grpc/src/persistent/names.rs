//! A persistent subscription's key (a stream or `$all`, and a group name)
//! as one Strata group name, and back (ADR 0024).
//!
//! A subscription to stream `S` with group `G` is the Strata group
//! `ps.stream.<S>.<G>`; one to `$all` is `ps.all.<G>`. Each part is
//! escaped: ASCII letters, digits and `-` stay as they are, every other
//! byte of its UTF-8 is `_` and two upper-case hex digits. The escaped
//! parts hold no `.`, so the name splits back unambiguously, and only the
//! canonical escape decodes, so the mapping is one to one. Groups whose
//! names are not of this form (made over HTTP or the CLI) are not
//! persistent subscriptions and are not listed.

use strata_core::group::{GroupName, MAX_NAME_BYTES};
use strata_core::StreamId;
use tonic::Status;

use crate::mapping;
use crate::proto::shared::StreamIdentifier;

/// The first part of every group name made for a persistent subscription.
pub const GROUP_PREFIX: &str = "ps";
/// The second part for a subscription to one stream.
pub const STREAM_TAG: &str = "stream";
/// The second part for a subscription to `$all`.
pub const ALL_TAG: &str = "all";
/// How the protocol names `$all` in answers (`event_source`, ids).
pub const ALL_STREAM: &str = "$all";
/// The byte that starts an escape in an encoded part.
const ESCAPE: char = '_';

/// What a persistent subscription follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One stream.
    Stream(StreamId),
    /// `$all`.
    All,
}

impl Source {
    /// The source of a request's stream option: `$all` when `all` is set
    /// or the identifier names `$all` (as older clients send it), else the
    /// stream identifier.
    pub fn of(identifier: Option<&StreamIdentifier>, all: bool) -> Result<Self, Status> {
        if all || identifier.is_some_and(|i| i.stream_name.as_ref() == ALL_STREAM.as_bytes()) {
            return Ok(Source::All);
        }
        Ok(Source::Stream(mapping::stream_id(identifier)?))
    }

    /// The stream name, or `$all`.
    pub fn label(&self) -> &str {
        match self {
            Source::Stream(s) => s.as_str(),
            Source::All => ALL_STREAM,
        }
    }
}

/// A persistent subscription: its source and its group name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// What it follows.
    pub source: Source,
    /// The group name the clients give.
    pub group: String,
}

impl Key {
    /// A key from a request's parts; the group name must not be empty.
    pub fn new(source: Source, group: &str) -> Result<Self, Status> {
        if group.is_empty() {
            return Err(Status::invalid_argument(
                "a persistent subscription needs a group name",
            ));
        }
        Ok(Self {
            source,
            group: group.to_string(),
        })
    }

    /// The Strata group that holds this subscription, or `InvalidArgument`
    /// when the encoded name is longer than a group name may be.
    pub fn group_name(&self) -> Result<GroupName, Status> {
        let mut name = String::new();
        name.push_str(GROUP_PREFIX);
        name.push('.');
        match &self.source {
            Source::Stream(s) => {
                name.push_str(STREAM_TAG);
                name.push('.');
                encode(s.as_str(), &mut name);
            }
            Source::All => name.push_str(ALL_TAG),
        }
        name.push('.');
        encode(&self.group, &mut name);
        if name.len() > MAX_NAME_BYTES {
            return Err(Status::invalid_argument(format!(
                "stream `{}` and group `{}` make the Strata group name `{name}` of {} bytes; \
                 at most {MAX_NAME_BYTES} (letters, digits and `-` take one byte, \
                 every other byte three)",
                self.source.label(),
                self.group,
                name.len()
            )));
        }
        GroupName::new(name).map_err(|e| Status::invalid_argument(e.to_string()))
    }

    /// The subscription a Strata group holds, when its name is one this
    /// mapping makes.
    pub fn from_group_name(name: &GroupName) -> Option<Self> {
        let mut parts = name.as_str().split('.');
        if parts.next()? != GROUP_PREFIX {
            return None;
        }
        let source = match parts.next()? {
            STREAM_TAG => Source::Stream(StreamId::new(decode(parts.next()?)?).ok()?),
            ALL_TAG => Source::All,
            _ => return None,
        };
        let group = decode(parts.next()?)?;
        if parts.next().is_some() || group.is_empty() {
            return None;
        }
        Some(Self { source, group })
    }

    /// The id a read session confirms: `<stream>::<group>`.
    pub fn subscription_id(&self) -> String {
        format!("{}::{}", self.source.label(), self.group)
    }
}

fn encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push(ESCAPE);
            out.push_str(&format!("{byte:02X}"));
        }
    }
}

/// The text of an encoded part; `None` unless it is the canonical
/// encoding of some UTF-8 text.
fn decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == ESCAPE as u8 {
            let hex = part.get(i + 1..i + 3)?;
            if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            let value = u8::from_str_radix(hex, 16).ok()?;
            if value.is_ascii_alphanumeric() || value == b'-' {
                return None;
            }
            out.push(value);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(stream: Option<&str>, group: &str) -> Key {
        let source = match stream {
            Some(s) => Source::Stream(StreamId::new(s).unwrap()),
            None => Source::All,
        };
        Key::new(source, group).unwrap()
    }

    #[test]
    fn names_round_trip_and_stay_valid() {
        for (stream, group) in [
            (Some("orders-1"), "workers"),
            (Some("order.v2/α β"), "g_1.x"),
            (None, "workers"),
            (None, "$all"),
            (Some("ps.all.x"), "-"),
        ] {
            let k = key(stream, group);
            let name = k.group_name().unwrap();
            assert_eq!(Key::from_group_name(&name), Some(k), "{name}");
        }
        assert_eq!(
            key(Some("orders-1"), "workers")
                .group_name()
                .unwrap()
                .as_str(),
            "ps.stream.orders-1.workers"
        );
        assert_eq!(
            key(None, "a.b").group_name().unwrap().as_str(),
            "ps.all.a_2Eb"
        );
        assert_ne!(
            key(None, "g").group_name().unwrap(),
            key(Some("_24all"), "g").group_name().unwrap()
        );
        let all = StreamIdentifier {
            stream_name: bytes::Bytes::from_static(b"$all"),
        };
        assert_eq!(Source::of(Some(&all), false).unwrap(), Source::All);
    }

    #[test]
    fn only_canonical_names_decode() {
        for other in [
            "billing",
            "ps.all",
            "ps.all.a.b",
            "ps.stream.x",
            "ps.all.a_2e",
            "ps.all.a_41",
            "ps.all.a_4",
            "ps.all.a_FF",
            "ps.other.x.y",
            "ps.all.a_5Fb_",
        ] {
            let name = GroupName::new(other).unwrap();
            assert_eq!(Key::from_group_name(&name), None, "{other}");
        }
    }

    #[test]
    fn too_long_names_are_refused() {
        let long = "x".repeat(MAX_NAME_BYTES);
        let e = key(Some("s"), &long).group_name().unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(Key::new(Source::All, "").is_err());
    }
}
