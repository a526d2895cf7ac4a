//! This machine's `fdatasync` rate: the ceiling of any durable store that
//! syncs once per acknowledged write, printed beside every benchmark so
//! results from different disks can be compared.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes written before each `fdatasync`, like one small append.
pub const PROBE_WRITE_BYTES: usize = 256;
/// Name of the probe's scratch file (removed afterwards).
const PROBE_FILE: &str = ".strata-fsync-probe";

/// A measured `fdatasync` rate.
#[derive(Clone, Debug)]
pub struct FsyncRate {
    /// Syncs per second.
    pub per_sec: f64,
    /// Syncs done.
    pub syncs: u64,
    /// How long it measured.
    pub elapsed: Duration,
    /// Where.
    pub dir: PathBuf,
}

impl fmt::Display for FsyncRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fdatasync: {:.0} syncs/s ({} syncs of {PROBE_WRITE_BYTES}-byte appends in {:.2} s, in {})",
            self.per_sec,
            self.syncs,
            self.elapsed.as_secs_f64(),
            self.dir.display()
        )
    }
}

/// Appends `PROBE_WRITE_BYTES` and calls `fdatasync`, in a loop, for about
/// `budget`, in a scratch file in `dir`.
pub fn measure(dir: &Path, budget: Duration) -> Result<FsyncRate, String> {
    let path = dir.join(PROBE_FILE);
    let fail = |e: std::io::Error| format!("cannot measure fdatasync in {}: {e}", dir.display());
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    let block = [0x5au8; PROBE_WRITE_BYTES];
    let started = Instant::now();
    let mut syncs = 0u64;
    let outcome = loop {
        if let Err(e) = file.write_all(&block).and_then(|()| file.sync_data()) {
            break Err(fail(e));
        }
        syncs += 1;
        if started.elapsed() >= budget {
            break Ok(());
        }
    };
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    outcome?;
    Ok(FsyncRate {
        per_sec: syncs as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        syncs,
        elapsed,
        dir: dir.to_path_buf(),
    })
}
