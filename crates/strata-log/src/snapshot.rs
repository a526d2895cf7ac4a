//! The durable snapshot store, kept in `DIR/snapshots/` of a data directory.
//!
//! # Design
//!
//! Snapshots live in numbered append-only files (`00000000.snap`, ...) of
//! checksummed records; `docs/log-format.md` ("Snapshot files") describes
//! every byte. A record is either a snapshot or a tombstone (written by
//! [`SnapshotStore::delete`]). Only the newest file, the *active* one, is
//! appended to; it is sealed and a new one started once it holds
//! [`SnapshotStoreOptions::max_file_bytes`].
//!
//! Memory holds only an index: per stream, the (version, file, offset,
//! length) of its newest [`MAX_SNAPSHOTS_PER_STREAM`] snapshots — about 24
//! bytes per snapshot plus about 100 bytes per stream. A load reads one
//! record from disk and verifies its checksums; a damaged record is reported
//! as [`Error::Corrupt`] with its file and offset and is never served.
//!
//! On open every file is scanned in order to rebuild the index. Only record
//! *headers* are checksummed on the way (each has its own CRC), so opening
//! does not read every state twice; states are verified when loaded. A torn
//! last record of the active file (a crash during an unacknowledged save) is
//! cut.
//!
//! A record is *dead* once the index no longer points at it (superseded
//! beyond the cap, replaced at the same version, or deleted). When a file's
//! reclaimable bytes pass both [`SnapshotStoreOptions::compact_min_reclaimable_bytes`]
//! and [`SnapshotStoreOptions::compact_reclaimable_percent`] of the file, the
//! file is rewritten with only its live records, under the same number, and
//! atomically (new file, fsync, rename, directory fsync). Rewriting in place
//! keeps the order of records across files, which is what makes replay on
//! open correct: a tombstone is kept by compaction as long as an older file
//! (which may still hold dead snapshots of its stream) exists.
//!
//! # Durability and errors
//!
//! `save` and `delete` return `Ok` only after the record is fsynced
//! (`fdatasync`): snapshots are an optimisation, but an `Ok` still means
//! durable. A failed write or fsync leaves the file's tail uncertain, so the
//! store then refuses further writes with [`Error::Poisoned`] (loads keep
//! working); reopening cuts whatever was torn. A failed compaction before its
//! rename changes nothing and is only logged.
//!
//! A damaged record *header* in the middle of a file (a valid record follows)
//! cannot be attributed to a stream: it might have been a tombstone, and
//! serving what it deleted would be wrong. So on open every snapshot stored
//! before such damage is dropped (older files are removed, the damaged file
//! rewritten) and an error is logged. Dropping snapshots is always safe: the
//! aggregate is replayed from its events instead.
//!
//! # Blocking
//!
//! `save`, `delete` and `load` run their file I/O on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]): an fsync can take milliseconds and a
//! triggered compaction longer, which must not stall the async workers. They
//! therefore need a Tokio runtime. [`LogSnapshotStore::open`] is synchronous
//! and scans the files; call it before starting work or from
//! `spawn_blocking`.
//!
//! Writers (save, delete, compaction) are serialised by one mutex; loads take
//! a second mutex only to look up the index and read the file without it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use strata_core::clock::from_micros;
pub use strata_core::snapshot::MAX_SNAPSHOTS_PER_STREAM;
use strata_core::stream_id::MAX_STREAM_ID_BYTES;
use strata_core::{Error, Result, Snapshot, SnapshotStore, StreamId, Version};

use crate::format::{u16_at, u32_at, u64_at, FRAME_ALIGN};
use crate::io::{FsStorage, Storage, StorageFile};

/// The snapshot store's directory inside a data directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// First 8 bytes of every snapshot file.
pub const SNAPSHOT_FILE_MAGIC: &[u8; 8] = b"STRATASN";
/// Version of the snapshot file format this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Size of a snapshot file's header; the first record starts here.
pub const SNAPSHOT_FILE_HEADER_BYTES: usize = 32;
/// Size of the fixed part of a record header (before the stream name).
pub const SNAPSHOT_RECORD_FIXED_BYTES: usize = 40;
/// Records start at multiples of this many bytes.
pub const SNAPSHOT_RECORD_ALIGN_BYTES: usize = 8;
/// The largest snapshot state accepted, in bytes.
pub const MAX_SNAPSHOT_STATE_BYTES: usize = 64 << 20;
/// The longest aggregate type name accepted, in bytes of UTF-8.
pub const MAX_AGGREGATE_TYPE_BYTES: usize = 1024;
/// Default for [`SnapshotStoreOptions::max_file_bytes`]: 64 MiB.
pub const DEFAULT_MAX_SNAPSHOT_FILE_BYTES: u64 = 64 << 20;
/// Smallest allowed [`SnapshotStoreOptions::max_file_bytes`].
pub const MIN_SNAPSHOT_FILE_BYTES_LIMIT: u64 = 4 << 10;
/// Largest allowed [`SnapshotStoreOptions::max_file_bytes`]: a file can
/// exceed it by one record, and must stay well below 4 GiB.
pub const MAX_SNAPSHOT_FILE_BYTES_LIMIT: u64 = 2 << 30;
/// Default for [`SnapshotStoreOptions::compact_min_reclaimable_bytes`]: 8 MiB.
pub const DEFAULT_COMPACT_MIN_RECLAIMABLE_BYTES: u64 = 8 << 20;
/// Default for [`SnapshotStoreOptions::compact_reclaimable_percent`].
pub const DEFAULT_COMPACT_RECLAIMABLE_PERCENT: u64 = 50;

const _: () = assert!(SNAPSHOT_RECORD_ALIGN_BYTES == FRAME_ALIGN);
const _: () =
    assert!(MAX_SNAPSHOT_FILE_BYTES_LIMIT + MAX_SNAPSHOT_STATE_BYTES as u64 * 2 < 1 << 32);

/// The largest record header: fixed part, longest stream, longest type.
const MAX_RECORD_HEADER_BYTES: usize =
    SNAPSHOT_RECORD_FIXED_BYTES + MAX_STREAM_ID_BYTES + MAX_AGGREGATE_TYPE_BYTES;
/// How much a scan reads from a file at a time.
const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// How much compaction copies at a time.
const COMPACT_COPY_CHUNK_BYTES: usize = 4 << 20;
/// The advisory lock file inside `snapshots/`.
const LOCK_FILE: &str = "LOCK";
/// Suffix of a data file.
const FILE_SUFFIX: &str = ".snap";
/// Suffix of a file being written by compaction or file creation.
const TMP_SUFFIX: &str = ".snap.tmp";

/// Tunables of a [`LogSnapshotStore`]. The defaults suit production; tests
/// use small values to exercise file rolling and compaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStoreOptions {
    /// A new file is started once the active one holds this many bytes
    /// (between [`MIN_SNAPSHOT_FILE_BYTES_LIMIT`] and [`MAX_SNAPSHOT_FILE_BYTES_LIMIT`]).
    pub max_file_bytes: u64,
    /// A file is compacted only if at least this many of its bytes are
    /// reclaimable (an entirely dead file is removed regardless).
    pub compact_min_reclaimable_bytes: u64,
    /// ... and only if at least this percentage (1..=100) of it is reclaimable.
    pub compact_reclaimable_percent: u64,
}

impl Default for SnapshotStoreOptions {
    fn default() -> Self {
        SnapshotStoreOptions {
            max_file_bytes: DEFAULT_MAX_SNAPSHOT_FILE_BYTES,
            compact_min_reclaimable_bytes: DEFAULT_COMPACT_MIN_RECLAIMABLE_BYTES,
            compact_reclaimable_percent: DEFAULT_COMPACT_RECLAIMABLE_PERCENT,
        }
    }
}

impl SnapshotStoreOptions {
    fn validate(&self) -> Result<()> {
        if !(MIN_SNAPSHOT_FILE_BYTES_LIMIT..=MAX_SNAPSHOT_FILE_BYTES_LIMIT)
            .contains(&self.max_file_bytes)
        {
            return Err(Error::invalid(format!(
                "max_file_bytes must be between {MIN_SNAPSHOT_FILE_BYTES_LIMIT} and \
                 {MAX_SNAPSHOT_FILE_BYTES_LIMIT}, got {}",
                self.max_file_bytes
            )));
        }
        if !(1..=100).contains(&self.compact_reclaimable_percent) {
            return Err(Error::invalid(format!(
                "compact_reclaimable_percent must be between 1 and 100, got {}",
                self.compact_reclaimable_percent
            )));
        }
        Ok(())
    }
}

/// Counters describing a [`LogSnapshotStore`], for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStoreStats {
    /// Number of snapshot files.
    pub files: usize,
    /// Their total size in bytes (headers included).
    pub file_bytes: u64,
    /// Bytes of records the index points at (padding included).
    pub live_bytes: u64,
    /// Bytes of tombstones that compaction still has to keep.
    pub tombstone_bytes: u64,
    /// Streams with at least one snapshot.
    pub streams: usize,
    /// Snapshots in the index.
    pub snapshots: usize,
    /// Compactions (file rewrites or removals) since open.
    pub compactions: u64,
}

/// A durable [`SnapshotStore`] in `DIR/snapshots/`. See the module
/// documentation for the design and its guarantees.
///
/// ```no_run
/// # async fn demo() -> strata_core::Result<()> {
/// use std::path::Path;
/// use strata_core::{SnapshotStore, StreamId};
/// use strata_log::snapshot::LogSnapshotStore;
///
/// let store = LogSnapshotStore::open(Path::new("./strata-data"))?;
/// let stream = StreamId::new("account-42")?;
/// let newest = store.load(&stream, u64::MAX).await?;
/// # let _ = newest;
/// # Ok(()) }
/// ```
pub struct LogSnapshotStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSnapshotStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl LogSnapshotStore {
    /// Opens (or creates) the snapshot store of data directory `dir`, in
    /// `dir/snapshots/`, on the real file system with default options.
    /// Blocks while it scans the files.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_storage(dir, Arc::new(FsStorage))
    }

    /// Like [`LogSnapshotStore::open`], on the given storage (tests inject faults).
    pub fn open_with_storage(dir: &Path, storage: Arc<dyn Storage>) -> Result<Self> {
        Self::open_with_options(dir, storage, SnapshotStoreOptions::default())
    }

    /// Like [`LogSnapshotStore::open_with_storage`], with explicit options.
    pub fn open_with_options(
        dir: &Path,
        storage: Arc<dyn Storage>,
        options: SnapshotStoreOptions,
    ) -> Result<Self> {
        options.validate()?;
        Inner::open(dir.join(SNAPSHOTS_DIR), storage, options).map(|inner| LogSnapshotStore {
            inner: Arc::new(inner),
        })
    }

    /// The directory the files are in (`DIR/snapshots`).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Current counters.
    pub fn stats(&self) -> SnapshotStoreStats {
        let s = self.inner.shared.lock();
        SnapshotStoreStats {
            files: s.files.len(),
            file_bytes: s.files.values().map(|f| f.len).sum(),
            live_bytes: s.files.values().map(|f| f.live_bytes).sum(),
            tombstone_bytes: s.files.values().map(|f| f.tombstone_bytes).sum(),
            streams: s.index.len(),
            snapshots: s.snapshots,
            compactions: self.inner.compactions.load(Ordering::Relaxed),
        }
    }

    /// Rewrites every file that holds any reclaimable bytes, whatever the
    /// thresholds (oldest first, so tombstones that only guard older files
    /// can go too). Compaction otherwise runs by itself after writes.
    pub async fn compact(&self) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.compact_all()).await
    }
}

#[async_trait]
impl SnapshotStore for LogSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.save(snapshot)).await
    }

    async fn load(&self, stream: &StreamId, max_version: Version) -> Result<Option<Snapshot>> {
        let Some(found) = self.inner.locate(stream, max_version) else {
            return Ok(None);
        };
        let stream = stream.clone();
        blocking(move || read_snapshot(found, stream).map(Some)).await
    }

    async fn delete(&self, stream: &StreamId) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let stream = stream.clone();
        blocking(move || inner.delete(&stream)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("snapshot store task failed: {e}")))?
}

// ---------------------------------------------------------------------------
// Records

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum RecordKind {
    Snapshot = 1,
    Tombstone = 2,
}

/// A decoded record header, borrowing its names from the bytes read.
#[derive(Clone, Copy, Debug)]
struct RecordHeader<'a> {
    kind: RecordKind,
    stream: &'a str,
    aggregate_type: &'a str,
    version: u64,
    schema_version: u32,
    taken_at_micros: i64,
    state_crc: u32,
    header_len: usize,
    record_len: usize,
}

/// Rounds up to the record alignment.
fn align_u64(n: u64) -> u64 {
    let a = SNAPSHOT_RECORD_ALIGN_BYTES as u64;
    n.div_ceil(a) * a
}

/// The fields of a record to write.
struct NewRecord<'a> {
    kind: RecordKind,
    stream: &'a str,
    aggregate_type: &'a str,
    version: u64,
    schema_version: u32,
    taken_at_micros: i64,
    state: &'a [u8],
}

/// Appends one record, padded to the alignment, to `out`.
fn encode_record(out: &mut Vec<u8>, r: &NewRecord<'_>) {
    let NewRecord {
        kind,
        stream,
        aggregate_type,
        version,
        schema_version,
        taken_at_micros,
        state,
    } = *r;
    let start = out.len();
    let header_len = SNAPSHOT_RECORD_FIXED_BYTES + stream.len() + aggregate_type.len();
    let record_len = header_len + state.len();
    out.extend_from_slice(&[0u8; 4]); // header checksum, patched below
    out.extend_from_slice(&(record_len as u32).to_le_bytes());
    out.push(kind as u8);
    out.push(stream.len() as u8);
    out.extend_from_slice(&(aggregate_type.len() as u16).to_le_bytes());
    out.extend_from_slice(&schema_version.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&taken_at_micros.to_le_bytes());
    out.extend_from_slice(&(state.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(state).to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(aggregate_type.as_bytes());
    let crc = crc32c::crc32c(&out[start + 4..start + header_len]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(state);
    out.resize(start + align_u64(record_len as u64) as usize, 0);
    debug_assert!(
        decode_header(&out[start..]).is_ok_and(|h| h.record_len == record_len
            && h.stream == stream
            && h.version == version),
        "an encoded snapshot record must decode to itself"
    );
}

/// Decodes and checks the record header at the start of `b` (which may hold
/// more, or — at the end of a file — less than a whole header).
fn decode_header(b: &[u8]) -> std::result::Result<RecordHeader<'_>, String> {
    if b.len() < SNAPSHOT_RECORD_FIXED_BYTES {
        return Err("record header truncated".into());
    }
    let kind = match b[8] {
        1 => RecordKind::Snapshot,
        2 => RecordKind::Tombstone,
        k => return Err(format!("unknown record kind {k}")),
    };
    let stream_len = b[9] as usize;
    let type_len = u16_at(b, 10) as usize;
    let state_len = u32_at(b, 32) as usize;
    if stream_len == 0 {
        return Err("empty stream name".into());
    }
    if type_len > MAX_AGGREGATE_TYPE_BYTES || state_len > MAX_SNAPSHOT_STATE_BYTES {
        return Err("record field length out of bounds".into());
    }
    let header_len = SNAPSHOT_RECORD_FIXED_BYTES + stream_len + type_len;
    let record_len = u32_at(b, 4) as usize;
    if record_len != header_len + state_len {
        return Err("record field lengths do not add up".into());
    }
    if b.len() < header_len {
        return Err("record header truncated".into());
    }
    if crc32c::crc32c(&b[4..header_len]) != u32_at(b, 0) {
        return Err("record header checksum mismatch".into());
    }
    if kind == RecordKind::Tombstone && (type_len != 0 || state_len != 0) {
        return Err("tombstone with a type or state".into());
    }
    let s0 = SNAPSHOT_RECORD_FIXED_BYTES;
    let stream =
        std::str::from_utf8(&b[s0..s0 + stream_len]).map_err(|_| "stream name is not UTF-8")?;
    let aggregate_type = std::str::from_utf8(&b[s0 + stream_len..header_len])
        .map_err(|_| "aggregate type is not UTF-8")?;
    Ok(RecordHeader {
        kind,
        stream,
        aggregate_type,
        version: u64_at(b, 16),
        schema_version: u32_at(b, 12),
        taken_at_micros: u64_at(b, 24) as i64,
        state_crc: u32_at(b, 36),
        header_len,
        record_len,
    })
}

/// Encodes a file header.
fn encode_file_header(number: u32) -> [u8; SNAPSHOT_FILE_HEADER_BYTES] {
    let mut h = [0u8; SNAPSHOT_FILE_HEADER_BYTES];
    h[0..8].copy_from_slice(SNAPSHOT_FILE_MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header; returns the file number it names.
fn decode_file_header(h: &[u8]) -> std::result::Result<u32, String> {
    if h.len() < SNAPSHOT_FILE_HEADER_BYTES {
        return Err("file header truncated".into());
    }
    if &h[0..8] != SNAPSHOT_FILE_MAGIC {
        return Err("bad magic".into());
    }
    if crc32c::crc32c(&h[0..28]) != u32_at(h, 28) {
        return Err("file header checksum mismatch".into());
    }
    let version = u32_at(h, 8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {SNAPSHOT_FORMAT_VERSION}"
        ));
    }
    Ok(u32_at(h, 12))
}

fn file_name(number: u32) -> String {
    format!("{number:08}{FILE_SUFFIX}")
}

fn tmp_name(number: u32) -> String {
    format!("{number:08}{TMP_SUFFIX}")
}

fn parse_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_stream(name: &str) -> Result<StreamId> {
    if name.starts_with('$') {
        StreamId::system(name)
    } else {
        StreamId::new(name)
    }
}

fn location(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}

// ---------------------------------------------------------------------------
// Scanning

/// Sequential reads of a file through a buffer, so that a scan does not make
/// one system call per record.
struct Window<'f> {
    file: &'f dyn StorageFile,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'f> Window<'f> {
    fn new(file: &'f dyn StorageFile, file_len: u64) -> Self {
        Window {
            file,
            file_len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the file).
    fn get(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let avail = self.file_len.saturating_sub(offset);
        let len = (len as u64).min(avail) as usize;
        let end = offset + len as u64;
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            let want = (len.max(SCAN_CHUNK_BYTES) as u64).min(avail) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, offset)?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }
}

/// What a scan finds.
enum Scanned<'a> {
    /// A record whose header checks out.
    Record {
        offset: u64,
        header: RecordHeader<'a>,
    },
    /// Bytes that are no record, followed by a valid record.
    Damaged { offset: u64, len: u64 },
}

/// Scans the records of a file of `file_len` bytes. Returns the offset of a
/// torn tail — invalid bytes with no valid record after them — if there is
/// one. With `verify_final_state`, a final snapshot record whose state fails
/// its checksum also counts as torn (the active file's last record is the
/// only one that can have been in flight at a crash).
fn scan_records(
    file: &dyn StorageFile,
    file_len: u64,
    verify_final_state: bool,
    mut on: impl FnMut(Scanned<'_>),
) -> io::Result<Option<u64>> {
    let mut w = Window::new(file, file_len);
    let mut at = SNAPSHOT_FILE_HEADER_BYTES as u64;
    while at < file_len {
        let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
        match decode_header(b) {
            Ok(h) if at + h.record_len as u64 <= file_len => {
                let next = at + align_u64(h.record_len as u64);
                let verify =
                    verify_final_state && next >= file_len && h.kind == RecordKind::Snapshot;
                if !verify {
                    on(Scanned::Record {
                        offset: at,
                        header: h,
                    });
                    at = next;
                    continue;
                }
                let (header_len, record_len, crc) = (h.header_len, h.record_len, h.state_crc);
                let state = w.get(at + header_len as u64, record_len - header_len)?;
                if crc32c::crc32c(state) != crc {
                    return Ok(Some(at));
                }
                let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
                if let Ok(h) = decode_header(b) {
                    on(Scanned::Record {
                        offset: at,
                        header: h,
                    });
                }
                at = next;
            }
            _ => match find_valid_record(&mut w, at + SNAPSHOT_RECORD_ALIGN_BYTES as u64)? {
                Some(next) => {
                    on(Scanned::Damaged {
                        offset: at,
                        len: next - at,
                    });
                    at = next;
                }
                None => return Ok(Some(at)),
            },
        }
    }
    Ok(None)
}

/// The first offset at or after `at` (on the alignment) where a whole valid
/// record starts.
fn find_valid_record(w: &mut Window<'_>, mut at: u64) -> io::Result<Option<u64>> {
    while at < w.file_len {
        let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
        if let Ok(h) = decode_header(b) {
            if at + h.record_len as u64 <= w.file_len {
                return Ok(Some(at));
            }
        }
        at += SNAPSHOT_RECORD_ALIGN_BYTES as u64;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// The index

/// Where one snapshot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    version: Version,
    offset: u64,
    file: u32,
    /// Record length without padding.
    len: u32,
}

impl Entry {
    fn padded(&self) -> u64 {
        align_u64(self.len as u64)
    }
}

/// One snapshot file.
struct FileInfo {
    path: PathBuf,
    handle: Arc<dyn StorageFile>,
    /// Logical length: where the next record would go.
    len: u64,
    /// Padded bytes of the records the index points at.
    live_bytes: u64,
    /// How many index entries point into this file.
    live_count: usize,
    /// Padded bytes of tombstones (reclaimable only in the oldest file).
    tombstone_bytes: u64,
}

impl FileInfo {
    fn reclaimable(&self, is_oldest: bool) -> u64 {
        let pinned = if is_oldest { 0 } else { self.tombstone_bytes };
        self.len
            .saturating_sub(SNAPSHOT_FILE_HEADER_BYTES as u64)
            .saturating_sub(self.live_bytes)
            .saturating_sub(pinned)
    }
}

/// What loads and writers share: the index and the files.
#[derive(Default)]
struct Shared {
    /// Per stream, its snapshots sorted by version (ascending), at most
    /// [`MAX_SNAPSHOTS_PER_STREAM`].
    index: HashMap<StreamId, Vec<Entry>>,
    files: BTreeMap<u32, FileInfo>,
    snapshots: usize,
}

impl Shared {
    /// Whether a snapshot at `version` would be kept by the cap.
    fn would_keep(&self, stream: &str, version: Version) -> bool {
        match self.index.get(stream) {
            None => true,
            Some(list) => {
                list.len() < MAX_SNAPSHOTS_PER_STREAM
                    || list.first().is_some_and(|e| version >= e.version)
            }
        }
    }

    fn mark_live(files: &mut BTreeMap<u32, FileInfo>, e: &Entry) {
        if let Some(f) = files.get_mut(&e.file) {
            f.live_bytes += e.padded();
            f.live_count += 1;
        }
    }

    fn mark_dead(files: &mut BTreeMap<u32, FileInfo>, e: &Entry) {
        if let Some(f) = files.get_mut(&e.file) {
            f.live_bytes = f.live_bytes.saturating_sub(e.padded());
            f.live_count = f.live_count.saturating_sub(1);
        }
    }

    /// Adds a snapshot, replacing one at the same version and evicting the
    /// oldest beyond the cap (exactly what `MemorySnapshotStore` does).
    fn insert(&mut self, stream: &str, e: Entry) {
        let Shared {
            index,
            files,
            snapshots,
        } = self;
        let list = match index.get_mut(stream) {
            Some(list) => list,
            None => match parse_stream(stream) {
                Ok(id) => index.entry(id).or_default(),
                Err(error) => {
                    tracing::warn!(stream, %error, "skipping a snapshot record with an invalid stream name");
                    return;
                }
            },
        };
        match list.binary_search_by_key(&e.version, |x| x.version) {
            Ok(i) => {
                let old = std::mem::replace(&mut list[i], e);
                Self::mark_dead(files, &old);
                Self::mark_live(files, &e);
            }
            Err(i) => {
                if list.len() >= MAX_SNAPSHOTS_PER_STREAM && i == 0 {
                    return; // older than everything kept: evicted at once
                }
                list.insert(i, e);
                Self::mark_live(files, &e);
                *snapshots += 1;
                if list.len() > MAX_SNAPSHOTS_PER_STREAM {
                    let old = list.remove(0);
                    Self::mark_dead(files, &old);
                    *snapshots -= 1;
                }
            }
        }
        debug_assert!(list.len() <= MAX_SNAPSHOTS_PER_STREAM);
        debug_assert!(list.windows(2).all(|w| w[0].version < w[1].version));
    }

    /// Drops every snapshot of `stream`.
    fn remove_stream(&mut self, stream: &str) {
        if let Some(list) = self.index.remove(stream) {
            for e in &list {
                Self::mark_dead(&mut self.files, e);
            }
            self.snapshots -= list.len();
        }
    }

    /// Keeps only the entries `keep` accepts.
    fn retain_entries(&mut self, keep: impl Fn(&Entry) -> bool) {
        let Shared {
            index,
            files,
            snapshots,
        } = self;
        index.retain(|_, list| {
            list.retain(|e| {
                let k = keep(e);
                if !k {
                    Self::mark_dead(files, e);
                    *snapshots -= 1;
                }
                k
            });
            !list.is_empty()
        });
    }

    /// The index key of the live snapshot at exactly (file, offset), if the
    /// record there is live.
    fn live_key(&self, stream: &str, version: Version, file: u32, offset: u64) -> Option<StreamId> {
        let (key, list) = self.index.get_key_value(stream)?;
        list.iter()
            .any(|e| e.version == version && e.file == file && e.offset == offset)
            .then(|| key.clone())
    }
}

/// What a load needs, taken under the lock and used without it.
struct Found {
    entry: Entry,
    handle: Arc<dyn StorageFile>,
    path: PathBuf,
}

/// Reads and verifies one snapshot record.
fn read_snapshot(found: Found, stream: StreamId) -> Result<Snapshot> {
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
    let mut buf = vec![0u8; entry.len as usize];
    handle
        .read_exact_at(&mut buf, entry.offset)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("the file ends inside the record".into()),
            _ => Error::io(format!("reading the snapshot {at}"), e),
        })?;
    let h = decode_header(&buf).map_err(&corrupt)?;
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
    if crc32c::crc32c(&buf[h.header_len..]) != h.state_crc {
        return Err(corrupt("snapshot state checksum mismatch".into()));
    }
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

// ---------------------------------------------------------------------------
// The store

/// Writer-side state, behind the writer mutex.
struct Writer {
    /// The file appended to (the highest number).
    active: u32,
    /// Set after a write or fsync failed: the tail is uncertain.
    poisoned: Option<String>,
    /// Bytes appended since open.
    appended_bytes: u64,
    /// After a failed compaction, none is tried until this many bytes were appended.
    compact_retry_at_bytes: u64,
}

struct Inner {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    options: SnapshotStoreOptions,
    writer: Mutex<Writer>,
    shared: Mutex<Shared>,
    compactions: AtomicU64,
    _lock: File,
}

/// Takes the advisory lock of the directory, so two stores never append to
/// the same files.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    lock.try_lock().map_err(|_| {
        Error::invalid(format!(
            "{} is in use by another snapshot store (LOCK is held)",
            dir.display()
        ))
    })?;
    Ok(lock)
}

impl Inner {
    fn open(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        options: SnapshotStoreOptions,
    ) -> Result<Self> {
        let started = Instant::now();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(&dir)?;
        let names = storage
            .list(&dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let mut numbers = Vec::new();
        for name in names {
            if name.ends_with(TMP_SUFFIX) {
                // An interrupted compaction or file creation: the original
                // (if any) is intact, the partial copy is garbage.
                let path = dir.join(&name);
                tracing::info!(file = %path.display(), "removing an unfinished snapshot file");
                storage
                    .remove(&path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            } else if let Some(n) = parse_file_name(&name) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let inner = Inner {
            dir,
            storage,
            options,
            writer: Mutex::new(Writer {
                active: 0,
                poisoned: None,
                appended_bytes: 0,
                compact_retry_at_bytes: 0,
            }),
            shared: Mutex::new(Shared::default()),
            compactions: AtomicU64::new(0),
            _lock: lock,
        };
        let mut w = inner.writer.lock();
        let mut damage = None;
        let mut bad_headers = Vec::new();
        let last = numbers.last().copied();
        for &n in &numbers {
            inner.load_file(n, Some(n) == last, &mut damage, &mut bad_headers)?;
        }
        match last {
            Some(n) => w.active = n,
            None => {
                let info = inner.create_file(0)?;
                inner.shared.lock().files.insert(0, info);
            }
        }
        if let Some((file, end)) = damage {
            inner.salvage(&mut w, file, end)?;
        }
        for n in bad_headers {
            if inner.shared.lock().files.contains_key(&n) {
                inner.compact_file(&mut w, n)?;
            }
        }
        inner.compact_due(&mut w, true)?;
        drop(w);
        {
            let s = inner.shared.lock();
            tracing::info!(
                dir = %inner.dir.display(),
                files = s.files.len(),
                streams = s.index.len(),
                snapshots = s.snapshots,
                took_ms = started.elapsed().as_millis() as u64,
                "snapshot store opened"
            );
        }
        Ok(inner)
    }

    fn path_of(&self, number: u32) -> PathBuf {
        self.dir.join(file_name(number))
    }

    /// Scans file `n` into the index; notes damage; cuts a torn tail of the last file.
    fn load_file(
        &self,
        n: u32,
        is_last: bool,
        damage: &mut Option<(u32, u64)>,
        bad_headers: &mut Vec<u32>,
    ) -> Result<()> {
        let path = self.path_of(n);
        let io_err = |what: &str, e: io::Error| Error::io(format!("{what} {}", path.display()), e);
        let handle = self
            .storage
            .open(&path, false)
            .map_err(|e| io_err("opening", e))?;
        let phys = handle.len().map_err(|e| io_err("sizing", e))?;
        let mut header = [0u8; SNAPSHOT_FILE_HEADER_BYTES];
        let header_check = if phys >= SNAPSHOT_FILE_HEADER_BYTES as u64 {
            handle
                .read_exact_at(&mut header, 0)
                .map_err(|e| io_err("reading the header of", e))?;
            decode_file_header(&header).and_then(|got| {
                if got == n {
                    Ok(())
                } else {
                    Err(format!("header names file {got}"))
                }
            })
        } else {
            Err("file shorter than its header".into())
        };
        if let Err(reason) = header_check {
            // Records are self-checking, so a bad file header hides nothing:
            // the file is rewritten with a good one.
            tracing::error!(file = %path.display(), %reason, "damaged snapshot file header; the file will be rewritten");
            bad_headers.push(n);
        }
        let mut s = self.shared.lock();
        s.files.insert(
            n,
            FileInfo {
                path: path.clone(),
                handle: Arc::clone(&handle),
                len: align_u64(phys.max(SNAPSHOT_FILE_HEADER_BYTES as u64)),
                live_bytes: 0,
                live_count: 0,
                tombstone_bytes: 0,
            },
        );
        let torn = scan_records(handle.as_ref(), phys, is_last, |item| match item {
            Scanned::Record { offset, header: h } => match h.kind {
                RecordKind::Snapshot => s.insert(
                    h.stream,
                    Entry {
                        version: h.version,
                        offset,
                        file: n,
                        len: h.record_len as u32,
                    },
                ),
                RecordKind::Tombstone => {
                    s.remove_stream(h.stream);
                    if let Some(f) = s.files.get_mut(&n) {
                        f.tombstone_bytes += align_u64(h.record_len as u64);
                    }
                }
            },
            Scanned::Damaged { offset, len } => {
                tracing::error!(file = %path.display(), offset, len, "damaged snapshot records");
                *damage = Some((n, offset + len));
            }
        })
        .map_err(|e| io_err("scanning", e))?;
        if let Some(at) = torn {
            if is_last {
                tracing::warn!(file = %path.display(), offset = at, cut_bytes = phys - at, "cutting a torn tail of the snapshot file");
                handle.set_len(at).map_err(|e| io_err("trimming", e))?;
                handle.sync_data().map_err(|e| io_err("syncing", e))?;
                if let Some(f) = s.files.get_mut(&n) {
                    f.len = align_u64(at);
                }
            } else {
                tracing::error!(file = %path.display(), offset = at, "damaged bytes at the end of a sealed snapshot file");
                *damage = Some((n, phys));
            }
        }
        Ok(())
    }

    /// Drops everything stored before damage that ends at (`file`, `end`):
    /// the damaged bytes may have been a tombstone of any stream.
    fn salvage(&self, w: &mut Writer, file: u32, end: u64) -> Result<()> {
        let older: Vec<(u32, PathBuf)> = {
            let mut s = self.shared.lock();
            let before = s.snapshots;
            s.retain_entries(|e| e.file > file || (e.file == file && e.offset >= end));
            let older: Vec<_> = s
                .files
                .range(..file)
                .map(|(&n, f)| (n, f.path.clone()))
                .collect();
            tracing::error!(
                file = %self.path_of(file).display(),
                end,
                dropped_snapshots = before - s.snapshots,
                removed_files = older.len(),
                "a damaged snapshot record cannot be attributed to a stream; dropping every \
                 snapshot stored before it (aggregates are replayed from their events instead)"
            );
            older
        };
        for (n, path) in &older {
            self.storage
                .remove(path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            self.shared.lock().files.remove(n);
        }
        if !older.is_empty() {
            self.storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), e))?;
        }
        if let Err(error) = self.compact_file(w, file) {
            if w.poisoned.is_some() {
                return Err(error);
            }
            // The damage stays on disk and is handled the same way next time.
            tracing::warn!(%error, "could not rewrite the damaged snapshot file");
        }
        Ok(())
    }

    /// Creates file `number` atomically, holding only a header.
    fn create_file(&self, number: u32) -> Result<FileInfo> {
        let path = self.path_of(number);
        let tmp = self.dir.join(tmp_name(number));
        let result = (|| -> io::Result<Arc<dyn StorageFile>> {
            let h = self.storage.open(&tmp, true)?;
            h.set_len(0)?;
            h.write_all_at(&encode_file_header(number), 0)?;
            h.sync_data()?;
            self.storage.rename(&tmp, &path)?;
            self.storage.sync_dir(&self.dir)?;
            Ok(h)
        })();
        match result {
            Ok(handle) => {
                tracing::debug!(file = %path.display(), "started a snapshot file");
                Ok(FileInfo {
                    path,
                    handle,
                    len: SNAPSHOT_FILE_HEADER_BYTES as u64,
                    live_bytes: 0,
                    live_count: 0,
                    tombstone_bytes: 0,
                })
            }
            Err(e) => {
                let _ = self.storage.remove(&tmp);
                Err(Error::io(format!("creating {}", path.display()), e))
            }
        }
    }

    fn check_writable(w: &Writer) -> Result<()> {
        match &w.poisoned {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(w: &mut Writer, reason: String) {
        tracing::error!(%reason, "snapshot store refuses writes until reopened");
        w.poisoned = Some(reason);
    }

    /// Appends one encoded record to the active file (starting a new file
    /// when it is full) and fsyncs it. Returns (file, offset).
    fn append(&self, w: &mut Writer, record: &[u8]) -> Result<(u32, u64)> {
        let active = {
            let s = self.shared.lock();
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
            self.shared.lock().files.insert(next, info);
            w.active = next;
        }
        let (handle, path, offset) = {
            let s = self.shared.lock();
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
            Self::poison(w, err.to_string());
            return Err(err);
        }
        if let Err(e) = handle.sync_data() {
            let err = Error::io(format!("syncing {}", path.display()), e);
            Self::poison(w, err.to_string());
            return Err(err);
        }
        if let Some(f) = self.shared.lock().files.get_mut(&w.active) {
            f.len = offset + record.len() as u64;
        }
        w.appended_bytes += record.len() as u64;
        Ok((w.active, offset))
    }

    fn save(&self, snapshot: Snapshot) -> Result<()> {
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
        Self::check_writable(&w)?;
        let stream = snapshot.stream.as_str();
        if !self.shared.lock().would_keep(stream, snapshot.version) {
            tracing::debug!(%snapshot.stream, snapshot.version, "snapshot older than every kept one; not written");
            return Ok(());
        }
        let mut record = Vec::with_capacity(
            SNAPSHOT_RECORD_FIXED_BYTES
                + stream.len()
                + snapshot.aggregate_type.len()
                + snapshot.state.len()
                + SNAPSHOT_RECORD_ALIGN_BYTES,
        );
        encode_record(
            &mut record,
            &NewRecord {
                kind: RecordKind::Snapshot,
                stream,
                aggregate_type: &snapshot.aggregate_type,
                version: snapshot.version,
                schema_version: snapshot.schema_version,
                taken_at_micros: snapshot.taken_at.timestamp_micros(),
                state: &snapshot.state,
            },
        );
        let record_len = SNAPSHOT_RECORD_FIXED_BYTES
            + stream.len()
            + snapshot.aggregate_type.len()
            + snapshot.state.len();
        let (file, offset) = self.append(&mut w, &record)?;
        self.shared.lock().insert(
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

    fn delete(&self, stream: &StreamId) -> Result<()> {
        let mut w = self.writer.lock();
        Self::check_writable(&w)?;
        // No live snapshot: nothing to hide. Dead records never come back on
        // replay, so no tombstone is needed.
        if !self.shared.lock().index.contains_key(stream.as_str()) {
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
        let (file, _) = self.append(&mut w, &record)?;
        {
            let mut s = self.shared.lock();
            s.remove_stream(stream.as_str());
            if let Some(f) = s.files.get_mut(&file) {
                f.tombstone_bytes += record.len() as u64;
            }
        }
        self.compact_due(&mut w, false)
    }

    /// Whether file `n` should be compacted now.
    fn is_due(&self, f: &FileInfo, is_oldest: bool, is_active: bool) -> bool {
        let r = f.reclaimable(is_oldest);
        if r == 0 {
            return false;
        }
        let all_dead = r == f.len.saturating_sub(SNAPSHOT_FILE_HEADER_BYTES as u64);
        if all_dead && !is_active {
            return true;
        }
        r >= self.options.compact_min_reclaimable_bytes
            && r * 100 >= f.len * self.options.compact_reclaimable_percent
    }

    /// Compacts files that are due: at most one after a write (bounding the
    /// write's latency), all of them (oldest first) when `all`. A failed
    /// compaction is logged and retried later; only a failure that leaves
    /// the directory uncertain (and poisons the store) is returned.
    fn compact_due(&self, w: &mut Writer, all: bool) -> Result<()> {
        if w.appended_bytes < w.compact_retry_at_bytes {
            return Ok(());
        }
        let numbers: Vec<u32> = self.shared.lock().files.keys().copied().collect();
        for n in numbers {
            let due = {
                let s = self.shared.lock();
                let oldest = s.files.keys().next().copied();
                s.files
                    .get(&n)
                    .is_some_and(|f| self.is_due(f, oldest == Some(n), n == w.active))
            };
            if !due {
                continue;
            }
            if let Err(error) = self.compact_file(w, n) {
                if w.poisoned.is_some() {
                    return Err(error);
                }
                tracing::warn!(%error, file = n, "snapshot compaction failed; will retry later");
                w.compact_retry_at_bytes =
                    w.appended_bytes + self.options.compact_min_reclaimable_bytes;
                return Ok(());
            }
            if !all {
                break;
            }
        }
        Ok(())
    }

    fn compact_all(&self) -> Result<()> {
        let mut w = self.writer.lock();
        Self::check_writable(&w)?;
        let numbers: Vec<u32> = self.shared.lock().files.keys().copied().collect();
        for n in numbers {
            let reclaimable = {
                let s = self.shared.lock();
                let oldest = s.files.keys().next().copied();
                s.files
                    .get(&n)
                    .map_or(0, |f| f.reclaimable(oldest == Some(n)))
            };
            if reclaimable > 0 {
                self.compact_file(&mut w, n)?;
            }
        }
        Ok(())
    }

    /// Rewrites file `n` with only its live records and the tombstones that
    /// still guard older files, atomically and under the same number; or
    /// removes it if nothing is left and it is not the active file.
    fn compact_file(&self, w: &mut Writer, n: u32) -> Result<()> {
        let started = Instant::now();
        let (path, handle, has_older, live_count) = {
            let s = self.shared.lock();
            let f = s
                .files
                .get(&n)
                .ok_or_else(|| Error::Backend(format!("snapshot file {n} is not open")))?;
            (
                f.path.clone(),
                Arc::clone(&f.handle),
                s.files.range(..n).next().is_some(),
                f.live_count,
            )
        };
        let io_err = |what: &str, e: io::Error| Error::io(format!("{what} {}", path.display()), e);
        let phys = handle.len().map_err(|e| io_err("sizing", e))?;
        let before_bytes = phys;

        // What to keep: (old offset, padded length), in file order.
        let mut keep: Vec<(u64, u64)> = Vec::new();
        // Live snapshots moved: (stream, version, index into `keep`).
        let mut moves: Vec<(StreamId, Version, usize)> = Vec::new();
        let mut kept_live_bytes = 0u64;
        let mut kept_tombstone_bytes = 0u64;
        scan_records(handle.as_ref(), phys, false, |item| {
            if let Scanned::Record { offset, header: h } = item {
                let padded = align_u64(h.record_len as u64);
                match h.kind {
                    RecordKind::Snapshot => {
                        let key = self.shared.lock().live_key(h.stream, h.version, n, offset);
                        if let Some(key) = key {
                            moves.push((key, h.version, keep.len()));
                            keep.push((offset, padded));
                            kept_live_bytes += padded;
                        }
                    }
                    RecordKind::Tombstone => {
                        if has_older {
                            keep.push((offset, padded));
                            kept_tombstone_bytes += padded;
                        }
                    }
                }
            }
        })
        .map_err(|e| io_err("scanning", e))?;
        if moves.len() != live_count {
            // Never expected: the index points at records the scan did not
            // find. Rewriting would leave it pointing at the wrong bytes.
            return Err(Error::Corrupt {
                location: path.display().to_string(),
                reason: format!(
                    "the index holds {live_count} snapshots in this file but a scan finds {}; \
                     compaction skipped",
                    moves.len()
                ),
            });
        }

        if keep.is_empty() && n != w.active {
            self.storage
                .remove(&path)
                .map_err(|e| io_err("removing", e))?;
            self.shared.lock().files.remove(&n);
            if let Err(e) = self.storage.sync_dir(&self.dir) {
                // If the removal is lost, an older file could come back
                // after later compactions dropped the tombstones guarding it.
                let err = Error::io(format!("syncing {}", self.dir.display()), e);
                Self::poison(w, err.to_string());
                return Err(err);
            }
            self.compactions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = %path.display(), freed_bytes = before_bytes, "removed a dead snapshot file");
            return Ok(());
        }

        // New offsets, in order.
        let mut new_offsets = Vec::with_capacity(keep.len());
        let mut new_len = SNAPSHOT_FILE_HEADER_BYTES as u64;
        for &(_, padded) in &keep {
            new_offsets.push(new_len);
            new_len += padded;
        }
        let tmp_path = self.dir.join(tmp_name(n));
        let written = (|| -> io::Result<Arc<dyn StorageFile>> {
            let tmp = self.storage.open(&tmp_path, true)?;
            tmp.set_len(0)?;
            tmp.write_all_at(&encode_file_header(n), 0)?;
            let mut out_at = SNAPSHOT_FILE_HEADER_BYTES as u64;
            let mut buf = Vec::new();
            // Contiguous kept records are copied as one run.
            let mut i = 0;
            while i < keep.len() {
                let start = keep[i].0;
                let mut len = keep[i].1;
                i += 1;
                while i < keep.len() && keep[i].0 == start + len {
                    len += keep[i].1;
                    i += 1;
                }
                let mut done = 0u64;
                while done < len {
                    let chunk = (len - done).min(COMPACT_COPY_CHUNK_BYTES as u64) as usize;
                    buf.clear();
                    buf.resize(chunk, 0);
                    // The padding of a file's last record may be missing on disk.
                    let avail = phys.saturating_sub(start + done).min(chunk as u64) as usize;
                    handle.read_exact_at(&mut buf[..avail], start + done)?;
                    tmp.write_all_at(&buf, out_at)?;
                    out_at += chunk as u64;
                    done += chunk as u64;
                }
            }
            debug_assert_eq!(out_at, new_len);
            tmp.sync_data()?;
            // Read back what will replace the file: exactly the kept records.
            let mut records = 0usize;
            let mut damaged = false;
            let torn = scan_records(tmp.as_ref(), new_len, false, |item| match item {
                Scanned::Record { .. } => records += 1,
                Scanned::Damaged { .. } => damaged = true,
            })?;
            if records != keep.len() || damaged || torn.is_some() {
                return Err(io::Error::other(format!(
                    "the rewritten file reads back {records} records, expected {}",
                    keep.len()
                )));
            }
            self.storage.rename(&tmp_path, &path)?;
            Ok(tmp)
        })();
        let new_handle = match written {
            Ok(h) => h,
            Err(e) => {
                let _ = self.storage.remove(&tmp_path);
                return Err(io_err("compacting", e));
            }
        };
        {
            let mut s = self.shared.lock();
            for (key, version, ki) in &moves {
                if let Some(e) = s
                    .index
                    .get_mut(key)
                    .and_then(|list| list.iter_mut().find(|e| e.version == *version))
                {
                    debug_assert_eq!(e.file, n);
                    e.offset = new_offsets[*ki];
                }
            }
            s.files.insert(
                n,
                FileInfo {
                    path: path.clone(),
                    handle: new_handle,
                    len: new_len,
                    live_bytes: kept_live_bytes,
                    live_count,
                    tombstone_bytes: kept_tombstone_bytes,
                },
            );
        }
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            // Appends now go to the new file; if its rename were lost they
            // would be lost with it.
            let err = Error::io(format!("syncing {}", self.dir.display()), e);
            Self::poison(w, err.to_string());
            return Err(err);
        }
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            file = %path.display(),
            before_bytes,
            after_bytes = new_len,
            snapshots = live_count,
            took_ms = started.elapsed().as_millis() as u64,
            "compacted a snapshot file"
        );
        Ok(())
    }

    /// The newest indexed snapshot of `stream` at or before `max_version`.
    fn locate(&self, stream: &StreamId, max_version: Version) -> Option<Found> {
        let s = self.shared.lock();
        let entry = *s
            .index
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_every_flipped_header_bit_is_caught() {
        let mut b = Vec::new();
        encode_record(
            &mut b,
            &NewRecord {
                kind: RecordKind::Snapshot,
                stream: "account-1",
                aggregate_type: "Account",
                version: 7,
                schema_version: 3,
                taken_at_micros: 1_234,
                state: b"state",
            },
        );
        assert_eq!(b.len() % SNAPSHOT_RECORD_ALIGN_BYTES, 0);
        let h = decode_header(&b).unwrap();
        assert_eq!(h.stream, "account-1");
        assert_eq!(h.aggregate_type, "Account");
        assert_eq!(
            (h.version, h.schema_version, h.taken_at_micros),
            (7, 3, 1_234)
        );
        assert_eq!(&b[h.header_len..h.record_len], b"state");
        assert_eq!(crc32c::crc32c(b"state"), h.state_crc);
        for bit in 0..h.header_len * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_header(&c).is_err(),
                "flip of header bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("00000042.snap.tmp"), None);
        assert_eq!(parse_file_name("LOCK"), None);
        assert_eq!(decode_file_header(&encode_file_header(9)), Ok(9));
    }
}
