//! The disk use `/metrics` reports: the bytes of the files under the store's
//! directory ([`ServerConfig::store_dir`](crate::ServerConfig::store_dir)).

use std::path::{Path, PathBuf};

/// Most directory entries one measurement looks at; past that it stops and
/// reports what it counted (a store keeps far fewer files than this).
pub(crate) const MAX_DISK_WALK_ENTRIES: usize = 100_000;

/// The bytes of the regular files under `dir` (symbolic links are not
/// followed), looking at most [`MAX_DISK_WALK_ENTRIES`] entries; `None` when
/// `dir` cannot be read.
pub(crate) fn disk_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(d) = pending.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if first => {
                tracing::debug!(dir = %d.display(), error = %e, "cannot measure the store's directory");
                return None;
            }
            Err(_) => continue,
        };
        first = false;
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_DISK_WALK_ENTRIES {
                return Some(total);
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_files_in_nested_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("b"), [0u8; 23]).unwrap();
        assert_eq!(disk_bytes(dir.path()), Some(123));
        assert_eq!(disk_bytes(&dir.path().join("missing")), None);
    }
}
