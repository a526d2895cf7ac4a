//! `strata group create|list|show|delete|parked|replay|delete-parked|consume`: consumer
//! groups directly on a store (`--store`, through `strata-stores`'
//! `groups()`) or through a server (`--server URL --key K`).

mod consume;
mod target;

use clap::{Args, Subcommand, ValueEnum};
use strata_core::group::{
    GroupName, GroupSettings, GroupSource, GroupStart, Strategy, MAX_SETTLE_IDS,
};
use strata_core::{Position, ReadFilter, StreamId};
use strata_stores::OpenOptions;

use crate::data::store_or_server::{TargetArgs, TargetError};
use crate::data::{print, DataError};
use target::Groups;

/// `strata group ...`.
#[derive(Args, Debug)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group, or update its settings; prints its status as JSON.
    Create(CreateArgs),
    /// Print every group's status, one JSON line each.
    List(TargetOnly),
    /// Print one group's status as JSON.
    Show(NameArgs),
    /// Delete a group with its checkpoint and parked list.
    Delete(NameArgs),
    /// Print parked messages, one JSON line each, oldest first.
    Parked(LimitArgs),
    /// Offer parked messages to the group again; prints how many.
    Replay(LimitArgs),
    /// Remove parked messages by position without replaying them; prints
    /// how many were parked.
    DeleteParked(DeleteParkedArgs),
    /// A reference consumer: prints each message as one JSON line, then
    /// acks it.
    Consume(consume::ConsumeArgs),
}

#[derive(Args, Debug)]
struct TargetOnly {
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct NameArgs {
    /// The group.
    group: String,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct LimitArgs {
    /// The group.
    group: String,
    /// The most parked messages.
    #[arg(long, default_value_t = strata_wire::DEFAULT_PARKED_LIMIT)]
    limit: usize,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args, Debug)]
struct DeleteParkedArgs {
    /// The group.
    group: String,
    /// The parked messages' positions (as `parked` prints them), at most
    /// 10,000.
    #[arg(required = true, num_args = 1..)]
    positions: Vec<u64>,
    #[command(flatten)]
    target: TargetArgs,
}

/// `--strategy`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StrategyArg {
    RoundRobin,
    Pinned,
    Single,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The group.
    group: String,
    /// Follow this stream (otherwise `$all`, through the filters below).
    #[arg(long)]
    stream: Option<String>,
    /// With `$all`: only streams of this category.
    #[arg(long, conflicts_with = "stream")]
    category: Option<String>,
    /// With `$all`: only streams with this name prefix.
    #[arg(long, conflicts_with = "stream")]
    prefix: Option<String>,
    /// Where a new group starts: `start`, `end`, or a position of `$all` to
    /// start after.
    #[arg(long, default_value = "start")]
    start: String,
    /// How events are handed out.
    #[arg(long, value_enum, default_value = "round-robin")]
    strategy: StrategyArg,
    /// Most unsettled messages per consumer.
    #[arg(long, default_value_t = strata_core::group::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u32,
    /// Milliseconds a consumer may hold a message before it goes back.
    #[arg(long, default_value_t = strata_core::group::DEFAULT_ACK_TIMEOUT_MS)]
    ack_timeout_ms: u64,
    /// Retries before a message is parked.
    #[arg(long, default_value_t = strata_core::group::DEFAULT_MAX_RETRIES)]
    max_retries: u32,
    /// Back-off before a retried message is offered again, in milliseconds.
    #[arg(long, default_value_t = strata_core::group::DEFAULT_RETRY_BACKOFF_MS)]
    retry_backoff_ms: u64,
    #[command(flatten)]
    target: TargetArgs,
}

impl CreateArgs {
    fn settings(&self) -> Result<GroupSettings, DataError> {
        let input = |e: strata_core::Error| DataError::Input(e.to_string());
        let source = match &self.stream {
            Some(s) => GroupSource::Stream(StreamId::new(s.as_str()).map_err(input)?),
            None => {
                let mut f = ReadFilter::all();
                if let Some(c) = &self.category {
                    f = f.category(c.as_str());
                }
                if let Some(p) = &self.prefix {
                    f = f.stream_prefix(p.as_str());
                }
                GroupSource::All(f)
            }
        };
        let start = match self.start.as_str() {
            "start" => GroupStart::Start,
            "end" => GroupStart::End,
            n => GroupStart::AfterPosition(strata_core::Position(n.parse().map_err(|_| {
                DataError::Input(format!(
                    "--start must be start, end or a position, got {n:?}"
                ))
            })?)),
        };
        let strategy = match self.strategy {
            StrategyArg::RoundRobin => Strategy::RoundRobin,
            StrategyArg::Pinned => Strategy::Pinned,
            StrategyArg::Single => Strategy::Single,
        };
        let settings = GroupSettings {
            source,
            start,
            strategy,
            max_in_flight: self.max_in_flight,
            ack_timeout_ms: self.ack_timeout_ms,
            max_retries: self.max_retries,
            retry_backoff_ms: self.retry_backoff_ms,
            labels: Default::default(),
        };
        settings.validate().map_err(input)?;
        Ok(settings)
    }
}

fn group_name(name: &str) -> Result<GroupName, DataError> {
    GroupName::new(name).map_err(|e| DataError::Input(e.to_string()))
}

fn json_line<T: serde::Serialize>(value: &T) -> Result<(), DataError> {
    let text = serde_json::to_string(value)
        .map_err(|e| DataError::io("encoding JSON", std::io::Error::from(e)))?;
    print(&format!("{text}\n"))
}

impl GroupCommand {
    fn target(&self) -> &TargetArgs {
        match self {
            GroupCommand::Create(a) => &a.target,
            GroupCommand::List(a) => &a.target,
            GroupCommand::Show(a) | GroupCommand::Delete(a) => &a.target,
            GroupCommand::Parked(a) | GroupCommand::Replay(a) => &a.target,
            GroupCommand::DeleteParked(a) => &a.target,
            GroupCommand::Consume(a) => &a.target,
        }
    }
}

/// Runs a group command, closing the store after it.
pub async fn run(args: GroupArgs) -> Result<(), DataError> {
    let target = args.command.target().open(&OpenOptions::default()).await?;
    let groups = Groups::new(target);
    let result = run_on(&groups, args.command).await;
    let closed = groups.close().await;
    result?;
    closed.map_err(DataError::from)
}

async fn run_on(groups: &Groups, command: GroupCommand) -> Result<(), DataError> {
    match command {
        GroupCommand::Create(a) => {
            let settings = a.settings()?;
            json_line(&groups.put(&group_name(&a.group)?, settings).await?)
        }
        GroupCommand::List(_) => {
            for status in groups.list().await? {
                json_line(&status)?;
            }
            Ok(())
        }
        GroupCommand::Show(a) => {
            let name = group_name(&a.group)?;
            match groups.status(&name).await? {
                Some(status) => json_line(&status),
                None => Err(not_found(&name)),
            }
        }
        GroupCommand::Delete(a) => {
            let name = group_name(&a.group)?;
            if !groups.delete(&name).await? {
                return Err(not_found(&name));
            }
            print(&format!("deleted group {name}\n"))
        }
        GroupCommand::Parked(a) => {
            for p in groups.parked(&group_name(&a.group)?, a.limit).await? {
                json_line(&p)?;
            }
            Ok(())
        }
        GroupCommand::Replay(a) => {
            let n = groups.replay(&group_name(&a.group)?, a.limit).await?;
            print(&format!("replayed {n} parked message(s)\n"))
        }
        GroupCommand::DeleteParked(a) => {
            let name = group_name(&a.group)?;
            if a.positions.len() > MAX_SETTLE_IDS {
                return Err(DataError::Input(format!(
                    "at most {MAX_SETTLE_IDS} positions at once, got {}",
                    a.positions.len()
                )));
            }
            let positions: Vec<Position> = a.positions.into_iter().map(Position).collect();
            let n = groups.delete_parked(&name, &positions).await?;
            print(&format!("deleted {n} parked message(s)\n"))
        }
        GroupCommand::Consume(a) => consume::run(groups, a).await,
    }
}

fn not_found(name: &GroupName) -> DataError {
    DataError::Target(TargetError::Store(strata_core::Error::GroupNotFound {
        group: name.as_str().to_owned(),
    }))
}
