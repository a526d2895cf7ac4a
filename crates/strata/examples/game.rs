//! Game state (seed §6.2): many games played through a repository, their
//! boards kept by a parallel event processor (4 partitions by game, each
//! game's order kept), and one game replayed tick by tick as ASCII.
//!
//! ```text
//! cargo run -p strata --release --example game                       # memory:, 1,000 games
//! cargo run -p strata --release --example game -- --games 200 --store log:./game-data
//! ```
//!
//! Options: `--store memory:|log:DIR`, `--games N`, `--moves M` (move
//! commands per game, some refused), `--workers W` (processor partitions),
//! `--concurrency C` (games played at once, default 256), `--seed S`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::processor::EventHandler;
use strata::scenarios::game::{
    BoardsHandler, Game, GameCommand, Point, BOARD_HEIGHT, BOARD_WIDTH, GAME_EVENT_TYPES,
    MAX_PLAYERS, MIN_PLAYERS,
};
use strata::{
    AggregateError, AsOf, CommandMeta, EventProcessor, EventStore, MemoryCheckpointStore,
    MemoryStore, ProcessorConfig, Repository,
};
use strata_log::{LogConfig, LogStore};

const USAGE: &str = "usage: game [--store memory: | --store log:DIR] [--games N] [--moves M] \
                     [--workers W] [--concurrency C] [--seed S]";

struct Args {
    store: String,
    games: usize,
    moves: usize,
    workers: usize,
    concurrency: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        store: "memory:".to_owned(),
        games: 1_000,
        moves: 50,
        workers: 4,
        concurrency: 256,
        seed: 7,
    };
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value\n{USAGE}"))
        };
        let number = |v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{key}: {e}\n{USAGE}"))
        };
        match key.as_str() {
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--store" => out.store = value()?,
            "--games" => out.games = (number(value()?)? as usize).max(1),
            "--moves" => out.moves = number(value()?)? as usize,
            "--workers" => out.workers = (number(value()?)? as usize).max(1),
            "--concurrency" => out.concurrency = (number(value()?)? as usize).max(1),
            "--seed" => out.seed = number(value()?)?,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    if out.store != "memory:" && !out.store.starts_with("log:") {
        return Err(format!(
            "unknown store `{}`: use `memory:` or `log:DIR`\n{USAGE}",
            out.store
        ));
    }
    Ok(out)
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
async fn play(repo: &Repo, id: &str, seed: u64, moves: usize) -> Result<Counts, String> {
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
            Err(e) => return Err(format!("game {id}: {e}")),
        }
    }
    Ok(counts)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn open_store(spec: &str) -> Result<(Arc<dyn EventStore>, String), String> {
    match spec.strip_prefix("log:") {
        None => Ok((Arc::new(MemoryStore::new()), "run".to_owned())),
        Some(dir) => {
            let dir = if dir.is_empty() { "./game-data" } else { dir };
            let log = LogStore::open(LogConfig::new(dir))
                .await
                .map_err(|e| format!("cannot open `{spec}`: {e}"))?;
            Ok((
                Arc::new(log),
                format!("r{}", chrono::Utc::now().timestamp_millis()),
            ))
        }
    }
}

async fn main_inner(args: Args) -> Result<(), String> {
    let (store, run) = open_store(&args.store).await?;
    println!(
        "game example on `{}`: {} games, up to {} moves each, {} processor workers, run `{run}`",
        args.store, args.games, args.moves, args.workers
    );
    let repo = Arc::new(Repo::new(Arc::clone(&store)).with_cache(args.games));
    let ids: Arc<Vec<String>> = Arc::new((0..args.games).map(|g| format!("{run}.{g}")).collect());

    // Play the games, `concurrency` at a time, interleaved in `$all`.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.concurrency.min(args.games) {
        let (repo, ids) = (Arc::clone(&repo), Arc::clone(&ids));
        let (seed, moves, step) = (args.seed, args.moves, args.concurrency);
        tasks.push(tokio::spawn(async move {
            let mut total = Counts::default();
            for g in (w..ids.len()).step_by(step) {
                let c = play(&repo, &ids[g], seed ^ (g as u64) << 20, moves).await?;
                total.commands += c.commands;
                total.events += c.events;
                total.refused += c.refused;
            }
            Ok::<_, String>(total)
        }));
    }
    let mut counts = Counts::default();
    for t in tasks {
        let c = t.await.map_err(|e| e.to_string())??;
        counts.commands += c.commands;
        counts.events += c.events;
        counts.refused += c.refused;
    }
    let played = started.elapsed();
    println!(
        "\nplay: {} games, {} commands ({} refused), {} events in {:.2?}",
        args.games, counts.commands, counts.refused, counts.events, played
    );
    println!(
        "      {:.0} games/s, {:.0} commands/s, {:.0} events/s",
        rate(args.games as u64, played),
        rate(counts.commands, played),
        rate(counts.events, played)
    );

    // The boards, kept by a partitioned parallel processor.
    let boards = Arc::new(BoardsHandler::new());
    let mut processor = EventProcessor::new(
        "game-boards",
        Arc::clone(&store),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: args.workers,
        ..Default::default()
    });
    for t in GAME_EVENT_TYPES {
        processor = processor.on_shared(t, Arc::clone(&boards) as Arc<dyn EventHandler>);
    }
    let report = processor.catch_up().await.map_err(|e| e.to_string())?;
    let parked = processor.parked(10).await.map_err(|e| e.to_string())?;
    println!(
        "process: {} events over {} partitions in {:.2?} ({:.0} events/s); {} out of order, {} parked",
        report.events,
        args.workers,
        report.elapsed,
        report.events_per_second(),
        boards.out_of_order(),
        parked.len()
    );
    if boards.out_of_order() > 0 || !parked.is_empty() {
        return Err("a game's events arrived out of order".into());
    }
    let check = Instant::now();
    for id in ids.iter() {
        let want = repo.load(id).await.map_err(|e| e.to_string())?;
        let board = boards
            .board(want.stream.as_str())
            .ok_or_else(|| format!("no board for {id}"))?;
        if board.game != want.state || board.version != want.version {
            return Err(format!("the board of {id} differs from its stream"));
        }
    }
    println!(
        "check: all {} boards equal their games loaded from the store ({:.2?})",
        ids.len(),
        check.elapsed()
    );

    // Replay the first game to a few ticks.
    let id = &ids[0];
    let end = repo.load(id).await.map_err(|e| e.to_string())?;
    let players = end.state.players().len() as u64;
    let ticks = [
        players,
        players + 1,
        (players + 1 + end.version) / 2,
        end.version,
    ];
    println!("\nreplay of game {id} ({} ticks):", end.version);
    for tick in ticks {
        let then = repo
            .load_as_of(id, AsOf::Version(tick))
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", then.state.render());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match main_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("game example failed: {e}");
            ExitCode::FAILURE
        }
    }
}
