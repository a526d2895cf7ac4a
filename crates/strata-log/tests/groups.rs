//! The consumer-group conformance suite: `LocalGroups` over the log store,
//! with a real close and reopen of the store where a case restarts.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::async_trait;
use strata_core::group::LocalGroups;
use strata_log::{Durability, LogConfig, LogStore};
use strata_testkit::groups::GroupsHarness;

/// How long a restart waits for the last handle on the store (a group's
/// feed task ending) before it gives up.
const RELEASE_PATIENCE: Duration = Duration::from_secs(10);

/// Opens log stores (flushed on every append) in fresh temporary
/// directories, shared through an `Arc` as an embedding program would.
#[derive(Default)]
pub struct LogGroupsHarness {
    dirs: parking_lot::Mutex<Vec<tempfile::TempDir>>,
}

#[async_trait]
impl GroupsHarness for LogGroupsHarness {
    type Store = Arc<LogStore>;
    type Groups = LocalGroups<Arc<LogStore>>;

    async fn open_store(&self) -> Arc<LogStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = LogConfig::new(dir.path()).durability(Durability::Always);
        self.dirs.lock().push(dir);
        Arc::new(LogStore::open(config).await.expect("open log store"))
    }

    async fn reopen_store(&self, mut store: Arc<LogStore>) -> Arc<LogStore> {
        let began = Instant::now();
        let store = loop {
            match Arc::try_unwrap(store) {
                Ok(s) => break s,
                Err(shared) => store = shared,
            }
            assert!(
                began.elapsed() < RELEASE_PATIENCE,
                "the store is still shared"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let path = store.dir().to_path_buf();
        store.close().await.expect("close log store");
        let config = LogConfig::new(path).durability(Durability::Always);
        Arc::new(LogStore::open(config).await.expect("reopen log store"))
    }

    async fn groups(&self, store: &Arc<LogStore>) -> LocalGroups<Arc<LogStore>> {
        LocalGroups::new(Arc::clone(store))
    }
}

strata_testkit::group_conformance_suite!(LogGroupsHarness::default());
