//! The SQL the store runs, loaded from the `.sql` files beside each module and
//! rendered once per store for its schema.

use crate::config::EventsLayout;

/// Replaces `{schema}` by the quoted identifier and `{schema_name}` by the
/// quoted string literal. The name was validated (`[A-Za-z0-9_]`), so quoting
/// cannot be escaped; it is still quoted so a reserved word works.
pub(crate) fn render(template: &str, schema: &str) -> String {
    template
        .replace("{schema}", &format!("\"{schema}\""))
        .replace("{schema_name}", &format!("'{schema}'"))
}

/// Every statement of one store, rendered for its schema and layout.
#[derive(Debug)]
pub(crate) struct Sql {
    pub ensure_streams: String,
    pub lock_streams: String,
    pub lookup_ids: String,
    pub append: String,
    pub append_naive: String,
    pub lock_stream_for_delete: String,
    pub soft_delete: String,
    pub ensure_stream: String,
    pub tombstone: String,
    pub erase: String,
    pub scavenge_count: String,
    pub scavenge_plan: String,
    pub scavenge_delete: String,
    pub read_all: String,
    pub read_all_stream: String,
    pub read_all_backward: String,
    pub read_all_stream_backward: String,
    pub read_query: String,
    pub lock_position: String,
    pub read_stream_forward: String,
    pub read_stream_backward: String,
    pub stream_head: String,
    pub list_streams: String,
    pub head_position: String,
    pub head_position_naive: String,
    pub snapshot_save: String,
    pub snapshot_prune: String,
    pub snapshot_load: String,
    pub snapshot_delete: String,
    pub checkpoint_load: String,
    pub checkpoint_save: String,
    pub checkpoint_reset: String,
    pub projection_claim: String,
    pub projection_lock: String,
    pub partition_ensure: String,
    pub partition_list: String,
    /// The quoted `events` table, for statements built at run time.
    pub events: String,
    /// The quoted `event_tags` table, for statements built at run time.
    pub event_tags: String,
    /// Notification channel (`<schema>_events`), unquoted.
    pub channel: String,
}

impl Sql {
    pub(crate) fn new(schema: &str, layout: EventsLayout) -> Sql {
        let r = |t: &str| render(t, schema);
        let partitioned = matches!(layout, EventsLayout::Partitioned { .. });
        Sql {
            ensure_streams: r(include_str!("writer/ensure_streams.sql")),
            lock_streams: r(include_str!("writer/lock_streams.sql")),
            lookup_ids: if partitioned {
                r(include_str!("writer/lookup_ids_partitioned.sql"))
            } else {
                r(include_str!("writer/lookup_ids.sql"))
            },
            append: if partitioned {
                r(include_str!("writer/append_partitioned.sql"))
            } else {
                r(include_str!("writer/append.sql"))
            },
            append_naive: r(include_str!("writer/append_naive.sql")),
            lock_stream_for_delete: r(include_str!("writer/lock_stream_for_delete.sql")),
            soft_delete: r(include_str!("writer/soft_delete.sql")),
            ensure_stream: r(include_str!("writer/ensure_stream.sql")),
            tombstone: r(include_str!("writer/tombstone.sql")),
            erase: if partitioned {
                r(include_str!("erase/erase_partitioned.sql"))
            } else {
                r(include_str!("erase/erase.sql"))
            },
            scavenge_count: r(include_str!("scavenge/count.sql")),
            scavenge_plan: r(include_str!("scavenge/plan.sql")),
            scavenge_delete: if partitioned {
                r(include_str!("scavenge/delete_partitioned.sql"))
            } else {
                r(include_str!("scavenge/delete.sql"))
            },
            read_all: r(include_str!("read/read_all.sql")),
            read_all_stream: r(include_str!("read/read_all_stream.sql")),
            read_all_backward: r(include_str!("read/read_all_backward.sql")),
            read_all_stream_backward: r(include_str!("read/read_all_stream_backward.sql")),
            read_query: r(include_str!("read/read_query.sql")),
            lock_position: r(include_str!("writer/lock_position.sql")),
            read_stream_forward: r(include_str!("read/read_stream_forward.sql")),
            read_stream_backward: r(include_str!("read/read_stream_backward.sql")),
            stream_head: r(include_str!("read/stream_head.sql")),
            list_streams: r(include_str!("read/list_streams.sql")),
            head_position: r(include_str!("read/head_position.sql")),
            head_position_naive: r(include_str!("read/head_position_naive.sql")),
            snapshot_save: r(include_str!("snapshot/save.sql")),
            snapshot_prune: r(include_str!("snapshot/prune.sql")),
            snapshot_load: r(include_str!("snapshot/load.sql")),
            snapshot_delete: r(include_str!("snapshot/delete.sql")),
            checkpoint_load: r(include_str!("checkpoint/load.sql")),
            checkpoint_save: r(include_str!("checkpoint/save.sql")),
            checkpoint_reset: r(include_str!("checkpoint/reset.sql")),
            projection_claim: r(include_str!("projection/claim.sql")),
            projection_lock: r(include_str!("projection/lock.sql")),
            partition_ensure: r(include_str!("partition/ensure.sql")),
            partition_list: include_str!("partition/list.sql").to_owned(),
            events: r("{schema}.events"),
            event_tags: r("{schema}.event_tags"),
            channel: format!("{schema}_events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_schema() {
        assert_eq!(
            render("SELECT {schema}.x, {schema_name}", "s1"),
            "SELECT \"s1\".x, 's1'"
        );
        let sql = Sql::new("s1", EventsLayout::Plain);
        assert!(sql.append.contains("\"s1\".global_position"));
        assert!(!sql.append.contains("{schema}"));
    }
}
