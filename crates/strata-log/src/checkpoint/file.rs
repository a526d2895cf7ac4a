//! The open checkpoint file: the checkpoints it holds, opening it (replay,
//! torn-tail cut, or creation), and durable saves and resets.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use strata_core::{Error, Position, Result};

use super::layout::{lock_dir, write_new_file, CHECKPOINT_FILE_NAME, TMP_FILE_NAME};
use super::options::{CheckpointStoreOptions, MAX_CHECKPOINT_NAMES};
use super::record::{
    align_u64, check_file_header, encode_file_header, encode_record, record_bytes,
    CHECKPOINT_FILE_HEADER_BYTES,
};
use super::replay::replay;
use crate::io::{read_file, Storage, StorageFile};

/// Writer-side state, behind the writer mutex.
pub(super) struct Writer {
    pub(super) file: Arc<dyn StorageFile>,
    /// Where the next record goes.
    pub(super) len: u64,
    /// Set after a write or fsync failed.
    pub(super) poisoned: Option<String>,
    /// After a failed compaction, none is tried before the file reaches this.
    pub(super) compact_retry_at_bytes: u64,
}

impl Writer {
    /// Refuses every later write: the file's state on disk is uncertain.
    pub(super) fn poison(&mut self, err: &Error) {
        tracing::error!(error = %err, "checkpoint store refuses writes until reopened");
        self.poisoned = Some(err.to_string());
    }
}

/// The open checkpoint file and the checkpoints it holds. Saves and resets
/// are serialised by the writer mutex; loads only take the map's.
pub(super) struct CheckpointFile {
    pub(super) dir: PathBuf,
    pub(super) path: PathBuf,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) options: CheckpointStoreOptions,
    pub(super) writer: Mutex<Writer>,
    pub(super) map: Mutex<HashMap<String, Position>>,
    pub(super) file_bytes: AtomicU64,
    pub(super) compactions: AtomicU64,
    /// Held for as long as the file is open.
    _lock: File,
}

fn io_err(what: &str, p: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", p.display()), e)
}

/// Replays an existing file into `map` and cuts its torn tail. Returns the
/// open file and where the next record goes.
fn open_existing(
    storage: &dyn Storage,
    path: &Path,
    map: &mut HashMap<String, Position>,
) -> Result<(Arc<dyn StorageFile>, u64)> {
    let bytes = read_file(storage, path).map_err(|e| io_err("reading", path, e))?;
    check_file_header(&bytes).map_err(|reason| Error::Corrupt {
        location: path.display().to_string(),
        reason: format!(
            "{reason}; restore the file, or delete it to restart every projection \
             from the beginning"
        ),
    })?;
    let end = replay(&bytes, path, map)?;
    let file = storage
        .open(path, false)
        .map_err(|e| io_err("opening", path, e))?;
    if end < bytes.len() {
        tracing::warn!(
            file = %path.display(),
            offset = end,
            cut_bytes = bytes.len() - end,
            "cutting a torn tail of the checkpoint file"
        );
        file.set_len(end as u64)
            .map_err(|e| io_err("trimming", path, e))?;
        file.sync_data().map_err(|e| io_err("syncing", path, e))?;
    }
    Ok((file, align_u64(end as u64)))
}

/// Creates the file, holding only its header, atomically.
fn create(
    storage: &dyn Storage,
    dir: &Path,
    tmp: &Path,
    path: &Path,
) -> Result<(Arc<dyn StorageFile>, u64)> {
    let file = write_new_file(storage, tmp, path, &encode_file_header())
        .map_err(|e| io_err("creating", path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| io_err("syncing", dir, e))?;
    Ok((file, CHECKPOINT_FILE_HEADER_BYTES as u64))
}

impl CheckpointFile {
    /// Opens (or creates) the file in `dir`: takes the lock, replays the
    /// records, and compacts if due.
    pub(super) fn open(
        dir: &Path,
        storage: Arc<dyn Storage>,
        options: CheckpointStoreOptions,
    ) -> Result<Self> {
        storage
            .create_dir_all(dir)
            .map_err(|e| io_err("creating", dir, e))?;
        let lock = lock_dir(dir)?;
        let path = dir.join(CHECKPOINT_FILE_NAME);
        let tmp = dir.join(TMP_FILE_NAME);
        if storage.exists(&tmp) {
            // An interrupted compaction: the log itself is intact.
            storage
                .remove(&tmp)
                .map_err(|e| io_err("removing", &tmp, e))?;
        }
        let mut map = HashMap::new();
        let (file, len) = if storage.exists(&path) {
            open_existing(storage.as_ref(), &path, &mut map)?
        } else {
            create(storage.as_ref(), dir, &tmp, &path)?
        };
        tracing::info!(file = %path.display(), names = map.len(), bytes = len, "checkpoint store opened");
        let this = CheckpointFile {
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
            let mut w = this.writer.lock();
            this.maybe_compact(&mut w)?;
        }
        Ok(this)
    }

    /// Records a save (`Some`) or a reset (`None`), durably.
    pub(super) fn write(&self, name: &str, position: Option<Position>) -> Result<()> {
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
            w.poison(&err);
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
}
