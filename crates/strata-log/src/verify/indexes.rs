//! Checking the derived files against what the segments hold: each sealed
//! segment's index file and the stream checkpoint. A finding about a
//! position behind damage the segment walk found is counted against that
//! damage instead of being reported on its own.

use std::path::Path;

use crate::format::split_position;
use crate::index::tags::decode_tag_file;
use crate::index::{key_hash, Postings, SealedIndex};
use crate::io::{read_file, Storage};
use crate::streams::StreamIndex;
use crate::verify::{LogFacts, Problem, VerifyReport};

/// Where findings about one file go.
struct Findings<'a> {
    path: &'a Path,
    facts: &'a LogFacts,
    report: &'a mut VerifyReport,
}

impl Findings<'_> {
    /// A finding about `position` (if it names one).
    fn note(&mut self, position: Option<u64>, what: String) {
        let cause = position.and_then(|p| self.facts.damage_behind(p));
        self.report.note(
            Problem {
                file: self.path.to_path_buf(),
                offset: None,
                what,
                follows: 0,
            },
            cause,
        );
    }
}

/// Checks sealed segment `n`'s index file entry by entry against the log.
pub(super) fn verify_sealed_index(
    storage: &dyn Storage,
    path: &Path,
    n: u32,
    facts: &LogFacts,
    report: &mut VerifyReport,
) {
    let mut out = Findings {
        path,
        facts,
        report,
    };
    let segment_damage = facts.damage_in_segment(n);
    if !storage.exists(path) {
        out.note(
            None,
            "index file missing (opening the store rebuilds it)".into(),
        );
        return;
    }
    let opened = storage
        .open(path, false)
        .map_err(|e| e.to_string())
        .and_then(|f| SealedIndex::open(f, n).map_err(|e| e.to_string()));
    let idx = match opened {
        Ok(i) => i,
        Err(what) => return out.note(None, what),
    };
    let mut loaded = Vec::with_capacity(5);
    for k in 0..5 {
        match idx.entries(k) {
            Ok(v) => loaded.push(v),
            Err(e) => {
                out.note(None, format!("section {k}: {e}"));
                loaded.push(Vec::new());
            }
        }
    }
    let frames: Vec<u64> = loaded[4].iter().map(|(_, v)| *v).collect();
    if Some(&frames) != facts.frames_by_segment.get(&n) {
        out.note(
            segment_damage,
            "frame list differs from the segment's frames".into(),
        );
    }
    check_id_entries(n, &loaded[0], segment_damage, &mut out);
    check_id_filter(&idx, &loaded[0], &mut out);
    for (kind, list) in [Postings::Type, Postings::Category, Postings::Correlation]
        .into_iter()
        .zip(loaded[1..4].iter())
    {
        check_postings(kind, list, &mut out);
    }
}

/// Every event of segment `n` has an id entry, and each entry points at its event.
fn check_id_entries(
    n: u32,
    ids: &[(u128, u64)],
    segment_damage: Option<u64>,
    out: &mut Findings<'_>,
) {
    let in_segment = out
        .facts
        .events
        .keys()
        .filter(|p| split_position(strata_core::Position(**p)).0 == n)
        .count();
    if ids.len() != in_segment {
        out.note(
            segment_damage,
            format!("{} id entries for {in_segment} events", ids.len()),
        );
    }
    for (id, pos) in ids {
        out.report.index_entries += 1;
        match out.facts.events.get(pos) {
            Some(f) if f.id == *id => {}
            _ => out.note(
                Some(*pos),
                format!("id entry points to position {pos}, which does not hold that event"),
            ),
        }
    }
}

/// The id filter (version-2 files) passes its checksum and holds every id
/// of the id section.
fn check_id_filter(idx: &SealedIndex, ids: &[(u128, u64)], out: &mut Findings<'_>) {
    let filter = match idx.id_filter() {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => return out.note(None, e.to_string()),
    };
    let missing: Vec<u64> = ids
        .iter()
        .filter(|(id, _)| !filter.may_contain(*id))
        .map(|(_, pos)| *pos)
        .collect();
    if let Some(first) = missing.first() {
        out.note(
            None,
            format!(
                "the id filter lacks {} id(s) of the id section, the first at position {first}",
                missing.len()
            ),
        );
    }
}

/// Each posting of `kind` points at an event with that key.
fn check_postings(kind: Postings, list: &[(u128, u64)], out: &mut Findings<'_>) {
    for (key, pos) in list {
        out.report.index_entries += 1;
        let h = (*key >> 64) as u64;
        let ok = out.facts.events.get(pos).is_some_and(|f| match kind {
            Postings::Type => f.type_hash == h,
            Postings::Category => f.category_hash == h,
            Postings::Correlation => f.correlation_hash == Some(h),
        });
        if !ok {
            out.note(
                Some(*pos),
                format!("{kind:?} posting for position {pos} does not match the event there"),
            );
        }
    }
}

/// Each position of the stream checkpoint holds the version it claims.
pub(super) fn verify_stream_checkpoint(
    storage: &dyn Storage,
    ckpt: &Path,
    facts: &LogFacts,
    report: &mut VerifyReport,
) {
    if !storage.exists(ckpt) {
        return;
    }
    let mut out = Findings {
        path: ckpt,
        facts,
        report,
    };
    let decoded = read_file(storage, ckpt)
        .map_err(|e| e.to_string())
        .and_then(|b| StreamIndex::decode_checkpoint(&b).map_err(|e| e.to_string()));
    let streams = match decoded {
        Ok((streams, _)) => streams,
        Err(what) => return out.note(None, what),
    };
    for (id, e) in &streams.streams {
        for (i, pos) in e.positions.iter().enumerate() {
            out.report.index_entries += 1;
            let ok = facts
                .events
                .get(pos)
                .is_some_and(|f| f.stream == id.as_str() && f.version == i as u64 + 1)
                || facts.was_removed(*pos);
            if !ok {
                out.note(
                    Some(*pos),
                    format!(
                        "stream `{id}` version {} points to position {pos}, which does not hold it",
                        i + 1
                    ),
                );
            }
        }
    }
}

/// Checks sealed segment `n`'s tag file, if it has one (a store written
/// before tag files existed has none; opening the store writes it): it
/// decodes, every entry points at an event of the same stream, version and
/// type (or at one a scavenge or an erasure removed since), and every event
/// of a user stream in the segment has an entry.
pub(super) fn verify_tag_file(
    storage: &dyn Storage,
    path: &Path,
    n: u32,
    facts: &LogFacts,
    report: &mut VerifyReport,
) {
    if !storage.exists(path) {
        return;
    }
    let mut out = Findings {
        path,
        facts,
        report,
    };
    let segment_damage = facts.damage_in_segment(n);
    let decoded = read_file(storage, path)
        .map_err(|e| e.to_string())
        .and_then(|b| decode_tag_file(n, &b).map_err(|e| e.to_string()));
    let entries = match decoded {
        Ok(e) => e,
        Err(what) => return out.note(segment_damage, what),
    };
    let mut listed = std::collections::HashSet::with_capacity(entries.len());
    for e in &entries {
        out.report.index_entries += 1;
        listed.insert(e.position);
        match facts.events.get(&e.position) {
            Some(f)
                if !f.stream.starts_with('$') && f.type_hash == key_hash(&e.event_type) => {}
            None if facts.was_removed(e.position) => {}
            _ => out.note(
                Some(e.position),
                format!(
                    "tag entry for an event of type `{}` points to position {}, which does not hold an event of a user stream of that type",
                    e.event_type, e.position
                ),
            ),
        }
    }
    let missing = facts
        .events
        .iter()
        .filter(|(p, f)| {
            split_position(strata_core::Position(**p)).0 == n
                && !f.stream.starts_with('$')
                && !listed.contains(*p)
        })
        .count();
    if missing > 0 {
        out.note(
            segment_damage,
            format!("{missing} event(s) of user streams have no tag entry"),
        );
    }
}
