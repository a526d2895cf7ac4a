//! Where a benchmark runs: a fresh directory for the log store (so a
//! benchmark never touches real data unless asked to), or memory.

use std::path::{Path, PathBuf};

use strata_log::Durability;
use tempfile::TempDir;

use super::{BenchArgs, BenchError};
use crate::store_spec::{OpenError, OpenStore, StoreSpec};

/// Prefix of the fresh directories `bench` creates.
const BENCH_DIR_PREFIX: &str = "strata-bench-";

enum Place {
    /// `memory:`; the directory is only for the fdatasync probe.
    Memory(TempDir),
    /// A fresh log directory, removed at the end unless kept.
    Fresh(TempDir),
    /// The user's own log directory (`--in-place`), never removed.
    Own(PathBuf),
}

/// The store a benchmark runs against.
pub struct Target {
    spec: StoreSpec,
    place: Place,
}

impl Target {
    /// Creates the benchmark's directory as `--store` and `--in-place` say.
    pub fn prepare(args: &BenchArgs) -> Result<Target, BenchError> {
        let spec = args.store.clone();
        let place = match &spec {
            StoreSpec::Memory => Place::Memory(fresh_dir(&std::env::temp_dir(), BENCH_DIR_PREFIX)?),
            StoreSpec::Log(None) if args.in_place => {
                return Err("--in-place needs a directory: --store log:DIR".into())
            }
            StoreSpec::Log(None) => {
                Place::Fresh(fresh_dir(&std::env::temp_dir(), BENCH_DIR_PREFIX)?)
            }
            StoreSpec::Log(Some(dir)) if args.in_place => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Place::Own(dir.clone())
            }
            StoreSpec::Log(Some(dir)) => {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .filter(|n| !n.is_empty() && n != "." && n != "..")
                    .unwrap_or_else(|| "strata".to_string());
                Place::Fresh(fresh_dir(&parent, &format!("{name}.bench-"))?)
            }
            StoreSpec::Postgres(_) => return Err(Box::new(spec.not_built_error())),
        };
        Ok(Target { spec, place })
    }

    /// The `--store` the user gave.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }

    /// The log directory in use, if any.
    pub fn log_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Memory(_) => None,
            Place::Fresh(d) => Some(d.path()),
            Place::Own(d) => Some(d),
        }
    }

    /// Where to measure the fdatasync rate: the store's directory, or a
    /// temporary one for `memory:`.
    pub fn probe_dir(&self) -> &Path {
        match &self.place {
            Place::Memory(d) | Place::Fresh(d) => d.path(),
            Place::Own(d) => d,
        }
    }

    /// Opens the store.
    pub async fn open(
        &self,
        durability: Durability,
        compress: bool,
    ) -> Result<OpenStore, OpenError> {
        match self.log_dir() {
            None => Ok(OpenStore::memory()),
            Some(dir) => {
                let compression = compress.then(strata_log::compress::Compression::default);
                OpenStore::log_with(
                    strata_log::LogConfig::new(dir)
                        .durability(durability)
                        .compression(compression),
                )
                .await
            }
        }
    }

    /// Removes the fresh directory, or keeps it and returns its path.
    pub fn finish(self, keep: bool) -> Option<PathBuf> {
        match self.place {
            Place::Fresh(d) if keep => Some(d.keep()),
            _ => None,
        }
    }
}

fn fresh_dir(parent: &Path, prefix: &str) -> Result<TempDir, BenchError> {
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()).into())
}
