//! `PgGroups` under `pinned` claims past a long run of one stream's events:
//! only a stream's first unsettled row is leasable, so claims go on while
//! the group holds fewer than `GROUP_PINNED_WINDOW` rows, and a consumer's
//! reads reach every stream's first event, not only the first run's.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{pg_available, SchemaGuard};
use strata_core::group::{
    ConsumerGroups, ConsumerId, GroupName, GroupSettings, GroupSource, Strategy,
};
use strata_core::{EventStore, ExpectedVersion, NewEvent, ReadFilter, StreamId};
use strata_postgres::{PgGroups, PostgresStore, GROUP_CLAIM_EVENTS, GROUP_PINNED_WINDOW};

const STREAMS: usize = 8;
/// Each stream's events, appended in one run: longer than a claim.
const RUN: usize = GROUP_CLAIM_EVENTS + 44;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_reads_reach_every_stream_past_long_runs_of_one_stream() {
    if !pg_available("pinned_reads_reach_every_stream_past_long_runs_of_one_stream") {
        return;
    }
    assert!(((STREAMS * RUN) as i64) < GROUP_PINNED_WINDOW);
    let schema = SchemaGuard::new("grp");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    for s in 0..STREAMS {
        let events = (0..RUN)
            .map(|i| NewEvent::json("T", &serde_json::json!({ "i": i })).unwrap())
            .collect();
        store
            .append(
                &StreamId::new(format!("run-{s}")).unwrap(),
                ExpectedVersion::Any,
                events,
            )
            .await
            .unwrap();
    }
    let groups = PgGroups::new(store.clone());
    let g = GroupName::new("g").unwrap();
    let settings = GroupSettings {
        strategy: Strategy::Pinned,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    };
    groups.put_group(&g, settings).await.unwrap();
    let c = ConsumerId::new("c").unwrap();
    // Nothing is acked: each read can only add the first event of a stream
    // not yet held, which a claim must have reached.
    let mut held = BTreeSet::new();
    for _ in 0..4 * STREAMS {
        for d in groups
            .read(&g, &c, 100, Duration::from_millis(50))
            .await
            .unwrap()
        {
            assert_eq!(d.event.version, 1, "only a stream's first event");
            assert!(held.insert(d.event.stream_id.as_str().to_owned()));
        }
        if held.len() == STREAMS {
            break;
        }
    }
    assert_eq!(held.len(), STREAMS, "streams reached: {held:?}");
}
