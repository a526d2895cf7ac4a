//! The task that feeds subscriptions the committed head: `LISTEN` on the
//! schema's channel (appends notify the last position they committed), and a
//! poll of the `global_position` row as the fallback — every
//! `head_poll_interval`, right after (re)connecting, and all along while the
//! listening connection is down. Appends of this process publish directly.
//!
//! Every published position is safe: a notification is delivered after its
//! transaction commits, and under the position lock that transaction
//! committed after every lower position (ADR 0005). The subscription itself
//! resumes from its own cursor, so a dropped connection costs neither a gap
//! nor a duplicate.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use strata_core::Position;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use crate::database::read_head;
use crate::database::Database;
use crate::error::PgError;
use crate::head::HeadFeed;

/// First pause before reconnecting the listening connection, in ms.
pub const LISTEN_RECONNECT_MIN_MS: u64 = 50;

/// Longest pause before reconnecting the listening connection, in ms.
pub const LISTEN_RECONNECT_MAX_MS: u64 = 2_000;

/// Poll interval while the listening connection is down, in ms (at most the
/// configured interval).
pub const DISCONNECTED_POLL_MS: u64 = 100;

pub(crate) fn spawn(
    database: Arc<Database>,
    head: Arc<HeadFeed>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(database, head, shutdown))
}

/// A listening connection: the client (dropping it closes the connection)
/// and a flag its driver sets when the connection ends.
struct Listening {
    _client: tokio_postgres::Client,
    ended: watch::Receiver<bool>,
}

async fn run(database: Arc<Database>, head: Arc<HeadFeed>, mut shutdown: watch::Receiver<bool>) {
    let mut listening: Option<Listening> = None;
    let mut reconnect_ms = LISTEN_RECONNECT_MIN_MS;
    let mut next_connect = tokio::time::Instant::now();
    let configured = database.config.head_poll_interval;
    loop {
        if listening.is_none() && tokio::time::Instant::now() >= next_connect {
            match listen(&database, &head).await {
                Ok(l) => {
                    head.set_reachable(true);
                    tracing::debug!(schema = %database.config.schema, "listening for appends");
                    listening = Some(l);
                    reconnect_ms = LISTEN_RECONNECT_MIN_MS;
                }
                Err(e) => {
                    head.set_reachable(false);
                    tracing::warn!(
                        error = %e,
                        retry_ms = reconnect_ms,
                        "cannot LISTEN for appends; polling the head meanwhile"
                    );
                    next_connect =
                        tokio::time::Instant::now() + Duration::from_millis(reconnect_ms);
                    reconnect_ms = (reconnect_ms * 2).min(LISTEN_RECONNECT_MAX_MS);
                }
            }
            // Whatever committed while we were not listening.
            poll(&database, &head).await;
        }
        let interval = if listening.is_some() {
            configured
        } else {
            configured.min(Duration::from_millis(DISCONNECTED_POLL_MS))
        };
        let ended = async {
            match listening.as_mut() {
                Some(l) => {
                    let _ = l.ended.wait_for(|ended| *ended).await;
                }
                None => std::future::pending().await,
            }
        };
        enum Wake {
            Shutdown,
            Lost,
            Tick,
        }
        let wake = tokio::select! {
            _ = shutdown.wait_for(|closed| *closed) => Wake::Shutdown,
            _ = ended => Wake::Lost,
            _ = tokio::time::sleep(interval) => Wake::Tick,
        };
        match wake {
            Wake::Shutdown => return,
            Wake::Lost => {
                tracing::warn!(schema = %database.config.schema, "listening connection lost; reconnecting");
                listening = None;
            }
            Wake::Tick => poll(&database, &head).await,
        }
    }
}

async fn poll(database: &Database, head: &HeadFeed) {
    match read_head(database).await {
        Ok(p) => {
            head.set_reachable(true);
            head.publish(p);
        }
        Err(e) => {
            head.set_reachable(false);
            tracing::debug!(error = %e, "polling the head failed");
        }
    }
}

async fn listen(database: &Database, head: &Arc<HeadFeed>) -> Result<Listening, PgError> {
    let (config, tls) = database.config.pg_config()?;
    let (client, mut messages) = crate::tls::connect_one(&config, tls.as_ref())
        .await
        .map_err(|e| PgError::db("connecting to listen", e))?;
    let (ended_tx, ended) = watch::channel(false);
    let feed = head.clone();
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => match n.payload().parse::<u64>() {
                    Ok(p) => feed.publish(Position(p)),
                    Err(_) => tracing::debug!(payload = n.payload(), "ignoring a notification"),
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "listening connection failed");
                    break;
                }
            }
        }
        let _ = ended_tx.send(true);
    });
    client
        .batch_execute(&format!("LISTEN \"{}\"", database.sql.channel))
        .await
        .map_err(|e| PgError::db("starting to listen", e))?;
    Ok(Listening {
        _client: client,
        ended,
    })
}
