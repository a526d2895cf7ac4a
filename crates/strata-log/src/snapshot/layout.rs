//! Where a snapshot store keeps its files: the directory, the file names,
//! and the lock that keeps a second store out.

use std::fs::File;
use std::path::Path;

use strata_core::{Error, Result, StreamId};

use crate::io::try_lock_file;

/// The snapshot store's directory inside a data directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The advisory lock file inside `snapshots/`.
const LOCK_FILE: &str = "LOCK";
/// Suffix of a data file.
const FILE_SUFFIX: &str = ".snap";
/// Suffix of a file being written by compaction or file creation.
pub(super) const TMP_SUFFIX: &str = ".snap.tmp";

/// The name of data file `number`.
pub(super) fn file_name(number: u32) -> String {
    format!("{number:08}{FILE_SUFFIX}")
}

/// The name of the file that replaces data file `number` once complete.
pub(super) fn tmp_name(number: u32) -> String {
    format!("{number:08}{TMP_SUFFIX}")
}

/// The number of a data file, from its name; `None` for any other file.
pub(super) fn parse_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A stream name read from a record.
pub(super) fn parse_stream(name: &str) -> Result<StreamId> {
    if name.starts_with('$') {
        StreamId::system(name)
    } else {
        StreamId::new(name)
    }
}

/// A place in a file, as errors and logs name it.
pub(super) fn location(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}

/// Takes the advisory lock of the directory, so two stores never append to
/// the same files.
pub(super) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    try_lock_file(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} is in use by another snapshot store (LOCK is held)",
                dir.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("00000042.snap.tmp"), None);
        assert_eq!(parse_file_name("LOCK"), None);
    }
}
