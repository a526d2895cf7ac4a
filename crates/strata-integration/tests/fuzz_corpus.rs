//! Replays the fuzzing corpus on stable Rust: every file of
//! `fuzz/corpus/<target>/`, `fuzz/regressions/<target>/` and (when a local
//! fuzzing run left any) `fuzz/artifacts/<target>/` goes through the same
//! entry point its fuzz target calls, so a crash once found stays fixed.
//! The seed files of the corpus are made by the real encoders: this test
//! checks that they decode, and that the committed ones are what the
//! encoders make now (`STRATA_WRITE_FUZZ_SEEDS=1` rewrites them).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{EventId, ExpectedVersion, MemoryStore, Metadata, NewEvent, RecordedEvent};
use strata_core::{Position, StreamId};
use strata_wire::{AppendBody, EventIn, MultiBody, MultiPart, WireEvent};

/// A fuzz target's entry point.
type Entry = fn(&[u8]) -> bool;

/// The entry point of each fuzz target, by the name of its corpus folder.
fn entries() -> BTreeMap<&'static str, Entry> {
    BTreeMap::from([
        ("segment", strata_log::fuzzing::segment as Entry),
        ("record", strata_log::fuzzing::record),
        ("index", strata_log::fuzzing::index_file),
        ("compressed", strata_log::fuzzing::compressed_segment),
        ("snapshot", strata_log::fuzzing::snapshot_file),
        ("checkpoint", strata_log::fuzzing::checkpoint_file),
        ("streams", strata_log::fuzzing::stream_checkpoint),
        ("wire", strata_wire::fuzzing::bodies),
        ("stream_name", strata_core::fuzzing::stream_name),
        ("http_append", |b| {
            strata_server::fuzzing::append_body(store(), b)
        }),
        ("http_multi", |b| {
            strata_server::fuzzing::multi_body(store(), b)
        }),
        ("http_all_query", |b| {
            strata_server::fuzzing::all_query(store(), b)
        }),
    ])
}

/// The store the HTTP targets run over: a fresh one per input.
fn store() -> Arc<dyn strata_core::EventStore> {
    Arc::new(MemoryStore::new())
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file under `fuzz/<kind>/<target>/`, as (target, path).
fn files(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return out;
    };
    for t in targets.flatten().filter(|t| t.path().is_dir()) {
        let target = t.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
            if f.path().is_file() {
                out.push((target.clone(), f.path()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_regression_and_artifact_file_replays_without_a_failure() {
    let entries = entries();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for kind in ["corpus", "regressions", "artifacts"] {
        for (target, path) in files(kind) {
            let Some(entry) = entries.get(target.as_str()) else {
                failures.push(format!(
                    "{}: no entry point for target {target}",
                    path.display()
                ));
                continue;
            };
            let bytes = std::fs::read(&path).expect("a corpus file reads");
            if catch_unwind(AssertUnwindSafe(|| entry(&bytes))).is_err() {
                failures.push(format!(
                    "{}: the {target} entry point panicked",
                    path.display()
                ));
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        replayed >= entries.len(),
        "only {replayed} corpus files found"
    );
}

#[test]
fn the_seed_files_are_valid_and_what_the_encoders_make() {
    let entries = entries();
    let write = std::env::var_os("STRATA_WRITE_FUZZ_SEEDS").is_some();
    let mut stale = Vec::new();
    for (target, name, bytes) in seeds() {
        let entry = entries.get(target).expect("every seed has a target");
        // Edge cases need only not fail; the others are valid encodings.
        let valid = entry(&bytes);
        assert!(
            valid || name.starts_with("edge-"),
            "seed {target}/{name} is not valid"
        );
        let path = fuzz_dir()
            .join("corpus")
            .join(target)
            .join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("writing a seed");
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "seed files differ from what the encoders make (rewrite them with \
         STRATA_WRITE_FUZZ_SEEDS=1):\n{}",
        stale.join("\n")
    );
    for target in entries.keys() {
        let dir = fuzz_dir().join("corpus").join(target);
        assert!(dir.is_dir(), "no seed corpus for {target}");
    }
}

/// Every seed: the on-disk formats from `strata_log`, the rest from here.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = strata_log::fuzzing::seeds();
    out.extend(json_seeds());
    let truncated: Vec<_> = out
        .iter()
        .filter(|(_, n, b)| b.len() > 8 && !n.starts_with("edge-"))
        .map(|(t, n, b)| (*t, format!("edge-cut-{n}"), b[..b.len() * 2 / 3].to_vec()))
        .collect();
    out.extend(truncated);
    let longest = "é".repeat(127);
    for (case, name) in [
        ("plain", "account-42"),
        ("system", "$all"),
        ("empty-category", "-x"),
        ("three-parts", "a-b-c"),
        ("longest-utf8", &longest),
    ] {
        out.push(("stream_name", case.into(), name.as_bytes().to_vec()));
    }
    out.push(("stream_name", "edge-control".into(), b"a\tb".to_vec()));
    out.push((
        "stream_name",
        "edge-too-long".into(),
        "x".repeat(256).into_bytes(),
    ));
    for (name, q) in [
        (
            "query",
            "types=Deposited,Withdrawn&prefix=account-&correlation_id=c-1",
        ),
        ("lines", "Deposited, Withdrawn,\naccount-\naccount\nc-1"),
        ("category", "category=account&after=0&limit=10"),
    ] {
        out.push(("http_all_query", name.to_string(), q.as_bytes().to_vec()));
    }
    out
}

fn event(n: u128, binary: bool) -> NewEvent {
    let meta = Metadata::default()
        .with_correlation_id("c-1")
        .with("tenant", "t-1");
    let e = if binary {
        NewEvent::new(
            "Blob",
            vec![0u8, 1, 2, 255],
            strata_core::ContentType::Binary,
        )
    } else {
        NewEvent::json("Deposited", &serde_json::json!({"amount": 10, "note": "é"})).expect("json")
    };
    e.with_id(EventId::from(uuid_of(n))).with_metadata(meta)
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_a3c4_1f2e_7000_8000_0000_0000_0000 | n)
}

/// JSON bodies made by serializing the wire types.
fn json_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let append = AppendBody {
        expected_version: ExpectedVersion::NoStream,
        events: vec![
            EventIn::from_new(&event(1, false)),
            EventIn::from_new(&event(2, true)),
        ],
    };
    let multi = MultiBody {
        streams: vec![
            MultiPart {
                stream: "account-1".into(),
                expected_version: ExpectedVersion::Any,
                events: vec![EventIn::from_new(&event(3, false))],
            },
            MultiPart {
                stream: "account-2".into(),
                expected_version: ExpectedVersion::Exact(0),
                events: vec![EventIn::from_new(&event(4, true))],
            },
        ],
    };
    let recorded = recorded();
    let wire = WireEvent::from_recorded(&recorded);
    let (append, multi, wire) = (to_json(&append), to_json(&multi), to_json(&wire));
    vec![
        ("http_append", "two-events".into(), append.clone()),
        (
            "http_append",
            "edge-no-events".into(),
            br#"{"events":[]}"#.to_vec(),
        ),
        (
            "http_append",
            "edge-not-json".into(),
            br#"{"events":[{"type":"#.to_vec(),
        ),
        (
            "http_multi",
            "edge-no-streams".into(),
            br#"{"streams":[]}"#.to_vec(),
        ),
        ("http_multi", "two-parts".into(), multi.clone()),
        ("wire", "append-body".into(), append),
        ("wire", "multi-body".into(), multi),
        ("wire", "wire-event".into(), wire),
    ]
}

fn recorded() -> RecordedEvent {
    let e = event(5, false);
    RecordedEvent {
        id: EventId::from(uuid_of(5)),
        stream_id: StreamId::new("account-1").expect("name"),
        version: 1,
        position: Position(4_294_967_328),
        event_type: e.event_type,
        data: e.data,
        content_type: e.content_type,
        metadata: e.metadata,
        recorded_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("a time"),
        tags: Vec::new(),
    }
}

/// A wire value's JSON bytes.
fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("a wire value serializes")
}
