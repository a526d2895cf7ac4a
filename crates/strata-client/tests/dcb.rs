//! The client's DCB methods against a real server: a read, a decision
//! appended after its head, and the same decision again failing with the
//! typed conflict.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use strata_client::{Client, ClientError};
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{ExpectedVersion, NewEvent, Position, StreamId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_reads_appends_and_conflicts() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let course = Tag::new("course:c1").unwrap();
    let q = Query::new(vec![QueryItem::new(["Subscribed"], [course.clone()])]).unwrap();
    let read = client.dcb_read(&q, Position::START, 100).await.unwrap();
    assert!(read.events.is_empty());
    let cond = AppendCondition::new(q.clone(), Some(read.head));
    let event = |student: &str| {
        NewEvent::json("Subscribed", &serde_json::json!({}))
            .unwrap()
            .with_tags([
                course.clone(),
                Tag::new(format!("student:{student}")).unwrap(),
            ])
    };
    let audit = StreamId::new("audit-1").unwrap();
    let out = client
        .dcb_append(
            &[
                (None, event("s1")),
                (Some(audit.clone()), NewEvent::json("Noted", &1).unwrap()),
            ],
            Some(&cond),
            &[(audit.clone(), ExpectedVersion::NoStream)],
        )
        .await
        .unwrap();
    assert_eq!(out.streams[0].stream, "dcb-course:c1");
    assert_eq!(out.streams[1].stream, "audit-1");
    let again = client
        .dcb_append(&[(None, event("s2"))], Some(&cond), &[])
        .await;
    match again {
        Err(ClientError::ConditionFailed { position, .. }) => {
            assert_eq!(position.0, out.first_position)
        }
        other => panic!("expected a condition failure, got {other:?}"),
    }
    let read = client.dcb_read(&q, Position::START, 100).await.unwrap();
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.events[0].tags.len(), 2);
    let unconditional = client.dcb_append(&[(None, event("s3"))], None, &[]).await;
    assert!(unconditional.is_ok());
}
