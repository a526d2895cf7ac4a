//! The v2 appends over a memory store: what is written, what is answered,
//! and what is refused.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use strata_core::{Direction, EventStore, Limits, MemoryStore, ReadFilter, StreamId};
use tonic::{Code, Status};

use super::append_records::append_records;
use super::session::append_session;
use crate::auth::Caller;
use crate::proto::google::rpc;
use crate::proto::v2::consistency_check::{StreamStateCheck, Type as Check};
use crate::proto::v2::errors::{
    AppendConsistencyViolationErrorDetails, StreamRevisionConflictErrorDetails,
};
use crate::proto::v2::{
    AppendRecord, AppendRecordsRequest, AppendRequest, AppendSessionResponse, ConsistencyCheck,
    SchemaFormat, SchemaInfo,
};

fn record(stream: &str, n: u32) -> AppendRecord {
    AppendRecord {
        record_id: None,
        properties: BTreeMap::from([(
            "k".to_string(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(format!("v{n}"))),
            },
        )]),
        schema: Some(SchemaInfo {
            format: SchemaFormat::Json as i32,
            name: "Counted".into(),
            id: None,
        }),
        data: Bytes::from(format!("{{\"n\":{n}}}")),
        stream: stream.to_string(),
    }
}

fn request(stream: &str, expected: Option<i64>, ns: &[u32]) -> AppendRequest {
    AppendRequest {
        stream: stream.to_string(),
        records: ns.iter().map(|n| record("", *n)).collect(),
        expected_revision: expected,
    }
}

async fn session(
    store: &MemoryStore,
    requests: Vec<AppendRequest>,
) -> Result<AppendSessionResponse, Status> {
    let stream = futures::stream::iter(requests.into_iter().map(Ok));
    append_session(store, &Caller::Open, stream).await
}

async fn numbers(store: &MemoryStore, stream: &str) -> Vec<String> {
    let stream = StreamId::new(stream).unwrap();
    match store.read_stream(&stream, 1, 100, Direction::Forward).await {
        Ok(events) => events
            .iter()
            .map(|e| String::from_utf8(e.data.to_vec()).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn detail<M: Message + Default>(s: &Status) -> M {
    let rich = rpc::Status::decode(s.details()).unwrap();
    M::decode(&rich.details.unwrap().value[..]).unwrap()
}

#[tokio::test]
async fn a_session_appends_every_stream_and_answers_revisions_and_positions() {
    let store = MemoryStore::new();
    let answer = session(
        &store,
        vec![
            request("a-1", Some(-1), &[0, 1]),
            request("b-1", None, &[2]),
        ],
    )
    .await
    .unwrap();
    assert_eq!(answer.output.len(), 2);
    assert_eq!(answer.output[0].stream, "a-1");
    assert_eq!(answer.output[0].stream_revision, 1, "0-based");
    assert_eq!(answer.output[1].stream, "b-1");
    assert_eq!(answer.output[1].stream_revision, 0);
    let all = store
        .read_all(strata_core::Position(0), 10, &ReadFilter::all())
        .await
        .unwrap();
    let last = i64::try_from(all.last().unwrap().position.0).unwrap();
    assert_eq!(answer.position, last);
    assert_eq!(answer.output[1].position, Some(last));
    assert_eq!(
        answer.output[0].position,
        Some(i64::try_from(all[1].position.0).unwrap())
    );
    assert_eq!(numbers(&store, "a-1").await, ["{\"n\":0}", "{\"n\":1}"]);
    assert_eq!(
        all[0].metadata.extra[crate::mapping::CUSTOM_METADATA_KEY],
        r#"{"k":"v0"}"#
    );

    let again = session(
        &store,
        vec![
            request("a-1", Some(1), &[3]),
            request("b-1", Some(-4), &[4]),
        ],
    )
    .await
    .unwrap();
    assert_eq!(again.output[0].stream_revision, 2);
    assert_eq!(again.output[1].stream_revision, 1);
}

#[tokio::test]
async fn a_failed_guard_on_one_stream_writes_nothing_anywhere() {
    let store = MemoryStore::new();
    session(&store, vec![request("a-1", None, &[0])])
        .await
        .unwrap();
    let e = session(
        &store,
        vec![
            request("b-1", Some(-1), &[1]),
            request("a-1", Some(5), &[2]),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let d: StreamRevisionConflictErrorDetails = detail(&e);
    assert_eq!(d.stream, "a-1");
    assert_eq!((d.expected_revision, d.actual_revision), (5, 0));
    assert!(numbers(&store, "b-1").await.is_empty());
    assert_eq!(numbers(&store, "a-1").await.len(), 1);
}

#[tokio::test]
async fn a_session_refuses_what_the_store_cannot_write_as_one_append() {
    let store = MemoryStore::new();
    let e = session(&store, vec![]).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "no requests");

    let e = session(
        &store,
        vec![request("a-1", None, &[0]), request("a-1", None, &[1])],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "a stream twice: {e:?}");

    let e = session(&store, vec![request("a-1", None, &[])])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "no records");

    let mut mixed = request("a-1", None, &[0]);
    mixed.records[0].stream = "b-1".into();
    let e = session(&store, vec![mixed]).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "a record for another stream"
    );
    assert!(numbers(&store, "a-1").await.is_empty());
}

#[tokio::test]
async fn a_session_is_held_to_the_store_limits() {
    let limits = Limits {
        max_event_bytes: 64,
        max_append_bytes: 100,
        max_streams_per_multi_append: 2,
        max_events_per_append: 3,
        ..Limits::default()
    };
    let store = MemoryStore::with_limits(limits);
    let mut big = request("a-1", None, &[0]);
    big.records[0].data = Bytes::from(vec![b'1'; 80]);
    let e = session(&store, vec![big]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let d: crate::proto::v2::errors::AppendRecordSizeExceededErrorDetails = detail(&e);
    assert_eq!((d.stream.as_str(), d.max_size), ("a-1", 64));
    assert_eq!(d.record_id, "00000000-0000-0000-0000-000000000000");

    let mut sizeable = request("a-1", None, &[0, 1]);
    for r in &mut sizeable.records {
        r.data = Bytes::from(vec![b'1'; 30]);
    }
    let e = session(&store, vec![sizeable]).await.unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "over the append's bytes: {e:?}");
    let d: crate::proto::v2::errors::AppendTransactionSizeExceededErrorDetails = detail(&e);
    assert_eq!(d.max_size, 100);

    let e = session(
        &store,
        vec![
            request("a-1", None, &[0]),
            request("b-1", None, &[1]),
            request("c-1", None, &[2]),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "three streams: {e:?}");

    let store = MemoryStore::with_limits(Limits {
        max_events_per_append: 3,
        ..Limits::default()
    });
    let e = session(&store, vec![request("a-1", None, &[0, 1, 2, 3])])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "four records: {e:?}");
}

#[tokio::test]
async fn a_session_writes_only_streams_the_caller_may_write() {
    let key = strata_server::ApiKey::new(
        "ops",
        &strata_server::sha256_hex("s3cret-key-value"),
        strata_server::Role::Write,
        vec!["a-".into()],
    )
    .unwrap();
    let caller = Caller::Key(key);
    let store = MemoryStore::new();
    let requests = vec![request("a-1", None, &[0]), request("b-1", None, &[1])];
    let stream = futures::stream::iter(requests.into_iter().map(Ok));
    let e = append_session(&store, &caller, stream).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(numbers(&store, "a-1").await.is_empty());

    let request = AppendRecordsRequest {
        records: vec![record("a-1", 0), record("b-1", 1)],
        checks: Vec::new(),
    };
    let e = append_records(&store, &caller, request).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(numbers(&store, "a-1").await.is_empty());
}

fn check(stream: &str, expected: i64) -> ConsistencyCheck {
    ConsistencyCheck {
        r#type: Some(Check::StreamState(StreamStateCheck {
            stream: stream.to_string(),
            expected_state: expected,
        })),
    }
}

#[tokio::test]
async fn records_are_grouped_per_stream_and_checks_guard_them() {
    let store = MemoryStore::new();
    let answer = append_records(
        &store,
        &Caller::Open,
        AppendRecordsRequest {
            records: vec![record("a-1", 0), record("b-1", 1), record("a-1", 2)],
            checks: vec![check("b-1", -1)],
        },
    )
    .await
    .unwrap();
    let revisions: Vec<(&str, i64)> = answer
        .revisions
        .iter()
        .map(|r| (r.stream.as_str(), r.revision))
        .collect();
    assert_eq!(revisions, [("a-1", 1), ("b-1", 0)]);
    assert_eq!(numbers(&store, "a-1").await, ["{\"n\":0}", "{\"n\":2}"]);
    let all = store
        .read_all(strata_core::Position(0), 10, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(answer.position, i64::try_from(all[2].position.0).unwrap());

    let e = append_records(
        &store,
        &Caller::Open,
        AppendRecordsRequest {
            records: vec![record("a-1", 3), record("b-1", 4)],
            checks: vec![check("a-1", 1), check("b-1", -1)],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let d: AppendConsistencyViolationErrorDetails = detail(&e);
    assert_eq!(d.violations.len(), 1);
    assert_eq!(d.violations[0].check_index, 1);
    assert_eq!(numbers(&store, "a-1").await.len(), 2, "nothing written");
}

#[tokio::test]
async fn a_check_on_a_stream_without_records_is_refused() {
    let store = MemoryStore::new();
    let e = append_records(
        &store,
        &Caller::Open,
        AppendRecordsRequest {
            records: vec![record("a-1", 0)],
            checks: vec![check("elsewhere-1", -1)],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    let e = append_records(
        &store,
        &Caller::Open,
        AppendRecordsRequest {
            records: vec![record("a-1", 0)],
            checks: vec![check("a-1", -1), check("a-1", -2)],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "two checks: {e:?}");
    let e = append_records(&store, &Caller::Open, AppendRecordsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "no records");
    assert!(numbers(&store, "a-1").await.is_empty());
}

#[tokio::test]
async fn a_tombstoned_stream_is_named_or_reported_by_its_check() {
    let store = MemoryStore::new();
    session(&store, vec![request("a-1", None, &[0])])
        .await
        .unwrap();
    let a = StreamId::new("a-1").unwrap();
    store
        .tombstone_stream(&a, strata_core::ExpectedVersion::Any)
        .await
        .unwrap();
    let e = session(&store, vec![request("a-1", None, &[1])])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let d: crate::proto::v2::errors::StreamTombstonedErrorDetails = detail(&e);
    assert_eq!(d.stream, "a-1");

    let e = append_records(
        &store,
        &Caller::Open,
        AppendRecordsRequest {
            records: vec![record("b-1", 0), record("a-1", 1)],
            checks: vec![check("b-1", -1), check("a-1", -2)],
        },
    )
    .await
    .unwrap_err();
    let d: AppendConsistencyViolationErrorDetails = detail(&e);
    assert_eq!(d.violations[0].check_index, 1);
    assert!(numbers(&store, "b-1").await.is_empty());
}
