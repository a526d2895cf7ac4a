//! Backups of a log store while it is in use, incremental, and restores.
//! `docs/backup.md` describes what a backup holds and why it is consistent.
//!
//! A backup copies, in this order: the snapshot and checkpoint stores kept
//! beside the log (`side`), then the log as of one moment (`source`):
//! sealed segments by hard link when the backup is on the same file system
//! (they are immutable: a store only ever replaces one by renaming a new
//! file over it), else by copy; the last segment up to an end before which
//! every byte is durable; the sealed segments' index files; the stream
//! checkpoint when it covers no more than the copied log. Every file is
//! fsynced, then the directories, and the manifest ([`MANIFEST_FILE`]) is
//! written last, atomically.
//!
//! A backup into a directory that holds an earlier backup of the same store
//! copies only what changed: a file whose source is the same file as last
//! time is kept, and the copy of the previous last segment is extended.
//! A directory holding a backup of another store is refused
//! ([`BackupError::OtherStore`]); stores are told apart by [`STORE_ID_FILE`].
//!
//! [`LogStore::backup_to`] (and [`strata_core::StoreAdmin::backup`]) backs
//! up an open store; [`backup_dir`] backs up the directory of a store that
//! another process has open; [`restore`] restores a backup.

mod error;
mod files;
mod identity;
mod live;
mod log;
mod manifest;
mod offline;
mod restore;
mod run;
mod side;
mod source;

use std::path::Path;
use std::time::Instant;

use strata_core::BackupReport;

pub use error::BackupError;
pub use identity::STORE_ID_FILE;
pub use manifest::{MANIFEST_FILE, MANIFEST_FORMAT};
pub use restore::{restore, RestoreReport};

/// The lock file a backup holds in its destination while it runs.
pub const DEST_LOCK_FILE: &str = "backup.lock";

/// Backs up the store in `dir` into `dest` without opening the store: for a
/// store that another process (a running `strata serve`) has open, so its
/// `LOCK` is held. The last segment is copied up to its last whole, valid
/// frame (see `docs/backup.md` for why not only up to what the sync floors
/// prove durable). Blocking: call it from a blocking thread.
///
/// ```no_run
/// # fn demo() -> Result<(), strata_log::backup::BackupError> {
/// let report = strata_log::backup::backup_dir("./strata-data".as_ref(), "/backups/orders".as_ref())?;
/// println!("{} bytes copied", report.bytes_copied);
/// # Ok(()) }
/// ```
pub fn backup_dir(dir: &Path, dest: &Path) -> Result<BackupReport, BackupError> {
    let mut run = run::Run::begin(dir, dest, Instant::now())?;
    run.copy_side_stores()?;
    let view = offline::scan_dir(dir)?;
    run.copy_log(&view)?;
    run.finish(&view)
}
