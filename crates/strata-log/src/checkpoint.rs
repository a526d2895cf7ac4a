//! The durable checkpoint store, kept in `DIR/checkpoints/` of a data
//! directory.
//!
//! # Design
//!
//! Few names, frequent saves (a projection runner saves every N events). All
//! checkpoints live in memory; disk holds one append-only file,
//! `checkpoints/checkpoints.log`, of small checksummed records: "name is at
//! position P" or "name was reset". `docs/log-format.md` ("Checkpoint file")
//! describes every byte. On open the file is replayed; a torn last record
//! (a crash during an unacknowledged save) is cut.
//!
//! Once the file reaches [`CheckpointStoreOptions::compact_at_bytes`] and is
//! at least [`CHECKPOINT_COMPACT_GROWTH_FACTOR`] times what the live
//! checkpoints need, it is rewritten with one record per name, atomically
//! (new file, fsync, rename, directory fsync).
//!
//! # Durability and errors
//!
//! `save` and `reset` return `Ok` only after the record is fsynced
//! (`fdatasync`). A failed write or fsync poisons the store: further writes
//! return [`Error::Poisoned`] until it is reopened (loads keep working).
//!
//! A damaged record *followed by valid ones* is not a torn write, and it
//! cannot be attributed to a name: skipping it could move a checkpoint
//! forward past a reset and make a projection skip events. Opening then
//! fails with [`Error::Corrupt`] naming the file and offset; restore the file,
//! or delete it to restart every projection from the beginning.
//!
//! # Blocking
//!
//! `save` and `reset` run on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) because of their fsync, so they need a
//! Tokio runtime; `load` only reads memory. [`LogCheckpointStore::open`] is
//! synchronous.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use strata_core::{CheckpointStore, Error, Position, Result};

use crate::format::{u16_at, u32_at, u64_at, FRAME_ALIGN};
use crate::io::{read_file, FsStorage, Storage, StorageFile};

/// The checkpoint store's directory inside a data directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The checkpoint file inside [`CHECKPOINTS_DIR`].
pub const CHECKPOINT_FILE_NAME: &str = "checkpoints.log";
/// First 8 bytes of the checkpoint file.
pub const CHECKPOINT_FILE_MAGIC: &[u8; 8] = b"STRATACP";
/// Version of the checkpoint file format this code writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;
/// Size of the file header; the first record starts here.
pub const CHECKPOINT_FILE_HEADER_BYTES: usize = 32;
/// Size of a record's fixed part (before the name).
pub const CHECKPOINT_RECORD_FIXED_BYTES: usize = 24;
/// Records start at multiples of this many bytes.
pub const CHECKPOINT_RECORD_ALIGN_BYTES: usize = 8;
/// The longest checkpoint name accepted, in bytes of UTF-8.
pub const MAX_CHECKPOINT_NAME_BYTES: usize = 1024;
/// The most distinct checkpoint names the store holds.
pub const MAX_CHECKPOINT_NAMES: usize = 65_536;
/// Default for [`CheckpointStoreOptions::compact_at_bytes`]: 1 MiB.
pub const DEFAULT_CHECKPOINT_COMPACT_AT_BYTES: u64 = 1 << 20;
/// Smallest allowed [`CheckpointStoreOptions::compact_at_bytes`].
pub const MIN_CHECKPOINT_COMPACT_AT_BYTES: u64 = 4 << 10;
/// Largest allowed [`CheckpointStoreOptions::compact_at_bytes`].
pub const MAX_CHECKPOINT_COMPACT_AT_BYTES: u64 = 1 << 30;
/// The file is compacted only when it is at least this many times the size
/// the live checkpoints need, so many names do not cause a rewrite per save.
pub const CHECKPOINT_COMPACT_GROWTH_FACTOR: u64 = 2;

const _: () = assert!(CHECKPOINT_RECORD_ALIGN_BYTES == FRAME_ALIGN);
const _: () = assert!(MAX_CHECKPOINT_NAME_BYTES <= u16::MAX as usize);

/// The advisory lock file inside `checkpoints/`.
const LOCK_FILE: &str = "LOCK";
/// The file a compaction writes before renaming it over the log.
const TMP_FILE_NAME: &str = "checkpoints.log.tmp";

/// Tunables of a [`LogCheckpointStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStoreOptions {
    /// The file is compacted once it reaches this many bytes (between
    /// [`MIN_CHECKPOINT_COMPACT_AT_BYTES`] and [`MAX_CHECKPOINT_COMPACT_AT_BYTES`]).
    pub compact_at_bytes: u64,
}

impl Default for CheckpointStoreOptions {
    fn default() -> Self {
        CheckpointStoreOptions {
            compact_at_bytes: DEFAULT_CHECKPOINT_COMPACT_AT_BYTES,
        }
    }
}

/// Counters describing a [`LogCheckpointStore`], for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStoreStats {
    /// Checkpoints held.
    pub names: usize,
    /// Size of the file in bytes.
    pub file_bytes: u64,
    /// Bytes the live checkpoints need (header included).
    pub live_bytes: u64,
    /// Compactions since open.
    pub compactions: u64,
}

/// A durable [`CheckpointStore`] in `DIR/checkpoints/`. See the module
/// documentation for the design and its guarantees.
///
/// ```no_run
/// # async fn demo() -> strata_core::Result<()> {
/// use std::path::Path;
/// use strata_core::{CheckpointStore, Position};
/// use strata_log::checkpoint::LogCheckpointStore;
///
/// let store = LogCheckpointStore::open(Path::new("./strata-data"))?;
/// store.save("balances", Position(42)).await?;
/// assert_eq!(store.load("balances").await?, Some(Position(42)));
/// # Ok(()) }
/// ```
pub struct LogCheckpointStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCheckpointStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl LogCheckpointStore {
    /// Opens (or creates) the checkpoint store of data directory `dir`, in
    /// `dir/checkpoints/`, on the real file system with default options.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_storage(dir, Arc::new(FsStorage))
    }

    /// Like [`LogCheckpointStore::open`], on the given storage (tests inject faults).
    pub fn open_with_storage(dir: &Path, storage: Arc<dyn Storage>) -> Result<Self> {
        Self::open_with_options(dir, storage, CheckpointStoreOptions::default())
    }

    /// Like [`LogCheckpointStore::open_with_storage`], with explicit options.
    pub fn open_with_options(
        dir: &Path,
        storage: Arc<dyn Storage>,
        options: CheckpointStoreOptions,
    ) -> Result<Self> {
        if !(MIN_CHECKPOINT_COMPACT_AT_BYTES..=MAX_CHECKPOINT_COMPACT_AT_BYTES)
            .contains(&options.compact_at_bytes)
        {
            return Err(Error::invalid(format!(
                "compact_at_bytes must be between {MIN_CHECKPOINT_COMPACT_AT_BYTES} and \
                 {MAX_CHECKPOINT_COMPACT_AT_BYTES}, got {}",
                options.compact_at_bytes
            )));
        }
        Inner::open(&dir.join(CHECKPOINTS_DIR), storage, options).map(|inner| LogCheckpointStore {
            inner: Arc::new(inner),
        })
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Current counters.
    pub fn stats(&self) -> CheckpointStoreStats {
        let (names, live_bytes) = {
            let m = self.inner.map.lock();
            (m.len(), live_bytes_of(&m))
        };
        CheckpointStoreStats {
            names,
            file_bytes: self.inner.file_bytes.load(Ordering::Relaxed),
            live_bytes,
            compactions: self.inner.compactions.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl CheckpointStore for LogCheckpointStore {
    async fn load(&self, name: &str) -> Result<Option<Position>> {
        Ok(self.inner.map.lock().get(name).copied())
    }

    async fn save(&self, name: &str, position: Position) -> Result<()> {
        validate_name(name)?;
        let inner = Arc::clone(&self.inner);
        let name = name.to_owned();
        blocking(move || inner.write(&name, Some(position))).await
    }

    async fn reset(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let inner = Arc::clone(&self.inner);
        let name = name.to_owned();
        blocking(move || inner.write(&name, None)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("checkpoint store task failed: {e}")))?
}

fn validate_name(name: &str) -> Result<()> {
    if name.len() > MAX_CHECKPOINT_NAME_BYTES {
        return Err(Error::invalid(format!(
            "checkpoint name is {} bytes, at most {MAX_CHECKPOINT_NAME_BYTES} are allowed",
            name.len()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Records

const KIND_SAVE: u8 = 1;
const KIND_RESET: u8 = 2;

fn align_u64(n: u64) -> u64 {
    let a = CHECKPOINT_RECORD_ALIGN_BYTES as u64;
    n.div_ceil(a) * a
}

/// Bytes a record for `name` takes on disk, padding included.
fn record_bytes(name: &str) -> u64 {
    align_u64((CHECKPOINT_RECORD_FIXED_BYTES + name.len()) as u64)
}

/// Bytes a compacted file holding `map` takes.
fn live_bytes_of(map: &HashMap<String, Position>) -> u64 {
    CHECKPOINT_FILE_HEADER_BYTES as u64 + map.keys().map(|n| record_bytes(n)).sum::<u64>()
}

/// Appends one record (`None` = reset), padded, to `out`.
fn encode_record(out: &mut Vec<u8>, name: &str, position: Option<Position>) {
    let start = out.len();
    let record_len = CHECKPOINT_RECORD_FIXED_BYTES + name.len();
    out.extend_from_slice(&[0u8; 4]); // checksum, patched below
    out.extend_from_slice(&(record_len as u32).to_le_bytes());
    out.push(if position.is_some() {
        KIND_SAVE
    } else {
        KIND_RESET
    });
    out.push(0);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&position.map_or(0, |p| p.0).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    let crc = crc32c::crc32c(&out[start + 4..start + record_len]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    out.resize(start + align_u64(record_len as u64) as usize, 0);
    debug_assert!(
        decode_record(&out[start..])
            .is_ok_and(|(n, p, len)| n == name && p == position && len == record_len),
        "an encoded checkpoint record must decode to itself"
    );
}

/// Decodes and checks the record at the start of `b`: (name, position or
/// `None` for a reset, record length without padding).
fn decode_record(b: &[u8]) -> std::result::Result<(&str, Option<Position>, usize), String> {
    if b.len() < CHECKPOINT_RECORD_FIXED_BYTES {
        return Err("record truncated".into());
    }
    let record_len = u32_at(b, 4) as usize;
    let name_len = u16_at(b, 10) as usize;
    if name_len > MAX_CHECKPOINT_NAME_BYTES
        || record_len != CHECKPOINT_RECORD_FIXED_BYTES + name_len
    {
        return Err("record lengths do not add up".into());
    }
    if b.len() < record_len {
        return Err("record truncated".into());
    }
    if crc32c::crc32c(&b[4..record_len]) != u32_at(b, 0) {
        return Err("record checksum mismatch".into());
    }
    if b[9] != 0 || b[12..16].iter().any(|&x| x != 0) {
        return Err("non-zero reserved bytes".into());
    }
    let position = u64_at(b, 16);
    let position = match b[8] {
        KIND_SAVE => Some(Position(position)),
        KIND_RESET if position == 0 => None,
        k => return Err(format!("bad record kind {k}")),
    };
    let name = std::str::from_utf8(&b[CHECKPOINT_RECORD_FIXED_BYTES..record_len])
        .map_err(|_| "checkpoint name is not UTF-8")?;
    Ok((name, position, record_len))
}

fn encode_file_header() -> [u8; CHECKPOINT_FILE_HEADER_BYTES] {
    let mut h = [0u8; CHECKPOINT_FILE_HEADER_BYTES];
    h[0..8].copy_from_slice(CHECKPOINT_FILE_MAGIC);
    h[8..12].copy_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

fn check_file_header(h: &[u8]) -> std::result::Result<(), String> {
    if h.len() < CHECKPOINT_FILE_HEADER_BYTES {
        return Err("file shorter than its header".into());
    }
    if &h[0..8] != CHECKPOINT_FILE_MAGIC {
        return Err("bad magic".into());
    }
    if crc32c::crc32c(&h[0..28]) != u32_at(h, 28) {
        return Err("file header checksum mismatch".into());
    }
    let version = u32_at(h, 8);
    if version != CHECKPOINT_FORMAT_VERSION {
        return Err(format!(
            "checkpoint format version {version}, this build reads {CHECKPOINT_FORMAT_VERSION}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The store

/// Writer-side state, behind the writer mutex.
struct Writer {
    file: Arc<dyn StorageFile>,
    /// Where the next record goes.
    len: u64,
    /// Set after a write or fsync failed.
    poisoned: Option<String>,
    /// After a failed compaction, none is tried before the file reaches this.
    compact_retry_at_bytes: u64,
}

struct Inner {
    dir: PathBuf,
    path: PathBuf,
    storage: Arc<dyn Storage>,
    options: CheckpointStoreOptions,
    writer: Mutex<Writer>,
    map: Mutex<HashMap<String, Position>>,
    file_bytes: AtomicU64,
    compactions: AtomicU64,
    _lock: File,
}

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
            "{} is in use by another checkpoint store (LOCK is held)",
            dir.display()
        ))
    })?;
    Ok(lock)
}

/// Writes `bytes` as the new checkpoint file: temporary file, fsync, rename.
/// Returns the open file. The caller fsyncs the directory.
fn write_new_file(
    storage: &dyn Storage,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> io::Result<Arc<dyn StorageFile>> {
    let result = (|| {
        let f = storage.open(tmp, true)?;
        f.set_len(0)?;
        f.write_all_at(bytes, 0)?;
        f.sync_data()?;
        storage.rename(tmp, path)?;
        Ok(f)
    })();
    if result.is_err() {
        let _ = storage.remove(tmp);
    }
    result
}

impl Inner {
    fn open(
        dir: &Path,
        storage: Arc<dyn Storage>,
        options: CheckpointStoreOptions,
    ) -> Result<Self> {
        storage
            .create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(CHECKPOINT_FILE_NAME);
        let tmp = dir.join(TMP_FILE_NAME);
        let io_err =
            |what: &str, p: &Path, e: io::Error| Error::io(format!("{what} {}", p.display()), e);
        if storage.exists(&tmp) {
            // An interrupted compaction: the log itself is intact.
            storage
                .remove(&tmp)
                .map_err(|e| io_err("removing", &tmp, e))?;
        }
        let mut map = HashMap::new();
        let (file, len) = if storage.exists(&path) {
            let bytes =
                read_file(storage.as_ref(), &path).map_err(|e| io_err("reading", &path, e))?;
            check_file_header(&bytes).map_err(|reason| Error::Corrupt {
                location: path.display().to_string(),
                reason: format!(
                    "{reason}; restore the file, or delete it to restart every projection \
                     from the beginning"
                ),
            })?;
            let end = replay(&bytes, &path, &mut map)?;
            let file = storage
                .open(&path, false)
                .map_err(|e| io_err("opening", &path, e))?;
            if end < bytes.len() {
                tracing::warn!(
                    file = %path.display(),
                    offset = end,
                    cut_bytes = bytes.len() - end,
                    "cutting a torn tail of the checkpoint file"
                );
                file.set_len(end as u64)
                    .map_err(|e| io_err("trimming", &path, e))?;
                file.sync_data().map_err(|e| io_err("syncing", &path, e))?;
            }
            (file, align_u64(end as u64))
        } else {
            let file = write_new_file(storage.as_ref(), &tmp, &path, &encode_file_header())
                .map_err(|e| io_err("creating", &path, e))?;
            storage
                .sync_dir(dir)
                .map_err(|e| io_err("syncing", dir, e))?;
            (file, CHECKPOINT_FILE_HEADER_BYTES as u64)
        };
        tracing::info!(file = %path.display(), names = map.len(), bytes = len, "checkpoint store opened");
        let inner = Inner {
            dir: dir.to_path_buf(),
            path,
            storage,
            options,
            writer: Mutex::new(Writer {
                file,
                len,
                poisoned: None,
                compact_retry_at_bytes: 0,
            }),
            map: Mutex::new(map),
            file_bytes: AtomicU64::new(len),
            compactions: AtomicU64::new(0),
            _lock: lock,
        };
        {
            let mut w = inner.writer.lock();
            inner.maybe_compact(&mut w)?;
        }
        Ok(inner)
    }

    /// Records a save (`Some`) or a reset (`None`), durably.
    fn write(&self, name: &str, position: Option<Position>) -> Result<()> {
        let mut w = self.writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned {
                reason: reason.clone(),
            });
        }
        {
            let map = self.map.lock();
            let current = map.get(name).copied();
            if current == position {
                return Ok(()); // nothing changes; no need to write
            }
            if current.is_none() && map.len() >= MAX_CHECKPOINT_NAMES {
                return Err(Error::invalid(format!(
                    "the checkpoint store holds {MAX_CHECKPOINT_NAMES} names, the most it \
                     allows; reset unused ones"
                )));
            }
        }
        let mut record = Vec::with_capacity(record_bytes(name) as usize);
        encode_record(&mut record, name, position);
        let offset = w.len;
        let err = if let Err(e) = w.file.write_all_at(&record, offset) {
            Some(Error::io(
                format!("writing {} at offset {offset}", self.path.display()),
                e,
            ))
        } else if let Err(e) = w.file.sync_data() {
            Some(Error::io(format!("syncing {}", self.path.display()), e))
        } else {
            None
        };
        if let Some(err) = err {
            tracing::error!(error = %err, "checkpoint store refuses writes until reopened");
            w.poisoned = Some(err.to_string());
            return Err(err);
        }
        w.len = offset + record.len() as u64;
        self.file_bytes.store(w.len, Ordering::Relaxed);
        {
            let mut map = self.map.lock();
            match position {
                Some(p) => {
                    map.insert(name.to_owned(), p);
                }
                None => {
                    map.remove(name);
                }
            }
        }
        self.maybe_compact(&mut w)
    }

    /// Rewrites the file with one record per name when it has grown past
    /// the limit. A failure before the rename only delays the next attempt;
    /// a failure to make the rename durable poisons the store.
    fn maybe_compact(&self, w: &mut Writer) -> Result<()> {
        if w.len < self.options.compact_at_bytes || w.len < w.compact_retry_at_bytes {
            return Ok(());
        }
        let mut bytes = Vec::new();
        {
            let map = self.map.lock();
            if w.len < CHECKPOINT_COMPACT_GROWTH_FACTOR * live_bytes_of(&map) {
                return Ok(());
            }
            bytes.extend_from_slice(&encode_file_header());
            let mut names: Vec<(&String, &Position)> = map.iter().collect();
            names.sort();
            for (name, &position) in names {
                encode_record(&mut bytes, name, Some(position));
            }
        }
        let before = w.len;
        let tmp = self.dir.join(TMP_FILE_NAME);
        let file = match write_new_file(self.storage.as_ref(), &tmp, &self.path, &bytes) {
            Ok(f) => f,
            Err(error) => {
                tracing::warn!(file = %self.path.display(), %error, "checkpoint compaction failed; will retry later");
                w.compact_retry_at_bytes = w.len + self.options.compact_at_bytes;
                return Ok(());
            }
        };
        w.file = file;
        w.len = bytes.len() as u64;
        self.file_bytes.store(w.len, Ordering::Relaxed);
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            // Saves now go to the new file; were its rename lost, so would they.
            let err = Error::io(format!("syncing {}", self.dir.display()), e);
            tracing::error!(error = %err, "checkpoint store refuses writes until reopened");
            w.poisoned = Some(err.to_string());
            return Err(err);
        }
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(file = %self.path.display(), before_bytes = before, after_bytes = w.len, "compacted the checkpoint file");
        Ok(())
    }
}

/// Replays the records of `bytes` into `map`; returns where valid data ends
/// (the start of a torn tail, or the end of the file). Damage followed by a
/// valid record is an error.
fn replay(bytes: &[u8], path: &Path, map: &mut HashMap<String, Position>) -> Result<usize> {
    let mut at = CHECKPOINT_FILE_HEADER_BYTES;
    while at < bytes.len() {
        match decode_record(&bytes[at..]) {
            Ok((name, position, len)) => {
                match position {
                    Some(p) => {
                        map.insert(name.to_owned(), p);
                    }
                    None => {
                        map.remove(name);
                    }
                }
                at += align_u64(len as u64) as usize;
            }
            Err(reason) => {
                let later = (at + CHECKPOINT_RECORD_ALIGN_BYTES..bytes.len())
                    .step_by(CHECKPOINT_RECORD_ALIGN_BYTES)
                    .find(|&p| decode_record(&bytes[p..]).is_ok());
                return match later {
                    None => Ok(at),
                    Some(next) => Err(Error::Corrupt {
                        location: format!("{} at offset {at}", path.display()),
                        reason: format!(
                            "{reason}, and a valid record follows at offset {next}, so this is \
                             damage, not a torn write; restore the file, or delete it to \
                             restart every projection from the beginning"
                        ),
                    }),
                };
            }
        }
    }
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_every_flipped_bit_is_caught() {
        let mut b = Vec::new();
        encode_record(&mut b, "balances", Some(Position(77)));
        assert_eq!(b.len() % CHECKPOINT_RECORD_ALIGN_BYTES, 0);
        assert_eq!(
            decode_record(&b).unwrap(),
            ("balances", Some(Position(77)), 32)
        );
        let len = CHECKPOINT_RECORD_FIXED_BYTES + "balances".len();
        for bit in 0..len * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&c).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
        let mut r = Vec::new();
        encode_record(&mut r, "x", None);
        assert_eq!(decode_record(&r).unwrap().1, None);
    }
}
