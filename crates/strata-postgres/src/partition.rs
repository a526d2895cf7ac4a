//! Position-range partitions of the events table (partitioned layout): list
//! them, create them ahead, detach old ones for archiving.

use strata_core::{Error, Position, Result};

use crate::config::EventsLayout;
use crate::database::db_error;
use crate::migrate::to_i64;
use crate::sql::render;
use crate::store::PostgresStore;

/// One attached partition of the events table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The table's name (in the store's schema), e.g. `events_p0000000003`.
    pub name: String,
    /// First position it holds.
    pub from: Position,
    /// First position it does not hold.
    pub to: Position,
}

/// The name of every partition the store creates: `events_p` and ten digits.
fn is_partition_name(name: &str) -> bool {
    name.strip_prefix("events_p")
        .is_some_and(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses `FOR VALUES FROM ('1') TO ('101')`.
fn parse_bounds(expr: &str) -> Option<(u64, u64)> {
    let digits = |s: &str| -> Option<u64> {
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        d.parse().ok()
    };
    let rest = expr.split_once("FROM")?.1;
    let (from, to) = rest.split_once("TO")?;
    Some((digits(from)?, digits(to)?))
}

impl PostgresStore {
    fn require_partitioned(&self) -> Result<()> {
        match self.layout() {
            EventsLayout::Partitioned { .. } => Ok(()),
            EventsLayout::Plain => Err(Error::invalid(format!(
                "schema `{}` has the plain events layout: it has no partitions",
                self.schema()
            ))),
        }
    }

    /// The attached partitions, in position order.
    pub async fn partitions(&self) -> Result<Vec<PartitionInfo>> {
        self.require_partitioned()?;
        let database = self.database();
        let sql = &database.sql;
        let schema = self.schema();
        let rows = database
            .read("listing partitions", |client| async move {
                client
                    .query(&sql.partition_list, &[&schema])
                    .await
                    .map_err(db_error("listing partitions"))
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            let bounds: String = row.get(1);
            let Some((from, to)) = parse_bounds(&bounds) else {
                tracing::warn!(partition = %name, bounds = %bounds, "partition with unexpected bounds");
                continue;
            };
            out.push(PartitionInfo {
                name,
                from: Position(from),
                to: Position(to),
            });
        }
        out.sort_by_key(|p| p.from);
        Ok(out)
    }

    /// Creates partitions until positions up to `upto` are covered (appends do
    /// this on their own, a few partitions ahead). Returns the last covered
    /// position.
    pub async fn ensure_partitions(&self, upto: Position) -> Result<Position> {
        self.require_partitioned()?;
        let database = self.database();
        let sql = &database.sql;
        let upto = to_i64(upto.0);
        let through: i64 = database
            .read("creating partitions", |client| async move {
                let row = client
                    .query_one(&sql.partition_ensure, &[&upto])
                    .await
                    .map_err(db_error("creating partitions"))?;
                Ok(row.get(0))
            })
            .await?;
        Ok(Position(u64::try_from(through).unwrap_or(0)))
    }

    /// Detaches a partition: its events leave `$all` and the stream reads,
    /// and stay in a table of the same name that can be archived (`pg_dump
    /// -t`) and dropped. Stream heads and event ids are kept, so versions
    /// continue and re-sent ids are still recognized. Never detach the
    /// partition that holds the head.
    pub async fn detach_partition(&self, name: &str) -> Result<()> {
        self.require_partitioned()?;
        if !is_partition_name(name) {
            return Err(Error::invalid(format!(
                "`{name}` is not a partition name (events_p and ten digits)"
            )));
        }
        let head = self.inner_head_position().await?;
        let partitions = self.partitions().await?;
        let Some(p) = partitions.iter().find(|p| p.name == name) else {
            return Err(Error::invalid(format!(
                "`{name}` is not attached to {}.events",
                self.schema()
            )));
        };
        if p.to.0 > head.0 + 1 || head.0 < p.from.0 {
            return Err(Error::invalid(format!(
                "partition `{name}` holds positions {}..{} and the head is {head}: \
                 only partitions entirely below the head can be detached",
                p.from, p.to
            )));
        }
        let text = render(include_str!("partition/detach.sql"), self.schema())
            .replace("{partition}", &format!("\"{name}\""));
        let text = &text;
        self.database()
            .read("detaching a partition", |client| async move {
                client
                    .batch_execute(text)
                    .await
                    .map_err(db_error("detaching a partition"))
            })
            .await?;
        tracing::info!(
            schema = self.schema(),
            partition = name,
            "partition detached"
        );
        Ok(())
    }

    async fn inner_head_position(&self) -> Result<Position> {
        strata_core::EventStore::head_position(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bounds() {
        assert!(is_partition_name("events_p0000000003"));
        assert!(!is_partition_name("events_p3"));
        assert!(!is_partition_name("events; drop"));
        assert_eq!(
            parse_bounds("FOR VALUES FROM ('1') TO ('101')"),
            Some((1, 101))
        );
        assert_eq!(parse_bounds("DEFAULT"), None);
    }
}
