//! Opening a snapshot store: every file is scanned in order to rebuild the
//! index, a torn tail of the active file is cut, and damage is dealt with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use strata_core::{Error, Result};

use super::dir::{SnapshotDir, Writer};
use super::index::{Entry, FileInfo, SnapshotIndex};
use super::layout::{lock_dir, parse_file_name, TMP_SUFFIX};
use super::options::SnapshotStoreOptions;
use super::record::{align_u64, decode_file_header, RecordKind, SNAPSHOT_FILE_HEADER_BYTES};
use super::scan::{scan_records, Scanned};
use crate::decode::DecodeError;
use crate::io::{Storage, StorageFile};

/// What replay found that needs work once every file is loaded.
#[derive(Default)]
struct Findings {
    /// The last damage seen: (file, where the damaged bytes end).
    damage: Option<(u32, u64)>,
    /// Files whose header is damaged, to be rewritten.
    bad_headers: Vec<u32>,
}

/// Removes the remains of interrupted writes; returns the data files'
/// numbers, in order.
fn list_files(storage: &dyn Storage, dir: &Path) -> Result<Vec<u32>> {
    let names = storage
        .list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut numbers = Vec::new();
    for name in names {
        if name.ends_with(TMP_SUFFIX) {
            // An interrupted compaction or file creation: the original
            // (if any) is intact, the partial copy is garbage.
            let path = dir.join(&name);
            tracing::info!(file = %path.display(), "removing an unfinished snapshot file");
            storage
                .remove(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        } else if let Some(n) = parse_file_name(&name) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Checks the header of file `n` of `phys` bytes.
fn check_file_header(
    handle: &dyn StorageFile,
    phys: u64,
    n: u32,
) -> io::Result<std::result::Result<(), DecodeError>> {
    if phys < SNAPSHOT_FILE_HEADER_BYTES as u64 {
        return Ok(Err(DecodeError::Truncated {
            what: "snapshot file header",
            need: SNAPSHOT_FILE_HEADER_BYTES,
            have: phys as usize,
        }));
    }
    let mut header = [0u8; SNAPSHOT_FILE_HEADER_BYTES];
    handle.read_exact_at(&mut header, 0)?;
    Ok(decode_file_header(&header).and_then(|got| {
        if got == n {
            Ok(())
        } else {
            Err(DecodeError::invalid(
                "snapshot file number",
                format!("header names file {got}"),
            ))
        }
    }))
}

impl SnapshotDir {
    /// Opens (or creates) the store in `dir`: takes its lock, replays every
    /// file, repairs what can be, and compacts what is due.
    pub(super) fn open(
        dir: PathBuf,
        storage: Arc<dyn Storage>,
        options: SnapshotStoreOptions,
    ) -> Result<Self> {
        let started = Instant::now();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock = lock_dir(&dir)?;
        let numbers = list_files(storage.as_ref(), &dir)?;
        let this = SnapshotDir {
            dir,
            storage,
            options,
            writer: Mutex::new(Writer::new()),
            index: Mutex::new(SnapshotIndex::default()),
            compactions: AtomicU64::new(0),
            _lock: lock,
        };
        this.replay(&numbers)?;
        {
            let s = this.index.lock();
            tracing::info!(
                dir = %this.dir.display(),
                files = s.files.len(),
                streams = s.streams.len(),
                snapshots = s.snapshots,
                took_ms = started.elapsed().as_millis() as u64,
                "snapshot store opened"
            );
        }
        Ok(this)
    }

    /// Loads files `numbers` (in order) into the index, then deals with what
    /// the scan found and compacts every file that is due.
    fn replay(&self, numbers: &[u32]) -> Result<()> {
        let mut w = self.writer.lock();
        let mut findings = Findings::default();
        let last = numbers.last().copied();
        for &n in numbers {
            self.load_file(n, Some(n) == last, &mut findings)?;
        }
        match last {
            Some(n) => w.active = n,
            None => {
                let info = self.create_file(0)?;
                self.index.lock().files.insert(0, info);
            }
        }
        if let Some((file, end)) = findings.damage {
            self.salvage(&mut w, file, end)?;
        }
        for n in findings.bad_headers {
            if self.index.lock().files.contains_key(&n) {
                self.compact_file(&mut w, n)?;
            }
        }
        self.compact_due(&mut w, true)
    }

    /// Scans file `n` into the index; notes damage; cuts a torn tail of the last file.
    fn load_file(&self, n: u32, is_last: bool, findings: &mut Findings) -> Result<()> {
        let path = self.path_of(n);
        let io_err = |what: &str, e: io::Error| Error::io(format!("{what} {}", path.display()), e);
        let handle = self
            .storage
            .open(&path, false)
            .map_err(|e| io_err("opening", e))?;
        let phys = handle.len().map_err(|e| io_err("sizing", e))?;
        let header_check = check_file_header(handle.as_ref(), phys, n)
            .map_err(|e| io_err("reading the header of", e))?;
        if let Err(reason) = header_check {
            // Records are self-checking, so a bad file header hides nothing:
            // the file is rewritten with a good one.
            tracing::error!(file = %path.display(), %reason, "damaged snapshot file header; the file will be rewritten");
            findings.bad_headers.push(n);
        }
        let mut s = self.index.lock();
        s.files.insert(
            n,
            FileInfo {
                path: path.clone(),
                handle: Arc::clone(&handle),
                len: align_u64(phys.max(SNAPSHOT_FILE_HEADER_BYTES as u64)),
                live_bytes: 0,
                live_count: 0,
                tombstone_bytes: 0,
            },
        );
        let torn = scan_records(handle.as_ref(), phys, is_last, |item| match item {
            Scanned::Record { offset, header: h } => match h.kind {
                RecordKind::Snapshot => s.insert(
                    h.stream,
                    Entry {
                        version: h.version,
                        offset,
                        file: n,
                        len: h.record_len as u32,
                    },
                ),
                RecordKind::Tombstone => {
                    s.remove_stream(h.stream);
                    if let Some(f) = s.files.get_mut(&n) {
                        f.tombstone_bytes += align_u64(h.record_len as u64);
                    }
                }
            },
            Scanned::Damaged { offset, len } => {
                tracing::error!(file = %path.display(), offset, len, "damaged snapshot records");
                findings.damage = Some((n, offset + len));
            }
        })
        .map_err(|e| io_err("scanning", e))?;
        let Some(at) = torn else {
            return Ok(());
        };
        if is_last {
            tracing::warn!(file = %path.display(), offset = at, cut_bytes = phys - at, "cutting a torn tail of the snapshot file");
            handle.set_len(at).map_err(|e| io_err("trimming", e))?;
            handle.sync_data().map_err(|e| io_err("syncing", e))?;
            if let Some(f) = s.files.get_mut(&n) {
                f.len = align_u64(at);
            }
        } else {
            tracing::error!(file = %path.display(), offset = at, "damaged bytes at the end of a sealed snapshot file");
            findings.damage = Some((n, phys));
        }
        Ok(())
    }

    /// Drops everything stored before damage that ends at (`file`, `end`):
    /// the damaged bytes may have been a tombstone of any stream.
    fn salvage(&self, w: &mut Writer, file: u32, end: u64) -> Result<()> {
        let older: Vec<(u32, PathBuf)> = {
            let mut s = self.index.lock();
            let before = s.snapshots;
            s.retain_entries(|e| e.file > file || (e.file == file && e.offset >= end));
            let older: Vec<_> = s
                .files
                .range(..file)
                .map(|(&n, f)| (n, f.path.clone()))
                .collect();
            tracing::error!(
                file = %self.path_of(file).display(),
                end,
                dropped_snapshots = before - s.snapshots,
                removed_files = older.len(),
                "a damaged snapshot record cannot be attributed to a stream; dropping every \
                 snapshot stored before it (aggregates are replayed from their events instead)"
            );
            older
        };
        for (n, path) in &older {
            self.storage
                .remove(path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            self.index.lock().files.remove(n);
        }
        if !older.is_empty() {
            self.storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), e))?;
        }
        if let Err(error) = self.compact_file(w, file) {
            if w.poisoned.is_some() {
                return Err(error);
            }
            // The damage stays on disk and is handled the same way next time.
            tracing::warn!(%error, "could not rewrite the damaged snapshot file");
        }
        Ok(())
    }
}
