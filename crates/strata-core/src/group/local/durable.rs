//! How [`LocalGroups`](super::LocalGroups) keeps a group's state as events
//! of system streams: `$groups` (definitions), `$group-NAME` (settle
//! records and checkpoints, numbered) and `$group-NAME-parked` (the parked
//! list).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{NewEvent, RecordedEvent};
use crate::read::{Direction, FROM_END};
use crate::store::EventStore;
use crate::stream_id::StreamId;
use crate::version::Position;

use super::super::state::Progress;
use super::super::{GroupName, GroupSettings};

/// The stream of group definitions.
pub const GROUPS_STREAM: &str = "$groups";
/// A group's settle records and checkpoints go to `$group-NAME`.
pub const GROUP_STREAM_PREFIX: &str = "$group-";
/// A group's parked list goes to `$group-NAME` + this.
pub const PARKED_STREAM_SUFFIX: &str = "-parked";
/// A full checkpoint record is written after this many settle records.
pub const CHECKPOINT_EVERY_RECORDS: u64 = 256;
/// How many of `$group-NAME`'s newest events stay readable (its
/// `max_count`), and how many recovery reads: enough to hold the last
/// checkpoint and every record written around it.
pub const RECOVERY_WINDOW: u64 = 4 * CHECKPOINT_EVERY_RECORDS;
/// The most durable writes one group has under way at once, so that every
/// record numbered after a checkpoint lies within [`RECOVERY_WINDOW`].
pub const MAX_CONCURRENT_WRITES: usize = 64;
/// Events read per page when loading `$groups` or a parked list.
const LOAD_PAGE: usize = 1_000;

const PUT: &str = "$group-put";
const DELETED: &str = "$group-deleted";
const SETTLED: &str = "$group-settled";
const CHECKPOINT: &str = "$group-checkpoint";
const PARKED: &str = "$group-parked";
const UNPARKED: &str = "$group-unparked";
const REPLAYED: &str = "$group-replayed";

/// A group's definition as `$groups` keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The group.
    pub name: GroupName,
    /// Its settings.
    pub settings: GroupSettings,
    /// The position it started after.
    pub start: Position,
}

#[derive(Serialize, Deserialize)]
struct Deleted {
    name: GroupName,
}

#[derive(Serialize, Deserialize)]
struct Settled {
    seq: u64,
    /// Settled positions one by one (records written before `runs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    positions: Vec<Position>,
    /// Settled positions as `[first, count]` runs of consecutive positions:
    /// a batch acked in order is a handful of numbers, not one per event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    runs: Vec<[u64; 2]>,
    /// The group's checkpoint once these were settled.
    #[serde(default)]
    checkpoint: Position,
}

impl Settled {
    /// Every position the record settles.
    fn all_positions(&self) -> Vec<Position> {
        let mut out = self.positions.clone();
        for &[first, count] in &self.runs {
            out.extend((0..count).map(|i| Position(first + i)));
        }
        out
    }
}

/// `positions` as `[first, count]` runs, in order.
fn runs_of(mut positions: Vec<Position>) -> Vec<[u64; 2]> {
    positions.sort_unstable();
    positions.dedup();
    let mut runs: Vec<[u64; 2]> = Vec::new();
    for p in positions {
        match runs.last_mut() {
            Some([first, count]) if *first + *count == p.0 => *count += 1,
            _ => runs.push([p.0, 1]),
        }
    }
    runs
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// Every record numbered up to this is in it.
    covers: u64,
    checkpoint: Position,
    cursor: Position,
    unsettled: Vec<Position>,
    settled_ahead: Vec<Position>,
}

/// One entry of a parked list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParkedEntry {
    /// The parked event's position.
    pub position: Position,
    /// Its stream.
    pub stream: String,
    /// Deliveries before it was parked.
    pub delivery_count: u32,
    /// Why.
    pub reason: String,
    /// When.
    pub parked_at: DateTime<Utc>,
    /// Whether it is offered to the group again right now.
    #[serde(default)]
    pub replaying: bool,
}

#[derive(Serialize, Deserialize)]
struct PositionOnly {
    position: Position,
}

fn system(name: String) -> Result<StreamId> {
    StreamId::system(name)
}

/// `$groups`.
pub fn groups_stream() -> Result<StreamId> {
    system(GROUPS_STREAM.into())
}

/// `$group-NAME`.
pub fn group_stream(name: &GroupName) -> Result<StreamId> {
    system(format!("{GROUP_STREAM_PREFIX}{name}"))
}

/// `$group-NAME-parked`.
pub fn parked_stream(name: &GroupName) -> Result<StreamId> {
    system(format!("{GROUP_STREAM_PREFIX}{name}{PARKED_STREAM_SUFFIX}"))
}

fn encode<T: Serialize>(event_type: &str, value: &T) -> Result<NewEvent> {
    NewEvent::json(event_type, value).map_err(|e| Error::InvalidInput {
        reason: format!("encoding a {event_type} record: {e}"),
    })
}

fn decode<T: DeserializeOwned>(e: &RecordedEvent) -> Result<T> {
    serde_json::from_slice(&e.data).map_err(|err| Error::Corrupt {
        location: format!("{} version {}", e.stream_id, e.version),
        reason: format!("undecodable {} record: {err}", e.event_type),
    })
}

/// Reads a whole stream forward; empty when it has no readable events.
async fn read_whole<S: EventStore + ?Sized>(
    store: &S,
    stream: &StreamId,
) -> Result<Vec<RecordedEvent>> {
    let mut out = Vec::new();
    let mut from = 1;
    loop {
        let page = match store
            .read_stream(stream, from, LOAD_PAGE, Direction::Forward)
            .await
        {
            Ok(page) => page,
            Err(Error::StreamNotFound { .. }) => return Ok(out),
            Err(e) => return Err(e),
        };
        let Some(last) = page.last() else {
            return Ok(out);
        };
        from = last.version + 1;
        let short = page.len() < LOAD_PAGE;
        out.extend(page);
        if short {
            return Ok(out);
        }
    }
}

/// Every live group definition, by name.
pub async fn load_definitions<S: EventStore + ?Sized>(
    store: &S,
) -> Result<BTreeMap<GroupName, Definition>> {
    let mut out = BTreeMap::new();
    for e in read_whole(store, &groups_stream()?).await? {
        match e.event_type.as_str() {
            PUT => {
                let d: Definition = decode(&e)?;
                out.insert(d.name.clone(), d);
            }
            DELETED => {
                let d: Deleted = decode(&e)?;
                out.remove(&d.name);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Writes a definition.
pub async fn put_definition<S: EventStore + ?Sized>(store: &S, d: &Definition) -> Result<()> {
    let stream = groups_stream()?;
    store
        .append(&stream, crate::ExpectedVersion::Any, vec![encode(PUT, d)?])
        .await?;
    Ok(())
}

/// Writes a deletion and drops the group's own streams, so a group created
/// again under the name starts afresh.
pub async fn delete_definition<S: EventStore + ?Sized>(store: &S, name: &GroupName) -> Result<()> {
    let deleted = Deleted { name: name.clone() };
    store
        .append(
            &groups_stream()?,
            crate::ExpectedVersion::Any,
            vec![encode(DELETED, &deleted)?],
        )
        .await?;
    for stream in [group_stream(name)?, parked_stream(name)?] {
        match store
            .delete_stream(&stream, crate::ExpectedVersion::Any)
            .await
        {
            Ok(()) | Err(Error::StreamNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A group's progress from its newest records, and the next record number.
pub async fn load_progress<S: EventStore + ?Sized>(
    store: &S,
    name: &GroupName,
    start: Position,
) -> Result<(Progress, u64)> {
    let stream = group_stream(name)?;
    let window = match store
        .read_stream(
            &stream,
            FROM_END,
            RECOVERY_WINDOW as usize,
            Direction::Backward,
        )
        .await
    {
        Ok(events) => events,
        Err(Error::StreamNotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut checkpoint: Option<Checkpoint> = None;
    let mut settled: Vec<Settled> = Vec::new();
    for e in &window {
        match e.event_type.as_str() {
            CHECKPOINT => {
                let c: Checkpoint = decode(e)?;
                if checkpoint.as_ref().is_none_or(|old| c.covers > old.covers) {
                    checkpoint = Some(c);
                }
            }
            SETTLED => settled.push(decode(e)?),
            _ => {}
        }
    }
    let (mut progress, covers) = match checkpoint {
        Some(c) => (
            Progress {
                checkpoint: c.checkpoint,
                cursor: c.cursor,
                unsettled: c.unsettled.into_iter().collect(),
                settled_ahead: c.settled_ahead.into_iter().collect(),
            },
            c.covers,
        ),
        None => (Progress::starting_after(start), 0),
    };
    let mut next = covers + 1;
    for s in settled.iter().filter(|s| s.seq > covers) {
        progress.settle(&s.all_positions());
        progress.advance(s.checkpoint);
        next = next.max(s.seq + 1);
    }
    Ok((progress, next))
}

/// Sets `$group-NAME`'s retention so only the recovery window stays.
pub async fn limit_group_stream<S: EventStore + ?Sized>(store: &S, name: &GroupName) -> Result<()> {
    let stream = group_stream(name)?;
    let settings = crate::StreamMetadata {
        max_count: Some(RECOVERY_WINDOW),
        ..Default::default()
    };
    let current = store.stream_metadata(&stream).await?;
    if current.as_ref().is_some_and(|m| m.metadata == settings) {
        return Ok(());
    }
    let expected = match current {
        Some(m) => crate::ExpectedVersion::Exact(m.version),
        None => crate::ExpectedVersion::NoStream,
    };
    store
        .set_stream_metadata(&stream, expected, &settings)
        .await?;
    Ok(())
}

/// A settle record numbered `seq`.
pub fn settled_record(
    seq: u64,
    positions: Vec<Position>,
    checkpoint: Position,
) -> Result<NewEvent> {
    encode(
        SETTLED,
        &Settled {
            seq,
            positions: Vec::new(),
            runs: runs_of(positions),
            checkpoint,
        },
    )
}

/// A checkpoint record covering every record numbered up to `covers`.
pub fn checkpoint_record(covers: u64, p: &Progress) -> Result<NewEvent> {
    encode(
        CHECKPOINT,
        &Checkpoint {
            covers,
            checkpoint: p.checkpoint,
            cursor: p.cursor,
            unsettled: p.unsettled.iter().copied().collect(),
            settled_ahead: p.settled_ahead.iter().copied().collect(),
        },
    )
}

/// A parked-list record: parked, replayed or removed.
pub fn parked_record(entry: &ParkedEntry) -> Result<NewEvent> {
    encode(PARKED, entry)
}

/// A record that the parked event at `position` is offered again.
pub fn replayed_record(position: Position) -> Result<NewEvent> {
    encode(REPLAYED, &PositionOnly { position })
}

/// A record that the parked event at `position` left the list.
pub fn unparked_record(position: Position) -> Result<NewEvent> {
    encode(UNPARKED, &PositionOnly { position })
}

/// The parked list, by position.
pub async fn load_parked<S: EventStore + ?Sized>(
    store: &S,
    name: &GroupName,
) -> Result<BTreeMap<Position, ParkedEntry>> {
    let mut out = BTreeMap::new();
    for e in read_whole(store, &parked_stream(name)?).await? {
        match e.event_type.as_str() {
            PARKED => {
                let entry: ParkedEntry = decode(&e)?;
                out.insert(entry.position, entry);
            }
            REPLAYED => {
                let p: PositionOnly = decode(&e)?;
                if let Some(entry) = out.get_mut(&p.position) {
                    entry.replaying = true;
                }
            }
            UNPARKED => {
                let p: PositionOnly = decode(&e)?;
                out.remove(&p.position);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The event at `position` of `stream`, if it is still readable.
pub async fn event_at<S: EventStore + ?Sized>(
    store: &S,
    stream: &str,
    position: Position,
) -> Result<Option<RecordedEvent>> {
    let filter = crate::ReadFilter {
        stream: Some(StreamId::new(stream)?),
        ..Default::default()
    };
    let found = store.read_all(position, 1, &filter).await?;
    Ok(found.into_iter().next().filter(|e| e.position == position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_positions_are_written_as_runs_and_old_records_still_read() {
        let positions = [7, 3, 4, 5, 9, 10, 5].map(Position).to_vec();
        assert_eq!(runs_of(positions), vec![[3, 3], [7, 1], [9, 2]]);
        let record = Settled {
            seq: 1,
            positions: Vec::new(),
            runs: vec![[3, 3], [9, 2]],
            checkpoint: Position(2),
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("positions"), "{json}");
        let back: Settled = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.all_positions(),
            [3, 4, 5, 9, 10].map(Position).to_vec()
        );
        // A record written before runs existed.
        let old: Settled =
            serde_json::from_str(r#"{"seq":4,"positions":[11,13],"checkpoint":10}"#).unwrap();
        assert_eq!(old.all_positions(), vec![Position(11), Position(13)]);
    }
}
