//! `strata serve`: the HTTP/JSON API over any store, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use strata_log::Durability;
use strata_server::{ApiKeys, ServerConfig};

use strata_stores::{OpenOptions, StoreSpec, DEFAULT_STORE};

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// `strata serve` options.
#[derive(Args, Debug)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Which store: `log:DIR`, `memory:` or `postgres://…[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: StoreSpec,
    /// Durability of the log store: always, interval, interval:<ms> or none.
    #[arg(long, default_value = "always")]
    pub durability: Durability,
    /// Serve a damaged log store read-only instead of refusing to start:
    /// everything outside the damaged bytes is served, a read that touches
    /// them fails naming them and where reading can go on, and every write
    /// is refused.
    #[arg(long)]
    pub allow_damaged: bool,
    /// Address to listen on. Without API keys only a loopback address is
    /// allowed (127.0.0.1 or ::1).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Also serve the KurrentDB client protocol (gRPC over HTTP/2) on this
    /// address (off unless given); the same store, keys and loopback rule.
    /// Clients connect with `kurrentdb://HOST:PORT?tls=false`.
    #[arg(long, value_name = "ADDR")]
    pub grpc: Option<SocketAddr>,
    /// API key file (TOML: [[key]] name, sha256, role, prefixes). Keys in
    /// the STRATA_API_KEYS environment variable (same TOML) are added.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// TLS certificate chain (PEM, leaf first); serves https. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1). Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest request body, in bytes (413 above).
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most events in one append request (413 above).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_events_per_request)]
    pub max_events_per_request: usize,
    /// Longest a non-streaming request may take, in ms (503 `timeout` after).
    #[arg(long, value_name = "MS", default_value_t = ServerConfig::default().request_timeout_ms)]
    pub request_timeout_ms: u64,
    /// Most subscriptions open at once on the server (503 above).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_open_subscriptions)]
    pub max_open_subscriptions: usize,
    /// Most subscriptions one API key may hold open (429 above).
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_subscriptions_per_key)]
    pub max_subscriptions_per_key: usize,
    /// How long a subscription with a full buffer waits for its client to
    /// read before dropping it (`slow_consumer`), in ms.
    #[arg(long, value_name = "MS", default_value_t = ServerConfig::default().slow_consumer_timeout_ms)]
    pub slow_consumer_timeout_ms: u64,
    /// Time a client gets to send a request's head, and that an idle
    /// keep-alive connection stays open, in ms.
    #[arg(long, value_name = "MS", default_value_t = ServerConfig::default().header_read_timeout_ms)]
    pub header_read_timeout_ms: u64,
    /// After SIGINT/SIGTERM, how long in-flight requests get before the
    /// server stops anyway, in ms. The store is closed after, either way.
    #[arg(long, value_name = "MS", default_value_t = ServerConfig::default().shutdown_grace_ms)]
    pub shutdown_grace_ms: u64,
    /// Most client connections open at once.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Largest request head (request line and headers), in bytes (431 above).
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_request_head_bytes)]
    pub max_request_head_bytes: usize,
    /// About how many bytes of events one read page holds; a page stops
    /// there and returns `next` (always at least one event).
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_page_bytes)]
    pub max_page_bytes: usize,
    /// Bytes all read pages in flight may hold together (an event counts
    /// twice: its bytes and its JSON); a read past it waits.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_read_bytes_in_flight)]
    pub max_read_bytes_in_flight: usize,
    /// Longest a write may wait on a client that reads nothing, in ms; then
    /// the connection is closed.
    #[arg(long, value_name = "MS", default_value_t = ServerConfig::default().write_timeout_ms)]
    pub write_timeout_ms: u64,
    /// Bytes of events one subscription may hold buffered for its client.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().subscription_buffer_bytes)]
    pub subscription_buffer_bytes: usize,
    /// Bytes of events all subscriptions together may hold buffered.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().subscription_buffers_total_bytes)]
    pub subscription_buffers_total_bytes: usize,
    /// Where `POST /admin/backup` (admin key) keeps a backup of the log
    /// store, brought up to date incrementally by each call; without it
    /// that endpoint answers 501.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Scavenge every this many seconds while serving (stores that
    /// scavenge: log and PostgreSQL); off when not given.
    #[arg(long, value_name = "SECONDS")]
    pub scavenge_every: Option<u64>,
}

const SERVE_HELP: &str = "\
API keys:
  A key file lists the SHA-256 of each key, never the key itself:

    [[key]]
    name = \"orders-service\"
    sha256 = \"<64 hex digits>\"     # printf %s 'THE-KEY' | sha256sum
    role = \"write\"                  # read | write | admin
    prefixes = [\"orders-\"]          # streams it covers; [\"*\"] for all

  STRATA_API_KEYS takes the same TOML on one line:
    key = [{name = \"ops\", sha256 = \"…\", role = \"admin\", prefixes = [\"*\"]}]

  Clients send `Authorization: Bearer THE-KEY` (or `X-API-Key: THE-KEY`).
  read: read streams, /all and subscriptions within the prefixes;
  write: read + append; admin: write + delete, GET /metrics and POST /admin/backup.

TLS:
  --tls-cert cert.pem --tls-key key.pem serves https only (rustls).

See docs/http-api.md for the whole API.";

/// Serves the store on the address until a signal, then stops accepting,
/// lets in-flight requests finish (for at most the shutdown grace) and
/// closes the store (sync and checkpoint).
pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = args.store;
    let listen = args.listen;
    let options = OpenOptions {
        durability: args.durability,
        allow_damaged: args.allow_damaged,
    };
    let mut keys = match &args.keys {
        Some(path) => ApiKeys::from_file(path)?,
        None => ApiKeys::none(),
    };
    if let Some(env_keys) = ApiKeys::from_env()? {
        keys.extend(env_keys.iter().cloned())?;
    }
    // An open server must never be reachable from another machine.
    strata_server::check_listen(listen, &keys)?;
    if let Some(grpc) = args.grpc {
        strata_server::check_listen(grpc, &keys)?;
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(strata_server::tls_acceptor(cert, key)?),
        _ => None,
    };
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_events_per_request: args.max_events_per_request,
        request_timeout_ms: args.request_timeout_ms,
        max_open_subscriptions: args.max_open_subscriptions,
        max_subscriptions_per_key: args.max_subscriptions_per_key,
        slow_consumer_timeout_ms: args.slow_consumer_timeout_ms,
        header_read_timeout_ms: args.header_read_timeout_ms,
        shutdown_grace_ms: args.shutdown_grace_ms,
        max_connections: args.max_connections,
        max_request_head_bytes: args.max_request_head_bytes,
        max_page_bytes: args.max_page_bytes,
        max_read_bytes_in_flight: args.max_read_bytes_in_flight,
        write_timeout_ms: args.write_timeout_ms,
        subscription_buffer_bytes: args.subscription_buffer_bytes,
        subscription_buffers_total_bytes: args.subscription_buffers_total_bytes,
        api_keys: keys,
        backup_dir: args.backup_dir.clone(),
        // The console's health page shows the store's kind and disk use.
        store_kind: Some(spec.kind().to_string()),
        store_dir: spec.log_dir_or(std::path::Path::new(strata_stores::DEFAULT_LOG_DIR)),
        ..ServerConfig::default()
    };
    let every = args
        .scavenge_every
        .map(crate::scavenge_schedule::check)
        .transpose()?;
    let open = spec.open(&options).await?;
    let schedule = match (every, open.admin()) {
        (Some(every), Some(admin)) => Some(crate::scavenge_schedule::spawn(admin, every)),
        (Some(_), None) => return Err("--scavenge-every: this store does not scavenge".into()),
        (None, _) => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = if config.api_keys.is_empty() {
        "no API keys: loopback only".to_string()
    } else {
        format!("{} API keys", config.api_keys.len())
    };
    eprintln!("strata serving {spec} on {scheme}://{local} ({auth}; Ctrl-C or SIGTERM to stop)");
    // An erasure through the server erases the stream's snapshots too.
    let backing = strata_server::Backing {
        admin: open.admin(),
        snapshots: crate::snapshots::kept_with(&open).await?,
        groups: Some(open.groups()),
    };
    let router = strata_server::router_with_backing(open.store(), backing, config.clone());
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let grpc = match args.grpc {
        Some(addr) => {
            let services = strata_grpc::Services::new(open.store())
                .with_groups(open.groups())
                .with_keys(config.api_keys.clone());
            let tls = match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => Some(strata_server::tls_acceptor_h2(cert, key)?),
                _ => None,
            };
            Some(spawn_grpc(addr, tls, services, &stopping).await?)
        }
        None => None,
    };
    strata_server::serve_with(listener, router, &config, tls, stopped(stopping)).await?;
    if let Some(grpc) = grpc {
        grpc.await??;
    }
    if let Some(task) = schedule {
        task.abort();
    }
    eprintln!("strata: stopped accepting; closing the store");
    open.close().await?;
    eprintln!("strata: store closed");
    Ok(())
}

/// Starts the gRPC endpoint on `addr` (over TLS when `tls` is given); it
/// stops with the HTTP server.
async fn spawn_grpc(
    addr: SocketAddr,
    tls: Option<strata_server::TlsAcceptor>,
    services: strata_grpc::Services,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (--grpc): {e}"))?;
    let local = listener.local_addr()?;
    let stop = stopped(stopping.clone());
    Ok(match tls {
        Some(acceptor) => {
            eprintln!(
                "strata serving the KurrentDB client protocol on kurrentdb://{local}?tls=true"
            );
            tokio::spawn(strata_grpc::serve_tls(listener, services, acceptor, stop))
        }
        None => {
            eprintln!(
                "strata serving the KurrentDB client protocol on kurrentdb://{local}?tls=false"
            );
            tokio::spawn(strata_grpc::serve(listener, services, stop))
        }
    })
}

/// Resolves once `stopping` turns true (or its sender is gone).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
