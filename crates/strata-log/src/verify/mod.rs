//! `verify`: walk every checksum and every index entry of a data directory and
//! report each problem with its file and offset.
//!
//! Damage in a segment hides what follows it, so the index entries, stream
//! checkpoint entries and stream versions behind it disagree with the log
//! too. Those findings are counted against the damage (its
//! [`Problem::follows`]) rather than listed one by one: the report names the
//! root problem once.

mod indexes;
mod repair;

pub use repair::{plan_repair, RepairDone, RepairPlan};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::MAX_SEGMENT_BYTES_FOR_VERIFY;
use crate::format::{
    decode_delete, position_of, record_offsets, split_position, FrameKind, RecordView,
    FRAME_HEADER_BYTES,
};
use crate::index::key_hash;
use crate::io::Storage;
use crate::segment::{
    index_file_name, list_segment_numbers, open_segment, read_header, scan_frames,
    segment_file_name, tag_file_name, ScanEnd, FIRST_FRAME_OFFSET,
};
use crate::streams::STREAM_CHECKPOINT_FILE;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in the file, when it applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
    /// How many further findings follow from this one (index entries,
    /// checkpoint entries and stream versions behind damaged data).
    pub follows: u64,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o}: {}", self.file.display(), self.what)?,
            None => write!(f, "{}: {}", self.file.display(), self.what)?,
        }
        if self.follows > 0 {
            write!(
                f,
                " ({} further findings follow from it: index entries and stream versions behind the damage)",
                self.follows
            )?;
        }
        Ok(())
    }
}

/// What `verify` looked at and found.
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Segment files checked.
    pub segments: u64,
    /// Frames whose checksum was verified.
    pub frames: u64,
    /// Event records whose checksum was verified.
    pub events: u64,
    /// Index entries checked against the log.
    pub index_entries: u64,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// The first damaged frame of the log, if any: where a repair cuts.
    pub first_damage: Option<DamagedFrame>,
}

/// The first frame of the log that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedFrame {
    /// Its segment.
    pub segment: u32,
    /// Its offset in the segment.
    pub offset: u64,
    /// The segment's file.
    pub file: PathBuf,
    /// Readable events after it in the log (in its segment and later ones).
    pub events_after: u64,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Records `problem`, or counts it against the problem numbered `cause`
    /// it follows from.
    fn note(&mut self, problem: Problem, cause: Option<usize>) {
        match cause.and_then(|i| self.problems.get_mut(i)) {
            Some(root) => root.follows += 1,
            None => self.problems.push(problem),
        }
    }
}

/// Damaged data found by the segment walk: nothing of segment `segment`
/// from `from` on could be read.
struct Damage {
    segment: u32,
    from: u64,
    /// The problem that reports it.
    problem: usize,
}

/// What verify learned about one event from its segment: what the indexes
/// and the stream checkpoint must agree with.
struct EventFacts {
    stream: String,
    version: u64,
    id: u128,
    type_hash: u64,
    category_hash: u64,
    correlation_hash: Option<u64>,
}

/// What the walk over the segments found, for the index checks after it.
#[derive(Default)]
struct LogFacts {
    /// Every event, by position.
    events: HashMap<u64, EventFacts>,
    /// Every frame's offset, per segment.
    frames_by_segment: HashMap<u32, Vec<u64>>,
    /// The last version seen of each stream.
    versions: HashMap<String, u64>,
    /// Damage found so far, in log order.
    damage: Vec<Damage>,
    /// Gap frames seen so far (a scavenge removed their events).
    gaps: u64,
    /// Where events a scavenge removed were: removed records' positions,
    /// and each gap frame as (segment, first offset, end offset).
    removed: std::collections::HashSet<u64>,
    gap_ranges: Vec<(u32, u64, u64)>,
    /// For each stream, how many gap frames had been seen at its last
    /// event: a version may jump only over a later gap.
    gaps_at: HashMap<String, u64>,
}

impl LogFacts {
    /// Whether a scavenge removed the event that was at `position`.
    fn was_removed(&self, position: u64) -> bool {
        let (n, off) = split_position(strata_core::Position(position));
        self.removed.contains(&position)
            || self
                .gap_ranges
                .iter()
                .any(|&(s, from, to)| s == n && (from..to).contains(&off))
    }

    /// The problem of the damage that hides `position`, if any.
    fn damage_behind(&self, position: u64) -> Option<usize> {
        let (n, off) = split_position(strata_core::Position(position));
        self.damage
            .iter()
            .find(|d| d.segment == n && off >= d.from)
            .map(|d| d.problem)
    }

    /// The position where damage in segment `n` starts, if there is any.
    fn damage_in_segment(&self, n: u32) -> Option<u64> {
        self.damage
            .iter()
            .find(|d| d.segment == n)
            .map(|d| position_of(n, d.from).0)
    }

    /// The problem of the latest damage before this point of the walk.
    fn latest_damage(&self) -> Option<usize> {
        self.damage.last().map(|d| d.problem)
    }
}

/// Verifies the store in `dir` without opening it for writing.
pub fn verify(dir: &Path, storage: &dyn Storage) -> std::io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let seg_dir = dir.join("segments");
    let idx_dir = dir.join("index");
    let numbers = list_segment_numbers(storage, &seg_dir)?;
    let last = numbers.last().copied();
    let mut facts = LogFacts::default();
    for w in numbers.windows(2) {
        if w[1] != w[0] + 1 {
            report.problems.push(Problem {
                file: seg_dir.clone(),
                offset: None,
                what: format!("segment {} is missing", w[0] + 1),
                follows: 0,
            });
        }
    }
    for &n in &numbers {
        verify_segment(
            storage,
            &seg_dir,
            n,
            Some(n) == last,
            &mut facts,
            &mut report,
        )?;
    }
    for &n in &numbers {
        if Some(n) != last {
            indexes::verify_sealed_index(
                storage,
                &idx_dir.join(index_file_name(n)),
                n,
                &facts,
                &mut report,
            );
            indexes::verify_tag_file(
                storage,
                &idx_dir.join(tag_file_name(n)),
                n,
                &facts,
                &mut report,
            );
        }
    }
    indexes::verify_stream_checkpoint(
        storage,
        &dir.join(STREAM_CHECKPOINT_FILE),
        &facts,
        &mut report,
    );
    report.first_damage = facts.damage.first().map(|d| {
        let from = position_of(d.segment, d.from).0;
        DamagedFrame {
            segment: d.segment,
            offset: d.from,
            file: report
                .problems
                .get(d.problem)
                .map_or_else(|| seg_dir.clone(), |p| p.file.clone()),
            events_after: facts.events.keys().filter(|p| **p >= from).count() as u64,
        }
    });
    Ok(report)
}

/// Checks segment `n`'s header, every frame and record, and stream versions.
fn verify_segment(
    storage: &dyn Storage,
    seg_dir: &Path,
    n: u32,
    is_last: bool,
    facts: &mut LogFacts,
    report: &mut VerifyReport,
) -> std::io::Result<()> {
    report.segments += 1;
    let seg = match open_segment(storage, seg_dir, n, false) {
        Ok(seg) => seg,
        Err(what) => {
            report.problems.push(Problem {
                file: seg_dir.join(segment_file_name(n)),
                offset: None,
                what: what.to_string(),
                follows: 0,
            });
            return Ok(());
        }
    };
    let (path, file, check) = (seg.path, seg.file, seg.check);
    let len = file.len()?;
    match read_header(file.as_ref(), &path) {
        Ok(h) if h.number == n => {}
        Ok(h) => report.problems.push(Problem {
            file: path.clone(),
            offset: Some(0),
            what: format!("header names segment {}", h.number),
            follows: 0,
        }),
        Err(what) => {
            report.problems.push(Problem {
                file: path.clone(),
                offset: Some(0),
                what: what.to_string(),
                follows: 0,
            });
            return Ok(());
        }
    }
    let mut frame_offsets = Vec::new();
    let mut record_problems = Vec::new();
    let scanned = scan_frames(
        file.as_ref(),
        check,
        FIRST_FRAME_OFFSET,
        len,
        MAX_SEGMENT_BYTES_FOR_VERIFY,
        |offset, kind, body, _, _| {
            report.frames += 1;
            frame_offsets.push(offset);
            check_frame(n, offset, kind, body, facts, report, &mut record_problems);
            Ok(true)
        },
    );
    let end = scanned.unwrap_or_else(|e| {
        report.problems.push(Problem {
            file: path.clone(),
            offset: None,
            what: format!("unreadable: {e}"),
            follows: 0,
        });
        ScanEnd::Clean {
            end: 0,
            next_seq: 0,
        }
    });
    for (offset, what, gap) in record_problems {
        // A stream version missing after damage is what the damage hid.
        let cause = if gap { facts.latest_damage() } else { None };
        report.note(
            Problem {
                file: path.clone(),
                offset: Some(offset),
                what,
                follows: 0,
            },
            cause,
        );
    }
    let (at, what) = match end {
        ScanEnd::Clean { .. } => {
            facts.frames_by_segment.insert(n, frame_offsets);
            return Ok(());
        }
        ScanEnd::Torn { at, reason, .. } if is_last => (
            at,
            format!("torn tail ({reason}); opening the store cuts it"),
        ),
        ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason } => (at, reason),
    };
    facts.damage.push(Damage {
        segment: n,
        from: at,
        problem: report.problems.len(),
    });
    report.problems.push(Problem {
        file: path.clone(),
        offset: Some(at),
        what,
        follows: 0,
    });
    facts.frames_by_segment.insert(n, frame_offsets);
    Ok(())
}

/// Checks the records of one frame (or its delete body), noting each event.
fn check_frame(
    n: u32,
    offset: u64,
    kind: FrameKind,
    body: &[u8],
    facts: &mut LogFacts,
    report: &mut VerifyReport,
    problems: &mut Vec<(u64, String, bool)>,
) {
    if kind == FrameKind::Gap {
        facts.gaps += 1;
        let end = offset + (FRAME_HEADER_BYTES + body.len()) as u64;
        facts.gap_ranges.push((n, offset, end));
        if body.iter().any(|b| *b != 0) {
            problems.push((offset, "a gap frame's body is not zeros".into(), false));
        }
        return;
    }
    if kind != FrameKind::Append {
        if let Err(what) = decode_delete(body) {
            problems.push((offset, what.to_string(), false));
        }
        return;
    }
    let recs = match record_offsets(body, offset + FRAME_HEADER_BYTES as u64) {
        Ok(r) => r,
        Err(what) => {
            problems.push((offset, what.to_string(), false));
            return;
        }
    };
    for (rec_off, rel) in recs {
        match RecordView::parse(&body[rel..]) {
            Ok(v) => {
                let expect = facts.versions.get(v.stream).copied().unwrap_or(0) + 1;
                let over_gap = facts.gaps > facts.gaps_at.get(v.stream).copied().unwrap_or(0);
                facts.gaps_at.insert(v.stream.to_owned(), facts.gaps);
                if v.version != expect && !(over_gap && v.version > expect) {
                    problems.push((
                        rec_off,
                        format!(
                            "stream `{}` version {} follows version {}",
                            v.stream,
                            v.version,
                            expect - 1
                        ),
                        true,
                    ));
                }
                facts.versions.insert(v.stream.to_owned(), v.version);
                if v.is_removed() {
                    facts.removed.insert(position_of(n, rec_off).0);
                    continue;
                }
                report.events += 1;
                facts.events.insert(
                    position_of(n, rec_off).0,
                    EventFacts {
                        stream: v.stream.to_owned(),
                        version: v.version,
                        id: v.id().0.as_u128(),
                        type_hash: key_hash(v.event_type),
                        category_hash: key_hash(strata_core::stream_id::category_of(v.stream)),
                        correlation_hash: v.correlation_id().map(key_hash),
                    },
                );
            }
            Err(what) => problems.push((rec_off, what.to_string(), false)),
        }
    }
}
