//! Restoring a backup into a new store directory: every file the manifest
//! names, copied (never linked: the restored store appends to its last
//! segment and must not share a byte with the backup) and checked against
//! its CRC-32C, then fsynced with its directories.

use std::fs;
use std::path::Path;
use std::time::Instant;

use strata_core::Position;
use tracing::info;

use super::error::BackupError;
use super::files::{copy_to, create_dir, sync_dir};
use super::manifest::{relative_path, Manifest, FILE_DIRS};

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The restored store holds every event up to this position, and none after.
    pub position: Position,
    /// Files restored.
    pub files: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// Wall time, in milliseconds.
    pub millis: u64,
}

/// Restores the backup in `from` into `to`, which must not exist or be
/// empty. The result opens as a log store holding exactly the events up to
/// the backup's position. A restore that fails part way leaves a partial
/// directory: remove it and restore again.
///
/// ```no_run
/// # fn demo() -> Result<(), strata_log::backup::BackupError> {
/// let report = strata_log::backup::restore("/backups/orders".as_ref(), "./restored".as_ref())?;
/// println!("restored up to position {}", report.position.0);
/// # Ok(()) }
/// ```
pub fn restore(from: &Path, to: &Path) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let manifest = match Manifest::load(from)? {
        Some(m) if m.complete => m,
        _ => {
            return Err(BackupError::Incomplete {
                from: from.to_path_buf(),
            })
        }
    };
    check_empty(to)?;
    create_dir(to)?;
    for d in ["segments", "index"] {
        create_dir(&to.join(d))?;
    }
    let mut bytes = 0u64;
    for f in &manifest.files {
        let rel = relative_path(&f.path).ok_or_else(|| BackupError::Manifest {
            path: from.join(super::MANIFEST_FILE),
            reason: format!("`{}` is not a backup file's path", f.path),
        })?;
        let (src, dst) = (from.join(&rel), to.join(&rel));
        if let Some(parent) = dst.parent() {
            create_dir(parent)?;
        }
        let file = fs::File::open(&src).map_err(BackupError::io("opening", &src))?;
        let crc = copy_to(&file, &src, f.bytes, &dst)?;
        if crc != f.crc32c {
            return Err(BackupError::Damaged {
                file: src,
                reason: format!(
                    "its first {} bytes have CRC-32C {crc:#010x}, the manifest says {:#010x}: the backup is damaged (or a backup into it was interrupted: run it again)",
                    f.bytes, f.crc32c
                ),
            });
        }
        bytes += f.bytes;
    }
    for d in FILE_DIRS {
        let dir = to.join(d);
        if dir.is_dir() {
            sync_dir(&dir)?;
        }
    }
    sync_dir(to)?;
    let report = RestoreReport {
        position: Position(manifest.position),
        files: manifest.files.len() as u64,
        bytes,
        millis: started.elapsed().as_millis() as u64,
    };
    info!(from = %from.display(), to = %to.display(), position = manifest.position, files = report.files, bytes, "restore finished");
    Ok(report)
}

/// Refuses a target that exists and holds anything.
fn check_empty(to: &Path) -> Result<(), BackupError> {
    match fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::TargetNotEmpty {
                    to: to.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Err(BackupError::TargetNotEmpty {
                to: to.to_path_buf(),
            })
        }
        Err(e) => Err(BackupError::io("listing", to)(e)),
    }
}
