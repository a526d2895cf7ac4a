//! `strata import`: appends the events of an export, in file order, keeping
//! their ids and versions, so that re-running an import writes nothing twice.
//!
//! Consecutive events of one stream form a *run*; runs of different streams
//! are packed into one batch (bounded by [`IMPORT_BATCH_EVENTS`],
//! [`IMPORT_BATCH_BYTES`] and [`IMPORT_BATCH_STREAMS`]) written as one
//! atomic (multi-stream) append. Each run's guard is the version before its
//! first event (`Exact(version - 1)`), so the target stream gets exactly the
//! exported versions or the append is refused.
//!
//! Re-running: the stores treat an append whose event ids are all recorded,
//! in the same stream and order, as an exact retry and return the original
//! result without writing. A run that only partly overlaps what the target
//! has (an earlier import of a shorter export, or batches cut differently)
//! is refused as an idempotency conflict or a wrong expected version; the
//! importer then reads the target stream over the run's versions, checks
//! that every event already there has the file's id at the file's version,
//! and appends only the rest. An event at that place with another id is a
//! divergence and stops the import with a message naming it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use clap::Args;
use strata_core::{AppendResult, Direction, ExpectedVersion, NewEvent, StreamId};
use strata_log::Durability;

use super::{progress, DataError};
use crate::data::store_or_server::{Target, TargetArgs, TargetError};
use strata_wire::{self as wire, WireEvent};

/// Most events in one import append (all streams of the batch together).
pub const IMPORT_BATCH_EVENTS: usize = 1_000;
/// Most payload bytes (type + data + metadata) in one import append; one
/// larger event still goes alone.
pub const IMPORT_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most streams in one import append.
pub const IMPORT_BATCH_STREAMS: usize = 100;
/// Size of the read buffer over the input.
const IMPORT_READ_BUFFER_BYTES: usize = 1024 * 1024;

/// `strata import` options.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The export to read, or `-` for stdin.
    #[arg(long = "in", default_value = "-")]
    pub input: PathBuf,
    /// Durability of a log store written directly: `always` (fsync per
    /// append, the default), `interval[:<ms>]` or `none`. Whatever the mode,
    /// the import syncs and closes the store before it reports success, and
    /// a crash before that is repaired by running the import again.
    #[arg(long, default_value = "always")]
    pub durability: Durability,
}

/// Consecutive events of one stream, with consecutive versions.
struct Run {
    stream: StreamId,
    first_version: u64,
    events: Vec<NewEvent>,
}

impl Run {
    fn last_version(&self) -> u64 {
        self.first_version + self.events.len() as u64 - 1
    }

    /// The guard that gives the run its exported versions.
    fn expected(&self) -> ExpectedVersion {
        ExpectedVersion::Exact(self.first_version - 1)
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportCounts {
    /// Events read from the input.
    pub read: u64,
    /// Events appended now.
    pub written: u64,
    /// Events the target already had (an earlier import).
    pub present: u64,
    /// Appends sent (single- or multi-stream).
    pub appends: u64,
}

/// The import state: the batch being built and the counts.
struct Importer<'a> {
    target: &'a Target,
    /// The target's head before the import: a result at or below it was
    /// recorded earlier (an idempotent retry), above it is new.
    head_at_start: u64,
    batch: Vec<Run>,
    batch_events: usize,
    batch_bytes: usize,
    counts: ImportCounts,
}

/// Runs `strata import`; returns the summary line, which the caller prints
/// once the store is closed (synced), since only then is the import done.
pub async fn run(target: &Target, args: ImportArgs) -> Result<String, DataError> {
    let (reader, len): (Box<dyn Read>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(&args.input)
            .map_err(|e| DataError::io(format!("opening {}", args.input.display()), e))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = progress(len, "importing");
    let counts = import(target, reader, |bytes| bar.set_position(bytes)).await?;
    bar.finish_and_clear();
    Ok(format!(
        "imported {} event(s) into {}: {} written, {} already present, in {} append(s)",
        counts.read,
        target.describe(),
        counts.written,
        counts.present,
        counts.appends
    ))
}

/// Imports the JSON events of `input` into `target`; `progress` gets the
/// bytes read so far.
pub async fn import(
    target: &Target,
    input: impl Read,
    progress: impl Fn(u64),
) -> Result<ImportCounts, DataError> {
    let mut importer = Importer {
        target,
        head_at_start: target.head_position().await?,
        batch: Vec::new(),
        batch_events: 0,
        batch_bytes: 0,
        counts: ImportCounts::default(),
    };
    let reader = BufReader::with_capacity(IMPORT_READ_BUFFER_BYTES, input);
    let mut events = serde_json::Deserializer::from_reader(reader).into_iter::<WireEvent>();
    let mut index = 0u64;
    while let Some(item) = events.next() {
        index += 1;
        let w = item.map_err(|e| {
            if e.is_io() {
                DataError::Input(format!("reading the import: {e}"))
            } else {
                DataError::Input(format!("import event {index} (line {}): {e}", e.line()))
            }
        })?;
        let bad = |what: String| DataError::Input(format!("import event {index}: {what}"));
        if w.version == 0 {
            return Err(bad("version must be 1 or more".into()));
        }
        let stream = wire::stream_id(&w.stream).map_err(|e| bad(e.to_string()))?;
        let event = w.to_new_event().map_err(|e| bad(e.to_string()))?;
        importer.counts.read += 1;
        importer.add(stream, w.version, event).await?;
        if index.is_multiple_of(IMPORT_BATCH_EVENTS as u64) {
            progress(events.byte_offset() as u64);
        }
    }
    importer.flush().await?;
    progress(events.byte_offset() as u64);
    Ok(importer.counts)
}

impl Importer<'_> {
    /// Adds one event to the batch, flushing first when it would not fit.
    async fn add(
        &mut self,
        stream: StreamId,
        version: u64,
        event: NewEvent,
    ) -> Result<(), DataError> {
        let bytes = event.size_bytes();
        let fits = self.batch_events < IMPORT_BATCH_EVENTS
            && (self.batch_bytes + bytes <= IMPORT_BATCH_BYTES || self.batch_events == 0);
        // The event continues the last run when it is the next version of
        // the same stream.
        let continues = self
            .batch
            .last()
            .is_some_and(|r| r.stream == stream && r.last_version() + 1 == version);
        if !fits
            || (!continues
                && (self.batch.len() >= IMPORT_BATCH_STREAMS
                    || self.batch.iter().any(|r| r.stream == stream)))
        {
            // A stream appears once per multi-stream append, so a stream that
            // comes back later in the file (or out of version order) starts a
            // new batch.
            self.flush().await?;
        }
        self.batch_events += 1;
        self.batch_bytes += bytes;
        match self.batch.last_mut() {
            Some(r) if r.stream == stream && r.last_version() + 1 == version => {
                r.events.push(event)
            }
            _ => self.batch.push(Run {
                stream,
                first_version: version,
                events: vec![event],
            }),
        }
        Ok(())
    }

    /// Writes the batch: one append, or one multi-stream append; on a guard
    /// or idempotency refusal, run by run with reconciliation.
    async fn flush(&mut self) -> Result<(), DataError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_events = 0;
        self.batch_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        if batch.len() == 1 {
            for run in batch {
                self.write_run(run).await?;
            }
            return Ok(());
        }
        let parts = batch
            .iter()
            .map(|r| (r.stream.clone(), r.expected(), r.events.clone()))
            .collect();
        self.counts.appends += 1;
        match self.target.append_multi(parts).await {
            Ok(results) => {
                for (run, result) in batch.iter().zip(results) {
                    self.count(run, run.events.len(), result)?;
                }
                Ok(())
            }
            Err(e) if is_overlap(&e) => {
                for run in batch {
                    self.write_run(run).await?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes one run, reconciling with the target on a refusal.
    async fn write_run(&mut self, run: Run) -> Result<(), DataError> {
        self.counts.appends += 1;
        match self
            .target
            .append(&run.stream, run.expected(), run.events.clone())
            .await
        {
            Ok(result) => self.count(&run, run.events.len(), result),
            Err(e) if is_overlap(&e) => self.reconcile(run).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The target refused the run as given: keep what it already has (after
    /// checking it is the same events), append the rest.
    async fn reconcile(&mut self, mut run: Run) -> Result<(), DataError> {
        let existing = match self
            .target
            .read_stream(
                &run.stream,
                Some(run.first_version),
                run.events.len(),
                Direction::Forward,
            )
            .await
        {
            Ok((events, _)) => events,
            Err(e) if e.kind() == "stream_not_found" => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut matched = 0usize;
        for (k, have) in existing.iter().enumerate() {
            let want_version = run.first_version + k as u64;
            let want = &run.events[k];
            if have.version != want_version || Some(have.id) != want.id {
                return Err(DataError::Input(format!(
                    "stream `{}` in {} diverges from the import at version {want_version}: it has event {} (version {}) where the file has {}",
                    run.stream,
                    self.target.describe(),
                    have.id,
                    have.version,
                    want.id.map(|i| i.to_string()).unwrap_or_default()
                )));
            }
            matched += 1;
        }
        self.counts.present += matched as u64;
        if matched == run.events.len() {
            return Ok(());
        }
        let rest = run.events.split_off(matched);
        let first_version = run.first_version + matched as u64;
        let rest_run = Run {
            stream: run.stream,
            first_version,
            events: rest,
        };
        self.counts.appends += 1;
        match self
            .target
            .append(
                &rest_run.stream,
                rest_run.expected(),
                rest_run.events.clone(),
            )
            .await
        {
            Ok(result) => self.count(&rest_run, rest_run.events.len(), result),
            Err(e) if e.kind() == "wrong_expected_version" => {
                let at = self.current_version(&rest_run.stream).await?;
                Err(DataError::Input(format!(
                    "cannot import stream `{}` at version {first_version}: in {} it is {at}; import the earlier events first (is this an incremental export whose base was not imported?)",
                    rest_run.stream,
                    self.target.describe()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The target stream's last version, in words.
    async fn current_version(&self, stream: &StreamId) -> Result<String, DataError> {
        match self
            .target
            .read_stream(stream, None, 1, Direction::Backward)
            .await
        {
            Ok((events, _)) => Ok(events
                .first()
                .map_or("empty".to_string(), |e| format!("at version {}", e.version))),
            Err(e) if e.kind() == "stream_not_found" => Ok("absent".to_string()),
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a successful append of `n` events of `run`, checking that the
    /// target gave them the exported versions.
    fn count(&mut self, run: &Run, n: usize, result: AppendResult) -> Result<(), DataError> {
        if result.next_expected_version != run.last_version() {
            return Err(DataError::Input(format!(
                "stream `{}`: the events of versions {}..={} are recorded in {} up to version {} instead; the target holds them elsewhere",
                run.stream,
                run.first_version,
                run.last_version(),
                self.target.describe(),
                result.next_expected_version
            )));
        }
        if result.last_position.0 <= self.head_at_start {
            self.counts.present += n as u64;
        } else {
            self.counts.written += n as u64;
        }
        Ok(())
    }
}

/// Whether a refusal may come from events the target already has.
fn is_overlap(e: &TargetError) -> bool {
    matches!(e.kind(), "wrong_expected_version" | "idempotency_conflict")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::write_event;
    use strata_client::AllFilter;
    use strata_core::RecordedEvent;
    use strata_stores::OpenStore;

    /// Every event of `$all`.
    async fn everything(t: &Target) -> Vec<RecordedEvent> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (page, next) = t
                .read_all(after, 1_000, &AllFilter::default())
                .await
                .unwrap();
            out.extend(page);
            match next {
                Some(n) => after = n,
                None => return out,
            }
        }
    }

    fn export(events: &[RecordedEvent]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            write_event(&mut out, e).unwrap();
        }
        out
    }

    /// Streams and versions and ids (what an import keeps).
    fn shape(events: &[RecordedEvent]) -> Vec<(String, u64, String, strata_core::EventId)> {
        events
            .iter()
            .map(|e| {
                (
                    e.stream_id.as_str().to_string(),
                    e.version,
                    e.event_type.clone(),
                    e.id,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_across_many_streams_and_partial_overlaps() {
        // 2,500 events over 150 streams, interleaved, so that batches hit the
        // event, stream and repeated-stream limits.
        let source = Target::Store(OpenStore::memory());
        const STREAMS: u64 = 150;
        const EVENTS: u64 = 2_500;
        for i in 0..EVENTS {
            // Runs of 1 to 3 events of a stream, streams revisited often.
            let s = (i / 3 * 7 + i / 500) % STREAMS;
            let stream = StreamId::new(format!("s-{s}")).unwrap();
            let e = NewEvent::json("E", &serde_json::json!({ "i": i })).unwrap();
            source
                .append(&stream, ExpectedVersion::Any, vec![e])
                .await
                .unwrap();
        }
        let all = everything(&source).await;
        assert_eq!(all.len() as u64, EVENTS);
        let file = export(&all);

        // A prefix first (cut inside a batch), then the whole file: only the
        // rest is written, though batches now straddle what is there.
        let prefix_events = 1_234;
        let prefix = export(&all[..prefix_events]);
        let target = Target::Store(OpenStore::memory());
        let c = import(&target, &prefix[..], |_| {}).await.unwrap();
        assert_eq!((c.read, c.written, c.present), (1_234, 1_234, 0));
        let c = import(&target, &file[..], |_| {}).await.unwrap();
        assert_eq!((c.read, c.written, c.present), (2_500, 1_266, 1_234));
        let c = import(&target, &file[..], |_| {}).await.unwrap();
        assert_eq!((c.read, c.written, c.present), (2_500, 0, 2_500));

        let imported = everything(&target).await;
        assert_eq!(shape(&imported), shape(&all));
        let data = |v: &[RecordedEvent]| v.iter().map(|e| e.data.clone()).collect::<Vec<_>>();
        assert_eq!(data(&imported), data(&all));
    }

    #[tokio::test]
    async fn multi_line_payloads_import_exactly() {
        let source = Target::Store(OpenStore::memory());
        let stream = StreamId::new("pretty-1").unwrap();
        let pretty = "{\n  \"a\": [1,\n 2],\n  \"b\": \"x\\ny\"\n}";
        let e = NewEvent::json_bytes("P", pretty.as_bytes().to_vec());
        source
            .append(&stream, ExpectedVersion::NoStream, vec![e])
            .await
            .unwrap();
        let file = export(&everything(&source).await);
        assert!(file.iter().filter(|b| **b == b'\n').count() > 1);
        let target = Target::Store(OpenStore::memory());
        let c = import(&target, &file[..], |_| {}).await.unwrap();
        assert_eq!(c.written, 1);
        let got = everything(&target).await;
        assert_eq!(&got[0].data[..], pretty.as_bytes());
    }
}
