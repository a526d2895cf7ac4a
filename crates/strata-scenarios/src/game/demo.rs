//! The game demo: many games played at once through a
//! repository, every board kept by a partitioned parallel event processor
//! (each game's order kept, games processed in parallel) and checked against
//! the games loaded from the store, and one game replayed to chosen ticks.
//!
//! Game `g` of run `run` lives in stream `game-{run}.{g}`; the play of each
//! game is generated from the seed and its index.
//!
//! ```
//! use std::sync::Arc;
//! use strata_scenarios::game::demo::{run, DemoOptions};
//! use strata::{EventStore, MemoryStore};
//!
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//! let report = rt.block_on(async {
//!     let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
//!     run(store, &DemoOptions { games: 20, moves: 10, ..DemoOptions::default() }).await
//! }).unwrap();
//! assert_eq!(report.boards_checked, 20);
//! assert_eq!(report.out_of_order, 0);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{EventStore, MemoryCheckpointStore, Version};

use super::{
    BoardsHandler, Game, GameCommand, Point, BOARD_HEIGHT, BOARD_WIDTH, GAME_EVENT_TYPES,
    MAX_PLAYERS, MIN_PLAYERS,
};
use crate::demo::{
    check_range, fresh_run_id, per_second, CatchUp, DemoError, MAX_DEMO_CONCURRENCY,
};
use strata::command::CommandMeta;
use strata::error::AggregateError;
use strata::processor::{EventHandler, EventProcessor, ProcessorConfig};
use strata::repository::Repository;
use strata::time_travel::AsOf;

/// Most games one run may play.
pub const MAX_DEMO_GAMES: usize = 1_000_000;
/// Most move commands per game.
pub const MAX_MOVES_PER_GAME: usize = 10_000;
/// Most processor partitions (workers).
pub const MAX_DEMO_WORKERS: usize = 256;
/// Most ticks one replay may show.
pub const MAX_REPLAY_TICKS: usize = 32;
/// Parked events listed when checking the processor.
pub const PARKED_LISTED: usize = 10;

/// How to run the game demo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// Games to play (1 ..= [`MAX_DEMO_GAMES`]).
    pub games: usize,
    /// Move commands per game (0 ..= [`MAX_MOVES_PER_GAME`]); one in about
    /// thirteen goes off the board and is refused, and so is a move onto
    /// another player.
    pub moves: usize,
    /// Partitions of the event processor (1 ..= [`MAX_DEMO_WORKERS`]).
    pub workers: usize,
    /// Games played at once (1 ..= [`MAX_DEMO_CONCURRENCY`]).
    pub concurrency: usize,
    /// Seed of the generated play.
    pub seed: u64,
    /// Names this run's streams; must hold no `-`.
    pub run: String,
    /// Which game to replay (an index below `games`).
    pub replay_game: usize,
    /// Ticks to replay it to (at most [`MAX_REPLAY_TICKS`]; a tick past the
    /// end shows the end); empty: after the joins, the start, the middle
    /// and the end.
    pub ticks: Vec<Version>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            games: 1_000,
            moves: 50,
            workers: 4,
            concurrency: 256,
            seed: 7,
            run: fresh_run_id(),
            replay_game: 0,
            ticks: Vec::new(),
        }
    }
}

/// One game replayed to one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The tick asked for.
    pub tick: Version,
    /// The game as it was then.
    pub game: Game,
}

/// What the game demo did.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoReport {
    /// The run id.
    pub run: String,
    /// Games played.
    pub games: usize,
    /// Move commands per game.
    pub moves: usize,
    /// Commands sent.
    pub commands: u64,
    /// Commands refused by the game's rules, by design.
    pub refused: u64,
    /// Events written.
    pub events: u64,
    /// Time spent playing.
    pub play_elapsed: Duration,
    /// Processor partitions.
    pub workers: usize,
    /// The processor's catch-up.
    pub processed: CatchUp,
    /// Events that reached a board out of their game's order (must be 0).
    pub out_of_order: u64,
    /// Events the processor parked (must be 0).
    pub parked: usize,
    /// Boards checked against their games loaded from the store.
    pub boards_checked: usize,
    /// How long that check took.
    pub check_elapsed: Duration,
    /// The replayed game's id.
    pub replay_game: String,
    /// Its last tick.
    pub replay_end: Version,
    /// It at the ticks asked for.
    pub replay: Vec<Replayed>,
}

impl DemoReport {
    /// Games per second of playing.
    pub fn games_per_second(&self) -> f64 {
        per_second(self.games as u64, self.play_elapsed)
    }

    /// Events per second of playing.
    pub fn events_per_second(&self) -> f64 {
        per_second(self.events, self.play_elapsed)
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "game: {} games, {} moves each, {} processor workers, run `{}`",
            self.games, self.moves, self.workers, self.run
        )?;
        writeln!(
            f,
            "play: {} games, {} commands ({} refused), {} events in {:.2?}",
            self.games, self.commands, self.refused, self.events, self.play_elapsed
        )?;
        writeln!(
            f,
            "      {:.0} games/s, {:.0} commands/s, {:.0} events/s",
            self.games_per_second(),
            per_second(self.commands, self.play_elapsed),
            self.events_per_second()
        )?;
        writeln!(
            f,
            "process: {} over {} partitions; {} out of order, {} parked",
            self.processed, self.workers, self.out_of_order, self.parked
        )?;
        writeln!(
            f,
            "check: all {} boards equal their games loaded from the store ({:.2?})",
            self.boards_checked, self.check_elapsed
        )?;
        write!(
            f,
            "replay of game {} ({} ticks):",
            self.replay_game, self.replay_end
        )?;
        for r in &self.replay {
            write!(f, "\n{}", r.game.render().trim_end())?;
        }
        Ok(())
    }
}

type Repo = Repository<Game, Arc<dyn EventStore>>;

#[derive(Default)]
struct Counts {
    commands: u64,
    events: u64,
    refused: u64,
}

/// Plays game `id`: players join, it starts, players move (a move off the
/// board or onto another player is refused), it finishes.
async fn play(repo: &Repo, id: &str, seed: u64, moves: usize) -> Result<Counts, DemoError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = Counts::default();
    let players = rng.gen_range(MIN_PLAYERS..=MAX_PLAYERS);
    let mut commands: Vec<GameCommand> = (0..players)
        .map(|p| GameCommand::Join {
            game_id: id.to_owned(),
            player_id: format!("p{p}"),
        })
        .collect();
    commands.push(GameCommand::Start);
    for _ in 0..moves {
        commands.push(GameCommand::Move {
            player_id: format!("p{}", rng.gen_range(0..players)),
            // One column past the edge now and then: refused.
            position: Point {
                x: rng.gen_range(0..=BOARD_WIDTH),
                y: rng.gen_range(0..BOARD_HEIGHT),
            },
        });
    }
    commands.push(GameCommand::Finish);
    for command in commands {
        counts.commands += 1;
        match repo.execute(id, command, CommandMeta::new()).await {
            Ok(done) => counts.events += done.events.len() as u64,
            Err(AggregateError::Rejected(_)) => counts.refused += 1,
            Err(e) => return Err(DemoError::Command(format!("game {id}: {e}"))),
        }
    }
    Ok(counts)
}

fn check_options(options: &DemoOptions) -> Result<(), DemoError> {
    check_range("games", options.games, MAX_DEMO_GAMES)?;
    check_range("workers", options.workers, MAX_DEMO_WORKERS)?;
    check_range("concurrency", options.concurrency, MAX_DEMO_CONCURRENCY)?;
    if options.moves > MAX_MOVES_PER_GAME {
        return Err(DemoError::Options(format!(
            "moves must be at most {MAX_MOVES_PER_GAME}, got {}",
            options.moves
        )));
    }
    if options.replay_game >= options.games {
        return Err(DemoError::Options(format!(
            "the game to replay must be below {} (the number of games), got {}",
            options.games, options.replay_game
        )));
    }
    if options.ticks.len() > MAX_REPLAY_TICKS {
        return Err(DemoError::Options(format!(
            "at most {MAX_REPLAY_TICKS} ticks can be replayed, got {}",
            options.ticks.len()
        )));
    }
    if options.run.is_empty() || options.run.contains('-') {
        return Err(DemoError::Options(format!(
            "the run id must be non-empty and hold no `-`, got `{}`",
            options.run
        )));
    }
    Ok(())
}

/// Runs the game demo on `store` (see the module docs) and reports what
/// happened. Fails if a board differs from its game loaded from the store
/// or if an event reached the processor out of its game's order.
pub async fn run(
    store: Arc<dyn EventStore>,
    options: &DemoOptions,
) -> Result<DemoReport, DemoError> {
    check_options(options)?;
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(options.games));
    let ids: Arc<Vec<String>> = Arc::new(
        (0..options.games)
            .map(|g| format!("{}.{g}", options.run))
            .collect(),
    );

    let started = Instant::now();
    let counts = play_all(&repo, &ids, options).await?;
    let play_elapsed = started.elapsed();

    let checked = check_boards(store, &repo, &ids, options).await?;

    // Replay one game to a few ticks.
    let id = &ids[options.replay_game];
    let (replay_end, replay) = replay_game(&repo, id, options).await?;

    Ok(DemoReport {
        run: options.run.clone(),
        games: options.games,
        moves: options.moves,
        commands: counts.commands,
        refused: counts.refused,
        events: counts.events,
        play_elapsed,
        workers: options.workers,
        processed: CatchUp::of(&checked.processed),
        out_of_order: checked.out_of_order,
        parked: checked.parked,
        boards_checked: ids.len(),
        check_elapsed: checked.elapsed,
        replay_game: id.clone(),
        replay_end,
        replay,
    })
}

/// Plays the games, `concurrency` at a time, interleaved in `$all`.
async fn play_all(
    repo: &Arc<Repo>,
    ids: &Arc<Vec<String>>,
    options: &DemoOptions,
) -> Result<Counts, DemoError> {
    let step = options.concurrency;
    let mut tasks = Vec::with_capacity(step.min(options.games));
    for w in 0..step.min(options.games) {
        let (repo, ids) = (Arc::clone(repo), Arc::clone(ids));
        let (seed, moves) = (options.seed, options.moves);
        tasks.push(tokio::spawn(async move {
            let mut total = Counts::default();
            for g in (w..ids.len()).step_by(step) {
                let c = play(&repo, &ids[g], seed ^ ((g as u64) << 20), moves).await?;
                total.commands += c.commands;
                total.events += c.events;
                total.refused += c.refused;
            }
            Ok::<_, DemoError>(total)
        }));
    }
    let mut counts = Counts::default();
    for t in tasks {
        let c = t.await??;
        counts.commands += c.commands;
        counts.events += c.events;
        counts.refused += c.refused;
    }
    Ok(counts)
}

/// What the boards' check found.
struct BoardsChecked {
    processed: strata::CatchUpReport,
    out_of_order: u64,
    parked: usize,
    elapsed: Duration,
}

/// The boards, kept by a partitioned parallel processor, checked against
/// each game's stream. The processor reads every game of the store; the
/// check looks at this run's.
async fn check_boards(
    store: Arc<dyn EventStore>,
    repo: &Repo,
    ids: &[String],
    options: &DemoOptions,
) -> Result<BoardsChecked, DemoError> {
    let boards = Arc::new(BoardsHandler::new());
    let mut processor = EventProcessor::new(
        format!("game-boards-{}", options.run),
        store,
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: options.workers,
        ..Default::default()
    });
    for t in GAME_EVENT_TYPES {
        processor = processor.on_shared(t, Arc::clone(&boards) as Arc<dyn EventHandler>);
    }
    let processed = processor
        .catch_up()
        .await
        .map_err(|e| DemoError::Projection(e.to_string()))?;
    let parked = processor
        .parked(PARKED_LISTED)
        .await
        .map_err(|e| DemoError::Projection(e.to_string()))?;
    if boards.out_of_order() > 0 || !parked.is_empty() {
        return Err(DemoError::Check(format!(
            "{} game events arrived out of order and {} were parked",
            boards.out_of_order(),
            parked.len()
        )));
    }
    let check = Instant::now();
    for id in ids {
        let want = repo
            .load(id)
            .await
            .map_err(|e| DemoError::Command(format!("load game {id}: {e}")))?;
        let board = boards.board(want.stream.as_str()).ok_or_else(|| {
            DemoError::Check(format!("the processor kept no board for game {id}"))
        })?;
        if board.game != want.state || board.version != want.version {
            return Err(DemoError::Check(format!(
                "the board of game {id} (version {}) differs from its stream (version {})",
                board.version, want.version
            )));
        }
    }
    Ok(BoardsChecked {
        processed,
        out_of_order: boards.out_of_order(),
        parked: parked.len(),
        elapsed: check.elapsed(),
    })
}

/// Replays game `id` to the ticks of `options` (a few chosen ones when
/// none are given); returns the game's last version and the states.
async fn replay_game(
    repo: &Repo,
    id: &str,
    options: &DemoOptions,
) -> Result<(u64, Vec<Replayed>), DemoError> {
    let end = repo
        .load(id)
        .await
        .map_err(|e| DemoError::Command(format!("load game {id}: {e}")))?;
    let ticks = if options.ticks.is_empty() {
        let players = end.state.players().len() as u64;
        vec![
            players,
            players + 1,
            (players + 1 + end.version) / 2,
            end.version,
        ]
    } else {
        options.ticks.clone()
    };
    let mut replay = Vec::with_capacity(ticks.len());
    for tick in ticks {
        let then = repo
            .load_as_of(id, AsOf::Version(tick))
            .await
            .map_err(|e| DemoError::Command(format!("replay game {id} to tick {tick}: {e}")))?;
        replay.push(Replayed {
            tick,
            game: then.state,
        });
    }
    Ok((end.version, replay))
}
