//! Game state: a board game's players, moves and life cycle,
//! replayable to any tick.
//!
//! A [`Game`] lives in stream `game-{game_id}`. It starts in the
//! [`GameState::Lobby`], where up to [`MAX_PLAYERS`] players join (each
//! appears on its own corner of the board); it is started once at least
//! [`MIN_PLAYERS`] joined, which makes it [`GameState::Running`]: players
//! move to free squares inside the [`BOARD_WIDTH`] × [`BOARD_HEIGHT`] board;
//! then it is [`GameState::Finished`] for good.
//!
//! **A tick is a stream version**: the board after tick `n` is
//! `Repository::load_as_of(id, AsOf::Version(n))`, and [`Game::render`]
//! draws it in ASCII.
//!
//! [`BoardsHandler`] keeps every game's board up to date from `$all` as an
//! [`EventHandler`]. Run it in an [`EventProcessor`](strata::EventProcessor)
//! with several workers: a game's stream always lands in the same partition
//!, so its events arrive in order while games are processed in
//! parallel; the handler checks that each event is its game's next version
//! and fails (the event is parked) if not.
//!
//! ```
//! use strata_scenarios::game::{Game, GameCommand, GameError, GameState, Point};
//! use strata::Aggregate;
//!
//! let mut game = Game::default();
//! for player in ["ada", "bo"] {
//!     let join = GameCommand::Join { game_id: "g1".into(), player_id: player.into() };
//!     for e in game.handle(&join).unwrap() {
//!         game.apply(&e);
//!     }
//! }
//! let too_early = GameCommand::Move { player_id: "ada".into(), position: Point { x: 1, y: 0 } };
//! assert_eq!(game.handle(&too_early), Err(GameError::NotRunning { state: GameState::Lobby }));
//! for e in game.handle(&GameCommand::Start).unwrap() {
//!     game.apply(&e);
//! }
//! assert_eq!(game.handle(&too_early).unwrap().len(), 1);
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use strata_core::{async_trait, RecordedEvent, Version};

use strata::aggregate::Aggregate;
use strata::event::DomainEvent;
use strata::processor::{EventHandler, HandlerError};
use strata::upcast::Upcasters;

/// Squares per row.
pub const BOARD_WIDTH: u16 = 12;
/// Rows.
pub const BOARD_HEIGHT: u16 = 6;
/// Most players in one game (one per corner).
pub const MAX_PLAYERS: usize = 4;
/// Fewest players a game starts with.
pub const MIN_PLAYERS: usize = 2;
/// Longest game or player id, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// A square of the board; `(0, 0)` is the top left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    /// Column, from 0.
    pub x: u16,
    /// Row, from 0.
    pub y: u16,
}

impl Point {
    /// Whether the square is on the board.
    pub fn inside(self) -> bool {
        self.x < BOARD_WIDTH && self.y < BOARD_HEIGHT
    }
}

/// Where the `n`-th player to join starts: the corners, clockwise from the
/// top left.
pub fn spawn_point(n: usize) -> Point {
    let (right, bottom) = (BOARD_WIDTH - 1, BOARD_HEIGHT - 1);
    match n % MAX_PLAYERS {
        0 => Point { x: 0, y: 0 },
        1 => Point { x: right, y: 0 },
        2 => Point {
            x: right,
            y: bottom,
        },
        _ => Point { x: 0, y: bottom },
    }
}

/// A game's life cycle: Lobby → Running → Finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameState {
    /// Players join; nobody moves.
    #[default]
    Lobby,
    /// Players move; nobody joins.
    Running,
    /// Over: nothing happens any more.
    Finished,
}

/// A player on the board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub at: Point,
    /// How many moves it made.
    pub moves: u64,
}

/// A game's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Game {
    game_id: String,
    state: GameState,
    /// In join order; the first is `A` on the board.
    players: Vec<Player>,
    ticks: u64,
}

impl Game {
    /// Its id (empty before the first player joined).
    pub fn game_id(&self) -> &str {
        &self.game_id
    }
    /// Where it is in its life cycle.
    pub fn state(&self) -> GameState {
        self.state
    }
    /// The players, in join order.
    pub fn players(&self) -> &[Player] {
        &self.players
    }
    /// How many events built this state (the tick it shows).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }
    /// The player standing on `at`, if any.
    pub fn player_at(&self, at: Point) -> Option<&Player> {
        self.players.iter().find(|p| p.at == at)
    }

    /// The board as ASCII: a frame, each player as a letter (`A` joined
    /// first), free squares as `.`, then a legend.
    ///
    /// ```
    /// use strata_scenarios::game::{Game, GameEvent};
    /// use strata::Aggregate;
    /// let game = Game::from_events(&[GameEvent::PlayerJoined { player_id: "ada".into(), game_id: "g".into() }]);
    /// assert!(game.render().contains("|A...........|"));
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "game {} — {:?}, tick {}",
            self.game_id, self.state, self.ticks
        );
        let edge = format!("+{}+", "-".repeat(usize::from(BOARD_WIDTH)));
        let _ = writeln!(out, "{edge}");
        for y in 0..BOARD_HEIGHT {
            out.push('|');
            for x in 0..BOARD_WIDTH {
                let square = self
                    .players
                    .iter()
                    .position(|p| p.at == Point { x, y })
                    .map_or('.', letter);
                out.push(square);
            }
            out.push_str("|\n");
        }
        let _ = writeln!(out, "{edge}");
        for (i, p) in self.players.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}: {} at ({}, {}), {} moves",
                letter(i),
                p.id,
                p.at.x,
                p.at.y,
                p.moves
            );
        }
        out
    }
}

fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

/// What can be asked of a game.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum GameCommand {
    /// A player joins (the first join names the game).
    Join {
        /// The game's id.
        game_id: String,
        /// The player's id.
        player_id: String,
    },
    /// Lobby → Running.
    Start,
    /// A player moves to a square.
    Move {
        /// Who moves.
        player_id: String,
        /// Where to.
        position: Point,
    },
    /// Running → Finished.
    Finish,
}

/// What happened in a game (`GameEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameEvent {
    /// A player joined.
    PlayerJoined {
        /// Who.
        player_id: String,
        /// The game.
        game_id: String,
    },
    /// A player moved.
    PlayerMoved {
        /// Who.
        player_id: String,
        /// Where to.
        position: Point,
    },
    /// The game changed state.
    GameStateChanged {
        /// The game.
        game_id: String,
        /// Its new state.
        new_state: GameState,
    },
}

impl DomainEvent for GameEvent {}

/// Why a game refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GameError {
    /// Joining outside the lobby.
    #[error("players join in the lobby only; the game is {state:?}")]
    NotInLobby {
        /// The game's state.
        state: GameState,
    },
    /// A move outside a running game.
    #[error("players move only while the game runs; it is {state:?}")]
    NotRunning {
        /// The game's state.
        state: GameState,
    },
    /// A state change the life cycle does not allow.
    #[error("a game cannot go from {from:?} to {to:?}")]
    InvalidTransition {
        /// Its state.
        from: GameState,
        /// The refused state.
        to: GameState,
    },
    /// The game is full.
    #[error("the game is full ({MAX_PLAYERS} players)")]
    Full,
    /// Too few players to start.
    #[error("a game needs {MIN_PLAYERS} players to start; it has {players}")]
    TooFewPlayers {
        /// How many joined.
        players: usize,
    },
    /// A player joining twice.
    #[error("player `{0}` already joined")]
    AlreadyJoined(String),
    /// A join naming another game than the first join did.
    #[error("this is game `{expected}`, not `{got}`")]
    WrongGame {
        /// This game.
        expected: String,
        /// The one named.
        got: String,
    },
    /// A move by someone who did not join.
    #[error("player `{0}` is not in this game")]
    UnknownPlayer(String),
    /// An empty or over-long id.
    #[error("ids must be 1 to {MAX_ID_BYTES} bytes, got {0:?}")]
    InvalidId(String),
    /// A move off the board.
    #[error("({}, {}) is off the {BOARD_WIDTH}×{BOARD_HEIGHT} board", .0.x, .0.y)]
    OffBoard(Point),
    /// A move onto another player.
    #[error("({x}, {y}) is taken by `{who}`", x = .0.x, y = .0.y, who = .1)]
    Occupied(Point, String),
}

fn check_id(id: &str) -> Result<(), GameError> {
    if id.trim().is_empty() || id.len() > MAX_ID_BYTES {
        return Err(GameError::InvalidId(id.to_owned()));
    }
    Ok(())
}

impl Game {
    fn change_state(&self, to: GameState) -> Result<Vec<GameEvent>, GameError> {
        let allowed = matches!(
            (self.state, to),
            (GameState::Lobby, GameState::Running) | (GameState::Running, GameState::Finished)
        );
        if !allowed {
            return Err(GameError::InvalidTransition {
                from: self.state,
                to,
            });
        }
        Ok(vec![GameEvent::GameStateChanged {
            game_id: self.game_id.clone(),
            new_state: to,
        }])
    }
}

impl Aggregate for Game {
    const TYPE: &'static str = "game";
    type Command = GameCommand;
    type Event = GameEvent;
    type Error = GameError;

    fn handle(&self, command: &GameCommand) -> Result<Vec<GameEvent>, GameError> {
        match command {
            GameCommand::Join { game_id, player_id } => {
                if self.state != GameState::Lobby {
                    return Err(GameError::NotInLobby { state: self.state });
                }
                check_id(game_id)?;
                check_id(player_id)?;
                if !self.game_id.is_empty() && self.game_id != *game_id {
                    return Err(GameError::WrongGame {
                        expected: self.game_id.clone(),
                        got: game_id.clone(),
                    });
                }
                if self.players.iter().any(|p| p.id == *player_id) {
                    return Err(GameError::AlreadyJoined(player_id.clone()));
                }
                if self.players.len() >= MAX_PLAYERS {
                    return Err(GameError::Full);
                }
                Ok(vec![GameEvent::PlayerJoined {
                    player_id: player_id.clone(),
                    game_id: game_id.clone(),
                }])
            }
            GameCommand::Start => {
                if self.state == GameState::Lobby && self.players.len() < MIN_PLAYERS {
                    return Err(GameError::TooFewPlayers {
                        players: self.players.len(),
                    });
                }
                self.change_state(GameState::Running)
            }
            GameCommand::Finish => self.change_state(GameState::Finished),
            GameCommand::Move {
                player_id,
                position,
            } => {
                if self.state != GameState::Running {
                    return Err(GameError::NotRunning { state: self.state });
                }
                let Some(player) = self.players.iter().find(|p| p.id == *player_id) else {
                    return Err(GameError::UnknownPlayer(player_id.clone()));
                };
                if !position.inside() {
                    return Err(GameError::OffBoard(*position));
                }
                if player.at == *position {
                    return Ok(vec![]); // already there: nothing happens
                }
                if let Some(other) = self.player_at(*position) {
                    return Err(GameError::Occupied(*position, other.id.clone()));
                }
                Ok(vec![GameEvent::PlayerMoved {
                    player_id: player_id.clone(),
                    position: *position,
                }])
            }
        }
    }

    fn apply(&mut self, event: &GameEvent) {
        self.ticks += 1;
        match event {
            GameEvent::PlayerJoined { player_id, game_id } => {
                if self.game_id.is_empty() {
                    self.game_id.clone_from(game_id);
                }
                let at = spawn_point(self.players.len());
                self.players.push(Player {
                    id: player_id.clone(),
                    at,
                    moves: 0,
                });
            }
            GameEvent::PlayerMoved {
                player_id,
                position,
            } => {
                if let Some(p) = self.players.iter_mut().find(|p| p.id == *player_id) {
                    p.at = *position;
                    p.moves += 1;
                }
            }
            GameEvent::GameStateChanged { new_state, .. } => self.state = *new_state,
        }
    }
}

/// One game as [`BoardsHandler`] sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Board {
    /// The game's state after `version`.
    pub game: Game,
    /// The stream version of the last event applied.
    pub version: Version,
}

/// An [`EventHandler`] that keeps every game's board, by stream, from the
/// game events of `$all` — fit for a parallel
/// [`EventProcessor`](strata::EventProcessor) (see the module docs).
///
/// It is idempotent (an event at or below a board's version is ignored) and
/// strict about order: an event that is not its game's next version fails,
/// and is counted in [`out_of_order`](Self::out_of_order).
#[derive(Debug, Default)]
pub struct BoardsHandler {
    boards: Mutex<HashMap<String, Board>>,
    out_of_order: std::sync::atomic::AtomicU64,
    upcasters: Upcasters,
}

/// The event types [`BoardsHandler`] wants: register it for each.
pub const GAME_EVENT_TYPES: [&str; 3] = ["PlayerJoined", "PlayerMoved", "GameStateChanged"];

impl BoardsHandler {
    /// No boards.
    pub fn new() -> Self {
        Self::default()
    }

    /// The board of stream `stream` (`game-{id}`).
    pub fn board(&self, stream: &str) -> Option<Board> {
        self.boards.lock().get(stream).cloned()
    }

    /// How many games it knows.
    pub fn games(&self) -> usize {
        self.boards.lock().len()
    }

    /// Every board, by stream.
    pub fn boards(&self) -> HashMap<String, Board> {
        self.boards.lock().clone()
    }

    /// Events that arrived ahead of their game's next version.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl EventHandler for BoardsHandler {
    fn name(&self) -> &str {
        "game-boards"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.stream_id.category() != Game::TYPE {
            return Ok(());
        }
        let decoded: GameEvent = self.upcasters.decode(event)?;
        let mut boards = self.boards.lock();
        let board = boards
            .entry(event.stream_id.as_str().to_owned())
            .or_default();
        if event.version <= board.version {
            return Ok(()); // delivered again
        }
        if event.version != board.version + 1 {
            self.out_of_order
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(format!(
                "`{}` version {} arrived after version {}: per-game order was lost",
                event.stream_id, event.version, board.version
            )
            .into());
        }
        board.game.apply(&decoded);
        board.version = event.version;
        Ok(())
    }
}

pub mod demo;
