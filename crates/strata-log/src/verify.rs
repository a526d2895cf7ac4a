//! `verify`: walk every checksum and every index entry of a data directory and
//! report each problem with its file and offset.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::MAX_SEGMENT_BYTES_FOR_VERIFY;
use crate::format::{
    decode_delete, decode_segment_header, position_of, split_position, FrameKind, RecordView,
    FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::index::{key_hash, Postings, SealedIndex};
use crate::io::{read_file, Storage};
use crate::segment::{
    index_file_name, read_chunk, record_offsets, scan_frames, ScanEnd, FIRST_FRAME_OFFSET,
};
use crate::store::STREAM_CHECKPOINT_FILE;
use crate::streams::StreamIndex;

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

struct EventFacts {
    stream: String,
    version: u64,
    id: u128,
    type_hash: u64,
    category_hash: u64,
    correlation_hash: Option<u64>,
}

/// Verifies the store in `dir` without opening it for writing.
pub fn verify(dir: &Path, storage: &dyn Storage) -> std::io::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let seg_dir = dir.join("segments");
    let idx_dir = dir.join("index");
    let numbers = crate::segment::list_segment_numbers(storage, &seg_dir)?;
    let last = numbers.last().copied();
    // Facts about every event, by position: what the indexes must agree with.
    let mut events: HashMap<u64, EventFacts> = HashMap::new();
    let mut frames_by_segment: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
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
        report.segments += 1;
        let (path, file) = match crate::segment::open_segment(storage, &seg_dir, n, false) {
            Ok(seg) => (seg.path, seg.file),
            Err(what) => {
                report.problems.push(Problem {
                    file: seg_dir.join(crate::segment::segment_file_name(n)),
                    offset: None,
                    what,
                });
                continue;
            }
        };
        let len = file.len()?;
        let header = read_chunk(file.as_ref(), 0, SEGMENT_HEADER_BYTES)?;
        match decode_segment_header(&header) {
            Ok(named) if named == n => {}
            Ok(named) => report.problems.push(Problem {
                file: path.clone(),
                offset: Some(0),
                what: format!("header names segment {named}"),
            }),
            Err(what) => {
                report.problems.push(Problem {
                    file: path.clone(),
                    offset: Some(0),
                    what,
                });
                continue;
            }
        }
        let mut frame_offsets = Vec::new();
        let mut record_problems = Vec::new();
        let scanned = scan_frames(
            file.as_ref(),
            FIRST_FRAME_OFFSET,
            len,
            MAX_SEGMENT_BYTES_FOR_VERIFY,
            |offset, kind, body, _, _| {
                report.frames += 1;
                frame_offsets.push(offset);
                match kind {
                    FrameKind::Append => {
                        let start = offset + FRAME_HEADER_BYTES as u64;
                        let recs = match record_offsets(body, start) {
                            Ok(r) => r,
                            Err(what) => {
                                record_problems.push((offset, what));
                                return Ok(true);
                            }
                        };
                        for (rec_off, rel) in recs {
                            match RecordView::parse(&body[rel..]) {
                                Ok(v) => {
                                    report.events += 1;
                                    let expect = versions.get(v.stream).copied().unwrap_or(0) + 1;
                                    if v.version != expect {
                                        record_problems.push((
                                            rec_off,
                                            format!(
                                                "stream `{}` version {} follows version {}",
                                                v.stream,
                                                v.version,
                                                expect - 1
                                            ),
                                        ));
                                    }
                                    versions.insert(v.stream.to_owned(), v.version);
                                    events.insert(
                                        position_of(n, rec_off).0,
                                        EventFacts {
                                            stream: v.stream.to_owned(),
                                            version: v.version,
                                            id: v.id().0.as_u128(),
                                            type_hash: key_hash(v.event_type),
                                            category_hash: key_hash(
                                                strata_core::stream_id::category_of(v.stream),
                                            ),
                                            correlation_hash: v.correlation_id().map(key_hash),
                                        },
                                    );
                                }
                                Err(what) => record_problems.push((rec_off, what)),
                            }
                        }
                    }
                    FrameKind::Delete | FrameKind::Tombstone => {
                        if let Err(what) = decode_delete(body) {
                            record_problems.push((offset, what));
                        }
                    }
                }
                Ok(true)
            },
        );
        let end = match scanned {
            Ok(end) => end,
            Err(e) => {
                report.problems.push(Problem {
                    file: path.clone(),
                    offset: None,
                    what: format!("unreadable: {e}"),
                });
                ScanEnd::Clean { end: 0 }
            }
        };
        for (offset, what) in record_problems {
            report.problems.push(Problem {
                file: path.clone(),
                offset: Some(offset),
                what,
            });
        }
        match end {
            ScanEnd::Clean { .. } => {}
            ScanEnd::Torn { at, reason } if Some(n) == last => report.problems.push(Problem {
                file: path.clone(),
                offset: Some(at),
                what: format!("torn tail ({reason}); opening the store cuts it"),
            }),
            ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } => {
                report.problems.push(Problem {
                    file: path.clone(),
                    offset: Some(at),
                    what: reason,
                })
            }
        }
        frames_by_segment.insert(n, frame_offsets);
    }

    // Sealed segment indexes.
    for &n in &numbers {
        if Some(n) == last {
            continue;
        }
        let path = idx_dir.join(index_file_name(n));
        if !storage.exists(&path) {
            report.problems.push(Problem {
                file: path,
                offset: None,
                what: "index file missing (opening the store rebuilds it)".into(),
            });
            continue;
        }
        let idx = match storage
            .open(&path, false)
            .map_err(|e| e.to_string())
            .and_then(|f| SealedIndex::open(f, n))
        {
            Ok(i) => i,
            Err(what) => {
                report.problems.push(Problem {
                    file: path,
                    offset: None,
                    what,
                });
                continue;
            }
        };
        let mut problems = Vec::new();
        let sections: Vec<std::io::Result<Vec<(u128, u64)>>> =
            (0..5).map(|k| idx.entries(k)).collect();
        let mut loaded = Vec::with_capacity(5);
        for (k, s) in sections.into_iter().enumerate() {
            match s {
                Ok(v) => loaded.push(v),
                Err(e) => {
                    problems.push(format!("section {k}: {e}"));
                    loaded.push(Vec::new());
                }
            }
        }
        let frames: Vec<u64> = loaded[4].iter().map(|(_, v)| *v).collect();
        if Some(&frames) != frames_by_segment.get(&n) {
            problems.push("frame list differs from the segment's frames".into());
        }
        let in_segment = events
            .keys()
            .filter(|p| split_position(strata_core::Position(**p)).0 == n)
            .count();
        if loaded[0].len() != in_segment {
            problems.push(format!(
                "{} id entries for {in_segment} events",
                loaded[0].len()
            ));
        }
        for (id, pos) in &loaded[0] {
            report.index_entries += 1;
            match events.get(pos) {
                Some(f) if f.id == *id => {}
                _ => problems.push(format!(
                    "id entry points to position {pos}, which does not hold that event"
                )),
            }
        }
        for (kind, list) in [Postings::Type, Postings::Category, Postings::Correlation]
            .into_iter()
            .zip(loaded[1..4].iter())
        {
            for (key, pos) in list {
                report.index_entries += 1;
                let h = (*key >> 64) as u64;
                let ok = events.get(pos).is_some_and(|f| match kind {
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
        for what in problems {
            report.problems.push(Problem {
                file: path.clone(),
                offset: None,
                what,
            });
        }
    }

    // The stream checkpoint.
    let ckpt = dir.join(STREAM_CHECKPOINT_FILE);
    if storage.exists(&ckpt) {
        match read_file(storage, &ckpt)
            .map_err(|e| e.to_string())
            .and_then(|b| StreamIndex::decode_checkpoint(&b))
        {
            Ok((streams, _)) => {
                for (id, e) in &streams.streams {
                    for (i, pos) in e.positions.iter().enumerate() {
                        report.index_entries += 1;
                        let ok = events
                            .get(pos)
                            .is_some_and(|f| f.stream == id.as_str() && f.version == i as u64 + 1);
                        if !ok {
                            report.problems.push(Problem {
                                file: ckpt.clone(),
                                offset: None,
                                what: format!("stream `{id}` version {} points to position {pos}, which does not hold it", i + 1),
                            });
                        }
                    }
                }
            }
            Err(what) => report.problems.push(Problem {
                file: ckpt,
                offset: None,
                what,
            }),
        }
    }
    Ok(report)
}
