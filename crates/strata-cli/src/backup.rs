//! `strata backup` and `strata restore`: a consistent, incremental copy of a
//! log store while it is in use, and a new store from such a copy
//! (docs/backup.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;
use strata_core::BackupReport;
use strata_log::backup::{backup_dir, restore};
use strata_log::io::try_lock_file;
use strata_log::store::LOCK_FILE;
use strata_stores::{split_postgres_spec, OpenOptions, StoreSpec, DEFAULT_LOG_DIR, DEFAULT_STORE};

/// `strata backup` and `strata restore`.
#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Copy a consistent backup of a log store into DEST while it stays in
    /// use (a running `strata serve` included); into a DEST holding an
    /// earlier backup of the same store, copy only what is new.
    Backup {
        /// The store: `log:DIR`.
        #[arg(long, default_value = DEFAULT_STORE)]
        store: StoreSpec,
        /// The backup directory: new, empty, or holding this store's backup.
        #[arg(long, value_name = "DEST")]
        to: PathBuf,
    },
    /// Restore a backup into a new log store directory (which must not
    /// exist or be empty).
    Restore {
        /// The backup directory.
        #[arg(long, value_name = "DEST")]
        from: PathBuf,
        /// The store directory to create.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
}

/// Runs the command and prints its one-line summary.
pub async fn run(command: BackupCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        BackupCommand::Backup { store, to } => run_backup(&store, &to).await,
        BackupCommand::Restore { from, to } => run_restore(from, to).await,
    }
}

async fn run_backup(spec: &StoreSpec, to: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dir = log_dir(spec)?;
    if !dir.join("segments").is_dir() {
        return Err(format!(
            "no log store to back up: {} has no segments/ directory",
            dir.display()
        )
        .into());
    }
    let started = Instant::now();
    let lock = try_lock_file(&dir.join(LOCK_FILE))
        .map_err(|e| format!("cannot open {}: {e}", dir.join(LOCK_FILE).display()))?;
    let (report, how) = match lock {
        Some(lock) => {
            // Free: open the store and back it up through its admin face.
            drop(lock);
            let open = spec.open(&OpenOptions::default()).await?;
            let admin = open
                .admin()
                .ok_or_else(|| format!("{spec} offers no backups"))?;
            let report = admin.backup(to).await;
            drop(admin);
            open.close().await?;
            (report?, "")
        }
        None => {
            // Another process (a running server) has it open: copy its files.
            let (d, t) = (dir.clone(), to.to_path_buf());
            let report = tokio::task::spawn_blocking(move || backup_dir(&d, &t))
                .await
                .map_err(|e| format!("the backup task failed: {e}"))??;
            (
                report,
                " (the store is open in another process: copied from its files)",
            )
        }
    };
    println!(
        "backup of {spec} into {}: {}{how}",
        to.display(),
        summary(&report, started)
    );
    Ok(())
}

async fn run_restore(from: PathBuf, to: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let (f, t) = (from.clone(), to.clone());
    let report = tokio::task::spawn_blocking(move || restore(&f, &t))
        .await
        .map_err(|e| format!("the restore task failed: {e}"))??;
    println!(
        "restored {} into log:{}: {} files, {}, up to position {}, in {:.2} s",
        from.display(),
        to.display(),
        report.files,
        bytes(report.bytes),
        report.position.0,
        report.millis as f64 / 1000.0
    );
    Ok(())
}

/// The store's directory, or why this store is not backed up by `strata backup`.
fn log_dir(spec: &StoreSpec) -> Result<PathBuf, String> {
    match spec {
        StoreSpec::Memory => Err(
            "the memory store keeps nothing on disk to back up; copy its events with `strata export`"
                .into(),
        ),
        StoreSpec::Postgres(url) => {
            let schema = split_postgres_spec(url)
                .map(|(_, schema)| schema)
                .unwrap_or_default();
            Err(format!(
                "`strata backup` copies log stores; back up a PostgreSQL store with the database's own tools: `pg_dump --schema={schema}` for this store's schema, or `pg_basebackup` for the whole cluster (see docs/postgres.md); `strata export` and `strata import` remain the portable path"
            ))
        }
        _ => spec
            .log_dir_or(Path::new(DEFAULT_LOG_DIR))
            .ok_or_else(|| format!("{spec} is not a log store")),
    }
}

/// `N files, SIZE, M copied (SIZE), up to position P, in S s`.
fn summary(r: &BackupReport, started: Instant) -> String {
    format!(
        "{} files, {}, {} copied ({}), up to position {}, in {:.2} s",
        r.files,
        bytes(r.bytes),
        r.files_copied,
        bytes(r.bytes_copied),
        r.position.0,
        started.elapsed().as_secs_f64()
    )
}

/// A byte count for people: B, KiB, MiB or GiB.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
