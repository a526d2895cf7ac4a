//! Storage I/O behind a small trait, so tests can inject faults and build the
//! files a crash leaves behind.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// One open file.
pub trait StorageFile: Send + Sync + 'static {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Flushes data (and the size) to stable storage: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// A directory of files.
pub trait Storage: Send + Sync + 'static {
    /// Opens a file for reading and writing, creating it if `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries durable (after create, rename, remove).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
}

/// Reads what `content` (a file held in memory) has at `offset` into `buf`:
/// the bytes read, fewer at the end, none past it.
pub(crate) fn read_in_memory(content: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let Some(src) = usize::try_from(offset).ok().and_then(|o| content.get(o..)) else {
        return 0;
    };
    let n = src.len().min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
        dst.copy_from_slice(src);
    }
    n
}

/// Writes `bytes` at `offset` of `content` (a file held in memory),
/// extending it with zeros first if it is shorter.
pub(crate) fn write_in_memory(content: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    if let Some(dst) = content.get_mut(offset..end) {
        dst.copy_from_slice(bytes);
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

struct FsFile(File);

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Storage for FsStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(FsFile(f)))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir)? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// Faults a [`FaultyStorage`] injects. Each is armed by a test and fires on
/// the next matching operation of any file whose name contains `file_filter`.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail the next `sync_data` with EIO.
    pub fail_next_sync: AtomicBool,
    /// Fail writes with ENOSPC once this many more bytes were written
    /// (`u64::MAX` = never).
    pub enospc_after_bytes: AtomicU64,
    /// The next write writes only this many bytes and then fails with EIO
    /// (`u64::MAX` = off): a short write.
    pub short_write_bytes: AtomicU64,
    /// The next write writes only this many bytes, reports success, and every
    /// later operation fails: a torn write followed by a crash (`u64::MAX` = off).
    pub torn_write_bytes: AtomicU64,
    /// Set once a torn write "crashed" the process: everything fails.
    pub crashed: AtomicBool,
    /// Only files whose path contains this are affected (empty = all).
    pub file_filter: Mutex<String>,
    /// Count of `sync_data` calls that reached the disk.
    pub syncs: AtomicU64,
}

impl Faults {
    /// No faults armed.
    pub fn new() -> Arc<Self> {
        Arc::new(Faults {
            enospc_after_bytes: AtomicU64::new(u64::MAX),
            short_write_bytes: AtomicU64::new(u64::MAX),
            torn_write_bytes: AtomicU64::new(u64::MAX),
            ..Default::default()
        })
    }
}

/// Real storage with injectable faults, for tests.
#[derive(Clone)]
pub struct FaultyStorage {
    inner: FsStorage,
    /// The armed faults.
    pub faults: Arc<Faults>,
}

impl FaultyStorage {
    /// Wraps the file system.
    pub fn new(faults: Arc<Faults>) -> Self {
        FaultyStorage {
            inner: FsStorage,
            faults,
        }
    }
}

struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Faults>,
    applies: bool,
}

fn eio(msg: &str) -> io::Error {
    io::Error::other(msg.to_string())
}

impl FaultyFile {
    fn check_crashed(&self) -> io::Result<()> {
        if self.faults.crashed.load(Ordering::SeqCst) {
            return Err(eio("injected: process crashed"));
        }
        Ok(())
    }
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.check_crashed()?;
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_crashed()?;
        if self.applies {
            let f = &self.faults;
            let torn = f.torn_write_bytes.swap(u64::MAX, Ordering::SeqCst);
            if torn != u64::MAX {
                let n = (torn as usize).min(buf.len());
                self.inner.write_all_at(&buf[..n], offset)?;
                f.crashed.store(true, Ordering::SeqCst);
                return Ok(());
            }
            let short = f.short_write_bytes.swap(u64::MAX, Ordering::SeqCst);
            if short != u64::MAX {
                let n = (short as usize).min(buf.len());
                self.inner.write_all_at(&buf[..n], offset)?;
                return Err(eio("injected: short write"));
            }
            let left = f.enospc_after_bytes.load(Ordering::SeqCst);
            if left != u64::MAX {
                if (buf.len() as u64) > left {
                    self.inner.write_all_at(&buf[..left as usize], offset)?;
                    f.enospc_after_bytes.store(0, Ordering::SeqCst);
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
                f.enospc_after_bytes
                    .store(left - buf.len() as u64, Ordering::SeqCst);
            }
        }
        self.inner.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check_crashed()?;
        if self.applies && self.faults.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(eio("injected: fsync failed"));
        }
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_crashed()?;
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Storage for FaultyStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if self.faults.crashed.load(Ordering::SeqCst) {
            return Err(eio("injected: process crashed"));
        }
        let filter = self.faults.file_filter.lock().clone();
        let applies = filter.is_empty() || path.to_string_lossy().contains(&filter);
        Ok(Arc::new(FaultyFile {
            inner: self.inner.open(path, create)?,
            faults: self.faults.clone(),
            applies,
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
        if self.faults.crashed.load(Ordering::SeqCst) {
            return Err(eio("injected: process crashed"));
        }
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename,
/// fsync of the directory.
pub fn write_file_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    let f = storage.open(&tmp, true)?;
    f.set_len(0)?;
    f.write_all_at(bytes, 0)?;
    f.sync_data()?;
    drop(f);
    storage.rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        storage.sync_dir(dir)?;
    }
    Ok(())
}

/// Opens (creating it if needed) the advisory lock file at `path` and takes
/// its lock without waiting: `Ok(None)` when another holder has it. The lock
/// lasts as long as the returned file is open.
pub fn try_lock_file(path: &Path) -> io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Ok(file.try_lock().is_ok().then_some(file))
}

/// Reads a whole file.
pub fn read_file(storage: &dyn Storage, path: &Path) -> io::Result<Vec<u8>> {
    let f = storage.open(path, false)?;
    let len = f.len()? as usize;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Reads `len` bytes at `offset`, fewer at the end of the file.
pub fn read_chunk(file: &dyn StorageFile, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = file.read_at(&mut buf[got..], offset + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}
