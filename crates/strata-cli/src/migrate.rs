//! `strata migrate`: run the PostgreSQL store's migrations.

use clap::Args;
use strata_postgres::EventsLayout;

use strata_stores::StoreSpec;

/// `strata migrate` options.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The database and schema: `postgres://…[?schema=NAME]` (default
    /// schema `strata`).
    #[arg(long)]
    pub store: StoreSpec,
    /// Create a new schema with the events table partitioned by position
    /// range, this many positions per partition (see docs/postgres.md). An existing schema keeps the layout it has.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub partition_positions: Option<u64>,
}

/// Migrates the schema the store names and prints what was applied.
pub async fn run(args: MigrateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = &args.store;
    let Some(mut config) = spec.pg_config()? else {
        return Err(format!(
            "migrations are only for PostgreSQL stores (--store postgres://…); `{spec}` needs none"
        )
        .into());
    };
    let asked = args
        .partition_positions
        .map(|positions_per_partition| EventsLayout::Partitioned {
            positions_per_partition,
        });
    if let Some(layout) = asked {
        config = config.layout(layout);
    }
    let report = strata_postgres::migrate(&config).await.map_err(|e| {
        format!(
            "cannot migrate schema `{}` of {spec}: {e}",
            config.schema_name()
        )
    })?;
    let layout = layout_name(report.layout);
    if report.applied.is_empty() {
        println!(
            "schema `{}` of {spec} is already at version {} ({layout} events layout): nothing to do",
            report.schema, report.version
        );
    } else {
        for (version, name) in &report.applied {
            println!("applied migration {version} ({name})");
        }
        println!(
            "schema `{}` of {spec} is now at version {} ({layout} events layout)",
            report.schema, report.version
        );
    }
    if let Some(layout) = asked {
        if layout != report.layout {
            println!(
                "note: the schema already existed with the {layout_text} events layout; \
                 --partition-positions applies only when a schema is created",
                layout_text = layout_name(report.layout)
            );
        }
    }
    Ok(())
}

/// The layout as printed.
fn layout_name(layout: EventsLayout) -> String {
    match layout {
        EventsLayout::Plain => "plain".to_string(),
        EventsLayout::Partitioned {
            positions_per_partition,
        } => format!("partitioned, {positions_per_partition} positions per partition"),
    }
}
