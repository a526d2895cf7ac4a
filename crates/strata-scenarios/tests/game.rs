//! Game state: the life cycle and move rules
//! (given/when/then), replay to any tick, and many games processed by a
//! partitioned parallel event processor with each game's order kept.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::processor::EventHandler;
use strata::testing::{given, given_no_events};
use strata::{
    Aggregate, AsOf, CommandMeta, Direction, EventProcessor, EventStore, MemoryCheckpointStore,
    MemoryStore, ProcessorConfig, Repository,
};
use strata_scenarios::game::{
    spawn_point, BoardsHandler, Game, GameCommand, GameError, GameEvent, GameState, Point,
    BOARD_HEIGHT, BOARD_WIDTH, GAME_EVENT_TYPES, MAX_PLAYERS,
};

fn joined(player: &str) -> GameEvent {
    GameEvent::PlayerJoined {
        player_id: player.into(),
        game_id: "g1".into(),
    }
}

fn join(player: &str) -> GameCommand {
    GameCommand::Join {
        game_id: "g1".into(),
        player_id: player.into(),
    }
}

fn changed(state: GameState) -> GameEvent {
    GameEvent::GameStateChanged {
        game_id: "g1".into(),
        new_state: state,
    }
}

fn mv(player: &str, x: u16, y: u16) -> GameCommand {
    GameCommand::Move {
        player_id: player.into(),
        position: Point { x, y },
    }
}

fn moved(player: &str, x: u16, y: u16) -> GameEvent {
    GameEvent::PlayerMoved {
        player_id: player.into(),
        position: Point { x, y },
    }
}

fn running() -> Vec<GameEvent> {
    vec![joined("ada"), joined("bo"), changed(GameState::Running)]
}

#[test]
fn players_join_the_lobby_up_to_the_cap() {
    given_no_events::<Game>()
        .when(join("ada"))
        .then_expect_events([joined("ada")])
        .then_state(|g| {
            assert_eq!(g.state(), GameState::Lobby);
            assert_eq!(g.players()[0].at, spawn_point(0));
        });
    let full: Vec<GameEvent> = ["a", "b", "c", "d"].into_iter().map(joined).collect();
    assert_eq!(full.len(), MAX_PLAYERS);
    given::<Game>(full)
        .when(join("e"))
        .then_expect_error(GameError::Full);
    given::<Game>([joined("ada")])
        .when(join("ada"))
        .then_expect_error(GameError::AlreadyJoined("ada".into()));
    given::<Game>([joined("ada")])
        .when(GameCommand::Join {
            game_id: "other".into(),
            player_id: "bo".into(),
        })
        .then_expect_error(GameError::WrongGame {
            expected: "g1".into(),
            got: "other".into(),
        });
    given_no_events::<Game>()
        .when(join(""))
        .then_expect_error(GameError::InvalidId(String::new()));
}

#[test]
fn the_life_cycle_is_lobby_running_finished() {
    given::<Game>([joined("ada")])
        .when(GameCommand::Start)
        .then_expect_error(GameError::TooFewPlayers { players: 1 });
    given::<Game>([joined("ada"), joined("bo")])
        .when(GameCommand::Start)
        .then_expect_events([changed(GameState::Running)])
        .and_when(GameCommand::Finish)
        .then_expect_events([changed(GameState::Finished)])
        .then_state(|g| assert_eq!(g.state(), GameState::Finished));
    given::<Game>([joined("ada"), joined("bo")])
        .when(GameCommand::Finish)
        .then_expect_error(GameError::InvalidTransition {
            from: GameState::Lobby,
            to: GameState::Finished,
        });
    given::<Game>(running())
        .when(GameCommand::Start)
        .then_expect_error(GameError::InvalidTransition {
            from: GameState::Running,
            to: GameState::Running,
        });
    let mut finished = running();
    finished.push(changed(GameState::Finished));
    given::<Game>(finished.clone())
        .when(GameCommand::Start)
        .then_expect_error(GameError::InvalidTransition {
            from: GameState::Finished,
            to: GameState::Running,
        });
    given::<Game>(finished.clone())
        .when(join("cy"))
        .then_expect_error(GameError::NotInLobby {
            state: GameState::Finished,
        });
    given::<Game>(running())
        .when(join("cy"))
        .then_expect_error(GameError::NotInLobby {
            state: GameState::Running,
        });
    given::<Game>(finished)
        .when(mv("ada", 1, 0))
        .then_expect_error(GameError::NotRunning {
            state: GameState::Finished,
        });
}

#[test]
fn moves_only_while_running_inside_the_board_onto_free_squares() {
    given::<Game>([joined("ada"), joined("bo")])
        .when(mv("ada", 1, 0))
        .then_expect_error(GameError::NotRunning {
            state: GameState::Lobby,
        });
    given::<Game>(running())
        .when(mv("ada", 1, 1))
        .then_expect_events([moved("ada", 1, 1)])
        .then_state(|g| {
            assert_eq!(g.players()[0].at, Point { x: 1, y: 1 });
            assert_eq!(g.players()[0].moves, 1);
        });
    given::<Game>(running())
        .when(mv("ada", BOARD_WIDTH, 0))
        .then_expect_error(GameError::OffBoard(Point {
            x: BOARD_WIDTH,
            y: 0,
        }));
    given::<Game>(running())
        .when(mv("ada", 0, BOARD_HEIGHT))
        .then_expect_error(GameError::OffBoard(Point {
            x: 0,
            y: BOARD_HEIGHT,
        }));
    let bo_at = spawn_point(1);
    given::<Game>(running())
        .when(mv("ada", bo_at.x, bo_at.y))
        .then_expect_error(GameError::Occupied(bo_at, "bo".into()));
    given::<Game>(running())
        .when(mv("zed", 1, 1))
        .then_expect_error(GameError::UnknownPlayer("zed".into()));
    given::<Game>(running())
        .when(mv("ada", 0, 0))
        .then_expect_no_events();
}

/// Plays game `id` with random legal-looking commands (some refused).
async fn play(repo: &Repository<Game, MemoryStore>, id: &str, rng: &mut StdRng, moves: usize) {
    for p in 0..rng.gen_range(2..=MAX_PLAYERS) {
        let join = GameCommand::Join {
            game_id: id.into(),
            player_id: format!("p{p}"),
        };
        repo.execute(id, join, CommandMeta::new()).await.unwrap();
    }
    repo.execute(id, GameCommand::Start, CommandMeta::new())
        .await
        .unwrap();
    for _ in 0..moves {
        let command = GameCommand::Move {
            player_id: format!("p{}", rng.gen_range(0..2)),
            position: Point {
                x: rng.gen_range(0..BOARD_WIDTH + 1),
                y: rng.gen_range(0..BOARD_HEIGHT),
            },
        };
        let _ = repo.execute(id, command, CommandMeta::new()).await;
    }
}

#[tokio::test]
async fn replay_to_any_tick_is_the_fold_of_the_first_events() {
    let store = MemoryStore::new();
    let repo = Repository::<Game, _>::new(store.clone());
    let mut rng = StdRng::seed_from_u64(3);
    play(&repo, "g1", &mut rng, 40).await;
    repo.execute("g1", GameCommand::Finish, CommandMeta::new())
        .await
        .unwrap();

    let stream = Repository::<Game, MemoryStore>::stream_id("g1").unwrap();
    let recorded = store
        .read_stream(&stream, 1, 1_000, Direction::Forward)
        .await
        .unwrap();
    let events: Vec<GameEvent> = recorded
        .iter()
        .map(|r| strata::event::decode(&r.event_type, &r.data).unwrap())
        .collect();
    let last = events.len() as u64;
    for tick in 0..=last {
        let then = repo.load_as_of("g1", AsOf::Version(tick)).await.unwrap();
        let want = Game::from_events(&events[..tick as usize]);
        assert_eq!(then.version, tick);
        assert_eq!(then.state, want, "tick {tick}");
        assert_eq!(then.state.ticks(), tick);
        assert_eq!(then.state.render(), want.render());
    }
    let end = repo.load_as_of("g1", AsOf::Version(last)).await.unwrap();
    assert_eq!(end.state.state(), GameState::Finished);
    let board = end.state.render();
    assert!(board.contains(&format!("tick {last}")));
    // One letter per player on the board.
    for (i, _) in end.state.players().iter().enumerate() {
        let letter = char::from(b'A' + i as u8);
        let on_board: usize = board
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.matches(letter).count())
            .sum();
        assert_eq!(on_board, 1, "{letter} once on\n{board}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_processor_keeps_each_games_order() {
    const GAMES: usize = 40;
    let store = MemoryStore::new();
    let repo = Repository::<Game, _>::new(store.clone());
    let mut rng = StdRng::seed_from_u64(11);
    let ids: Vec<String> = (0..GAMES).map(|g| format!("g{g}")).collect();
    // Interleave the games in `$all`: a few commands of each in turn.
    for id in &ids {
        let join = |p: &str| GameCommand::Join {
            game_id: id.clone(),
            player_id: p.into(),
        };
        repo.execute(id, join("p0"), CommandMeta::new())
            .await
            .unwrap();
    }
    for id in &ids {
        let join = GameCommand::Join {
            game_id: id.clone(),
            player_id: "p1".into(),
        };
        repo.execute(id, join, CommandMeta::new()).await.unwrap();
        repo.execute(id, GameCommand::Start, CommandMeta::new())
            .await
            .unwrap();
    }

    let boards = Arc::new(BoardsHandler::new());
    let mut processor = EventProcessor::new(
        "game-boards",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: 4,
        batch_events: 8,
        page_events: 64,
        ..Default::default()
    });
    for t in GAME_EVENT_TYPES {
        processor = processor.on_shared(t, Arc::clone(&boards) as Arc<dyn EventHandler>);
    }

    for round in 0..3 {
        for _ in 0..30 {
            for id in &ids {
                let command = GameCommand::Move {
                    player_id: format!("p{}", rng.gen_range(0..2)),
                    position: Point {
                        x: rng.gen_range(0..BOARD_WIDTH),
                        y: rng.gen_range(0..BOARD_HEIGHT),
                    },
                };
                let _ = repo.execute(id, command, CommandMeta::new()).await;
            }
        }
        let report = processor.catch_up().await.unwrap();
        assert!(report.events > 0, "round {round}");
        assert_eq!(boards.out_of_order(), 0, "round {round}");
        assert!(processor.parked(10).await.unwrap().is_empty());
        for id in &ids {
            let want = repo.load(id).await.unwrap();
            let board = boards.board(&format!("game-{id}")).unwrap();
            assert_eq!(board.version, want.version, "{id} round {round}");
            assert_eq!(board.game, want.state, "{id} round {round}");
        }
    }
    assert_eq!(boards.games(), GAMES);
}

#[tokio::test]
async fn the_boards_handler_refuses_a_game_event_out_of_order() {
    let store = MemoryStore::new();
    let repo = Repository::<Game, _>::new(store.clone());
    let mut rng = StdRng::seed_from_u64(5);
    play(&repo, "g1", &mut rng, 5).await;
    let stream = Repository::<Game, MemoryStore>::stream_id("g1").unwrap();
    let recorded = store
        .read_stream(&stream, 1, 100, Direction::Forward)
        .await
        .unwrap();
    let boards = BoardsHandler::new();
    boards.handle(&recorded[0]).await.unwrap();
    assert!(boards.handle(&recorded[2]).await.is_err());
    assert_eq!(boards.out_of_order(), 1);
    boards.handle(&recorded[1]).await.unwrap();
    boards.handle(&recorded[1]).await.unwrap(); // again: ignored
    boards.handle(&recorded[2]).await.unwrap();
    assert_eq!(boards.board("game-g1").unwrap().version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_parallel_processor_keeps_each_games_order_live() {
    const GAMES: usize = 20;
    let store = MemoryStore::new();
    let repo = Repository::<Game, _>::new(store.clone());
    let boards = Arc::new(BoardsHandler::new());
    let mut processor = EventProcessor::new(
        "game-boards-live",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: 4,
        batch_events: 4,
        ..Default::default()
    });
    for t in GAME_EVENT_TYPES {
        processor = processor.on_shared(t, Arc::clone(&boards) as Arc<dyn EventHandler>);
    }
    // Started before any game exists: everything arrives live.
    let running = processor.spawn();
    let mut rng = StdRng::seed_from_u64(23);
    let ids: Vec<String> = (0..GAMES).map(|g| format!("live{g}")).collect();
    for id in &ids {
        for p in ["p0", "p1"] {
            let join = GameCommand::Join {
                game_id: id.clone(),
                player_id: p.into(),
            };
            repo.execute(id, join, CommandMeta::new()).await.unwrap();
        }
        repo.execute(id, GameCommand::Start, CommandMeta::new())
            .await
            .unwrap();
    }
    for _ in 0..20 {
        for id in &ids {
            let command = GameCommand::Move {
                player_id: format!("p{}", rng.gen_range(0..2)),
                position: Point {
                    x: rng.gen_range(0..BOARD_WIDTH),
                    y: rng.gen_range(0..BOARD_HEIGHT),
                },
            };
            let _ = repo.execute(id, command, CommandMeta::new()).await;
        }
    }
    let head = store.head_position().await.unwrap();
    // A bound, not a timing assert: it returns as soon as the head is reached.
    let reached = running
        .wait_for(head, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        reached >= head,
        "the processor stopped at {reached}, head {head}"
    );
    assert_eq!(boards.out_of_order(), 0);
    assert!(running.parked(10).await.unwrap().is_empty());
    for id in &ids {
        let want = repo.load(id).await.unwrap();
        let board = boards.board(&format!("game-{id}")).unwrap();
        assert_eq!(
            (board.version, &board.game),
            (want.version, &want.state),
            "{id}"
        );
    }
    running.stop().await.unwrap();
}
