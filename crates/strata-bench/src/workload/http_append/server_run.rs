//! What every workload through the HTTP API does around its measurement:
//! make the bench's store (unless `--server`), optionally probe fdatasync,
//! connect to `--server` or start `strata serve` over the store as a child
//! ([`super::server_child`]), measure, stop the child, remove (or keep) the
//! store whatever the measurement did, and report the result lines.
//! [`run_through_server`] does all of it; a workload passes only its name,
//! whether it probes, and how it measures.

use std::path::PathBuf;

use strata_stores::StoreSpec;

use super::client;
use super::server_child::{health, ServerChild};
use crate::args::{BenchArgs, WorkloadName};
use crate::bench_store::BenchStore;
use crate::driver::{note_kept, probe_fsync};
use crate::fsync::FsyncRate;
use crate::host::{Console, Host};
use crate::report::{self, BenchResult, Measurement};
use crate::BenchError;

/// Whether a workload through the server measures the fdatasync rate first
/// (in the store's directory, or a temporary one with `--server`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FsyncProbe {
    /// Probe for `--fsync-probe-ms` and report the rate.
    Run,
    /// No probe; the result has no rate.
    Skip,
}

/// The server a measurement runs against.
pub(crate) struct Target<'a> {
    /// Its base URL, without a trailing `/`.
    pub url: &'a str,
    /// `--key`, if any.
    pub key: Option<&'a str>,
    /// The store's head position when the server was reached.
    pub head: u64,
}

/// Runs `workload` through `--server` or a child `strata serve` over the
/// bench's store: `measure` gets the server once it answers; the child is
/// stopped and the store finished however measuring went, and the results
/// are printed.
pub(crate) async fn run_through_server<M>(
    args: &BenchArgs,
    host: &Host<'_>,
    workload: WorkloadName,
    probe: FsyncProbe,
    measure: M,
) -> Result<(), BenchError>
where
    M: AsyncFnOnce(Target<'_>) -> Result<Vec<Measurement>, BenchError>,
{
    let console = host.console;
    if args.server_url().is_some() && (args.in_place || args.keep) {
        return Err(
            "--in-place and --keep are about the store the bench creates, not --server's".into(),
        );
    }
    let place = match args.server_url() {
        Some(_) => None,
        None => Some(BenchStore::prepare(args)?),
    };
    announce(console, place.as_ref());
    let (fsync, server) = match probe_and_connect(args, host, place.as_ref(), probe).await {
        Ok(started) => started,
        Err(e) => {
            if let Err(f) = finish(place, args.keep).await {
                console.note(&format!("warning: {f}"));
            }
            return Err(e);
        }
    };
    let outcome = measure(Target {
        url: &server.url,
        key: args.key.as_deref(),
        head: server.head,
    })
    .await;
    let stopped = match server.child {
        Some(s) => s.stop().await,
        None => Ok(()),
    };
    let kept = finish(place, args.keep).await;
    let measurements = outcome?;
    stopped?;
    let results: Vec<BenchResult> = measurements
        .into_iter()
        .map(|m| {
            BenchResult::new(
                workload.as_str(),
                server.store_label.clone(),
                &server.durability_label,
                m,
                fsync.as_ref(),
            )
        })
        .collect();
    report::print(console, &results, fsync.as_ref(), args.json);
    note_kept(console, kept);
    Ok(())
}

/// The fdatasync probe when asked for, then the server.
async fn probe_and_connect(
    args: &BenchArgs,
    host: &Host<'_>,
    place: Option<&BenchStore>,
    probe: FsyncProbe,
) -> Result<(Option<FsyncRate>, Server), BenchError> {
    let fsync = match probe {
        FsyncProbe::Skip => None,
        FsyncProbe::Run => {
            // With `--server` the server's disk is not this one: the probe
            // runs in a temporary directory, removed when it is dropped.
            let tmp;
            let dir = match place {
                Some(p) => p.probe_dir(),
                None => {
                    tmp = tempfile::tempdir()?;
                    tmp.path()
                }
            };
            probe_fsync(dir, args.fsync_probe_ms).await?
        }
    };
    let control = client(None)?;
    let server = Server::connect(args, host, &control, place).await?;
    Ok((fsync, server))
}

/// Says which store is benchmarked where, when the bench starts the server.
fn announce(console: &dyn Console, place: Option<&BenchStore>) {
    if let Some(dir) = place.and_then(BenchStore::log_dir) {
        console.note(&format!(
            "benchmarking the log store in {} through a child `strata serve`",
            dir.display()
        ));
    }
    if let Some(schema) = place.and_then(BenchStore::pg_schema) {
        console.note(&format!(
            "benchmarking the PostgreSQL store in schema {schema} through a child `strata serve`"
        ));
    }
}

/// The server under load: `--server`, or a child `strata serve`.
struct Server {
    /// The child, when the bench started one.
    child: Option<ServerChild>,
    /// Its base URL.
    url: String,
    /// The store's head position at the start.
    head: u64,
    /// The store, as results name it.
    store_label: String,
    /// The store's durability, as results name it.
    durability_label: String,
}

impl Server {
    /// Checks `--server` answers, or starts `strata serve` over `place`.
    async fn connect(
        args: &BenchArgs,
        host: &Host<'_>,
        control: &reqwest::Client,
        place: Option<&BenchStore>,
    ) -> Result<Server, BenchError> {
        let key = args.key.as_deref();
        if let Some(url) = args.server_url() {
            let url = url.trim_end_matches('/').to_string();
            let head = health(control, &url, key).await?;
            return Ok(Server {
                child: None,
                store_label: url.clone(),
                url,
                head,
                durability_label: "n/a".to_string(),
            });
        }
        let Some(place) = place else {
            return Err("a workload through HTTP needs --server or a store".into());
        };
        let durability = args.durability.to_string();
        let durability_label = match place.spec() {
            StoreSpec::Log(_) => durability.clone(),
            _ => "n/a".to_string(),
        };
        let program: PathBuf = host.strata_program("start `strata serve`")?.to_path_buf();
        let (child, head) =
            ServerChild::start(&program, &place.serve_spec(), &durability, control, key).await?;
        if let Some(pid) = child.pid() {
            host.console.note(&format!(
                "strata serve (pid {pid}) is up on {}",
                child.url()
            ));
        }
        Ok(Server {
            url: child.url().to_string(),
            child: Some(child),
            head,
            store_label: place.spec().to_string(),
            durability_label,
        })
    }
}

/// Removes the bench's store (or keeps it), when the bench made one.
async fn finish(place: Option<BenchStore>, keep: bool) -> Result<Option<String>, String> {
    match place {
        Some(t) => t.finish(keep).await,
        None => Ok(None),
    }
}
