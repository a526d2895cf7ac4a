//! The manifest of a backup (`DEST/backup.json`): which store it is of, the
//! position it holds everything up to, and every file with its length and
//! checksum. It is written last, atomically, so a backup directory holds
//! either the previous complete backup's manifest or the new one.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::BackupError;
use super::files::{sync_dir, write_new_file};

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "backup.json";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// A larger manifest is refused before it is read (about 200 bytes per
/// file: room for far more files than any store has).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// What a backup directory holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The id of the store the backup is of (`DIR/store.id`).
    pub store_id: String,
    /// False until a backup into this directory has finished: then
    /// `position`, `log_end` and `files` describe it.
    pub complete: bool,
    /// The backup holds every event up to this position (inclusive; 0 for
    /// an empty store).
    pub position: u64,
    /// Where the copied log ends: the last segment and its length.
    pub log_end: LogEnd,
    /// When the backup finished, in milliseconds since the Unix epoch.
    pub finished_at_unix_ms: u64,
    /// Every file of the backup, paths relative to the backup directory.
    pub files: Vec<FileEntry>,
}

/// The end of the copied log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogEnd {
    /// The last segment's number.
    pub segment: u32,
    /// Bytes of it that the backup holds.
    pub offset: u64,
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    /// Relative to the backup directory, `/`-separated (`segments/00000003.zseg`).
    pub path: String,
    /// Bytes of the file that belong to the backup (a restore copies these).
    pub bytes: u64,
    /// CRC-32C of those bytes.
    pub crc32c: u32,
    /// What the file is.
    pub kind: FileKind,
    /// The store's file it was copied or linked from, for files kept as they
    /// are by the next backup while the store's file is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Stamp>,
}

/// What a backed-up file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FileKind {
    /// A sealed segment, plain or compressed: immutable.
    Segment,
    /// The last segment, copied up to the backup's end of the log.
    ActiveSegment,
    /// A sealed segment's index or tag file.
    Index,
    /// The stream checkpoint.
    StreamCheckpoint,
    /// A snapshot store file.
    Snapshots,
    /// The checkpoint store file.
    Checkpoints,
}

/// Which file of the store a backed-up file came from: device, inode and
/// modification time. A store replaces a file by renaming a new one over
/// it, which changes the inode, so an equal stamp means the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_mtime` (seconds) and `st_mtime_nsec`.
    pub mtime: (i64, i64),
    /// `st_size`.
    pub len: u64,
}

impl Stamp {
    /// The stamp of an open file.
    pub(crate) fn of(file: &File, path: &Path) -> Result<Stamp, BackupError> {
        let m = file
            .metadata()
            .map_err(BackupError::io("reading the metadata of", path))?;
        Ok(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            len: m.len(),
        })
    }
}

impl Manifest {
    /// The manifest a first backup of `store_id` writes before it copies
    /// anything, so that an interrupted first backup is recognised as one.
    pub(crate) fn started(store_id: &str) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            store_id: store_id.to_string(),
            complete: false,
            position: 0,
            log_end: LogEnd::default(),
            finished_at_unix_ms: 0,
            files: Vec::new(),
        }
    }

    /// The entry for `path`, if the backup holds one.
    pub(crate) fn entry(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Reads the manifest of backup directory `dir`: `None` if there is none.
    pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BackupError::io("opening", &path)(e)),
        };
        let bad = |reason: String| BackupError::Manifest {
            path: path.clone(),
            reason,
        };
        let len = file
            .metadata()
            .map_err(BackupError::io("reading the metadata of", &path))?
            .len();
        if len > MAX_MANIFEST_BYTES {
            return Err(bad(format!(
                "{len} bytes, over the limit of {MAX_MANIFEST_BYTES}"
            )));
        }
        let mut text = Vec::new();
        file.take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut text)
            .map_err(BackupError::io("reading", &path))?;
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "format {} is not {MANIFEST_FORMAT}, the one this build reads",
                m.format
            )));
        }
        for f in &m.files {
            if relative_path(&f.path).is_none() {
                return Err(bad(format!("`{}` is not a backup file's path", f.path)));
            }
        }
        Ok(Some(m))
    }

    /// Writes the manifest into `dir` atomically and durably: temporary
    /// file, fsync, rename, fsync of `dir`.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_vec_pretty(self).map_err(|e| BackupError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        write_new_file(&tmp, &text)?;
        std::fs::rename(&tmp, &path).map_err(BackupError::io("renaming", &tmp))?;
        sync_dir(dir)
    }
}

/// The directories of a backup (and of a store) that hold backed-up files.
pub(crate) const FILE_DIRS: [&str; 4] = ["segments", "index", "snapshots", "checkpoints"];

/// `path` as a relative path inside a backup, if it is one a backup may
/// hold: a plain file name in one of [`FILE_DIRS`], or a plain file name at
/// the top. Anything else (`..`, absolute paths, deeper paths) is refused,
/// so a manifest cannot make a restore write outside its target.
pub(crate) fn relative_path(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let parts: Vec<&str> = p
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let name = match parts.as_slice() {
        [dir, name] if FILE_DIRS.contains(dir) => name,
        [name] => name,
        _ => return None,
    };
    let plain = !name.is_empty() && !name.starts_with('.') && *name != super::MANIFEST_FILE;
    plain.then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_in_known_directories_are_backup_paths() {
        assert!(relative_path("segments/00000001.seg").is_some());
        assert!(relative_path("streams.ckpt").is_some());
        assert!(relative_path("../etc/passwd").is_none());
        assert!(relative_path("/etc/passwd").is_none());
        assert!(relative_path("segments/../../x").is_none());
        assert!(relative_path("other/x").is_none());
        assert!(relative_path("segments/a/b").is_none());
        assert!(relative_path("backup.json").is_none());
        assert!(relative_path("").is_none());
    }
}
