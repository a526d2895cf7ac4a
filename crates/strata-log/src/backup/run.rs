//! One backup into a destination directory: the checks that come first
//! (same store, not in use, not inside the store), what is kept from the
//! previous backup there, and the end (directory fsyncs, the manifest, the
//! removal of files the new manifest no longer names).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use strata_core::BackupReport;
use tracing::info;

use super::error::BackupError;
use super::files::{create_dir, remove_if_present, sync_dir};
use super::identity::store_id;
use super::manifest::{FileEntry, FileKind, LogEnd, Manifest, Stamp, FILE_DIRS, MANIFEST_FILE};
use super::source::LogView;
use super::DEST_LOCK_FILE;
use crate::io::try_lock_file;

/// A backup under way.
pub(crate) struct Run {
    /// The store's directory.
    pub(crate) dir: PathBuf,
    /// The backup directory.
    pub(crate) dest: PathBuf,
    /// Held for the whole run: one backup at a time per destination.
    _lock: File,
    /// What the destination held before (its files may be kept).
    old: Manifest,
    /// The files of the new backup so far.
    files: Vec<FileEntry>,
    files_copied: u64,
    bytes_copied: u64,
    /// The destination's device: a file of the store on it can be linked.
    pub(crate) dest_dev: u64,
    started: Instant,
}

impl Run {
    /// Checks the destination, takes its lock and identifies the store.
    pub(crate) fn begin(dir: &Path, dest: &Path, started: Instant) -> Result<Run, BackupError> {
        check_outside(dir, dest)?;
        create_dir(dest)?;
        let old = Manifest::load(dest)?;
        if old.is_none() && holds_anything(dest)? {
            return Err(BackupError::NotABackup {
                dest: dest.to_path_buf(),
            });
        }
        let lock_path = dest.join(DEST_LOCK_FILE);
        let lock = try_lock_file(&lock_path)
            .map_err(BackupError::io("opening", &lock_path))?
            .ok_or_else(|| BackupError::DestInUse {
                dest: dest.to_path_buf(),
            })?;
        let id = store_id(dir)?;
        let old = match old {
            Some(m) if m.store_id != id => {
                return Err(BackupError::OtherStore {
                    dest: dest.to_path_buf(),
                    expected: id,
                    found: m.store_id,
                })
            }
            Some(m) => m,
            None => {
                // Names the destination as this store's before anything is
                // copied, so an interrupted first backup is resumed, not refused.
                let m = Manifest::started(&id);
                m.save(dest)?;
                m
            }
        };
        let dest_dev = fs::metadata(dest)
            .map_err(BackupError::io("reading the metadata of", dest))?
            .dev();
        Ok(Run {
            dir: dir.to_path_buf(),
            dest: dest.to_path_buf(),
            _lock: lock,
            old,
            files: Vec::new(),
            files_copied: 0,
            bytes_copied: 0,
            dest_dev,
            started,
        })
    }

    /// The previous backup's entry for `path`, if it can be kept as it is
    /// because its source file is the same (`stamp`).
    pub(crate) fn unchanged(&self, path: &str, kind: FileKind, stamp: &Stamp) -> Option<FileEntry> {
        self.old_entry(path, kind)
            .filter(|e| e.source.as_ref() == Some(stamp) && e.bytes == stamp.len)
    }

    /// The previous backup's entry for `path` if it holds exactly `bytes`
    /// whose CRC-32C is `crc`.
    pub(crate) fn same_content(
        &self,
        path: &str,
        kind: FileKind,
        bytes: u64,
        crc: u32,
    ) -> Option<FileEntry> {
        self.old_entry(path, kind)
            .filter(|e| e.bytes == bytes && e.crc32c == crc)
    }

    /// The previous backup's entry for `path` of `kind`, if its file is in
    /// the destination with the length the manifest gives.
    pub(crate) fn old_entry(&self, path: &str, kind: FileKind) -> Option<FileEntry> {
        let e = self.old.entry(path).filter(|e| e.kind == kind)?;
        let len = fs::metadata(self.dest.join(path)).ok()?.len();
        (len == e.bytes).then(|| e.clone())
    }

    /// Records a file the previous backup already holds.
    pub(crate) fn keep(&mut self, entry: FileEntry) {
        self.files.push(entry);
    }

    /// Records a file this run placed (`copied` bytes written; 0 for a link).
    pub(crate) fn placed(&mut self, entry: FileEntry, copied: u64) {
        self.files_copied += 1;
        self.bytes_copied += copied;
        self.files.push(entry);
    }

    /// Ends the backup of `view` once every file is placed: fsyncs the
    /// directories, writes the manifest, removes what it no longer names.
    pub(crate) fn finish(mut self, view: &LogView) -> Result<BackupReport, BackupError> {
        for d in FILE_DIRS {
            let path = self.dest.join(d);
            if path.is_dir() {
                sync_dir(&path)?;
            }
        }
        sync_dir(&self.dest)?;
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            format: self.old.format,
            store_id: self.old.store_id.clone(),
            complete: true,
            position: view.position.0,
            log_end: LogEnd {
                segment: view.active,
                offset: view.end,
            },
            finished_at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            files: std::mem::take(&mut self.files),
        };
        manifest.save(&self.dest)?;
        remove_unnamed(&self.dest, &manifest)?;
        let report = BackupReport {
            position: view.position,
            files: manifest.files.len() as u64,
            files_copied: self.files_copied,
            bytes: manifest.files.iter().map(|f| f.bytes).sum(),
            bytes_copied: self.bytes_copied,
            millis: self.started.elapsed().as_millis() as u64,
        };
        info!(
            dest = %self.dest.display(),
            position = report.position.0,
            files = report.files,
            files_copied = report.files_copied,
            bytes = report.bytes,
            bytes_copied = report.bytes_copied,
            millis = report.millis,
            "backup finished"
        );
        Ok(report)
    }
}

/// Refuses a destination that is the store's directory or inside it.
fn check_outside(dir: &Path, dest: &Path) -> Result<(), BackupError> {
    let dir_real = fs::canonicalize(dir).map_err(BackupError::io("resolving", dir))?;
    // The destination may not exist yet: resolve its nearest existing ancestor.
    let mut probe = dest.to_path_buf();
    let mut rest = Vec::new();
    let dest_real = loop {
        match fs::canonicalize(&probe) {
            Ok(p) => break rest.iter().rev().fold(p, |acc: PathBuf, n| acc.join(n)),
            Err(_) => match (probe.parent(), probe.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    probe = if parent.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        parent.to_path_buf()
                    };
                }
                _ => break dest.to_path_buf(),
            },
        }
    };
    if dest_real.starts_with(&dir_real) {
        return Err(BackupError::InsideStore {
            dir: dir.to_path_buf(),
            dest: dest.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether `dest` holds anything but the backup lock.
fn holds_anything(dest: &Path) -> Result<bool, BackupError> {
    for e in fs::read_dir(dest).map_err(BackupError::io("listing", dest))? {
        let e = e.map_err(BackupError::io("listing", dest))?;
        if e.file_name() != DEST_LOCK_FILE {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes the files of the backup's directories that `manifest` does not
/// name (replaced segments, files of an interrupted run), then fsyncs.
fn remove_unnamed(dest: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let named: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for d in FILE_DIRS {
        let dir = dest.join(d);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut removed = false;
        for e in entries {
            let e = e.map_err(BackupError::io("listing", &dir))?;
            let name = e.file_name();
            let rel = format!("{d}/{}", name.to_string_lossy());
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && !named.contains(rel.as_str()) {
                remove_if_present(&e.path())?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&dir)?;
        }
    }
    let mut removed = false;
    for top in [
        crate::streams::STREAM_CHECKPOINT_FILE.to_string(),
        format!(
            "{}{}",
            crate::streams::STREAM_CHECKPOINT_FILE,
            super::files::PARTIAL_SUFFIX
        ),
        format!("{MANIFEST_FILE}.tmp"),
    ] {
        if !named.contains(top.as_str()) && dest.join(&top).exists() {
            remove_if_present(&dest.join(&top))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dest)?;
    }
    Ok(())
}
