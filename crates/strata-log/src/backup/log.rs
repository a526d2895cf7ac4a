//! Copying the log: sealed segments, each with its index file (kept when
//! the previous backup holds the same file, else linked or copied), the last
//! segment up to the view's end (extending the previous backup's copy when
//! that is a prefix of it), and the stream checkpoint when it covers no more
//! than the copied log.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::BackupError;
use super::files::{copy_to, crc_of, create_dir, extend, link_or_copy, write_to, Placed};
use super::manifest::{FileEntry, FileKind, Stamp};
use super::run::Run;
use super::source::LogView;
use crate::compress::compressed_file_name;
use crate::segment::{index_file_name, segment_file_name, tag_file_name};
use crate::streams::STREAM_CHECKPOINT_FILE;

/// Times a sealed segment is looked up again when it disappears while it is
/// copied (compression renames `.seg` to `.zseg` and removes the `.seg`).
const MAX_RESOLVE_ATTEMPTS: usize = 8;
/// The stream checkpoint's header: magic, version, covered segment and
/// offset (see `docs/log-format.md`, "Stream checkpoint").
const STREAM_CHECKPOINT_MAGIC: &[u8; 8] = b"STRATASC";
/// Its format version.
const STREAM_CHECKPOINT_VERSION: u32 = 1;

impl Run {
    /// Copies the log of `view` and the files derived from it.
    pub(crate) fn copy_log(&mut self, view: &LogView) -> Result<(), BackupError> {
        create_dir(&self.dest.join("segments"))?;
        create_dir(&self.dest.join("index"))?;
        for &n in &view.sealed {
            self.copy_sealed(n)?;
        }
        self.copy_active(view)?;
        self.copy_stream_checkpoint(view)
    }

    /// Segment `n`, sealed, and its index and tag files. A scavenge replaces
    /// a segment's image and then rebuilds its index, so the copied files
    /// are a set only if the segment is still the file copied once the
    /// index is: otherwise both are placed again.
    fn copy_sealed(&mut self, n: u32) -> Result<(), BackupError> {
        let seg_dir = self.dir.join("segments");
        for _ in 0..MAX_RESOLVE_ATTEMPTS {
            let Some((src, stamp, segment)) = self.place_sealed(&seg_dir, n)? else {
                continue;
            };
            let index = self.place_index(index_file_name(n))?;
            let tags = self.place_index(tag_file_name(n))?;
            if stamp_of(&src)? != Some(stamp) {
                continue;
            }
            self.record(segment);
            for derived in [index, tags].into_iter().flatten() {
                self.record(derived);
            }
            return Ok(());
        }
        Err(BackupError::Damaged {
            file: seg_dir.join(segment_file_name(n)),
            reason: format!("kept changing while it was copied ({MAX_RESOLVE_ATTEMPTS} tries)"),
        })
    }

    /// Places segment `n`: its compressed file if there is one, else its
    /// plain one. Returns the store's file, its stamp and the placement;
    /// `None` if the file vanished meanwhile (a compression).
    fn place_sealed(
        &self,
        seg_dir: &Path,
        n: u32,
    ) -> Result<Option<(PathBuf, Stamp, Placement)>, BackupError> {
        let name = [compressed_file_name(n), segment_file_name(n)]
            .into_iter()
            .find(|name| seg_dir.join(name).exists())
            .ok_or_else(|| BackupError::Damaged {
                file: seg_dir.to_path_buf(),
                reason: format!("segment {n} is missing"),
            })?;
        let src = seg_dir.join(&name);
        let rel = format!("segments/{name}");
        let Some(stamp) = stamp_of(&src)? else {
            return Ok(None);
        };
        if let Some(e) = self.unchanged(&rel, FileKind::Segment, &stamp) {
            return Ok(Some((src, stamp, Placement::kept(e))));
        }
        if stamp.dev != self.dest_dev {
            if let Some((crc, copied)) = self.extend_copy(&src, &rel, stamp.len)? {
                let e = entry(&rel, FileKind::Segment, stamp.len, crc, Some(stamp));
                return Ok(Some((src, stamp, Placement::extended(e, copied))));
            }
        }
        Ok(link_or_copy(&src, &self.dest.join(&rel))?.map(|p| {
            let e = placed_entry(&rel, FileKind::Segment, &p);
            (src, stamp, Placement::new(e, p.copied))
        }))
    }

    /// Places a sealed segment's index or tag file `name`, if the store has
    /// it (a missing one is rebuilt by opening the restored store).
    fn place_index(&self, name: String) -> Result<Option<Placement>, BackupError> {
        let src = self.dir.join("index").join(&name);
        let rel = format!("index/{name}");
        let Some(stamp) = stamp_of(&src)? else {
            return Ok(None);
        };
        if let Some(e) = self.unchanged(&rel, FileKind::Index, &stamp) {
            return Ok(Some(Placement::kept(e)));
        }
        Ok(link_or_copy(&src, &self.dest.join(&rel))?
            .map(|p| Placement::new(placed_entry(&rel, FileKind::Index, &p), p.copied)))
    }

    /// Records a placement in the new manifest.
    fn record(&mut self, p: Placement) {
        if p.new {
            self.placed(p.entry, p.copied);
        } else {
            self.keep(p.entry);
        }
    }

    /// The last segment, up to the view's end.
    fn copy_active(&mut self, view: &LogView) -> Result<(), BackupError> {
        let rel = format!("segments/{}", segment_file_name(view.active));
        let (file, path) = (&view.active_file, &view.active_path);
        if let Some((crc, copied)) = self.extend_copy_from(file, path, &rel, view.end)? {
            let e = entry(&rel, FileKind::ActiveSegment, view.end, crc, None);
            self.record(Placement::extended(e, copied));
            return Ok(());
        }
        let crc = copy_to(file, path, view.end, &self.dest.join(&rel))?;
        let e = entry(&rel, FileKind::ActiveSegment, view.end, crc, None);
        self.placed(e, view.end);
        Ok(())
    }

    /// Extends the previous backup's copy of a plain segment at `rel` to
    /// `len` bytes of the store's file `src`.
    fn extend_copy(
        &self,
        src: &Path,
        rel: &str,
        len: u64,
    ) -> Result<Option<(u32, u64)>, BackupError> {
        let f = match File::open(src) {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        self.extend_copy_from(&f, src, rel, len)
    }

    /// When the previous backup copied (never linked) a prefix of `src` to
    /// `rel`, appends the rest up to `len`; returns the new CRC-32C and the
    /// bytes appended.
    /// The prefix is checked against the store's bytes: a segment cut back
    /// by a repair and written again is copied whole instead.
    fn extend_copy_from(
        &self,
        src: &dyn super::files::ReadAt,
        src_path: &Path,
        rel: &str,
        len: u64,
    ) -> Result<Option<(u32, u64)>, BackupError> {
        let Some(old) = self.old_entry(rel, FileKind::ActiveSegment) else {
            return Ok(None);
        };
        if old.bytes > len || crc_of(src, src_path, old.bytes)? != old.crc32c {
            return Ok(None);
        }
        if old.bytes == len {
            return Ok(Some((old.crc32c, 0)));
        }
        let dst = self.dest.join(rel);
        let crc = extend(src, src_path, &dst, old.bytes, len, old.crc32c)?;
        Ok(Some((crc, len - old.bytes)))
    }

    /// The stream checkpoint, if it covers no more than the copied log
    /// (otherwise opening the restored store would ignore it anyway and
    /// rebuild the stream index from the log).
    fn copy_stream_checkpoint(&mut self, view: &LogView) -> Result<(), BackupError> {
        let src = self.dir.join(STREAM_CHECKPOINT_FILE);
        let Some(bytes) = read_if_present(&src)? else {
            return Ok(());
        };
        match checkpoint_covers(&bytes) {
            Some(covers) if covers <= (view.active, view.end) => {}
            _ => return Ok(()),
        }
        let crc = crc32c::crc32c(&bytes);
        let len = bytes.len() as u64;
        let kind = FileKind::StreamCheckpoint;
        if let Some(e) = self.same_content(STREAM_CHECKPOINT_FILE, kind, len, crc) {
            self.keep(e);
            return Ok(());
        }
        write_to(&bytes, &self.dest.join(STREAM_CHECKPOINT_FILE))?;
        self.placed(entry(STREAM_CHECKPOINT_FILE, kind, len, crc, None), len);
        Ok(())
    }
}

/// A file placed in the backup (or kept from the previous one), not yet
/// recorded in the new manifest.
struct Placement {
    entry: FileEntry,
    /// Bytes this run wrote for it.
    copied: u64,
    /// Whether this run placed or changed it.
    new: bool,
}

impl Placement {
    fn new(entry: FileEntry, copied: u64) -> Self {
        Placement {
            entry,
            copied,
            new: true,
        }
    }

    fn kept(entry: FileEntry) -> Self {
        Placement {
            entry,
            copied: 0,
            new: false,
        }
    }

    /// A copy of the previous backup extended by `copied` bytes (none: kept).
    fn extended(entry: FileEntry, copied: u64) -> Self {
        Placement {
            entry,
            copied,
            new: copied > 0,
        }
    }
}

/// The log location a stream checkpoint covers, if its checksum and header
/// check out.
fn checkpoint_covers(b: &[u8]) -> Option<(u32, u64)> {
    let (body, crc) = b.split_at_checked(b.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_le_bytes() != *crc {
        return None;
    }
    let magic = body.get(..8)?;
    let version = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
    let segment = u32::from_le_bytes(body.get(12..16)?.try_into().ok()?);
    let offset = u64::from_le_bytes(body.get(16..24)?.try_into().ok()?);
    (magic == STREAM_CHECKPOINT_MAGIC && version == STREAM_CHECKPOINT_VERSION)
        .then_some((segment, offset))
}

/// The stamp of the file at `path`; `None` if it no longer exists.
pub(crate) fn stamp_of(path: &Path) -> Result<Option<Stamp>, BackupError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            len: m.len(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::io("reading the metadata of", path)(e)),
    }
}

/// The whole file at `path`; `None` if it does not exist.
pub(crate) fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, BackupError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io("opening", path)(e)),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(BackupError::io("reading", path))?;
    Ok(Some(bytes))
}

/// A manifest entry.
pub(crate) fn entry(
    rel: &str,
    kind: FileKind,
    bytes: u64,
    crc32c: u32,
    source: Option<Stamp>,
) -> FileEntry {
    FileEntry {
        path: rel.to_string(),
        bytes,
        crc32c,
        kind,
        source,
    }
}

/// The manifest entry of a placed file.
pub(crate) fn placed_entry(rel: &str, kind: FileKind, p: &Placed) -> FileEntry {
    entry(rel, kind, p.bytes, p.crc, Some(p.stamp))
}
