//! The scenario demo drivers (`strata_scenarios::{trading,game,audit}::demo`)
//! on the memory store and on the log store: each runs, its own checks pass
//! and its report says what happened; runs repeat on the same store; the
//! audit verification names a tampered chain.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use strata::{
    Aggregate, Direction, EventStore, ExpectedVersion, MemoryStore, NewEvent, Repository,
};
use strata_log::{LogConfig, LogStore};
use strata_scenarios::audit::demo as audit_demo;
use strata_scenarios::audit::{verify_all_audit_chains, AuditLog, TamperKind};
use strata_scenarios::demo::{fresh_run_id, DemoError};
use strata_scenarios::game::demo as game_demo;
use strata_scenarios::trading::demo as trading_demo;

fn memory() -> Arc<dyn EventStore> {
    Arc::new(MemoryStore::new())
}

async fn log(dir: &Path) -> Arc<LogStore> {
    Arc::new(LogStore::open(LogConfig::new(dir)).await.unwrap())
}

async fn close(store: Arc<LogStore>) {
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the store is still shared");
    };
    store.close().await.unwrap();
}

fn trading(orders: usize) -> trading_demo::DemoOptions {
    trading_demo::DemoOptions {
        orders,
        concurrency: 16,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_runs_and_checks_itself_on_memory() {
    let report = trading_demo::run(memory(), &trading(600)).await.unwrap();
    assert_eq!(report.orders, 600);
    assert_eq!(report.events, 600 + report.fills + report.cancels);
    assert!(report.fills > 0 && report.cancels > 0 && report.refused > 0);
    assert_eq!(report.commands, report.events + report.refused);
    assert_eq!(report.book_projection.events, report.events);
    assert_eq!(report.positions_projection.events, report.events);
    assert_eq!(report.symbols, trading_demo::SYMBOLS.len());
    assert_eq!(report.past.orders, 300);
    assert_eq!(report.best_pnl.len(), trading_demo::TOP_TRADERS);
    let text = report.to_string();
    assert!(text.contains("write: 600 orders"), "{text}");
    assert!(text.contains("match a direct recomputation"), "{text}");
    assert!(text.contains("ACME as of"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_flow_depends_on_the_seed_not_the_concurrency() {
    let one = trading_demo::run(
        memory(),
        &trading_demo::DemoOptions {
            concurrency: 1,
            ..trading(300)
        },
    )
    .await
    .unwrap();
    let many = trading_demo::run(memory(), &trading(300)).await.unwrap();
    assert_eq!(
        (one.events, one.fills, one.cancels, one.refused),
        (many.events, many.fills, many.cancels, many.refused)
    );
    // The books depend on the flow only; PnL is marked at each symbol's
    // last fill in `$all`, whose order the concurrency does change.
    assert_eq!(one.top_of_book, many.top_of_book);
    assert_eq!(one.depth, many.depth);
    assert_eq!(one.traders, many.traders);
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_is_written() {
    let store = memory();
    for options in [
        trading_demo::DemoOptions {
            orders: 0,
            ..trading(1)
        },
        trading_demo::DemoOptions {
            concurrency: 0,
            ..trading(1)
        },
        trading_demo::DemoOptions {
            run: "a-b".into(),
            ..trading(1)
        },
    ] {
        let err = trading_demo::run(Arc::clone(&store), &options)
            .await
            .unwrap_err();
        assert!(matches!(err, DemoError::Options(_)), "{err}");
    }
    let err = game_demo::run(
        Arc::clone(&store),
        &game_demo::DemoOptions {
            games: 2,
            replay_game: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("below 2"), "{err}");
    let err = audit_demo::run(
        Arc::clone(&store),
        &audit_demo::DemoOptions {
            batch: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DemoError::Options(_)), "{err}");
    assert_eq!(
        store.head_position().await.unwrap(),
        strata::Position::START
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_runs_and_replays_on_memory() {
    let options = game_demo::DemoOptions {
        games: 40,
        moves: 12,
        workers: 3,
        concurrency: 8,
        replay_game: 5,
        ticks: vec![2, 1_000],
        ..Default::default()
    };
    let report = game_demo::run(memory(), &options).await.unwrap();
    assert_eq!(report.games, 40);
    assert_eq!(report.boards_checked, 40);
    assert_eq!((report.out_of_order, report.parked), (0, 0));
    assert_eq!(report.processed.events, report.events);
    // 2 to 4 joins, a start, the moves and a finish per game.
    let per_game = |players: u64| players + 1 + 12 + 1;
    assert!((40 * per_game(2)..=40 * per_game(4)).contains(&report.commands));
    assert!(report.events > 0 && report.events < report.commands);
    assert!(report.refused > 0, "some moves go off the board");
    assert_eq!(report.replay_game, format!("{}.5", options.run));
    assert_eq!(report.replay.len(), 2);
    assert_eq!(report.replay[0].tick, 2);
    assert_eq!(report.replay[0].game.players().len(), 2);
    // A tick past the end shows the end.
    assert_eq!(
        report.replay[1].game.state(),
        strata_scenarios::game::GameState::Finished
    );
    let text = report.to_string();
    assert!(text.contains("check: all 40 boards equal"), "{text}");
    assert!(text.contains("replay of game"), "{text}");
    assert!(text.contains("+------------+"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_runs_queries_and_verifies_on_memory() {
    let options = audit_demo::DemoOptions {
        actions: 1_003,
        logs: 3,
        batch: 40,
        verify: true,
        ..Default::default()
    };
    let report = audit_demo::run(memory(), &options).await.unwrap();
    assert_eq!(report.events, 1_003);
    assert_eq!(report.indexed.events, 1_003);
    assert_eq!(report.queries.len(), 3);
    let v = report.verification.as_ref().unwrap();
    assert_eq!(v.store.chains.len(), 3);
    assert!(v.store.is_intact());
    assert_eq!(v.store.intact_events(), 1_003);
    let kinds: Vec<&str> = v.copy_tampering.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["modified", "removed", "reordered"]);
    assert!(report.first_tampered().is_none());
    let text = report.to_string();
    assert!(
        text.contains("verify: 3 chains, 1003 events intact, 0 tampered"),
        "{text}"
    );
    assert!(text.contains("one event removed:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verification_names_a_tampered_chain_in_the_store() {
    let store = memory();
    audit_demo::run(
        Arc::clone(&store),
        &audit_demo::DemoOptions {
            actions: 200,
            logs: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // A forged "audit" stream: a copy of a chain with one event left out,
    // appended as if it were genuine.
    let all = verify_all_audit_chains(&*store).await.unwrap();
    let genuine = &all.chains[0].stream;
    let events = store
        .read_stream(genuine, 1, 200, Direction::Forward)
        .await
        .unwrap();
    let forged = Repository::<AuditLog, MemoryStore>::stream_id("forged").unwrap();
    let copy: Vec<NewEvent> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, e)| NewEvent::json_bytes(e.event_type.clone(), e.data.clone()))
        .collect();
    store
        .append(&forged, ExpectedVersion::NoStream, copy)
        .await
        .unwrap();

    let report = audit_demo::run(
        Arc::clone(&store),
        &audit_demo::DemoOptions {
            actions: 0,
            verify: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.events, 0);
    let (stream, bad) = report.first_tampered().unwrap();
    assert_eq!(stream, &forged);
    assert_eq!((bad.index, bad.version), (8, 8));
    assert!(
        matches!(
            bad.kind,
            TamperKind::OutOfSequence {
                expected: 8,
                found: 9
            }
        ),
        "{bad}"
    );
    let v = report.verification.as_ref().unwrap();
    assert_eq!(v.store.chains.len(), 3);
    assert_eq!(v.store.tampered().count(), 1);
    assert!(report.to_string().contains("TAMPERED"));
    assert_eq!(AuditLog::TYPE, "audit");
}

/// All three on one log store, twice (the second run must not be disturbed
/// by the first), then reopened: the audit chains still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_run_twice_on_one_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = log(dir.path()).await;
    for _ in 0..2 {
        let shared: Arc<dyn EventStore> = store.clone();
        let t = trading_demo::run(Arc::clone(&shared), &trading(200))
            .await
            .unwrap();
        assert_eq!(t.book_projection.events, t.events);
        let g = game_demo::run(
            Arc::clone(&shared),
            &game_demo::DemoOptions {
                games: 12,
                moves: 8,
                concurrency: 6,
                run: fresh_run_id(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(g.boards_checked, 12);
        let a = audit_demo::run(
            shared,
            &audit_demo::DemoOptions {
                actions: 300,
                logs: 2,
                batch: 25,
                verify: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(a.first_tampered().is_none());
    }
    close(store).await;
    let store = log(dir.path()).await;
    let all = verify_all_audit_chains(&*store).await.unwrap();
    assert_eq!(all.chains.len(), 4);
    assert!(all.is_intact());
    assert_eq!(all.intact_events(), 600);
    close(store).await;
}
