//! `dcb --server`: the same rounds through the HTTP API. Each writer has
//! its own [`strata_client::Client`] (so its own keep-alive connection); a
//! decision is one `POST /dcb/read` (the boundary and the head) and, unless
//! the rules refuse, one `POST /dcb/append` with the condition. The server
//! is `--server URL`, or `strata serve` over `--store` started as a child
//! process, as for `http-append`.

use strata::decision::DecisionStore;
use strata_client::{Client, ClientError, DcbEvent};
use strata_core::dcb::{AppendCondition, Query};
use strata_core::{AppendResult, Error, ExpectedVersion, Position, RecordedEvent, StreamAppend};
use strata_server::ServerConfig;

use super::Rounds;
use crate::args::{BenchArgs, Params, WorkloadName};
use crate::host::Host;
use crate::workload::http_append::server_run::{run_through_server, FsyncProbe, Target};
use crate::{payload, BenchError};

/// Runs `strata bench dcb --server` start to end and reports the results.
pub async fn run(args: &BenchArgs, host: &Host<'_>) -> Result<(), BenchError> {
    if args.compress {
        return Err(
            "--compress is not an option of dcb --server (the server opens the store)".into(),
        );
    }
    let params = Params::resolve_with(args, ServerConfig::default().max_events_per_request)?;
    let console = host.console;
    run_through_server(
        args,
        host,
        WorkloadName::Dcb,
        // The rate bounds the durable decisions: each writer has one
        // append in flight, so a sync commits at most `--writers` of them.
        FsyncProbe::Run,
        async |t: Target<'_>| {
            let run_id = payload::run_id();
            let rounds = Rounds {
                params: &params,
                run_id: &run_id,
                console,
                syncs: &|| None,
            };
            rounds.run(|| HttpDecisions::connect(t.url, t.key)).await
        },
    )
    .await
}

/// A server's `/dcb` endpoints as a [`DecisionStore`].
pub(crate) struct HttpDecisions {
    client: Client,
}

impl HttpDecisions {
    /// A client of `url` with its own connection, sending `key` if given.
    pub(crate) fn connect(url: &str, key: Option<&str>) -> Result<Self, BenchError> {
        let mut b = Client::builder(url);
        if let Some(k) = key {
            b = b.api_key(k);
        }
        Ok(HttpDecisions { client: b.build()? })
    }
}

impl DecisionStore for HttpDecisions {
    /// One `POST /dcb/read`. The server answers at most its store's
    /// `max_read_count` events (100,000 by default, more than a decision
    /// asks for), so a short page is the end of the matches.
    async fn read_boundary(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, Position), Error> {
        let read = self
            .client
            .dcb_read(query, after, limit)
            .await
            .map_err(store_error)?;
        Ok((read.events, read.head))
    }

    /// One `POST /dcb/append`: each part's events bound for its stream, and
    /// its guard unless it is `Any`.
    async fn append_decided(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>, Error> {
        let mut guards = Vec::new();
        let mut events: Vec<DcbEvent> = Vec::new();
        for part in appends {
            if part.expected != ExpectedVersion::Any {
                guards.push((part.stream.clone(), part.expected));
            }
            events.extend(
                part.events
                    .into_iter()
                    .map(|e| (Some(part.stream.clone()), e)),
            );
        }
        let out = self
            .client
            .dcb_append(&events, Some(condition), &guards)
            .await
            .map_err(store_error)?;
        Ok(out.streams.into_iter().map(|s| s.result.into()).collect())
    }
}

/// The store error a client error stands for: a failed condition as such,
/// anything else as a backend failure.
fn store_error(e: ClientError) -> Error {
    match e {
        ClientError::ConditionFailed { position, .. } => Error::ConditionFailed { position },
        other => Error::Backend(other.to_string()),
    }
}
