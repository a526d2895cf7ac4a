//! How to reach the database and how the store behaves there.

use std::time::Duration;

use strata_core::Limits;

use crate::error::PgError;
use crate::tls::{split_url, PgTls};

/// The schema every object lives in unless configured otherwise.
pub const DEFAULT_SCHEMA: &str = "strata";

/// Longest schema name, in bytes. PostgreSQL identifiers hold 63 bytes and the
/// notification channel is the schema name plus `_events`.
pub const MAX_SCHEMA_NAME_BYTES: usize = 48;

/// Connections in the pool unless configured otherwise (the listener's
/// connection is extra).
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How often the head is polled when no notification arrives, in ms: the
/// fallback when `LISTEN/NOTIFY` is unavailable or a notification was lost
/// while the listener reconnected.
pub const DEFAULT_HEAD_POLL_INTERVAL_MS: u64 = 500;

/// How long to wait for a new connection, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;

/// How long a caller waits for a pooled connection before failing, in seconds.
pub const POOL_WAIT_TIMEOUT_SECS: u64 = 30;

/// Positions per partition when partitioning is asked for without a size.
pub const DEFAULT_PARTITION_POSITIONS: u64 = 10_000_000;

/// How the events table is laid out. Fixed when the schema is created: a
/// store connecting to an existing schema uses the layout recorded there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventsLayout {
    /// One table with unique `(stream_id, version)` and unique `event_id`.
    #[default]
    Plain,
    /// Declaratively partitioned by position range, `positions_per_partition`
    /// positions per partition, so old ranges can be detached and archived.
    Partitioned {
        /// Positions per partition (at least 1).
        positions_per_partition: u64,
    },
}

/// How positions are ordered. Only [`Ordering::Serialized`] is correct; the
/// other exists to prove the tests catch the naive design.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Ordering {
    /// Positions are taken under the `global_position` row lock held to commit.
    #[default]
    Serialized,
    /// TEST-ONLY: the plain sequence, no lock. Subscribers can skip events.
    #[cfg_attr(not(feature = "naive-ordering"), allow(dead_code))]
    Naive,
}

/// Everything [`PostgresStore::connect_with`](crate::PostgresStore::connect_with) needs.
///
/// ```
/// use strata_postgres::{EventsLayout, PgConfig};
/// let config = PgConfig::new("postgres://postgres@127.0.0.1:5432/test")
///     .schema("billing")
///     .pool_size(4)
///     .layout(EventsLayout::Partitioned { positions_per_partition: 1_000_000 });
/// assert_eq!(config.schema_name(), "billing");
/// ```
#[derive(Clone, Debug)]
pub struct PgConfig {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) application_name: Option<String>,
    pub(crate) layout: EventsLayout,
    pub(crate) limits: Limits,
    pub(crate) auto_migrate: bool,
    pub(crate) auto_analyze: bool,
    pub(crate) head_poll_interval: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ordering: Ordering,
    pub(crate) tls: PgTls,
    pub(crate) scavenge_batch_rows: u64,
}

impl PgConfig {
    /// A configuration for the database at `url` (`postgres://user@host:port/db`
    /// or key=value form), schema [`DEFAULT_SCHEMA`], default everything else.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            application_name: None,
            layout: EventsLayout::Plain,
            limits: Limits::default(),
            auto_migrate: true,
            auto_analyze: true,
            head_poll_interval: Duration::from_millis(DEFAULT_HEAD_POLL_INTERVAL_MS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            ordering: Ordering::Serialized,
            tls: PgTls::FromUrl,
            scavenge_batch_rows: crate::scavenge::DEFAULT_SCAVENGE_BATCH_ROWS,
        }
    }

    /// The schema that holds every table (created if missing). Letters, digits
    /// and `_`, not starting with a digit, at most [`MAX_SCHEMA_NAME_BYTES`].
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The configured schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The configured database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Most pooled connections (at least 1). Appends use one at a time (group
    /// commit); reads and subscriptions share the rest.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The `application_name` the store's connections report in
    /// `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The events table layout used when the schema is created.
    pub fn layout(mut self, layout: EventsLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The limits the store enforces.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether connecting runs the migrations (default `true`). When `false`,
    /// connecting fails unless the schema is already at the current version
    /// (run [`migrate`](crate::migrate) first, as `strata migrate` does).
    pub fn auto_migrate(mut self, yes: bool) -> Self {
        self.auto_migrate = yes;
        self
    }

    /// Whether the store refreshes the events table's planner statistics
    /// (`ANALYZE`) after it has written
    /// [`ANALYZE_FIRST_EVENTS`](crate::ANALYZE_FIRST_EVENTS) events and each
    /// time that count doubles (default `true`). Turn it off when a DBA runs
    /// `ANALYZE` on a schedule or the role may not.
    pub fn auto_analyze(mut self, yes: bool) -> Self {
        self.auto_analyze = yes;
        self
    }

    /// How often the head is polled as a fallback to notifications.
    pub fn head_poll_interval(mut self, interval: Duration) -> Self {
        self.head_poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long to wait for a new connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How connections use TLS. By default the URL decides (`sslmode`,
    /// `sslrootcert`, as in libpq); see [`PgTls`].
    pub fn tls(mut self, tls: PgTls) -> Self {
        self.tls = tls;
        self
    }

    /// Event rows one scavenge batch deletes at most, in its own short
    /// transaction (default
    /// [`DEFAULT_SCAVENGE_BATCH_ROWS`](crate::DEFAULT_SCAVENGE_BATCH_ROWS);
    /// between 1 and [`MAX_SCAVENGE_BATCH_ROWS`](crate::MAX_SCAVENGE_BATCH_ROWS)).
    pub fn scavenge_batch_rows(mut self, rows: u64) -> Self {
        self.scavenge_batch_rows = rows.clamp(1, crate::scavenge::MAX_SCAVENGE_BATCH_ROWS);
        self
    }

    /// TEST-ONLY. Assigns positions with the plain sequence and no lock: the
    /// design whose subscribers skip events that commit late with a lower
    /// position. Exists only so the ordering tests can show they catch it;
    /// only compiled with the `naive-ordering` feature and loud in the logs.
    #[cfg(feature = "naive-ordering")]
    #[doc(hidden)]
    pub fn danger_naive_ordering(mut self) -> Self {
        self.ordering = Ordering::Naive;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), PgError> {
        validate_schema_name(&self.schema)?;
        if let EventsLayout::Partitioned {
            positions_per_partition: 0,
        } = self.layout
        {
            return Err(PgError::Config(
                "a partition must hold at least one position".into(),
            ));
        }
        if self.ordering == Ordering::Naive && self.layout != EventsLayout::Plain {
            return Err(PgError::Config(
                "the test-only naive ordering supports the plain layout only".into(),
            ));
        }
        Ok(())
    }

    /// The driver's configuration for one connection.
    ///
    /// With it, the TLS connector when the configuration asks for TLS.
    pub(crate) fn pg_config(
        &self,
    ) -> Result<
        (
            tokio_postgres::Config,
            Option<tokio_postgres_rustls::MakeRustlsConnect>,
        ),
        PgError,
    > {
        let (url, tls) = split_url(&self.url, &self.tls)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| PgError::Config(format!("cannot parse the database URL: {e}")))?;
        let connector = match &tls {
            PgTls::Verify { root_certs } => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Some(crate::tls::connector(root_certs)?)
            }
            PgTls::Off | PgTls::FromUrl => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
        };
        config.connect_timeout(self.connect_timeout);
        // The store's statements are short OLTP statements whose row
        // estimates (UNNEST, CTEs over partitions) can exceed the JIT
        // threshold; compiling them costs far more than running them.
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c jit=off"),
            _ => "-c jit=off".to_owned(),
        };
        config.options(&options);
        if let Some(name) = &self.application_name {
            config.application_name(name);
        } else if config.get_application_name().is_none() {
            config.application_name("strata");
        }
        Ok((config, connector))
    }
}

/// Checks a schema name: `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_SCHEMA_NAME_BYTES`] bytes, not starting with `pg_`.
pub fn validate_schema_name(schema: &str) -> Result<(), PgError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || schema.len() > MAX_SCHEMA_NAME_BYTES {
        return Err(PgError::Config(format!(
            "schema name `{schema}` must be letters, digits and `_`, not start with a digit, \
             and be at most {MAX_SCHEMA_NAME_BYTES} bytes"
        )));
    }
    if schema.to_ascii_lowercase().starts_with("pg_") {
        return Err(PgError::Config(format!(
            "schema name `{schema}` starts with `pg_`, which PostgreSQL reserves"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(validate_schema_name("strata").is_ok());
        assert!(validate_schema_name("t_1").is_ok());
        assert!(validate_schema_name("_x").is_ok());
        assert!(validate_schema_name("").is_err());
        assert!(validate_schema_name("1x").is_err());
        assert!(validate_schema_name("a-b").is_err());
        assert!(validate_schema_name("a\"b").is_err());
        assert!(validate_schema_name("pg_x").is_err());
        assert!(validate_schema_name(&"x".repeat(49)).is_err());
    }
}
