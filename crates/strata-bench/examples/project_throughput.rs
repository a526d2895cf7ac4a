//! A quick probe of projection throughput on `MemoryStore`: a counting
//! projection's catch-up (single-threaded), and the event processor with 1
//! and with `WORKERS` workers over a handler that does about a microsecond
//! of CPU work per event.
//!
//! ```text
//! cargo run --release -p strata-bench --example project_throughput [-- EVENTS [WORKERS]]
//! ```
//!
//! `strata bench project` is the real benchmark; both call
//! `strata_bench::catch_up::project`.

use strata::MemoryStore;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let events = arg(1, 1_000_000);
    let workers = arg(2, 2) as usize;
    let store = MemoryStore::new();
    let report = strata_bench::catch_up::project(store, events, workers)
        .await
        .expect("benchmark");
    println!(
        "seeded {} events in {:.2} s",
        report.seeded,
        report.seed_elapsed.as_secs_f64()
    );
    let c = &report.catch_up;
    println!(
        "catch-up, counting projection: {} events in {:.3} s = {:.0} events/s ({} pages)",
        c.events,
        c.elapsed.as_secs_f64(),
        c.events_per_second(),
        c.pages
    );
    for (label, r) in [
        ("1 worker", &report.sequential),
        ("parallel", &report.parallel),
    ] {
        println!(
            "processor, working handler, {label}: {} events in {:.3} s = {:.0} events/s",
            r.events,
            r.elapsed.as_secs_f64(),
            r.events_per_second()
        );
    }
    println!(
        "speed-up with {} workers: {:.2}x",
        report.workers,
        report.speedup()
    );
}
