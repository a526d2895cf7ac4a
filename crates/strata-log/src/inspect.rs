//! A store directory's bytes as stored, compressed segments (`.zseg`)
//! decompressed: what a check that erased data is gone looks through.

use std::io;
use std::path::{Path, PathBuf};

use crate::compress::CompressedFile;
use crate::io::{FsStorage, Storage, StorageFile};

/// Every file under `dir`, subdirectories included.
pub fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// The bytes `path` holds; a compressed segment's decompressed.
pub fn file_bytes(path: &Path) -> io::Result<Vec<u8>> {
    let segment = path
        .extension()
        .is_some_and(|x| x == "zseg")
        .then(|| path.file_stem()?.to_str()?.parse::<u32>().ok())
        .flatten();
    let Some(segment) = segment else {
        return std::fs::read(path);
    };
    let file = FsStorage.open(path, false)?;
    let z = CompressedFile::open(file, segment).map_err(io::Error::other)?;
    let len = usize::try_from(z.len()?).map_err(io::Error::other)?;
    let mut bytes = vec![0u8; len];
    z.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// The files under `dir` whose bytes ([`file_bytes`]) hold `needle`.
pub fn files_holding(dir: &Path, needle: &[u8]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in files(dir)? {
        if file_bytes(&path)?
            .windows(needle.len())
            .any(|w| w == needle)
        {
            out.push(path);
        }
    }
    Ok(out)
}
