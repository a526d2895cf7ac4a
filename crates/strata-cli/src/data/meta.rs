//! `strata meta get STREAM` and `strata meta set STREAM`: a stream's
//! metadata, printed as the HTTP API's JSON (`GET /streams/{s}/metadata`).

use clap::{Args, Subcommand};
use strata_core::{ExpectedVersion, StreamMetadata};
use strata_wire::MetadataOut;

use super::{parse_stream, print, DataError};
use crate::data::store_or_server::{Target, TargetArgs};

/// `strata meta` subcommands.
#[derive(Subcommand, Debug)]
pub enum MetaCommand {
    /// Print a stream's metadata as JSON (`metadata_version` 0: never set).
    Get(GetArgs),
    /// Set a stream's metadata (every setting at once: an omitted one is
    /// cleared) and print the result.
    Set(SetArgs),
}

impl MetaCommand {
    /// Where the command runs.
    pub fn target(&self) -> &TargetArgs {
        match self {
            MetaCommand::Get(a) => &a.target,
            MetaCommand::Set(a) => &a.target,
        }
    }
}

/// `strata meta get` options.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The stream.
    pub stream: String,
}

/// `strata meta set` options.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The stream.
    pub stream: String,
    /// Keep only the newest N events readable.
    #[arg(long)]
    pub max_count: Option<u64>,
    /// Keep only events of the last N seconds readable.
    #[arg(long)]
    pub max_age: Option<u64>,
    /// Versions below N are not readable.
    #[arg(long)]
    pub truncate_before: Option<u64>,
    /// Custom JSON kept with the stream.
    #[arg(long)]
    pub custom: Option<String>,
    /// The guard on the metadata version: `any` (default), `no_stream` or
    /// a version.
    #[arg(long, default_value = "any")]
    pub expected_metadata_version: ExpectedVersion,
}

/// Runs `strata meta`.
pub async fn run(target: &Target, command: MetaCommand) -> Result<(), DataError> {
    match command {
        MetaCommand::Get(a) => {
            let stream = parse_stream(&a.stream)?;
            let m = target.metadata(&stream).await?;
            print_json(&MetadataOut::new(stream.as_str(), m))
        }
        MetaCommand::Set(a) => {
            let stream = parse_stream(&a.stream)?;
            let custom = match &a.custom {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| DataError::Input(format!("--custom is not JSON: {e}")))?,
                ),
                None => None,
            };
            let metadata = StreamMetadata {
                max_count: a.max_count,
                max_age: a.max_age,
                truncate_before: a.truncate_before,
                custom,
            };
            let version = target
                .set_metadata(&stream, a.expected_metadata_version, &metadata)
                .await?;
            let out = MetadataOut::new(
                stream.as_str(),
                Some(strata_core::VersionedMetadata { version, metadata }),
            );
            print_json(&out)
        }
    }
}

fn print_json(out: &MetadataOut) -> Result<(), DataError> {
    let text = serde_json::to_string(out)
        .map_err(|e| DataError::io("encoding metadata", std::io::Error::from(e)))?;
    print(&format!("{text}\n"))
}
