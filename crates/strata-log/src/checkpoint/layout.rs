//! Where a checkpoint store keeps its file, the lock that keeps a second
//! store out, and the atomic replacement of the file.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use strata_core::{Error, Result};

use crate::io::{try_lock_file, Storage, StorageFile};

/// The checkpoint store's directory inside a data directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The checkpoint file inside [`CHECKPOINTS_DIR`].
pub const CHECKPOINT_FILE_NAME: &str = "checkpoints.log";
/// The advisory lock file inside `checkpoints/`.
const LOCK_FILE: &str = "LOCK";
/// The file a compaction (or the creation of the file) writes before
/// renaming it over the log.
pub(super) const TMP_FILE_NAME: &str = "checkpoints.log.tmp";

/// Takes the advisory lock of the directory, so two stores never append to
/// the same file.
pub(super) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    try_lock_file(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} is in use by another checkpoint store (LOCK is held)",
                dir.display()
            ))
        })
}

/// Writes `bytes` as the new checkpoint file: temporary file, fsync, rename.
/// Returns the open file. The caller fsyncs the directory.
pub(super) fn write_new_file(
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
