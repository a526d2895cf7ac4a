//! Reads: `$all` through filters, one stream forward or backward, stream
//! heads, and decoding rows into [`RecordedEvent`]s.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use strata_core::append_rules::StreamHead;
use strata_core::dcb::{tag_set, Query, Tag};
use strata_core::{
    ContentType, Direction, Error, EventId, Metadata, Position, ReadFilter, RecordedEvent, Result,
    StreamId, Version,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::migrate::to_i64;
use crate::sql::Sql;

/// A parameter of a dynamically shaped read.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The statement and parameters that read `$all` from `from` through `filter`.
pub(crate) fn read_all_query(
    sql: &Sql,
    from: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> (String, Vec<Param>) {
    let templates = (sql.read_all.as_str(), sql.read_all_stream.as_str());
    all_query(templates, from, max_count, filter)
}

/// The statement and parameters that read `$all` backwards, below
/// `before`, through `filter` (newest first).
pub(crate) fn read_all_backward_query(
    sql: &Sql,
    before: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> (String, Vec<Param>) {
    let templates = (
        sql.read_all_backward.as_str(),
        sql.read_all_stream_backward.as_str(),
    );
    all_query(templates, before, max_count, filter)
}

/// A `$all` read of one of `(any, one stream)` templates: `$1` the bound,
/// `$2` the count, `$3` the stream when the filter names one, and the
/// filter's other parts as `{filter}` conditions.
fn all_query(
    (any, one_stream): (&str, &str),
    bound: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> (String, Vec<Param>) {
    let mut params: Vec<Param> = vec![
        Box::new(to_i64(bound.0)),
        Box::new(to_i64(max_count as u64)),
    ];
    let mut conditions = String::new();
    let template = if let Some(stream) = &filter.stream {
        params.push(Box::new(stream.as_str().to_owned()));
        one_stream
    } else {
        any
    };
    let mut add = |before: &str, after: &str, param: Param| {
        params.push(param);
        conditions.push_str(&format!(" AND {before}${}{after}", params.len()));
    };
    if let Some(prefix) = &filter.stream_prefix {
        // `starts_with` needs no escaping of `%` and `_`, unlike LIKE.
        add("starts_with(stream_id, ", ")", Box::new(prefix.clone()));
    }
    if let Some(category) = &filter.category {
        add("category = ", "", Box::new(category.clone()));
    }
    if !filter.event_types.is_empty() {
        add(
            "event_type = ANY(",
            ")",
            Box::new(filter.event_types.clone()),
        );
    }
    if let Some(correlation) = &filter.correlation_id {
        add("correlation_id = ", "", Box::new(correlation.clone()));
    }
    (template.replace("{filter}", &conditions), params)
}

/// The statement and parameters of a query read (`read/read_query.sql`):
/// the user events after `after` matching `query`, at most `limit`.
pub(crate) fn read_query_query(
    sql: &Sql,
    query: &Query,
    after: Position,
    limit: usize,
) -> (String, Vec<Param>) {
    let mut params: Vec<Param> = vec![Box::new(to_i64(after.0)), Box::new(to_i64(limit as u64))];
    let every = query.is_all()
        || query
            .items
            .iter()
            .any(|i| i.types.is_empty() && i.tags.is_empty());
    let mut branches = Vec::with_capacity(query.items.len());
    let mut checks = Vec::with_capacity(query.items.len());
    for item in &query.items {
        let mut check = Vec::with_capacity(2);
        if !item.tags.is_empty() {
            let tags: Vec<String> = item.tags.iter().map(|t| t.as_str().to_owned()).collect();
            if !every {
                params.push(Box::new(tags[0].clone()));
                branches.push(format!(
                    "SELECT t.position FROM {} t WHERE t.tag = ${} AND t.position > $1",
                    sql.event_tags,
                    params.len()
                ));
            }
            params.push(Box::new(tags));
            check.push(format!("e.tags @> ${}::text[]", params.len()));
        }
        if !item.types.is_empty() {
            params.push(Box::new(item.types.clone()));
            let n = params.len();
            if item.tags.is_empty() && !every {
                branches.push(format!(
                    "SELECT x.position FROM {} x WHERE x.event_type = ANY(${n}::text[]) AND x.position > $1",
                    sql.events
                ));
            }
            check.push(format!("e.event_type = ANY(${n}::text[])"));
        }
        if check.is_empty() {
            check.push("true".to_owned());
        }
        checks.push(format!("({})", check.join(" AND ")));
    }
    let candidates = if every {
        String::new()
    } else {
        format!("AND e.position IN ({})", branches.join(" UNION ALL "))
    };
    let matches = if query.is_all() {
        String::new()
    } else {
        format!("AND ({})", checks.join(" OR "))
    };
    let text = sql
        .read_query
        .replace("{candidates}", &candidates)
        .replace("{matches}", &matches);
    (text, params)
}

/// Borrowed parameters for a query call.
pub(crate) fn param_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The statement for a stream read, and its `from` clamped to `bigint`.
pub(crate) fn read_stream_query(sql: &Sql, direction: Direction) -> &str {
    match direction {
        Direction::Forward => &sql.read_stream_forward,
        Direction::Backward => &sql.read_stream_backward,
    }
}

/// Turns the rows of a stream read (head columns 0..3, event from column 3)
/// into events, or the error the contract asks for.
pub(crate) fn stream_rows(stream: &StreamId, rows: Vec<Row>) -> Result<Vec<RecordedEvent>> {
    let Some(first) = rows.first() else {
        return Err(Error::StreamNotFound {
            stream: stream.clone(),
        });
    };
    let head_version: i64 = first.try_get(0).map_err(corrupt("streams.version"))?;
    let deleted_through: i64 = first
        .try_get(1)
        .map_err(corrupt("streams.deleted_through"))?;
    let tombstoned: bool = first.try_get(2).map_err(corrupt("streams.tombstoned"))?;
    if tombstoned {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    if head_version <= deleted_through {
        return Err(Error::StreamNotFound {
            stream: stream.clone(),
        });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let position: Option<i64> = row.try_get(3).map_err(corrupt("events.position"))?;
        if position.is_some() {
            out.push(event_from_row(row, 3)?);
        }
    }
    Ok(out)
}

/// Decodes the event columns of `row` starting at column `at`: position,
/// event_id, stream_id, version, event_type, content_type, data, metadata
/// (as text), recorded_at, tags (`text[]`, NULL for none).
pub(crate) fn event_from_row(row: &Row, at: usize) -> Result<RecordedEvent> {
    let position: i64 = row.try_get(at).map_err(corrupt("events.position"))?;
    let id: Uuid = row.try_get(at + 1).map_err(corrupt("events.event_id"))?;
    let stream: String = row.try_get(at + 2).map_err(corrupt("events.stream_id"))?;
    let version: i64 = row.try_get(at + 3).map_err(corrupt("events.version"))?;
    let event_type: String = row.try_get(at + 4).map_err(corrupt("events.event_type"))?;
    let content_type: i16 = row
        .try_get(at + 5)
        .map_err(corrupt("events.content_type"))?;
    let data: Vec<u8> = row.try_get(at + 6).map_err(corrupt("events.data"))?;
    let metadata: Option<String> = row.try_get(at + 7).map_err(corrupt("events.metadata"))?;
    let recorded_at: DateTime<Utc> = row.try_get(at + 8).map_err(corrupt("events.recorded_at"))?;
    let tags: Option<Vec<String>> = row.try_get(at + 9).map_err(corrupt("events.tags"))?;
    let location = || format!("events at position {position}");
    let bad = |reason: String| Error::Corrupt {
        location: location(),
        reason,
    };
    let stream_id = if stream.starts_with('$') {
        StreamId::system(&stream)
    } else {
        StreamId::new(&stream)
    }
    .map_err(|e| bad(format!("stream id: {e}")))?;
    let content_type = u8::try_from(content_type)
        .ok()
        .and_then(ContentType::from_code)
        .ok_or_else(|| bad(format!("unknown content type code {content_type}")))?;
    let metadata = match metadata {
        None => Metadata::default(),
        Some(text) => serde_json::from_str(&text).map_err(|e| bad(format!("metadata: {e}")))?,
    };
    let tags = tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| Tag::new(t).map_err(|e| bad(format!("tag: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordedEvent {
        id: EventId(id),
        stream_id,
        version: to_u64(version).ok_or_else(|| bad(format!("negative version {version}")))?,
        position: Position(
            to_u64(position).ok_or_else(|| bad(format!("negative position {position}")))?,
        ),
        event_type,
        data: Bytes::from(data),
        content_type,
        metadata,
        recorded_at,
        tags: tag_set(tags),
    })
}

/// Decodes the `streams` columns version, deleted_through, tombstoned and
/// last_position, starting at column `at`, into a head.
pub(crate) fn head_from_row(row: &Row, at: usize) -> Result<StreamHead> {
    let version: i64 = row.try_get(at).map_err(corrupt("streams.version"))?;
    let deleted_through: i64 = row
        .try_get(at + 1)
        .map_err(corrupt("streams.deleted_through"))?;
    let tombstoned: bool = row.try_get(at + 2).map_err(corrupt("streams.tombstoned"))?;
    let last_position: Option<i64> = row
        .try_get(at + 3)
        .map_err(corrupt("streams.last_position"))?;
    let bad = |what: &str| Error::Corrupt {
        location: "streams".into(),
        reason: format!("negative {what}"),
    };
    Ok(StreamHead {
        version: to_u64(version).ok_or_else(|| bad("version"))?,
        deleted_through: to_u64(deleted_through).ok_or_else(|| bad("deleted_through"))?,
        tombstoned,
        last_position: match last_position {
            None => None,
            Some(p) => Some(Position(to_u64(p).ok_or_else(|| bad("last_position"))?)),
        },
    })
}

/// A version from the bigint column `at` of `row`, called `what` in errors.
pub(crate) fn version_from_row(row: &Row, at: usize, what: &'static str) -> Result<Version> {
    let v: i64 = row.try_get(at).map_err(corrupt(what))?;
    to_u64(v).ok_or_else(|| Error::Corrupt {
        location: what.into(),
        reason: format!("negative version {v}"),
    })
}

/// A head position from a one-column bigint row.
pub(crate) fn position_from_row(row: &Row) -> Result<Position> {
    let p: i64 = row.try_get(0).map_err(corrupt("head position"))?;
    to_u64(p).map(Position).ok_or_else(|| Error::Corrupt {
        location: "global_position".into(),
        reason: format!("negative position {p}"),
    })
}

/// `from` for a stream read as a `bigint` (`FROM_END` saturates).
pub(crate) fn version_param(v: Version) -> i64 {
    to_i64(v)
}

fn to_u64(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

pub(crate) fn corrupt(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::Corrupt {
        location: what.into(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventsLayout;
    use strata_core::dcb::QueryItem;

    fn tag(t: &str) -> Tag {
        Tag::new(t).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_query_read_binds_every_parameter_it_names() {
        let sql = Sql::new("s1", EventsLayout::Plain);
        let (text, params) = read_query_query(&sql, &Query::all(), Position::START, 10);
        assert_eq!(params.len(), 2);
        assert!(!text.contains("e.position IN (SELECT") && !text.contains("{matches}"));
        let q = Query {
            items: vec![
                QueryItem::new(["A"], [tag("k:1"), tag("k:2")]),
                QueryItem::new(["B", "C"], []),
            ],
        };
        let (text, params) = read_query_query(&sql, &q, Position(5), 10);
        // $3 first tag, $4 tags, $5 types of item 1, $6 types of item 2.
        assert_eq!(params.len(), 6);
        assert!(text.contains("\"s1\".event_tags t WHERE t.tag = $3"));
        assert!(text.contains("e.position IN (SELECT"));
        assert!(text.contains("x.event_type = ANY($6::text[])"));
        assert!(text.contains("e.tags @> $4::text[] AND e.event_type = ANY($5::text[])"));
        // An item that matches everything: no candidates, and no tag
        // parameter left unbound.
        let every = Query {
            items: vec![
                QueryItem::new(Vec::<String>::new(), [tag("k:1")]),
                QueryItem::default(),
            ],
        };
        let (text, params) = read_query_query(&sql, &every, Position(5), 10);
        assert_eq!(params.len(), 3);
        assert!(!text.contains("e.position IN (SELECT") && text.contains("$3::text[]"));
    }
}
