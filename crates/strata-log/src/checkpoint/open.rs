//! Opening the checkpoint store: the file is replayed and its torn tail cut,
//! or it is created.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_core::{Error, Position, Result};

use super::file::{CheckpointFile, Writer};
use super::layout::{lock_dir, write_new_file, CHECKPOINT_FILE_NAME, TMP_FILE_NAME};
use super::options::CheckpointStoreOptions;
use super::record::{
    align_u64, check_file_header, encode_file_header, CHECKPOINT_FILE_HEADER_BYTES,
};
use super::replay::replay;
use crate::io::{read_file, Storage, StorageFile};

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
}
