//! `strata group consume GROUP`: the reference consumer. It reads batches,
//! prints each message as one JSON line (`{delivery_id, delivery_count,
//! event}`), and acks the batch once printed, until `--max` messages are
//! acked (or forever).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use strata_wire::DeliveryOut;

use super::{group_name, target::Groups};
use crate::data::store_or_server::TargetArgs;
use crate::data::DataError;

/// The most messages `consume` asks for per read.
pub const CONSUME_BATCH_MAX: usize = 1_000;
/// How long one read of `consume` waits for a message, in milliseconds.
pub const CONSUME_WAIT_MS: u64 = 1_000;

/// `strata group consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// The group.
    group: String,
    /// Stop after this many messages were acked.
    #[arg(long)]
    max: Option<u64>,
    /// The consumer name (default: the server's per-key name, or
    /// `cli-PID` on a store).
    #[arg(long)]
    consumer: Option<String>,
    /// Messages asked for per read (at most 1000).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Stop when a read waited this many milliseconds and got nothing.
    #[arg(long)]
    idle_exit_ms: Option<u64>,
    #[command(flatten)]
    pub(super) target: TargetArgs,
}

pub(super) async fn run(groups: &Groups, a: ConsumeArgs) -> Result<(), DataError> {
    let name = group_name(&a.group)?;
    if a.batch == 0 || a.batch > CONSUME_BATCH_MAX {
        return Err(DataError::Input(format!(
            "--batch must be 1 to {CONSUME_BATCH_MAX}"
        )));
    }
    let wait = Duration::from_millis(a.idle_exit_ms.unwrap_or(CONSUME_WAIT_MS).max(1));
    let mut acked = 0u64;
    let mut consumer = a.consumer.clone();
    let result = loop {
        if a.max.is_some_and(|m| acked >= m) {
            break Ok(());
        }
        let room = a.max.map_or(a.batch, |m| a.batch.min((m - acked) as usize));
        let (who, deliveries) = groups.read(&name, consumer.as_deref(), room, wait).await?;
        consumer = Some(who.clone());
        if deliveries.is_empty() {
            if a.idle_exit_ms.is_some() {
                break Ok(());
            }
            continue;
        }
        if let Err(e) = print_batch(&deliveries) {
            break Err(e);
        }
        let ids: Vec<u64> = deliveries.iter().map(|d| d.delivery_id).collect();
        acked += groups.ack(&name, &who, &ids).await?;
    };
    if let Some(c) = &consumer {
        groups.leave(&name, c).await?;
    }
    result
}

fn print_batch(deliveries: &[strata_core::group::Delivery]) -> Result<(), DataError> {
    let mut out = std::io::stdout().lock();
    for d in deliveries {
        serde_json::to_writer(&mut out, &DeliveryOut::from_delivery(d))
            .map_err(|e| DataError::io("writing a message", std::io::Error::from(e)))?;
        out.write_all(b"\n")
            .map_err(|e| DataError::io("writing a message", e))?;
    }
    out.flush()
        .map_err(|e| DataError::io("writing a message", e))
}
