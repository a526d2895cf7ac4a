//! Durability bugs planted in a [`Storage`], to prove that the power-cut
//! tests catch them. A [`PlantedStorage`] wraps the simulated disk and
//! breaks one promise the store relies on, while reporting success.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::namespace::parent_of;
use crate::io::{Storage, StorageFile};

/// The bug a [`PlantedStorage`] plants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// The `nth` `sync_data` of a segment file (counted from 1 over every
    /// segment file) reports success without syncing: a skipped fdatasync.
    SkipSegmentSync {
        /// Which sync is skipped.
        nth: u64,
    },
    /// A segment file's `sync_data` reports success at once and syncs only
    /// before the next write or size change of that file: the store
    /// acknowledges before the data is durable.
    AckBeforeSync,
    /// A `sync_dir` that follows a rename into that directory reports
    /// success without syncing: a rename whose directory is not synced.
    RenameWithoutDirSync,
}

#[derive(Default)]
struct Planted {
    segment_syncs: AtomicU64,
    skipped: AtomicU64,
    renamed_into: Mutex<BTreeSet<PathBuf>>,
}

/// A storage that plants one [`PlantedBug`] into another.
#[derive(Clone)]
pub struct PlantedStorage {
    inner: Arc<dyn Storage>,
    bug: PlantedBug,
    planted: Arc<Planted>,
}

impl PlantedStorage {
    /// Wraps `inner`, planting `bug`.
    pub fn new(inner: Arc<dyn Storage>, bug: PlantedBug) -> Self {
        PlantedStorage {
            inner,
            bug,
            planted: Arc::default(),
        }
    }

    /// How many syncs (of files or directories) the bug has skipped or
    /// put off so far.
    pub fn skipped(&self) -> u64 {
        self.planted.skipped.load(Ordering::SeqCst)
    }
}

fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "seg")
}

struct PlantedFile {
    inner: Arc<dyn StorageFile>,
    bug: PlantedBug,
    planted: Arc<Planted>,
    segment: bool,
    /// A sync reported done but not done yet (`AckBeforeSync`).
    owed: AtomicBool,
}

impl PlantedFile {
    /// Does the sync put off earlier, before the file changes again.
    fn pay(&self) -> io::Result<()> {
        if self.owed.swap(false, Ordering::SeqCst) {
            self.inner.sync_data()?;
        }
        Ok(())
    }
}

impl StorageFile for PlantedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.pay()?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if !self.segment {
            return self.inner.sync_data();
        }
        let n = self.planted.segment_syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let skip = match self.bug {
            PlantedBug::SkipSegmentSync { nth } => n == nth,
            PlantedBug::AckBeforeSync => {
                self.owed.store(true, Ordering::SeqCst);
                true
            }
            PlantedBug::RenameWithoutDirSync => false,
        };
        if skip {
            self.planted.skipped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.pay()?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Storage for PlantedStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(PlantedFile {
            inner: self.inner.open(path, create)?,
            bug: self.bug,
            planted: self.planted.clone(),
            segment: is_segment(path),
            owed: AtomicBool::new(false),
        }))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        if self.bug == PlantedBug::RenameWithoutDirSync {
            self.planted.renamed_into.lock().insert(parent_of(to));
        }
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.planted.renamed_into.lock().remove(dir) {
            self.planted.skipped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
}
