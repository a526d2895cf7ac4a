//! Persistent subscription settings as a Strata group's settings, and a
//! group's state as the protocol's `SubscriptionInfo` (ADR 0024).

use strata_core::group::{
    GroupSettings, GroupSource, GroupStart, GroupStatus, Strategy, DEFAULT_ACK_TIMEOUT_MS,
    MAX_ACK_TIMEOUT_MS, MAX_RETRIES_LIMIT,
};
use strata_core::{
    Direction, Error, EventStore, Position, ReadFilter, StreamId, Version, FROM_END,
};
use tonic::Status;

use super::names::{Key, Source};
use super::profile::{self, Profile, Tuning};
use crate::filter::{EventFilter, FilterSpec, Subject};
use crate::mapping;
use crate::proto::persistent::create_req::all_options::filter_options::Filter;
use crate::proto::persistent::create_req::all_options::FilterOptions;
use crate::proto::persistent::{create_req, update_req, SubscriptionInfo};
use crate::status;

/// The most unsettled messages one consumer of a group made here holds:
/// also the largest `buffer_size` a read session may ask for.
pub const MAX_BUFFER_SIZE: u32 = 1_000;

const _: () = assert!(MAX_BUFFER_SIZE <= strata_core::group::MAX_IN_FLIGHT_LIMIT);

/// The most reads one revision lookup makes (a binary search over a
/// stream's versions: 64 covers every `u64`).
pub const MAX_REVISION_PROBES: usize = 64;

/// The `ConsumerStrategy` names the protocol uses.
pub const ROUND_ROBIN: &str = "RoundRobin";
/// See [`ROUND_ROBIN`].
pub const DISPATCH_TO_SINGLE: &str = "DispatchToSingle";
/// See [`ROUND_ROBIN`].
pub const PINNED: &str = "Pinned";
/// See [`ROUND_ROBIN`].
pub const PINNED_BY_CORRELATION: &str = "PinnedByCorrelation";

/// The status a subscription reports (the protocol's "live").
pub const STATUS_LIVE: &str = "Live";

/// A message timeout as the wire carries it.
#[derive(Clone, Copy, Debug)]
pub enum Timeout {
    /// Milliseconds.
    Millis(i64),
    /// 100-ns ticks.
    Ticks(i64),
}

/// The settings Create and Update share, taken from either message.
#[derive(Clone, Debug)]
pub struct WireSettings {
    /// Retries before an event is parked.
    pub max_retry_count: i32,
    /// How long a message may stay unsettled.
    pub message_timeout: Option<Timeout>,
    /// The strategy by name (Create's newer field; empty when absent).
    pub consumer_strategy: String,
    /// The strategy as the older enumeration.
    pub named_consumer_strategy: i32,
    /// What Strata keeps and reports but does not use, and the
    /// subscriber limit.
    pub tuning: Tuning,
}

/// The [`Tuning`] of a Create's or an Update's settings `$s` (two
/// generated types with the same fields), `$c` naming its
/// `CheckpointAfter` oneof.
macro_rules! tuning {
    ($s:ident, $c:ident) => {
        Tuning {
            resolve_links: $s.resolve_links,
            extra_statistics: $s.extra_statistics,
            max_subscriber_count: $s.max_subscriber_count,
            live_buffer_size: $s.live_buffer_size,
            read_batch_size: $s.read_batch_size,
            history_buffer_size: $s.history_buffer_size,
            checkpoint_after_ms: $s.checkpoint_after.map_or(0, |c| match c {
                $c::CheckpointAfterMs(ms) => ms,
                $c::CheckpointAfterTicks(t) => ticks_to_ms(t),
            }),
            min_checkpoint_count: $s.min_checkpoint_count,
            max_checkpoint_count: $s.max_checkpoint_count,
        }
    };
}

impl From<create_req::Settings> for WireSettings {
    #[allow(deprecated)]
    fn from(s: create_req::Settings) -> Self {
        use create_req::settings::CheckpointAfter as C;
        use create_req::settings::MessageTimeout as T;
        Self {
            max_retry_count: s.max_retry_count,
            message_timeout: s.message_timeout.map(|t| match t {
                T::MessageTimeoutMs(ms) => Timeout::Millis(i64::from(ms)),
                T::MessageTimeoutTicks(t) => Timeout::Ticks(t),
            }),
            consumer_strategy: s.consumer_strategy,
            named_consumer_strategy: s.named_consumer_strategy,
            tuning: tuning!(s, C),
        }
    }
}

impl From<update_req::Settings> for WireSettings {
    fn from(s: update_req::Settings) -> Self {
        use update_req::settings::CheckpointAfter as C;
        use update_req::settings::MessageTimeout as T;
        Self {
            max_retry_count: s.max_retry_count,
            message_timeout: s.message_timeout.map(|t| match t {
                T::MessageTimeoutMs(ms) => Timeout::Millis(i64::from(ms)),
                T::MessageTimeoutTicks(t) => Timeout::Ticks(t),
            }),
            consumer_strategy: String::new(),
            named_consumer_strategy: s.named_consumer_strategy,
            tuning: tuning!(s, C),
        }
    }
}

/// 100-ns ticks as whole milliseconds, saturating at `i32`'s bounds.
fn ticks_to_ms(ticks: i64) -> i32 {
    let ms = ticks / 10_000;
    i32::try_from(ms).unwrap_or(if ms < 0 { i32::MIN } else { i32::MAX })
}

/// The strategy a subscription asks for.
pub fn strategy(wire: &WireSettings) -> Result<Strategy, Status> {
    let name = if wire.consumer_strategy.is_empty() {
        match wire.named_consumer_strategy {
            0 => DISPATCH_TO_SINGLE,
            1 => ROUND_ROBIN,
            2 => PINNED,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown consumer strategy {other}"
                )))
            }
        }
    } else {
        wire.consumer_strategy.as_str()
    };
    match name {
        ROUND_ROBIN => Ok(Strategy::RoundRobin),
        DISPATCH_TO_SINGLE => Ok(Strategy::Single),
        PINNED => Ok(Strategy::Pinned),
        PINNED_BY_CORRELATION => Err(Status::invalid_argument(
            "the consumer strategy PinnedByCorrelation is not served: \
             Strata pins by stream (use Pinned)",
        )),
        other => Err(Status::invalid_argument(format!(
            "unknown consumer strategy `{other}`: use RoundRobin, DispatchToSingle or Pinned"
        ))),
    }
}

/// The protocol's name of a strategy.
pub fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::RoundRobin => ROUND_ROBIN,
        Strategy::Single => DISPATCH_TO_SINGLE,
        Strategy::Pinned => PINNED,
    }
}

/// Applies the wire's settings to `settings` (timeout, retries, strategy,
/// and the tuning kept in its labels), refusing values out of range with
/// `InvalidArgument`.
pub fn apply(wire: &WireSettings, settings: &mut GroupSettings) -> Result<(), Status> {
    let max_retries = u32::try_from(wire.max_retry_count)
        .ok()
        .filter(|r| *r <= MAX_RETRIES_LIMIT)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "max_retry_count must be 0 to {MAX_RETRIES_LIMIT}, got {}",
                wire.max_retry_count
            ))
        })?;
    let ack_timeout_ms = match wire.message_timeout {
        None => DEFAULT_ACK_TIMEOUT_MS,
        Some(t) => {
            let ms = match t {
                Timeout::Millis(ms) => ms,
                Timeout::Ticks(ticks) => ticks / 10_000,
            };
            u64::try_from(ms)
                .ok()
                .filter(|ms| (1..=MAX_ACK_TIMEOUT_MS).contains(ms))
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "message_timeout must be more than 0 and at most {MAX_ACK_TIMEOUT_MS} ms, got {ms} ms"
                    ))
                })?
        }
    };
    if wire.tuning.max_subscriber_count < 0 {
        return Err(Status::invalid_argument(format!(
            "max_subscriber_count must be 0 or more, got {}",
            wire.tuning.max_subscriber_count
        )));
    }
    profile::keep_tuning(&mut settings.labels, &wire.tuning);
    settings.max_retries = max_retries;
    settings.ack_timeout_ms = ack_timeout_ms;
    settings.strategy = strategy(wire)?;
    settings
        .validate()
        .map_err(|e| Status::invalid_argument(format!("persistent subscription settings: {e}")))
}

/// The settings of a new group for `source`, starting at `start`, with
/// the wire's settings applied and the client's `filter` kept (when the
/// group's own filter does not hold it).
pub fn new_group(
    source: GroupSource,
    filter: Option<&FilterSpec>,
    start: GroupStart,
    wire: &WireSettings,
) -> Result<GroupSettings, Status> {
    let mut settings = GroupSettings::new(source);
    profile::keep_filter(&mut settings.labels, filter);
    settings.start = start;
    settings.max_in_flight = MAX_BUFFER_SIZE;
    apply(wire, &mut settings)?;
    Ok(settings)
}

/// Where a subscription to a stream starts: a revision (inclusive), the
/// start or the end. `None` uses the deprecated `settings.revision`.
pub fn stream_start(
    option: Option<create_req::stream_options::RevisionOption>,
    deprecated_revision: u64,
) -> GroupStart {
    use create_req::stream_options::RevisionOption as R;
    match option {
        Some(R::Revision(r)) => revision_start(r),
        Some(R::Start(_)) => GroupStart::Start,
        Some(R::End(_)) => GroupStart::End,
        None => revision_start(deprecated_revision),
    }
}

/// The start at wire revision `r` (inclusive): 0 is the start.
pub fn revision_start(r: u64) -> GroupStart {
    if r == 0 {
        GroupStart::Start
    } else {
        GroupStart::FromVersion(mapping::version(r))
    }
}

/// The start at commit position `p` of `$all` (inclusive: the event at
/// `p` is delivered); 0 is the start.
pub fn position_start(p: u64) -> GroupStart {
    match p.checked_sub(1) {
        None => GroupStart::Start,
        Some(before) => GroupStart::AfterPosition(Position(before)),
    }
}

/// Where a subscription to `$all` starts.
pub fn all_start(option: Option<create_req::all_options::AllOption>) -> GroupStart {
    use create_req::all_options::AllOption as A;
    match option {
        Some(A::Position(p)) => position_start(p.commit_position),
        Some(A::End(_)) => GroupStart::End,
        Some(A::Start(_)) | None => GroupStart::Start,
    }
}

/// A `$all` filter as a Strata group filter, and the client's filter
/// when the group's cannot hold it. A group filter holds one stream-name
/// prefix; any other filter (several prefixes, event types, regular
/// expressions) is checked here, kept with the subscription and applied
/// by its read sessions, which skip the events it rejects.
pub fn all_filter(
    filter: Option<&FilterOptions>,
) -> Result<(ReadFilter, Option<FilterSpec>), Status> {
    let Some(filter) = filter.and_then(|f| f.filter.as_ref()) else {
        return Ok((ReadFilter::all(), None));
    };
    let (subject, e) = match filter {
        Filter::StreamIdentifier(e) => (Subject::StreamName, e),
        Filter::EventType(e) => (Subject::EventType, e),
    };
    let spec = FilterSpec {
        subject,
        prefixes: e.prefix.clone(),
        regex: e.regex.clone(),
    };
    if spec.is_empty() {
        return Ok((ReadFilter::all(), None));
    }
    if let (Subject::StreamName, [one]) = (spec.subject, spec.prefixes.as_slice()) {
        return Ok((ReadFilter::all().stream_prefix(one.clone()), None));
    }
    EventFilter::from_spec(&spec)?;
    Ok((ReadFilter::all(), Some(spec)))
}

/// A group's state as the protocol's `SubscriptionInfo` (without its
/// connections, which the caller adds from the open sessions).
pub async fn info(
    store: &dyn EventStore,
    key: &Key,
    status: &GroupStatus,
) -> Result<SubscriptionInfo, Status> {
    let s = &status.settings;
    let tuning = Profile::of(s)?.tuning;
    let (start_from, checkpointed, known) = match &key.source {
        Source::Stream(stream) => {
            let start_from = match s.start {
                GroupStart::Start => "0".to_string(),
                GroupStart::End => "-1".to_string(),
                GroupStart::FromVersion(v) => mapping::revision(v).to_string(),
                GroupStart::AfterPosition(p) => {
                    let before = last_version_at(store, stream, p).await?;
                    before.map_or(0, |v| v).to_string()
                }
            };
            let checkpointed = last_version_at(store, stream, status.checkpoint)
                .await?
                .map_or_else(String::new, |v| mapping::revision(v).to_string());
            let known = last_event(store, stream)
                .await?
                .map_or_else(String::new, |(v, _)| mapping::revision(v).to_string());
            (start_from, checkpointed, known)
        }
        Source::All => {
            let start_from = match s.start {
                GroupStart::Start | GroupStart::FromVersion(_) => "C:0/P:0".to_string(),
                GroupStart::End => "C:-1/P:-1".to_string(),
                GroupStart::AfterPosition(p) => position_text(p.0.saturating_add(1)),
            };
            let checkpointed = if status.checkpoint.0 == 0 {
                String::new()
            } else {
                position_text(status.checkpoint.0)
            };
            let head = store
                .head_position()
                .await
                .map_err(|e| status::from_error(&e))?;
            let known = if head.0 == 0 {
                String::new()
            } else {
                position_text(head.0)
            };
            (start_from, checkpointed, known)
        }
    };
    let in_flight = i32::try_from(status.in_flight).unwrap_or(i32::MAX);
    Ok(SubscriptionInfo {
        event_source: key.source.label().to_string(),
        group_name: key.group.clone(),
        status: STATUS_LIVE.to_string(),
        connections: Vec::new(),
        average_per_second: status.acked_per_second.round() as i32,
        total_items: i64::try_from(status.acked_total).unwrap_or(i64::MAX),
        count_since_last_measurement: 0,
        last_checkpointed_event_position: checkpointed,
        last_known_event_position: known,
        resolve_link_tos: tuning.resolve_links,
        start_from,
        message_timeout_milliseconds: i32::try_from(s.ack_timeout_ms).unwrap_or(i32::MAX),
        extra_statistics: tuning.extra_statistics,
        max_retry_count: i32::try_from(s.max_retries).unwrap_or(i32::MAX),
        live_buffer_size: tuning.live_buffer_size,
        buffer_size: tuning.history_buffer_size,
        read_batch_size: tuning.read_batch_size,
        check_point_after_milliseconds: tuning.checkpoint_after_ms,
        min_check_point_count: tuning.min_checkpoint_count,
        max_check_point_count: tuning.max_checkpoint_count,
        read_buffer_count: 0,
        live_buffer_count: i64::try_from(status.lag_events).unwrap_or(i64::MAX),
        retry_buffer_count: 0,
        total_in_flight_messages: in_flight,
        outstanding_messages_count: in_flight,
        named_consumer_strategy: strategy_name(s.strategy).to_string(),
        max_subscriber_count: tuning.max_subscriber_count,
        parked_message_count: i64::try_from(status.parked).unwrap_or(i64::MAX),
    })
}

/// `C:<p>/P:<p>`: a position as the protocol writes it in answers.
pub fn position_text(p: u64) -> String {
    format!("C:{p}/P:{p}")
}

/// The last event of `stream`: its version and position (`None` for a
/// missing or deleted stream).
async fn last_event(
    store: &dyn EventStore,
    stream: &StreamId,
) -> Result<Option<(Version, Position)>, Status> {
    match store
        .read_stream(stream, FROM_END, 1, Direction::Backward)
        .await
    {
        Ok(page) => Ok(page.first().map(|e| (e.version, e.position))),
        Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => Ok(None),
        Err(e) => Err(status::from_error(&e)),
    }
}

/// The last version of `stream` whose position is at most `at` (`None`
/// when none is), by binary search over the versions.
async fn last_version_at(
    store: &dyn EventStore,
    stream: &StreamId,
    at: Position,
) -> Result<Option<Version>, Status> {
    let Some((last, position)) = last_event(store, stream).await? else {
        return Ok(None);
    };
    if position <= at {
        return Ok(Some(last));
    }
    let (mut low, mut high, mut best) = (1, last.saturating_sub(1), None);
    for _ in 0..MAX_REVISION_PROBES {
        if low > high {
            break;
        }
        let mid = low + (high - low) / 2;
        let page = match store.read_stream(stream, mid, 1, Direction::Forward).await {
            Ok(page) => page,
            Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => return Ok(best),
            Err(e) => return Err(status::from_error(&e)),
        };
        let Some(event) = page.first() else {
            break;
        };
        if event.position <= at {
            best = Some(event.version);
            low = event.version + 1;
        } else {
            high = mid - 1;
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> WireSettings {
        WireSettings {
            max_retry_count: 10,
            message_timeout: Some(Timeout::Millis(30_000)),
            consumer_strategy: String::new(),
            named_consumer_strategy: 1,
            tuning: Tuning::default(),
        }
    }

    #[test]
    fn settings_map_and_out_of_range_is_refused() {
        let stream = GroupSource::Stream(StreamId::new("orders-1").unwrap());
        let s = new_group(stream.clone(), None, GroupStart::Start, &wire()).unwrap();
        assert_eq!(s.strategy, Strategy::RoundRobin);
        assert_eq!(s.ack_timeout_ms, 30_000);
        assert_eq!(s.max_retries, 10);
        let mut w = wire();
        w.message_timeout = Some(Timeout::Ticks(5_000 * 10_000));
        w.consumer_strategy = "DispatchToSingle".into();
        let s = new_group(stream.clone(), None, GroupStart::Start, &w).unwrap();
        assert_eq!((s.ack_timeout_ms, s.strategy), (5_000, Strategy::Single));
        for bad in [
            WireSettings {
                max_retry_count: -1,
                ..wire()
            },
            WireSettings {
                max_retry_count: i32::try_from(MAX_RETRIES_LIMIT).unwrap() + 1,
                ..wire()
            },
            WireSettings {
                message_timeout: Some(Timeout::Millis(0)),
                ..wire()
            },
            WireSettings {
                message_timeout: Some(Timeout::Millis(10)),
                ..wire()
            },
            WireSettings {
                consumer_strategy: "PinnedByCorrelation".into(),
                ..wire()
            },
            WireSettings {
                named_consumer_strategy: 7,
                ..wire()
            },
        ] {
            let e = new_group(stream.clone(), None, GroupStart::Start, &bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn starts_are_inclusive() {
        assert_eq!(revision_start(0), GroupStart::Start);
        assert_eq!(revision_start(4), GroupStart::FromVersion(5));
        assert_eq!(position_start(0), GroupStart::Start);
        assert_eq!(position_start(7), GroupStart::AfterPosition(Position(6)));
    }

    #[test]
    fn one_stream_prefix_is_the_groups_filter_and_others_are_kept() {
        use crate::proto::persistent::create_req::all_options::filter_options::Expression;
        let f = |filter| FilterOptions {
            filter: Some(filter),
            window: None,
            checkpoint_interval_multiplier: 1,
        };
        let one = f(Filter::StreamIdentifier(Expression {
            regex: String::new(),
            prefix: vec!["orders-".into()],
        }));
        assert_eq!(
            all_filter(Some(&one)).unwrap(),
            (ReadFilter::all().stream_prefix("orders-"), None)
        );
        let types = f(Filter::EventType(Expression {
            regex: String::new(),
            prefix: vec!["Order".into(), "Invoice".into()],
        }));
        assert_eq!(
            all_filter(Some(&types)).unwrap(),
            (
                ReadFilter::all(),
                Some(FilterSpec {
                    subject: Subject::EventType,
                    prefixes: vec!["Order".into(), "Invoice".into()],
                    regex: String::new(),
                })
            )
        );
        let exclude = f(Filter::EventType(Expression {
            regex: r"^(?!(\$.+$|PersistentConfig\d+$))".into(),
            prefix: Vec::new(),
        }));
        assert!(all_filter(Some(&exclude)).unwrap().1.is_some());
        let bad = f(Filter::StreamIdentifier(Expression {
            regex: "a(?=b)".into(),
            prefix: vec![],
        }));
        assert_eq!(
            all_filter(Some(&bad)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
