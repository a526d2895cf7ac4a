//! Placing one file in a backup: by hard link or by copy, with its CRC-32C,
//! fsynced; extending a copied file; and the directory fsyncs after them.
//!
//! A file of the backup that may be a hard link to a store's file is never
//! written through: new contents always go to a new file renamed over the
//! old name, and only files the backup copied itself are extended.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::BackupError;
use super::manifest::Stamp;
use crate::io::StorageFile;

/// Bytes read and written per step of a copy.
pub(crate) const COPY_CHUNK_BYTES: usize = 1 << 20;
/// Suffix of a file being placed in a backup before it is renamed to its name.
pub(crate) const PARTIAL_SUFFIX: &str = ".partial";

/// Something to copy bytes from at given offsets.
pub(crate) trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for Arc<dyn StorageFile> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.as_ref().read_at(buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(crate::io::read_in_memory(self, buf, offset))
    }
}

/// A file placed in a backup.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed {
    /// Its length.
    pub bytes: u64,
    /// CRC-32C of its bytes.
    pub crc: u32,
    /// The store's file it came from.
    pub stamp: Stamp,
    /// Bytes this run wrote (0 for a hard link).
    pub copied: u64,
}

/// Where a file is placed before it is renamed to `dst`.
fn partial_path(dst: &Path) -> PathBuf {
    let mut name = dst.as_os_str().to_os_string();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// Places the store's file `src` at `dst`: a hard link when both are on one
/// file system, a copy otherwise. `None` when `src` no longer exists (a
/// compression replaced it in the meantime).
pub(crate) fn link_or_copy(src: &Path, dst: &Path) -> Result<Option<Placed>, BackupError> {
    let tmp = partial_path(dst);
    remove_if_present(&tmp)?;
    let placed = match fs::hard_link(src, &tmp) {
        Ok(()) => {
            // The link names one inode for good: stamp and checksum it, not
            // whatever `src` names by now.
            let f = File::open(&tmp).map_err(BackupError::io("opening", &tmp))?;
            let stamp = Stamp::of(&f, &tmp)?;
            let crc = crc_of(&f, &tmp, stamp.len)?;
            f.sync_all().map_err(BackupError::io("syncing", &tmp))?;
            Placed {
                bytes: stamp.len,
                crc,
                stamp,
                copied: 0,
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => {
            let f = match File::open(src) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(BackupError::io("opening", src)(e)),
            };
            let stamp = Stamp::of(&f, src)?;
            let crc = copy_new(&f, src, stamp.len, &tmp)?;
            Placed {
                bytes: stamp.len,
                crc,
                stamp,
                copied: stamp.len,
            }
        }
    };
    fs::rename(&tmp, dst).map_err(BackupError::io("renaming", &tmp))?;
    Ok(Some(placed))
}

/// Writes bytes `0..len` of `src` to a new file at `dst` (replacing what was
/// there by a rename), fsynced; returns their CRC-32C.
pub(crate) fn copy_to(
    src: &dyn ReadAt,
    src_path: &Path,
    len: u64,
    dst: &Path,
) -> Result<u32, BackupError> {
    let tmp = partial_path(dst);
    remove_if_present(&tmp)?;
    let crc = copy_new(src, src_path, len, &tmp)?;
    fs::rename(&tmp, dst).map_err(BackupError::io("renaming", &tmp))?;
    Ok(crc)
}

/// Writes `bytes` as a new file at `dst` (replacing what was there by a
/// rename), fsynced; returns their CRC-32C.
pub(crate) fn write_to(bytes: &[u8], dst: &Path) -> Result<u32, BackupError> {
    let tmp = partial_path(dst);
    write_new_file(&tmp, bytes)?;
    fs::rename(&tmp, dst).map_err(BackupError::io("renaming", &tmp))?;
    Ok(crc32c::crc32c(bytes))
}

/// Appends bytes `from..to` of `src` to `dst`, a file this backup copied
/// earlier that holds exactly `from` bytes whose CRC-32C is `crc`; fsyncs
/// it and returns the CRC-32C of all `to` bytes.
pub(crate) fn extend(
    src: &dyn ReadAt,
    src_path: &Path,
    dst: &Path,
    from: u64,
    to: u64,
    crc: u32,
) -> Result<u32, BackupError> {
    let f = OpenOptions::new()
        .write(true)
        .open(dst)
        .map_err(BackupError::io("opening", dst))?;
    let len = f
        .metadata()
        .map_err(BackupError::io("reading the metadata of", dst))?
        .len();
    if len != from {
        return Err(BackupError::Damaged {
            file: dst.to_path_buf(),
            reason: format!("holds {len} bytes where the manifest says {from}"),
        });
    }
    let crc = copy_range(src, src_path, &f, dst, from, to, crc)?;
    f.sync_data().map_err(BackupError::io("syncing", dst))?;
    Ok(crc)
}

/// Creates (or truncates) `path` with `bytes`, fsynced.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let f = File::create(path).map_err(BackupError::io("creating", path))?;
    f.write_all_at(bytes, 0)
        .map_err(BackupError::io("writing", path))?;
    f.sync_data().map_err(BackupError::io("syncing", path))
}

/// CRC-32C of bytes `0..len` of `src`.
pub(crate) fn crc_of(src: &dyn ReadAt, path: &Path, len: u64) -> Result<u32, BackupError> {
    let mut crc = 0u32;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut at = 0u64;
    while at < len {
        let want = ((len - at) as usize).min(COPY_CHUNK_BYTES);
        let chunk = buf.get_mut(..want).unwrap_or_default();
        read_exact(src, path, chunk, at)?;
        crc = crc32c::crc32c_append(crc, chunk);
        at += want as u64;
    }
    Ok(crc)
}

/// Makes `dir`'s entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(BackupError::io("syncing the directory", dir))
}

/// Creates `dir` (and its parents) if it is missing; fsyncs its parent when
/// it was created.
pub(crate) fn create_dir(dir: &Path) -> Result<(), BackupError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(BackupError::io("creating", dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Removes `path` if it exists.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BackupError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Copies bytes `0..len` of `src` into a new file at `tmp`, fsynced.
fn copy_new(src: &dyn ReadAt, src_path: &Path, len: u64, tmp: &Path) -> Result<u32, BackupError> {
    let f = File::create(tmp).map_err(BackupError::io("creating", tmp))?;
    let crc = copy_range(src, src_path, &f, tmp, 0, len, 0)?;
    f.sync_data().map_err(BackupError::io("syncing", tmp))?;
    Ok(crc)
}

/// Copies bytes `from..to` of `src` to the same offsets of `dst`; returns
/// `crc` continued over them.
fn copy_range(
    src: &dyn ReadAt,
    src_path: &Path,
    dst: &File,
    dst_path: &Path,
    from: u64,
    to: u64,
    mut crc: u32,
) -> Result<u32, BackupError> {
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut at = from;
    while at < to {
        let want = ((to - at) as usize).min(COPY_CHUNK_BYTES);
        let chunk = buf.get_mut(..want).unwrap_or_default();
        read_exact(src, src_path, chunk, at)?;
        crc = crc32c::crc32c_append(crc, chunk);
        dst.write_all_at(chunk, at)
            .map_err(BackupError::io("writing", dst_path))?;
        at += want as u64;
    }
    Ok(crc)
}

/// Fills `buf` from `offset` of `src`; a file that ends first is damaged
/// (or was cut while being read).
fn read_exact(
    src: &dyn ReadAt,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), BackupError> {
    let mut got = 0usize;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        let n = src
            .read_at(rest, offset + got as u64)
            .map_err(BackupError::io("reading", path))?;
        if n == 0 {
            return Err(BackupError::Damaged {
                file: path.to_path_buf(),
                reason: format!(
                    "ends at offset {} where {} bytes were expected",
                    offset + got as u64,
                    offset + buf.len() as u64
                ),
            });
        }
        got += n;
    }
    Ok(())
}
