//! A trivially correct reference store, and the model-based property test
//! that compares a backend against it.
//!
//! [`Model`] keeps the whole contract's observable behaviour in a `Vec` and a
//! `BTreeMap`, synchronously, re-deciding everything by scanning: no indexes,
//! no shared rule code with the stores, nothing clever. The property test
//! ([`run_model_based_test`], or the
//! [`model_based_property_test!`](crate::model_based_property_test) macro)
//! generates random operation sequences, runs each against a fresh backend
//! store and the model, and demands that every answer agrees:
//!
//! - `Ok` values on every deterministic field (versions, ids, types, data,
//!   metadata, states, stream settings). Positions are only promised to be
//!   strictly increasing, so a backend position is compared by its rank:
//!   the test learns the backend position of each event the first time the
//!   backend shows it (an append's result, a read) and demands that every
//!   later answer gives the same one, in the model's order.
//! - errors by [`Error::kind`](strata_core::Error::kind), and for
//!   `WrongExpectedVersion`, `StreamNotFound` and `StreamDeleted` also by
//!   stream, expected and actual.
//!
//! Contract decisions the model encodes (see the crate's conformance cases):
//! input is validated before anything else; a tombstone is checked before
//! idempotency, and idempotency before the guard; a retry is any run of
//! recorded ids that are consecutive versions of the target stream, in order,
//! with no new event; deletes and tombstones add nothing to `$all`. Stream
//! metadata, retention and erasure follow the `lifecycle` module's rules;
//! erasure is tested only on a store that supports it (asked once per run).
//! Events carry tags (kept as sets); query reads and conditional appends
//! follow the `dcb` module's rules: an exact retry answers without the
//! condition, and a failed stream guard wins over a failed condition.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how the property test reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

mod dcb;
mod dcb_ops;
mod lifecycle;
mod ops;
mod reference;
mod run;

use ops::gen_case;
use run::run_case;

use proptest::test_runner::{Config as ProptestConfig, TestError, TestRunner};
use strata_core::{Error, EventStore, ExpectedVersion, StreamId};

use crate::conformance::StoreHarness;

pub use reference::{Model, ModelAppend, ModelError, ModelEvent, ModelStream};

/// Cases the property test runs unless `PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 256;

/// Most operations in one generated sequence.
pub const MAX_OPS: usize = 30;

/// The number of cases: `PROPTEST_CASES` if set and valid, else [`DEFAULT_CASES`].
pub fn cases_from_env() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs the model-based property test with [`cases_from_env`] cases against
/// the harness `make_harness` builds (inside the test's tokio runtime).
pub fn run_model_based_test<H, F>(make_harness: F)
where
    H: StoreHarness,
    F: FnOnce() -> H,
{
    run_model_based_test_with_cases(cases_from_env(), make_harness);
}

/// Runs the model-based property test with `cases` cases. Each case opens a
/// fresh store, runs up to [`MAX_OPS`] random operations against it and the
/// [`Model`], and fails on the first disagreement, printing the shrunk input.
pub fn run_model_based_test_with_cases<H, F>(cases: u32, make_harness: F)
where
    H: StoreHarness,
    F: FnOnce() -> H,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime for the property test");
    let harness = {
        let _entered = rt.enter();
        make_harness()
    };
    let config = ProptestConfig {
        cases,
        // The cases live in this library, not in the caller's source tree:
        // the failing input is printed instead of persisted.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let erase = rt.block_on(erase_supported(&harness));
    let mut runner = TestRunner::new(config);
    let result = runner.run(&gen_case(), |(id_seed, ops)| {
        rt.block_on(run_case(&harness, erase, id_seed, &ops))
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (seed, ops))) => panic!(
            "model-based test failed: {reason}\nminimal failing input (id seed {seed}):\n{ops:#?}"
        ),
        Err(TestError::Abort(reason)) => panic!("model-based test aborted: {reason}"),
    }
}

/// Whether the harness's store erases streams, asked once of a store of its
/// own: erasing a never-written stream must succeed, or fail with
/// `Unsupported` (then the cases send no `Erase` op, so a backend without
/// erasure still runs the rest; once it supports it, it is tested).
async fn erase_supported<H: StoreHarness>(harness: &H) -> bool {
    let store = harness.open().await;
    let probe = StreamId::new("probe-1").expect("valid stream name");
    match store.erase_stream(&probe, ExpectedVersion::Any).await {
        Ok(()) => true,
        Err(Error::Unsupported { what }) => {
            eprintln!("model-based test: the store does not support {what}; Erase ops are skipped");
            false
        }
        Err(e) => panic!("model-based test: erasing a never-written stream failed: {e:?}"),
    }
}

/// Expands into a `#[test] fn model_based_property_test()` that runs
/// [`run_model_based_test`](crate::model::run_model_based_test) against the
/// harness `$harness` builds (256 cases unless `PROPTEST_CASES` is set).
///
/// ```
/// strata_testkit::model_based_property_test!(strata_testkit::conformance::MemoryHarness);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! model_based_property_test {
    ($harness:expr $(,)?) => {
        #[test]
        fn model_based_property_test() {
            $crate::model::run_model_based_test(|| $harness);
        }
    };
}
