//! The simulated disk: files, names, the power switch, and the
//! [`Storage`] face.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::file::{Node, SimFile};
use super::image::{build_image, Image};
use super::namespace::{parent_of, EntryOp, Names};
use super::PowerCut;
use crate::io::{Storage, StorageFile};

/// Everything the disk holds.
#[derive(Default)]
pub(super) struct DiskState {
    /// Every file ever created, by inode (removed ones included: an open
    /// handle may still use them).
    pub(super) nodes: Vec<Node>,
    /// The names reads and opens see.
    pub(super) live: Names,
    /// The names as of each directory's last `sync_dir`.
    pub(super) durable: Names,
    /// Entry changes not yet made durable, in order.
    pub(super) pending: Vec<EntryOp>,
    /// Directories (durable once created).
    pub(super) dirs: BTreeSet<PathBuf>,
    /// Mutating operations done so far.
    ops: u64,
    /// Mutating operations left before the power goes off.
    power_left: Option<u64>,
    /// Set once the power is off: every operation fails.
    off: bool,
    /// Threads whose name starts with one of these wait before each
    /// operation until the hold is lifted.
    held: Vec<String>,
    /// For a disk built by a cut: its files in which a later unsynced write
    /// survived an earlier lost one.
    reordered_files: usize,
}

impl DiskState {
    /// Admits one operation: fails once the power is off, and counts (and
    /// maybe turns the power off before) a mutating one.
    pub(super) fn step(&mut self, mutating: bool) -> io::Result<()> {
        if !self.off && mutating {
            match self.power_left {
                Some(0) => self.off = true,
                Some(n) => self.power_left = Some(n - 1),
                None => {}
            }
        }
        if self.off {
            return Err(io::Error::other("simulated disk: the power is off"));
        }
        if mutating {
            self.ops += 1;
        }
        Ok(())
    }

    fn not_found(path: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("simulated disk: {} does not exist", path.display()),
        )
    }

    fn need_dir(&self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(Self::not_found(dir))
        }
    }

    /// Records an entry change: applied to the live names now, to the
    /// durable ones at the next `sync_dir` of its directory.
    fn change(&mut self, op: EntryOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    fn open(&mut self, path: &Path, create: bool) -> io::Result<usize> {
        if let Some(&inode) = self.live.get(path) {
            self.step(false)?;
            return Ok(inode);
        }
        if !create {
            self.step(false)?;
            return Err(Self::not_found(path));
        }
        self.step(true)?;
        self.need_dir(&parent_of(path))?;
        let inode = self.nodes.len();
        self.nodes.push(Node::default());
        self.change(EntryOp::Create {
            path: path.to_path_buf(),
            inode,
        });
        Ok(inode)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(true)?;
        let inode = *self.live.get(from).ok_or_else(|| Self::not_found(from))?;
        self.need_dir(&parent_of(to))?;
        self.change(EntryOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            inode,
        });
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.step(true)?;
        let inode = *self.live.get(path).ok_or_else(|| Self::not_found(path))?;
        self.change(EntryOp::Remove {
            path: path.to_path_buf(),
            inode,
        });
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.step(true)?;
        self.need_dir(dir)?;
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|op| op.dir() == dir);
        for op in &now {
            op.apply(&mut self.durable);
        }
        self.pending = later;
        Ok(())
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        self.step(false)?;
        self.need_dir(dir)?;
        let files = self.live.keys().filter(|p| p.parent() == Some(dir));
        let dirs = self.dirs.iter().filter(|p| p.parent() == Some(dir));
        let mut names: Vec<String> = files
            .chain(dirs)
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.step(true)?;
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    /// A disk holding `files` (full path to content) and `dirs`, all durable.
    pub(super) fn durable_disk(image: Image) -> Self {
        let mut state = DiskState {
            dirs: image.dirs,
            reordered_files: image.reordered_files,
            ..DiskState::default()
        };
        for (path, content) in image.files {
            let inode = state.nodes.len();
            state.nodes.push(Node::durable(content));
            state.live.insert(path.clone(), inode);
            state.durable.insert(path, inode);
        }
        state
    }
}

/// Counts describing a [`PowerCutDisk`], for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Mutating operations done (writes, size changes, syncs, creates,
    /// renames, removes, directory syncs, directory creations).
    pub ops: u64,
    /// Files that have a name.
    pub files: usize,
    /// Writes and size changes not yet synced, over all files.
    pub unsynced_writes: usize,
    /// Creates, renames and removes whose directory was not synced since.
    pub unsynced_entries: usize,
    /// Whether the power is off.
    pub off: bool,
    /// For a disk a cut built: how many of its files kept a later unsynced
    /// write (or sector) and lost an earlier one.
    pub reordered_files: usize,
}

/// The disk's state and the condition held threads wait on.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) state: Mutex<DiskState>,
    released: Condvar,
}

impl Shared {
    /// Locks the state, first waiting while the calling thread is held.
    pub(super) fn lock(&self) -> MutexGuard<'_, DiskState> {
        let mut state = self.state.lock();
        let me = std::thread::current();
        let name = me.name().unwrap_or_default();
        while !state.off && state.held.iter().any(|p| name.starts_with(p.as_str())) {
            // The power may go off while waiting, without a notification.
            self.released
                .wait_for(&mut state, Duration::from_millis(10));
        }
        state
    }
}

/// The simulated disk: a [`Storage`] in memory that loses power on request.
/// Clones share the same disk. See the [module documentation](super).
#[derive(Clone, Default)]
pub struct PowerCutDisk {
    shared: Arc<Shared>,
}

impl PowerCutDisk {
    /// An empty disk with the power on.
    pub fn new() -> Self {
        PowerCutDisk::default()
    }

    /// Turns the power off after `ops` more mutating operations: the one
    /// after them, and every operation from then on, fails.
    pub fn power_off_after(&self, ops: u64) {
        self.shared.state.lock().power_left = Some(ops);
    }

    /// Turns the power off now (threads held by [`PowerCutDisk::hold_threads`]
    /// are let go, and fail).
    pub fn power_off(&self) {
        self.shared.state.lock().off = true;
        self.shared.released.notify_all();
    }

    /// Makes threads whose name starts with one of `prefixes` wait before
    /// each operation until [`PowerCutDisk::release_threads`] (or the power
    /// goes off). Tests hold a store's background threads while its writer
    /// works and release them when it is idle, so the order of operations
    /// does not depend on thread scheduling.
    pub fn hold_threads(&self, prefixes: &[&str]) {
        self.shared.state.lock().held = prefixes.iter().map(|p| p.to_string()).collect();
    }

    /// Lets held threads go on (see [`PowerCutDisk::hold_threads`]).
    pub fn release_threads(&self) {
        self.shared.state.lock().held.clear();
        self.shared.released.notify_all();
    }

    /// Whether the power is off.
    pub fn is_off(&self) -> bool {
        self.shared.state.lock().off
    }

    /// Current counts.
    pub fn stats(&self) -> DiskStats {
        let s = self.shared.state.lock();
        DiskStats {
            ops: s.ops,
            files: s.live.len(),
            unsynced_writes: s
                .live
                .values()
                .filter_map(|&i| s.nodes.get(i))
                .map(|n| n.pending.len())
                .sum(),
            unsynced_entries: s.pending.len(),
            off: s.off,
            reordered_files: s.reordered_files,
        }
    }

    /// Cuts the power (if it is not off already) and returns the disk the
    /// machine finds after rebooting: what `mode` and `seed` keep of the
    /// unsynced operations, everything durable, the power on.
    pub fn cut(&self, seed: u64, mode: PowerCut) -> PowerCutDisk {
        let image = {
            let mut state = self.shared.state.lock();
            state.off = true;
            build_image(&state, seed, mode)
        };
        self.shared.released.notify_all();
        let shared = Shared {
            state: Mutex::new(DiskState::durable_disk(image)),
            released: Condvar::new(),
        };
        PowerCutDisk {
            shared: Arc::new(shared),
        }
    }

    /// Every named file's content as reads see it now (synced or not).
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let s = self.shared.state.lock();
        s.live
            .iter()
            .filter_map(|(p, &i)| s.nodes.get(i).map(|n| (p.clone(), n.current.clone())))
            .collect()
    }

    /// Writes every named file under `to` (its path made relative to
    /// `root`), so a disk image can be inspected with the real tools.
    pub fn dump(&self, root: &Path, to: &Path) -> io::Result<()> {
        for (path, content) in self.files() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let dst = to.join(rel);
            if let Some(dir) = dst.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(dst, content)?;
        }
        Ok(())
    }
}

impl Storage for PowerCutDisk {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inode = self.shared.lock().open(path, create)?;
        Ok(Arc::new(SimFile {
            disk: self.shared.clone(),
            inode,
        }))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.shared.lock().list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.shared.lock().create_dir_all(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.shared.lock().remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.shared.lock().rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.shared.lock().sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        let mut s = self.shared.lock();
        s.step(false).is_ok() && (s.live.contains_key(path) || s.dirs.contains(path))
    }
}
