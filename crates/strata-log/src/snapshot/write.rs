//! Writing to a snapshot store: saves and deletes, each one record appended
//! to the active file and fsynced before it is acknowledged.

use std::sync::Arc;

use strata_core::stream_id::MAX_STREAM_ID_BYTES;
use strata_core::{Error, Result, Snapshot, StreamId};

use super::dir::{SnapshotDir, Writer};
use super::index::Entry;
use super::layout::location;
use super::record::{
    encode_record, NewRecord, RecordKind, MAX_AGGREGATE_TYPE_BYTES, MAX_SNAPSHOT_STATE_BYTES,
    SNAPSHOT_RECORD_ALIGN_BYTES, SNAPSHOT_RECORD_FIXED_BYTES,
};

impl SnapshotDir {
    /// Appends one encoded record to the active file (starting a new file
    /// when it is full) and fsyncs it. Returns (file, offset).
    fn append(&self, w: &mut Writer, record: &[u8]) -> Result<(u32, u64)> {
        let active = {
            let s = self.index.lock();
            s.files.get(&w.active).map(|f| f.len)
        };
        let full = active.is_none_or(|len| len >= self.options.max_file_bytes);
        if full {
            let next = match active {
                None => w.active,
                Some(_) => w
                    .active
                    .checked_add(1)
                    .ok_or_else(|| Error::Backend("snapshot file numbers are exhausted".into()))?,
            };
            let info = self.create_file(next)?;
            self.index.lock().files.insert(next, info);
            w.active = next;
        }
        let (handle, path, offset) = {
            let s = self.index.lock();
            let f = s
                .files
                .get(&w.active)
                .ok_or_else(|| Error::Backend("the active snapshot file is missing".into()))?;
            (Arc::clone(&f.handle), f.path.clone(), f.len)
        };
        debug_assert_eq!(offset % SNAPSHOT_RECORD_ALIGN_BYTES as u64, 0);
        debug_assert_eq!(record.len() % SNAPSHOT_RECORD_ALIGN_BYTES, 0);
        if let Err(e) = handle.write_all_at(record, offset) {
            let err = Error::io(format!("writing {}", location(&path, offset)), e);
            w.poison(err.to_string());
            return Err(err);
        }
        if let Err(e) = handle.sync_data() {
            let err = Error::io(format!("syncing {}", path.display()), e);
            w.poison(err.to_string());
            return Err(err);
        }
        if let Some(f) = self.index.lock().files.get_mut(&w.active) {
            f.len = offset + record.len() as u64;
        }
        w.appended_bytes += record.len() as u64;
        Ok((w.active, offset))
    }

    /// Writes `snapshot` durably, unless the cap per stream would drop it
    /// at once.
    pub(super) fn save(&self, snapshot: Snapshot) -> Result<()> {
        if snapshot.aggregate_type.len() > MAX_AGGREGATE_TYPE_BYTES {
            return Err(Error::invalid(format!(
                "aggregate type is {} bytes, at most {MAX_AGGREGATE_TYPE_BYTES} are allowed",
                snapshot.aggregate_type.len()
            )));
        }
        if snapshot.state.len() > MAX_SNAPSHOT_STATE_BYTES {
            return Err(Error::invalid(format!(
                "snapshot state of `{}` is {} bytes, at most {MAX_SNAPSHOT_STATE_BYTES} are allowed",
                snapshot.stream,
                snapshot.state.len()
            )));
        }
        let mut w = self.writer.lock();
        w.check_writable()?;
        let stream = snapshot.stream.as_str();
        if !self.index.lock().would_keep(stream, snapshot.version) {
            tracing::debug!(%snapshot.stream, snapshot.version, "snapshot older than every kept one; not written");
            return Ok(());
        }
        let new = NewRecord {
            kind: RecordKind::Snapshot,
            stream,
            aggregate_type: &snapshot.aggregate_type,
            version: snapshot.version,
            schema_version: snapshot.schema_version,
            taken_at_micros: snapshot.taken_at.timestamp_micros(),
            state: &snapshot.state,
        };
        let record_len = new.len();
        let mut record = Vec::with_capacity(record_len + SNAPSHOT_RECORD_ALIGN_BYTES);
        encode_record(&mut record, &new);
        let (file, offset) = self.append(&mut w, &record)?;
        self.index.lock().insert(
            stream,
            Entry {
                version: snapshot.version,
                offset,
                file,
                len: record_len as u32,
            },
        );
        self.compact_due(&mut w, false)
    }

    /// Drops every snapshot of `stream`, durably (a tombstone record).
    pub(super) fn delete(&self, stream: &StreamId) -> Result<()> {
        let mut w = self.writer.lock();
        w.check_writable()?;
        self.delete_locked(&mut w, stream)
    }

    /// [`SnapshotDir::delete`], under the writer lock the caller holds.
    pub(super) fn delete_locked(&self, w: &mut Writer, stream: &StreamId) -> Result<()> {
        // No live snapshot: nothing to hide. Dead records never come back on
        // replay, so no tombstone is needed.
        if !self.index.lock().streams.contains_key(stream.as_str()) {
            return Ok(());
        }
        let mut record = Vec::with_capacity(SNAPSHOT_RECORD_FIXED_BYTES + MAX_STREAM_ID_BYTES);
        let now = chrono::Utc::now().timestamp_micros();
        encode_record(
            &mut record,
            &NewRecord {
                kind: RecordKind::Tombstone,
                stream: stream.as_str(),
                aggregate_type: "",
                version: 0,
                schema_version: 0,
                taken_at_micros: now,
                state: &[],
            },
        );
        let (file, _) = self.append(w, &record)?;
        {
            let mut s = self.index.lock();
            s.remove_stream(stream.as_str());
            if let Some(f) = s.files.get_mut(&file) {
                f.tombstone_bytes += record.len() as u64;
            }
        }
        self.compact_due(w, false)
    }
}
