//! `strata migrate`: run the PostgreSQL store's migrations.

use clap::Args;
use strata_postgres::EventsLayout;

use crate::store_spec::StoreSpec;

/// `strata migrate` options.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The database and schema: `postgres://…[?schema=NAME]` (default
    /// schema `strata`).
    #[arg(long)]
    pub store: StoreSpec,
}

/// Migrates the schema the store names and prints what was applied.
pub async fn run(args: MigrateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = &args.store;
    let Some(config) = spec.pg_config()? else {
        return Err(format!(
            "migrations are only for PostgreSQL stores (--store postgres://…); `{spec}` needs none"
        )
        .into());
    };
    let report = strata_postgres::migrate(&config).await.map_err(|e| {
        format!(
            "cannot migrate schema `{}` of {spec}: {e}",
            config.schema_name()
        )
    })?;
    let layout = match report.layout {
        EventsLayout::Plain => "plain".to_string(),
        EventsLayout::Partitioned {
            positions_per_partition,
        } => format!("partitioned, {positions_per_partition} positions per partition"),
    };
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
    Ok(())
}
