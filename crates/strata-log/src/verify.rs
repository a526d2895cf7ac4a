//! `verify`: walk every checksum and every index entry of a data directory and
//! report each problem with its file and offset.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::MAX_SEGMENT_BYTES_FOR_VERIFY;
use crate::format::{
    decode_delete, position_of, record_offsets, split_position, FrameKind, RecordView,
    FRAME_HEADER_BYTES,
};
use crate::index::{key_hash, Postings, SealedIndex};
use crate::io::{read_file, Storage};
use crate::segment::{
    index_file_name, list_segment_numbers, open_segment, read_header, scan_frames, segment_file_name, ScanEnd,
    FIRST_FRAME_OFFSET,
};
use crate::streams::{StreamIndex, STREAM_CHECKPOINT_FILE};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Byte offset in the file, when it applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o}: {}", self.file.display(), self.what),
            None => write!(f, "{}: {}", self.file.display(), self.what),
        }
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
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
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
            verify_sealed_index(
                storage,
                &idx_dir.join(index_file_name(n)),
                n,
                &facts,
                &mut report,
            );
        }
    }
    verify_stream_checkpoint(
        storage,
        &dir.join(STREAM_CHECKPOINT_FILE),
        &facts,
        &mut report,
    );
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
        }),
        Err(what) => {
            report.problems.push(Problem {
                file: path.clone(),
                offset: Some(0),
                what: what.to_string(),
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
        });
        ScanEnd::Clean { end: 0, next_seq: 0 }
    });
    for (offset, what) in record_problems {
        report.problems.push(Problem {
            file: path.clone(),
            offset: Some(offset),
            what,
        });
    }
    match end {
        ScanEnd::Clean { .. } => {}
        ScanEnd::Torn { at, reason, .. } if is_last => report.problems.push(Problem {
            file: path.clone(),
            offset: Some(at),
            what: format!("torn tail ({reason}); opening the store cuts it"),
        }),
        ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason } => {
            report.problems.push(Problem {
                file: path.clone(),
                offset: Some(at),
                what: reason,
            })
        }
    }
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
    problems: &mut Vec<(u64, String)>,
) {
    if kind != FrameKind::Append {
        if let Err(what) = decode_delete(body) {
            problems.push((offset, what.to_string()));
        }
        return;
    }
    let recs = match record_offsets(body, offset + FRAME_HEADER_BYTES as u64) {
        Ok(r) => r,
        Err(what) => {
            problems.push((offset, what.to_string()));
            return;
        }
    };
    for (rec_off, rel) in recs {
        match RecordView::parse(&body[rel..]) {
            Ok(v) => {
                report.events += 1;
                let expect = facts.versions.get(v.stream).copied().unwrap_or(0) + 1;
                if v.version != expect {
                    problems.push((
                        rec_off,
                        format!(
                            "stream `{}` version {} follows version {}",
                            v.stream,
                            v.version,
                            expect - 1
                        ),
                    ));
                }
                facts.versions.insert(v.stream.to_owned(), v.version);
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
            Err(what) => problems.push((rec_off, what.to_string())),
        }
    }
}

/// Checks sealed segment `n`'s index file entry by entry against the log.
fn verify_sealed_index(
    storage: &dyn Storage,
    path: &Path,
    n: u32,
    facts: &LogFacts,
    report: &mut VerifyReport,
) {
    let problem = |what: String| Problem {
        file: path.to_path_buf(),
        offset: None,
        what,
    };
    if !storage.exists(path) {
        report.problems.push(problem(
            "index file missing (opening the store rebuilds it)".into(),
        ));
        return;
    }
    let opened = storage
        .open(path, false)
        .map_err(|e| e.to_string())
        .and_then(|f| SealedIndex::open(f, n).map_err(|e| e.to_string()));
    let idx = match opened {
        Ok(i) => i,
        Err(what) => {
            report.problems.push(problem(what));
            return;
        }
    };
    let mut problems = Vec::new();
    let mut loaded = Vec::with_capacity(5);
    for k in 0..5 {
        match idx.entries(k) {
            Ok(v) => loaded.push(v),
            Err(e) => {
                problems.push(format!("section {k}: {e}"));
                loaded.push(Vec::new());
            }
        }
    }
    let frames: Vec<u64> = loaded[4].iter().map(|(_, v)| *v).collect();
    if Some(&frames) != facts.frames_by_segment.get(&n) {
        problems.push("frame list differs from the segment's frames".into());
    }
    check_id_entries(n, &loaded[0], facts, report, &mut problems);
    for (kind, list) in [Postings::Type, Postings::Category, Postings::Correlation]
        .into_iter()
        .zip(loaded[1..4].iter())
    {
        check_postings(kind, list, facts, report, &mut problems);
    }
    report.problems.extend(problems.into_iter().map(problem));
}

/// Every event of segment `n` has an id entry, and each entry points at its event.
fn check_id_entries(
    n: u32,
    ids: &[(u128, u64)],
    facts: &LogFacts,
    report: &mut VerifyReport,
    problems: &mut Vec<String>,
) {
    let in_segment = facts
        .events
        .keys()
        .filter(|p| split_position(strata_core::Position(**p)).0 == n)
        .count();
    if ids.len() != in_segment {
        problems.push(format!("{} id entries for {in_segment} events", ids.len()));
    }
    for (id, pos) in ids {
        report.index_entries += 1;
        match facts.events.get(pos) {
            Some(f) if f.id == *id => {}
            _ => problems.push(format!(
                "id entry points to position {pos}, which does not hold that event"
            )),
        }
    }
}

/// Each posting of `kind` points at an event with that key.
fn check_postings(
    kind: Postings,
    list: &[(u128, u64)],
    facts: &LogFacts,
    report: &mut VerifyReport,
    problems: &mut Vec<String>,
) {
    for (key, pos) in list {
        report.index_entries += 1;
        let h = (*key >> 64) as u64;
        let ok = facts.events.get(pos).is_some_and(|f| match kind {
            Postings::Type => f.type_hash == h,
            Postings::Category => f.category_hash == h,
            Postings::Correlation => f.correlation_hash == Some(h),
        });
        if !ok {
            problems.push(format!(
                "{kind:?} posting for position {pos} does not match the event there"
            ));
        }
    }
}

/// Each position of the stream checkpoint holds the version it claims.
fn verify_stream_checkpoint(
    storage: &dyn Storage,
    ckpt: &Path,
    facts: &LogFacts,
    report: &mut VerifyReport,
) {
    if !storage.exists(ckpt) {
        return;
    }
    let decoded = read_file(storage, ckpt)
        .map_err(|e| e.to_string())
        .and_then(|b| StreamIndex::decode_checkpoint(&b).map_err(|e| e.to_string()));
    let streams = match decoded {
        Ok((streams, _)) => streams,
        Err(what) => {
            report.problems.push(Problem {
                file: ckpt.to_path_buf(),
                offset: None,
                what,
            });
            return;
        }
    };
    for (id, e) in &streams.streams {
        for (i, pos) in e.positions.iter().enumerate() {
            report.index_entries += 1;
            let ok = facts
                .events
                .get(pos)
                .is_some_and(|f| f.stream == id.as_str() && f.version == i as u64 + 1);
            if !ok {
                report.problems.push(Problem {
                    file: ckpt.to_path_buf(),
                    offset: None,
                    what: format!(
                        "stream `{id}` version {} points to position {pos}, which does not hold it",
                        i + 1
                    ),
                });
            }
        }
    }
}
