//! The `$all` filters of reads and subscriptions: stream-name or event-type
//! prefixes, or a regular expression.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use strata_core::RecordedEvent;
use tonic::Status;

use crate::proto::streams::read_req::options::{filter_options, FilterOptions};

/// The most prefixes one filter may list.
pub const MAX_FILTER_PREFIXES: usize = 256;

/// The most bytes a filter's regular expression may hold.
pub const MAX_FILTER_REGEX_BYTES: usize = 4_096;

/// The most memory a compiled filter expression may take.
pub const MAX_FILTER_REGEX_COMPILED_BYTES: usize = 1 << 20;

/// The search window of a filter that names none (or names `count`):
/// events examined between two checkpoints of a filtered subscription.
pub const DEFAULT_CHECKPOINT_WINDOW: u32 = 32;

/// The most events a filtered subscription examines between checkpoints,
/// whatever window and multiplier the client asks for.
pub const MAX_CHECKPOINT_INTERVAL: u64 = 1_000_000;

/// What a filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// The event's stream name.
    StreamName,
    /// The event's type.
    EventType,
}

/// A filter as a client sends it: what it looks at, and either prefixes
/// or a regular expression. Kept with a persistent subscription (ADR
/// 0024) and compiled with [`EventFilter::from_spec`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSpec {
    /// What the filter looks at.
    pub subject: Subject,
    /// Names starting with any of these pass (when not empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Names this expression matches pass (when no prefixes are given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
}

impl FilterSpec {
    /// Whether the spec lets every event pass (no prefixes, no expression).
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.regex.is_empty()
    }
}

/// Which events a read or subscription passes on.
#[derive(Clone, Debug)]
pub struct EventFilter {
    rule: Option<(Subject, Rule)>,
}

#[derive(Clone, Debug)]
enum Rule {
    Prefixes(Vec<String>),
    Regex(Regex),
    /// A negative look-ahead at the start, `^(?!X)`: passes what `^(?:X)`
    /// does not match.
    NotRegex(Regex),
}

impl EventFilter {
    /// Every event passes.
    pub fn none() -> Self {
        Self { rule: None }
    }

    /// The filter of a read's options.
    pub fn from_options(options: &FilterOptions) -> Result<Self, Status> {
        let spec = match &options.filter {
            Some(filter_options::Filter::StreamIdentifier(e)) => FilterSpec {
                subject: Subject::StreamName,
                prefixes: e.prefix.clone(),
                regex: e.regex.clone(),
            },
            Some(filter_options::Filter::EventType(e)) => FilterSpec {
                subject: Subject::EventType,
                prefixes: e.prefix.clone(),
                regex: e.regex.clone(),
            },
            None => return Ok(Self::none()),
        };
        Self::from_spec(&spec)
    }

    /// Whether every event passes (no rule).
    pub fn passes_everything(&self) -> bool {
        self.rule.is_none()
    }

    /// Compiles `spec`, refusing one over the limits
    /// ([`MAX_FILTER_PREFIXES`], [`MAX_FILTER_REGEX_BYTES`]) or an
    /// expression the engine does not take with `InvalidArgument`.
    pub fn from_spec(spec: &FilterSpec) -> Result<Self, Status> {
        if spec.prefixes.len() > MAX_FILTER_PREFIXES {
            return Err(Status::invalid_argument(format!(
                "a filter lists at most {MAX_FILTER_PREFIXES} prefixes"
            )));
        }
        let rule = if !spec.prefixes.is_empty() {
            Rule::Prefixes(spec.prefixes.clone())
        } else if !spec.regex.is_empty() {
            match negated_prefix(&spec.regex) {
                Some(inner) => Rule::NotRegex(compile(&format!("^(?:{inner})"))?),
                None => Rule::Regex(compile(&spec.regex)?),
            }
        } else {
            return Ok(Self::none());
        };
        Ok(Self {
            rule: Some((spec.subject, rule)),
        })
    }

    /// How many events a filtered subscription examines between two
    /// checkpoint messages: the window (`max`, or
    /// [`DEFAULT_CHECKPOINT_WINDOW`]) times the multiplier (at least 1),
    /// at most [`MAX_CHECKPOINT_INTERVAL`].
    pub fn checkpoint_interval(options: &FilterOptions) -> u64 {
        let window = match options.window {
            Some(filter_options::Window::Max(n)) if n > 0 => n,
            _ => DEFAULT_CHECKPOINT_WINDOW,
        };
        let multiplier = options.checkpoint_interval_multiplier.max(1);
        (u64::from(window) * u64::from(multiplier)).min(MAX_CHECKPOINT_INTERVAL)
    }

    /// Whether `event` passes.
    pub fn passes(&self, event: &RecordedEvent) -> bool {
        let Some((subject, rule)) = &self.rule else {
            return true;
        };
        let text = match subject {
            Subject::StreamName => event.stream_id.as_str(),
            Subject::EventType => event.event_type.as_str(),
        };
        match rule {
            Rule::Prefixes(prefixes) => prefixes.iter().any(|p| text.starts_with(p.as_str())),
            Rule::Regex(re) => re.is_match(text),
            Rule::NotRegex(re) => !re.is_match(text),
        }
    }
}

/// `X` when `expression` is `^(?!X)`, optionally followed by `.*` or
/// `.*$`: the form clients use to exclude streams or types (the regular
/// expression engine here has no look-around, and this form needs none).
fn negated_prefix(expression: &str) -> Option<&str> {
    let body = expression.strip_prefix("^(?!")?;
    let close = closing_paren(body)?;
    let rest = &body[close + 1..];
    matches!(rest, "" | ".*" | ".*$").then(|| &body[..close])
}

/// The byte index of the `)` that closes a group whose body starts `text`
/// (escapes and character classes skipped).
fn closing_paren(text: &str) -> Option<usize> {
    let (mut depth, mut in_class, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    None
}

fn compile(expression: &str) -> Result<Regex, Status> {
    if expression.len() > MAX_FILTER_REGEX_BYTES {
        return Err(Status::invalid_argument(format!(
            "a filter expression holds at most {MAX_FILTER_REGEX_BYTES} bytes"
        )));
    }
    RegexBuilder::new(expression)
        .size_limit(MAX_FILTER_REGEX_COMPILED_BYTES)
        .build()
        .map_err(|e| Status::invalid_argument(format!("filter expression: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::streams::read_req::options::filter_options::{Expression, Filter};

    fn passes(regex: &str, stream: &str) -> bool {
        let options = FilterOptions {
            filter: Some(Filter::StreamIdentifier(Expression {
                regex: regex.into(),
                prefix: Vec::new(),
            })),
            ..FilterOptions::default()
        };
        let filter = EventFilter::from_options(&options).unwrap();
        let event = RecordedEvent {
            id: strata_core::EventId::default(),
            stream_id: strata_core::StreamId::new(stream)
                .or_else(|_| strata_core::StreamId::system(stream))
                .unwrap(),
            version: 1,
            position: strata_core::Position(1),
            event_type: "Happened".into(),
            data: bytes::Bytes::new(),
            content_type: strata_core::ContentType::Binary,
            metadata: strata_core::Metadata::default(),
            recorded_at: chrono::Utc::now(),
            tags: Vec::new(),
        };
        filter.passes(&event)
    }

    #[test]
    fn a_leading_negative_look_ahead_excludes_what_it_names() {
        let exclude = r"^(?!(\$.+$|PersistentConfig\d+$|Result$))";
        assert!(passes(exclude, "orders-1"));
        assert!(
            passes(exclude, "Results"),
            "only the whole name is excluded"
        );
        assert!(!passes(exclude, "$$orders-1"));
        assert!(!passes(exclude, "PersistentConfig1"));
        assert!(!passes(exclude, "Result"));
        assert!(passes(r"^(?!ord).*", "accounts-1"));
        assert!(!passes(r"^(?!ord).*", "orders-1"));
        assert!(passes(r"^(?![)])", "orders-1"), "a paren in a class");
    }

    #[test]
    fn other_look_arounds_are_refused_with_a_reason() {
        let options = FilterOptions {
            filter: Some(Filter::EventType(Expression {
                regex: "a(?=b)".into(),
                prefix: Vec::new(),
            })),
            ..FilterOptions::default()
        };
        let e = EventFilter::from_options(&options).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
