//! Versioned, idempotent migrations, run by the crate (`strata migrate`).
//!
//! Each migration is a `.sql` file beside this module, applied once per schema
//! inside one transaction together with its row in `schema_migrations`.
//! Concurrent migrators of the same schema are serialized by an advisory
//! lock, so running `migrate` from several processes at once is safe.

use tokio_postgres::Client;

mod backfill;

use crate::config::{validate_schema_name, EventsLayout, PgConfig};
use crate::error::PgError;
use crate::sql::render;

/// The schema version this build writes and reads.
pub const CURRENT_SCHEMA_VERSION: i32 = 6;

/// Partitions created ahead of the head, so appends rarely wait for DDL.
pub const PARTITIONS_AHEAD: u64 = 2;

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const CORE: Migration = Migration {
    version: 1,
    name: "0001_core.sql",
    sql: include_str!("migrate/0001_core.sql"),
};

const EVENTS_PLAIN: Migration = Migration {
    version: 2,
    name: "0002_events_plain.sql",
    sql: include_str!("migrate/0002_events_plain.sql"),
};

const EVENTS_PARTITIONED: Migration = Migration {
    version: 2,
    name: "0002_events_partitioned.sql",
    sql: include_str!("migrate/0002_events_partitioned.sql"),
};

const STREAM_METADATA: Migration = Migration {
    version: 3,
    name: "0003_stream_metadata.sql",
    sql: include_str!("migrate/0003_stream_metadata.sql"),
};

const GROUPS: Migration = Migration {
    version: 4,
    name: "0004_groups.sql",
    sql: include_str!("migrate/0004_groups.sql"),
};

const EVENT_TAGS: Migration = Migration {
    version: 5,
    name: "0005_event_tags.sql",
    sql: include_str!("migrate/0005_event_tags.sql"),
};

const STREAM_NAMES: Migration = Migration {
    version: 6,
    name: "0006_stream_names.sql",
    sql: include_str!("migrate/0006_stream_names.sql"),
};

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema.
    pub schema: String,
    /// Migrations applied by this call, as (version, file name); empty when the
    /// schema was already current.
    pub applied: Vec<(i32, &'static str)>,
    /// The schema's version now.
    pub version: i32,
    /// The events layout recorded in the schema.
    pub layout: EventsLayout,
}

/// Connects with `config` and brings its schema up to
/// [`CURRENT_SCHEMA_VERSION`], creating the schema if needed. Idempotent.
///
/// ```no_run
/// # async fn run() -> Result<(), strata_postgres::PgError> {
/// let config = strata_postgres::PgConfig::new("postgres://postgres@127.0.0.1/test");
/// let report = strata_postgres::migrate(&config).await?;
/// println!("schema {} at version {}", report.schema, report.version);
/// # Ok(()) }
/// ```
pub async fn migrate(config: &PgConfig) -> Result<MigrationReport, PgError> {
    config.validate()?;
    let (pg, tls) = config.pg_config()?;
    let (mut client, mut messages) = crate::tls::connect_one(&pg, tls.as_ref())
        .await
        .map_err(|e| PgError::db("connecting to migrate", e))?;
    let driver = tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(message) = messages.next().await {
            if let Err(e) = message {
                tracing::debug!(error = %e, "migration connection ended");
                break;
            }
        }
    });
    let result = migrate_client(&mut client, &config.schema, config.layout).await;
    drop(client);
    let _ = driver.await;
    result
}

/// Runs the migrations over an existing connection (see [`migrate`]).
/// `layout` is used only when the schema is new.
pub async fn migrate_client(
    client: &mut Client,
    schema: &str,
    layout: EventsLayout,
) -> Result<MigrationReport, PgError> {
    validate_schema_name(schema)?;
    let tx = client
        .transaction()
        .await
        .map_err(db_error(schema, "starting the migration"))?;
    let mut version = lock_and_read_version(&tx, schema).await?;
    let mut applied = Vec::new();
    if version < CORE.version {
        apply(&tx, schema, &CORE).await?;
        applied.push((CORE.version, CORE.name));
        version = CORE.version;
    }
    let recorded = record_layout(&tx, schema, layout).await?;
    if version < 2 {
        let m = match recorded {
            EventsLayout::Plain => &EVENTS_PLAIN,
            EventsLayout::Partitioned { .. } => &EVENTS_PARTITIONED,
        };
        apply(&tx, schema, m).await?;
        applied.push((m.version, m.name));
        version = m.version;
    }
    if version < STREAM_METADATA.version {
        apply(&tx, schema, &STREAM_METADATA).await?;
        let rows = backfill::backfill_stream_metadata(&tx, schema).await?;
        tracing::info!(
            schema,
            rows,
            "recorded the settings of existing metadata streams"
        );
        applied.push((STREAM_METADATA.version, STREAM_METADATA.name));
        version = STREAM_METADATA.version;
    }
    if version < GROUPS.version {
        apply(&tx, schema, &GROUPS).await?;
        applied.push((GROUPS.version, GROUPS.name));
        version = GROUPS.version;
    }
    if version < EVENT_TAGS.version {
        apply(&tx, schema, &EVENT_TAGS).await?;
        applied.push((EVENT_TAGS.version, EVENT_TAGS.name));
        version = EVENT_TAGS.version;
    }
    if version < STREAM_NAMES.version {
        apply(&tx, schema, &STREAM_NAMES).await?;
        applied.push((STREAM_NAMES.version, STREAM_NAMES.name));
        version = STREAM_NAMES.version;
    }
    if let EventsLayout::Partitioned {
        positions_per_partition,
    } = recorded
    {
        let upto = positions_per_partition.saturating_mul(PARTITIONS_AHEAD);
        tx.execute(
            &render("SELECT {schema}.ensure_event_partitions($1)", schema),
            &[&to_i64(upto)],
        )
        .await
        .map_err(db_error(schema, "creating the first partitions"))?;
    }
    tx.commit()
        .await
        .map_err(db_error(schema, "committing the migration"))?;
    if !applied.is_empty() {
        tracing::info!(schema, version, applied = ?applied, "migrated");
    }
    Ok(MigrationReport {
        schema: schema.to_owned(),
        applied,
        version,
        layout: recorded,
    })
}

/// A database error of the migration of `schema`, with what it was doing.
fn db_error(schema: &str, context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    let context = format!("{context} (schema `{schema}`)");
    move |e| PgError::db(context, e)
}

/// Takes the schema's migration lock for the transaction, creates the
/// schema and its migration ledger if they are missing, and returns the
/// version the ledger records (0 for a new schema). A schema newer than
/// this build is refused.
async fn lock_and_read_version(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<i32, PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('strata.migrate.' || $1::text))",
        &[&schema],
    )
    .await
    .map_err(db_error(schema, "locking the schema for migration"))?;
    tx.batch_execute(&render("CREATE SCHEMA IF NOT EXISTS {schema};\n", schema))
        .await
        .map_err(db_error(schema, "creating the schema"))?;
    tx.batch_execute(&render(
        include_str!("migrate/migrations_table.sql"),
        schema,
    ))
    .await
    .map_err(db_error(schema, "creating the migration ledger"))?;
    let applied_row = tx
        .query_one(
            &render(
                "SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations",
                schema,
            ),
            &[],
        )
        .await
        .map_err(db_error(schema, "reading the migration ledger"))?;
    let version: i32 = applied_row.get(0);
    if version > CURRENT_SCHEMA_VERSION {
        return Err(PgError::Schema {
            schema: schema.to_owned(),
            reason: format!(
                "it is at version {version}, newer than this build's {CURRENT_SCHEMA_VERSION}; \
                 upgrade Strata"
            ),
        });
    }
    Ok(version)
}

/// Records `layout` as the schema's events layout unless one is recorded
/// already (the layout is chosen once, by whoever creates the schema), and
/// returns the layout the schema has.
async fn record_layout(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    layout: EventsLayout,
) -> Result<EventsLayout, PgError> {
    let (kind, size) = match layout {
        EventsLayout::Plain => ("plain", 0),
        EventsLayout::Partitioned {
            positions_per_partition,
        } => ("partitioned", positions_per_partition),
    };
    tx.execute(
        &render(
            "INSERT INTO {schema}.settings (key, value) VALUES \
             ('events_layout', $1), ('partition_positions', $2), ('partitions_through', '0') \
             ON CONFLICT (key) DO NOTHING",
            schema,
        ),
        &[&kind, &size.to_string()],
    )
    .await
    .map_err(db_error(schema, "recording the events layout"))?;
    read_layout(tx, schema).await
}

/// The schema's version, or 0 when it has no Strata tables.
pub async fn schema_version(client: &Client, schema: &str) -> Result<i32, PgError> {
    validate_schema_name(schema)?;
    let exists = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("\"{schema}\".schema_migrations")],
        )
        .await
        .map_err(|e| PgError::db("looking for the migration ledger", e))?;
    if !exists.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one(
            &render(
                "SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations",
                schema,
            ),
            &[],
        )
        .await
        .map_err(|e| PgError::db("reading the migration ledger", e))?;
    Ok(row.get(0))
}

/// The layout recorded in the schema's settings.
pub(crate) async fn read_layout(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
) -> Result<EventsLayout, PgError> {
    let rows = client
        .query(
            &render(
                "SELECT key, value FROM {schema}.settings \
                 WHERE key IN ('events_layout', 'partition_positions')",
                schema,
            ),
            &[],
        )
        .await
        .map_err(|e| PgError::db("reading the events layout", e))?;
    let mut kind = None;
    let mut size = None;
    for row in rows {
        let key: String = row.get(0);
        let value: String = row.get(1);
        match key.as_str() {
            "events_layout" => kind = Some(value),
            _ => size = value.parse::<u64>().ok(),
        }
    }
    match (kind.as_deref(), size) {
        (Some("plain"), _) => Ok(EventsLayout::Plain),
        (Some("partitioned"), Some(n)) if n > 0 => Ok(EventsLayout::Partitioned {
            positions_per_partition: n,
        }),
        _ => Err(PgError::Schema {
            schema: schema.to_owned(),
            reason: format!(
                "its settings name an unknown events layout ({kind:?}, {size:?} positions per partition)"
            ),
        }),
    }
}

async fn apply(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    m: &Migration,
) -> Result<(), PgError> {
    let fail = |source| PgError::Migration {
        version: m.version,
        name: m.name,
        source,
    };
    tx.batch_execute(&render(m.sql, schema))
        .await
        .map_err(fail)?;
    tx.execute(
        &render(
            "INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
            schema,
        ),
        &[&m.version, &m.name],
    )
    .await
    .map_err(fail)?;
    Ok(())
}

/// A position or count as PostgreSQL's `bigint`, saturating.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
