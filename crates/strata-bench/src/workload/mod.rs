//! The workloads, one module each. Adding a workload is: a module here, a
//! [`WorkloadName`] variant, its [`Defaults`](crate::Defaults), and one arm
//! in [`run`].

pub(crate) mod append;
pub(crate) mod commands;
pub(crate) mod dcb;
mod fill;
pub(crate) mod groups;
pub(crate) mod http_append;
pub(crate) mod project;
pub(crate) mod raw_insert;
pub(crate) mod read_all;
pub(crate) mod read_stream;
pub(crate) mod rehydrate;
pub(crate) mod scale;
pub(crate) mod scavenge;

use crate::args::WorkloadName;
use crate::context::BenchCtx;
use crate::report::Measurement;
use crate::BenchError;

/// Runs the workload on the store of `ctx`.
pub(crate) async fn run(
    workload: WorkloadName,
    ctx: &BenchCtx<'_>,
) -> Result<Vec<Measurement>, BenchError> {
    match workload {
        WorkloadName::Append => append::run(ctx).await,
        WorkloadName::HttpAppend => {
            Err("http-append runs against a server, not a store opened in this process".into())
        }
        WorkloadName::ReadAll => read_all::run(ctx).await,
        WorkloadName::ReadStream => read_stream::run(ctx).await,
        WorkloadName::Commands => commands::run(ctx).await,
        WorkloadName::Rehydrate => rehydrate::run(ctx).await,
        WorkloadName::Scale => scale::run(ctx).await,
        WorkloadName::Scavenge => scavenge::run(ctx).await,
        WorkloadName::Project => project::run(ctx).await,
        WorkloadName::RawInsert => raw_insert::run(ctx).await,
        WorkloadName::Groups => groups::run(ctx).await,
        WorkloadName::Dcb => dcb::run(ctx).await,
        WorkloadName::HttpGroups => {
            Err("http-groups runs against a server, not a store opened in this process".into())
        }
    }
}
