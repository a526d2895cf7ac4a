//! A bank account on a Strata repository.
//!
//! ```text
//! cargo run -p strata-scenarios --example bank                  # same as --store memory:
//! cargo run -p strata-scenarios --example bank -- --store memory:
//! cargo run -p strata-scenarios --example bank -- --store log:./bank-data   # durable, embedded
//! ```
//!
//! On `log:DIR` the events and snapshots are kept in DIR; each run opens a new
//! account, and earlier runs' accounts are still there.

use std::process::ExitCode;
use std::sync::Arc;

use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{
    AggregateError, AsOf, CommandMeta, Direction, EventStore, MemorySnapshotStore, MemoryStore,
    Repository, SnapshotPolicy, SnapshotStore, StreamId,
};
use strata_log::{LogConfig, LogSnapshotStore, LogStore};

const USAGE: &str = "usage: bank [--store memory: | --store log:DIR]";

fn parse_store() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let mut store = "memory:".to_owned();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(USAGE.to_owned());
        } else if arg == "--store" {
            store = args
                .next()
                .ok_or_else(|| format!("--store needs a value\n{USAGE}"))?;
        } else if let Some(v) = arg.strip_prefix("--store=") {
            store = v.to_owned();
        } else {
            return Err(format!("unknown argument `{arg}`\n{USAGE}"));
        }
    }
    if store != "memory:" && !store.starts_with("log:") {
        return Err(format!(
            "unknown store `{store}`: use `memory:` or `log:DIR`\n{USAGE}"
        ));
    }
    Ok(store)
}

fn money(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

type Repo = Repository<BankAccount, Arc<dyn EventStore>>;

async fn run(repo: &Repo, id: &str, label: &str, command: AccountCommand) {
    let meta = CommandMeta::new()
        .with_correlation_id("bank-example")
        .with_user_id("teller-1");
    match repo.execute(id, command, meta).await {
        Ok(done) => println!(
            "  {label:<28} ok       -> version {}, events {:?}",
            done.version, done.events
        ),
        Err(AggregateError::Rejected(why)) => println!("  {label:<28} refused  -> {why}"),
        Err(other) => println!("  {label:<28} failed   -> {other}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let store = match parse_store() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    println!("bank account example on store `{store}`\n");

    let (events, snapshots, id) = match open(&store).await {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("cannot open `{store}`: {e}");
            return ExitCode::FAILURE;
        }
    };
    let repo = Repo::new(events)
        .with_cache(1_000)
        .with_snapshots(snapshots, SnapshotPolicy::every(100));
    let done = async {
        commands(&repo, &id).await?;
        print_stream(&repo, &id).await
    };
    if let Err(e) = done.await {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("\n{:?}", repo.stats());
    ExitCode::SUCCESS
}

type Opened = (Arc<dyn EventStore>, Arc<dyn SnapshotStore>, String);

/// Opens the events and snapshots of `store`, and picks the account id.
async fn open(store: &str) -> Result<Opened, strata::Error> {
    let Some(dir) = store.strip_prefix("log:") else {
        return Ok((
            Arc::new(MemoryStore::new()),
            Arc::new(MemorySnapshotStore::new()),
            "42".to_owned(),
        ));
    };
    let dir = if dir.is_empty() { "./bank-data" } else { dir };
    let log = LogStore::open(LogConfig::new(dir)).await?;
    let snaps = LogSnapshotStore::open(std::path::Path::new(dir))?;
    let id = format!("{}", chrono::Utc::now().timestamp_millis());
    Ok((Arc::new(log), Arc::new(snaps), id))
}

/// Runs the account's commands, some refused, and travels back in time.
async fn commands(repo: &Repo, id: &str) -> Result<(), String> {
    println!("commands on account {id}:");
    run(
        repo,
        id,
        "deposit before opening",
        AccountCommand::Deposit {
            amount: money(10, 0),
        },
    )
    .await;
    run(
        repo,
        id,
        "open for ada",
        AccountCommand::Open {
            owner: "ada".into(),
        },
    )
    .await;
    run(
        repo,
        id,
        "deposit 100.50",
        AccountCommand::Deposit {
            amount: money(10050, 2),
        },
    )
    .await;
    run(
        repo,
        id,
        "withdraw 20.25",
        AccountCommand::Withdraw {
            amount: money(2025, 2),
        },
    )
    .await;
    run(
        repo,
        id,
        "withdraw 1000",
        AccountCommand::Withdraw {
            amount: money(1000, 0),
        },
    )
    .await;
    run(
        repo,
        id,
        "deposit -5",
        AccountCommand::Deposit {
            amount: money(-5, 0),
        },
    )
    .await;
    run(repo, id, "close with money in it", AccountCommand::Close).await;

    let now = match repo.load(id).await {
        Ok(a) => a,
        Err(e) => return Err(format!("load failed: {e}")),
    };
    println!(
        "\nnow: version {}, owner {}, balance {}",
        now.version,
        now.state.owner(),
        now.state.balance()
    );
    if let Ok(then) = repo.load_as_of(id, AsOf::Version(2)).await {
        println!(
            "as of version 2 (time travel): balance {}",
            then.state.balance()
        );
    }

    run(
        repo,
        id,
        "withdraw the rest (80.25)",
        AccountCommand::Withdraw {
            amount: money(8025, 2),
        },
    )
    .await;
    run(repo, id, "close", AccountCommand::Close).await;
    run(
        repo,
        id,
        "deposit after closing",
        AccountCommand::Deposit {
            amount: money(1, 0),
        },
    )
    .await;

    Ok(())
}

/// Prints the account's stream as stored.
async fn print_stream(repo: &Repo, id: &str) -> Result<(), String> {
    println!("\nthe stream as stored:");
    let stream = match StreamId::new(format!("account-{id}")) {
        Ok(s) => s,
        Err(e) => return Err(e.to_string()),
    };
    match repo
        .store()
        .read_stream(&stream, 1, 100, Direction::Forward)
        .await
    {
        Ok(events) => {
            for e in events {
                println!(
                    "  v{} @{} {:<15} {}  correlation={} causation={}",
                    e.version,
                    e.position,
                    e.event_type,
                    String::from_utf8_lossy(&e.data),
                    e.metadata.correlation_id.as_deref().unwrap_or("-"),
                    e.metadata.causation_id.as_deref().unwrap_or("-"),
                );
            }
        }
        Err(e) => return Err(format!("read failed: {e}")),
    }
    Ok(())
}
