//! `strata erase STREAM --yes`: erases a stream on a store (`--store`, its
//! snapshots too) or through a server (`--server`, an admin key), and says
//! what happened and what is left to do.

use clap::Args;
use strata_core::{EventStore, ExpectedVersion, StreamId};

use super::{parse_stream, print, DataError};
use crate::data::store_or_server::{Target, TargetArgs, TargetError};
use crate::snapshots;

/// `strata erase` options.
#[derive(Args, Debug)]
pub struct EraseArgs {
    /// Where: `--store` or `--server` (with an `admin` key).
    #[command(flatten)]
    pub target: TargetArgs,
    /// The stream to erase.
    pub stream: String,
    /// Confirms the erasure, which cannot be undone: without it nothing is
    /// done.
    #[arg(long)]
    pub yes: bool,
    /// The guard: `any` (default; the only one an already erased or
    /// tombstoned stream passes), `no_stream`, `exists` or a version.
    #[arg(long, default_value = "any")]
    pub expected_version: ExpectedVersion,
}

impl EraseArgs {
    /// Refuses to go on without `--yes`, before anything is opened.
    pub fn confirmed(&self) -> Result<(), DataError> {
        if self.yes {
            return Ok(());
        }
        Err(DataError::Input(format!(
            "erasing `{}` removes its events and snapshots for good and its name can never be \
             used again; run again with --yes to confirm",
            self.stream
        )))
    }
}

/// Runs `strata erase` (confirmed by [`EraseArgs::confirmed`]).
pub async fn run(target: &Target, args: EraseArgs) -> Result<(), DataError> {
    let stream = parse_stream(&args.stream)?;
    let expected = args.expected_version;
    let summary = match target {
        Target::Store(open) => {
            open.store()
                .erase_stream(&stream, expected)
                .await
                .map_err(TargetError::from)?;
            let snapshots = erase_snapshots(open, &stream).await?;
            let data = match open.log_store() {
                Some(log) => format!(
                    "its events are hidden from every read now, and their data bytes go at the \
                     next scavenge: strata scavenge --store log:{} --erased-only",
                    log.dir().display()
                ),
                None if open.postgres_store().is_some() => {
                    "its events' rows were removed (PostgreSQL reuses their space after VACUUM)"
                        .into()
                }
                None => "its events were dropped".into(),
            };
            format!(
                "erased `{stream}` in {}: {data}; {snapshots}",
                target.describe()
            )
        }
        Target::Server(client) => {
            client
                .erase(&stream, expected)
                .await
                .map_err(TargetError::from)?;
            format!(
                "erased `{stream}` through {}: its events are hidden from every read now (on a \
                 log store their data bytes go at its next scavenge: POST \
                 /admin/scavenge?erased_only=true), and its snapshots in the snapshot store \
                 the server keeps with it, if any",
                target.describe()
            )
        }
    };
    print(&format!("{summary}\n"))
}

/// Erases the stream's snapshots in the snapshot store kept with the store;
/// says what was done.
async fn erase_snapshots(
    open: &strata_stores::OpenStore,
    stream: &StreamId,
) -> Result<String, DataError> {
    let kept = snapshots::kept_with(open)
        .await
        .map_err(TargetError::from)?;
    let Some(store) = kept else {
        return Ok("no snapshots are kept beside it".into());
    };
    store.erase(stream).await.map_err(TargetError::from)?;
    Ok(match open.log_store() {
        Some(log) => format!(
            "its snapshots were erased from {}",
            log.dir()
                .join(strata_log::snapshot::SNAPSHOTS_DIR)
                .display()
        ),
        None => "its snapshots were erased".into(),
    })
}
