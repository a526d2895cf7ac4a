//! The conformance suite and the model-based property test against the log
//! store, in every durability mode, with small segments (so sealing, sealed
//! indexes and cross-segment reads are exercised), and with a real close and
//! reopen wherever a case calls `reopen`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use strata_core::async_trait;
use strata_log::{Durability, LogConfig, LogStore};
use strata_testkit::conformance::StoreHarness;

/// Opens log stores in fresh temporary directories.
pub struct LogHarness {
    durability: Durability,
    max_segment_bytes: u64,
    compression: Option<strata_log::compress::Compression>,
    dirs: parking_lot::Mutex<Vec<tempfile::TempDir>>,
}

impl LogHarness {
    fn new(durability: Durability, max_segment_bytes: u64) -> Self {
        LogHarness {
            durability,
            max_segment_bytes,
            compression: None,
            dirs: Default::default(),
        }
    }

    fn compressed(mut self) -> Self {
        self.compression = Some(strata_log::compress::Compression {
            level: 1,
            block_bytes: 8 * 1024,
        });
        self
    }

    fn config(&self, dir: PathBuf) -> LogConfig {
        LogConfig::new(dir)
            .durability(self.durability)
            .max_segment_bytes(self.max_segment_bytes)
            .compression(self.compression)
    }
}

#[async_trait]
impl StoreHarness for LogHarness {
    type Store = LogStore;

    async fn open(&self) -> LogStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        self.dirs.lock().push(dir);
        LogStore::open(self.config(path))
            .await
            .expect("open log store")
    }

    async fn reopen(&self, store: LogStore) -> LogStore {
        let path = store.dir().to_path_buf();
        store.close().await.expect("close log store");
        LogStore::open(self.config(path))
            .await
            .expect("reopen log store")
    }
}

const DEFAULT_SEGMENT: u64 = strata_log::config::DEFAULT_MAX_SEGMENT_BYTES;
const SMALL_SEGMENT: u64 = 2 * 1024 * 1024;

mod always {
    use super::*;
    strata_testkit::conformance_suite!(LogHarness::new(Durability::Always, DEFAULT_SEGMENT));
    strata_testkit::model_based_property_test!(LogHarness::new(
        Durability::Always,
        DEFAULT_SEGMENT
    ));
}

mod interval {
    use super::*;
    strata_testkit::conformance_suite!(LogHarness::new(
        Durability::Interval(Duration::from_millis(5)),
        DEFAULT_SEGMENT
    ));
}

mod none {
    use super::*;
    strata_testkit::conformance_suite!(LogHarness::new(Durability::None, DEFAULT_SEGMENT));
}

mod small_segments {
    use super::*;
    strata_testkit::conformance_suite!(LogHarness::new(Durability::None, SMALL_SEGMENT));
    strata_testkit::model_based_property_test!(LogHarness::new(Durability::None, 64 * 1024));
}

mod compressed_segments {
    use super::*;
    strata_testkit::conformance_suite!(
        LogHarness::new(Durability::None, SMALL_SEGMENT).compressed()
    );
    strata_testkit::model_based_property_test!(
        LogHarness::new(Durability::None, 64 * 1024).compressed()
    );
}

/// Dynamic consistency boundaries: tags, query reads and conditional
/// appends, checked by the writer inside group commit.
mod dcb_always {
    use super::*;
    strata_testkit::dcb_conformance_suite!(LogHarness::new(Durability::Always, DEFAULT_SEGMENT));
}

mod dcb_small_segments {
    use super::*;
    strata_testkit::dcb_conformance_suite!(LogHarness::new(Durability::None, 64 * 1024));
}
