//! Loading one snapshot: find it in the index under the lock, then read and
//! verify its record without the lock.

#![deny(clippy::indexing_slicing)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use strata_core::clock::from_micros;
use strata_core::{Error, Result, Snapshot, StreamId, Version};

use super::dir::SnapshotDir;
use super::index::Entry;
use super::layout::location;
use super::record::{decode_header, RecordKind};
use crate::decode::check_crc;
use crate::io::StorageFile;

/// What a load needs, taken under the lock and used without it.
pub(super) struct Found {
    entry: Entry,
    handle: Arc<dyn StorageFile>,
    path: PathBuf,
}

impl SnapshotDir {
    /// The newest indexed snapshot of `stream` at or before `max_version`.
    pub(super) fn locate(&self, stream: &StreamId, max_version: Version) -> Option<Found> {
        let s = self.index.lock();
        let entry = *s
            .streams
            .get(stream.as_str())?
            .iter()
            .rev()
            .find(|e| e.version <= max_version)?;
        let f = s.files.get(&entry.file)?;
        Some(Found {
            entry,
            handle: Arc::clone(&f.handle),
            path: f.path.clone(),
        })
    }
}

/// Reads and verifies one snapshot record.
pub(super) fn read_snapshot(found: Found, stream: StreamId) -> Result<Snapshot> {
    let Found {
        entry,
        handle,
        path,
    } = found;
    let at = location(&path, entry.offset);
    let corrupt = |reason: String| Error::Corrupt {
        location: at.clone(),
        reason,
    };
    // The length comes from a header that was decoded and checked against
    // the format's limits when the index was built.
    let mut buf = vec![0u8; entry.len as usize];
    handle
        .read_exact_at(&mut buf, entry.offset)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("the file ends inside the record".into()),
            _ => Error::io(format!("reading the snapshot {at}"), e),
        })?;
    let h = decode_header(&buf).map_err(|e| corrupt(e.to_string()))?;
    if h.kind != RecordKind::Snapshot
        || h.stream != stream.as_str()
        || h.version != entry.version
        || h.record_len != buf.len()
    {
        return Err(corrupt(format!(
            "expected the snapshot of `{stream}` at version {}, found another record",
            entry.version
        )));
    }
    let state = buf.get(h.header_len..).unwrap_or_default();
    check_crc(state, h.state_crc, "snapshot state").map_err(|e| corrupt(e.to_string()))?;
    let aggregate_type = h.aggregate_type.to_owned();
    let (version, schema_version, taken_at_micros, header_len) =
        (h.version, h.schema_version, h.taken_at_micros, h.header_len);
    let state = Bytes::from(buf).slice(header_len..);
    Ok(Snapshot {
        stream,
        aggregate_type,
        version,
        schema_version,
        state,
        taken_at: from_micros(taken_at_micros),
    })
}
