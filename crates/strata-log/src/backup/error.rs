//! What can stop a backup or a restore, each case with what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use strata_core::Error;

/// Why a backup or a restore did not happen (or did not finish).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The destination holds a backup of a different store: mixing two
    /// stores' segments in one backup would make it unrestorable.
    #[error("{} holds a backup of another store (store id {found}; this store's id is {expected}): back up into a new directory, or into this store's own backup directory", dest.display())]
    OtherStore {
        /// The destination.
        dest: PathBuf,
        /// This store's id.
        expected: String,
        /// The id the destination's backup was taken of.
        found: String,
    },
    /// The destination is not empty and holds no backup.
    #[error("{} is not empty and holds no Strata backup (no {}): back up into a new or empty directory", dest.display(), super::MANIFEST_FILE)]
    NotABackup {
        /// The destination.
        dest: PathBuf,
    },
    /// Another backup is writing into the destination right now.
    #[error("{} is in use by another backup (its {} is locked): wait for it to finish", dest.display(), super::DEST_LOCK_FILE)]
    DestInUse {
        /// The destination.
        dest: PathBuf,
    },
    /// The destination is the store's own directory, or inside it.
    #[error("cannot back up {} into {}: the backup must be outside the store's directory", dir.display(), dest.display())]
    InsideStore {
        /// The store's directory.
        dir: PathBuf,
        /// The destination.
        dest: PathBuf,
    },
    /// A restore's target already holds something.
    #[error("{} is not empty: restore only into a new or empty directory", to.display())]
    TargetNotEmpty {
        /// The target.
        to: PathBuf,
    },
    /// The backup directory holds no complete backup (none was ever
    /// finished there).
    #[error("{} holds no complete backup: run the backup again", from.display())]
    Incomplete {
        /// The backup directory.
        from: PathBuf,
    },
    /// The manifest cannot be read or is not one this build understands.
    #[error("backup manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the backup (or of the store being backed up) does not hold
    /// what it must.
    #[error("{}: {reason}", file.display())]
    Damaged {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which file.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The store refused (a flush of a store that stopped accepting writes).
    #[error(transparent)]
    Store(#[from] Error),
}

impl BackupError {
    /// An I/O failure while doing `what` to `path`.
    pub(crate) fn io(what: &str, path: &Path) -> impl FnOnce(io::Error) -> BackupError {
        let context = format!("{what} {}", path.display());
        move |source| BackupError::Io { context, source }
    }
}

impl From<BackupError> for Error {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(e) => e,
            BackupError::Io { context, source } => Error::Io { context, source },
            BackupError::Damaged { file, reason } => Error::Corrupt {
                location: file.display().to_string(),
                reason,
            },
            BackupError::Manifest { path, reason } => Error::Corrupt {
                location: path.display().to_string(),
                reason,
            },
            other => Error::invalid(other.to_string()),
        }
    }
}
