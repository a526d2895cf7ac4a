//! Results: what a workload measured, what every line adds, and how it is
//! printed (a table, or one JSON object per line with `--json`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::delivery::Delivery;
use crate::fsync::FsyncRate;
use crate::host::Console;
use crate::latency::Latency;

/// What a workload measured in one timed section.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The workload this line belongs to, when it is not the one asked for
    /// (`append` on PostgreSQL also reports its `raw-insert` baseline).
    pub workload: Option<&'static str>,
    /// Which variant of the workload, when it has several (`rehydrate`).
    pub variant: Option<&'static str>,
    /// What one timed operation is: `append`, `page`, `stream read`, `command`.
    pub op: &'static str,
    /// Concurrent tasks.
    pub writers: usize,
    /// Events per operation.
    pub batch: usize,
    /// Events written or read in the timed section.
    pub events: u64,
    /// Operations in the timed section.
    pub ops: u64,
    /// Length of the timed section.
    pub elapsed: Duration,
    /// Latency of each operation.
    pub latency: Latency,
    /// `fdatasync` calls of the log store in the timed section.
    pub syncs: Option<u64>,
    /// Operations that failed (counted, not timed).
    pub errors: u64,
    /// Events in the data set the workload read or loaded, when that is not
    /// `events` (the store's size for `read-all`, a stream's length for
    /// `read-stream` and `rehydrate`).
    pub dataset_events: Option<u64>,
    /// What a subscriber following the writes measured (`append
    /// --subscriber`, `http-append`): delivery latency per event.
    pub subscriber: Option<Delivery>,
    /// Requests in flight per connection (`http-append --pipeline`).
    pub pipeline: Option<usize>,
}

/// One result line.
#[derive(Clone, Debug)]
pub struct BenchResult {
    workload: &'static str,
    store: String,
    durability: String,
    m: Measurement,
    rss_mib: Option<f64>,
    peak_rss_mib: Option<f64>,
    fdatasync_per_sec: Option<f64>,
    ratio_to_raw_insert: Option<f64>,
}

impl BenchResult {
    /// Completes a measurement with what every line shares; reads the
    /// process's memory now.
    pub fn new(
        workload: &'static str,
        store: String,
        durability: &str,
        m: Measurement,
        fsync: Option<&FsyncRate>,
    ) -> Self {
        let mem = memory();
        BenchResult {
            workload: m.workload.unwrap_or(workload),
            store,
            durability: durability.to_string(),
            m,
            rss_mib: mem.rss_mib,
            peak_rss_mib: mem.peak_mib,
            fdatasync_per_sec: fsync.map(|f| f.per_sec),
            ratio_to_raw_insert: None,
        }
    }

    /// The workload of this line.
    pub fn workload(&self) -> &'static str {
        self.workload
    }

    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        self.per_sec(self.m.events)
    }

    /// Concurrent tasks.
    pub fn writers(&self) -> usize {
        self.m.writers
    }

    /// Records this line's rate as a multiple of the raw-insert baseline's.
    pub fn set_ratio_to_raw_insert(&mut self, ratio: f64) {
        self.ratio_to_raw_insert = Some(ratio);
    }

    fn seconds(&self) -> f64 {
        self.m.elapsed.as_secs_f64()
    }

    fn per_sec(&self, n: u64) -> f64 {
        let s = self.seconds();
        if s > 0.0 {
            n as f64 / s
        } else {
            0.0
        }
    }

    /// The result as one JSON object.
    pub fn to_json(&self) -> Value {
        let sub = self.m.subscriber.as_ref();
        let after_ack = sub.and_then(|d| d.after_ack.as_ref());
        json!({
            "workload": self.workload,
            "variant": self.m.variant,
            "pipeline": self.m.pipeline,
            "store": self.store,
            "durability": self.durability,
            "writers": self.m.writers,
            "batch": self.m.batch,
            "events": self.m.events,
            "dataset_events": self.m.dataset_events,
            "op": self.m.op,
            "ops": self.m.ops,
            "samples": self.m.latency.count(),
            "seconds": round(self.seconds(), 6),
            "events_per_sec": round(self.per_sec(self.m.events), 1),
            "ops_per_sec": round(self.per_sec(self.m.ops), 1),
            "p50_us": self.m.latency.quantile_us(0.50).map(|v| round(v, 1)),
            "p99_us": self.m.latency.quantile_us(0.99).map(|v| round(v, 1)),
            "p999_us": self.m.latency.quantile_us(0.999).map(|v| round(v, 1)),
            "max_us": self.m.latency.quantile_us(1.0).map(|v| round(v, 1)),
            "mean_us": self.m.latency.mean_us().map(|v| round(v, 1)),
            "syncs": self.m.syncs,
            "errors": self.m.errors,
            "rss_mib": self.rss_mib.map(|v| round(v, 1)),
            "peak_rss_mib": self.peak_rss_mib.map(|v| round(v, 1)),
            "fdatasync_per_sec": self.fdatasync_per_sec.map(|v| round(v, 0)),
            "ratio_to_raw_insert": self.ratio_to_raw_insert.map(|v| round(v, 3)),
            "sub_events": sub.map(|d| d.events),
            "sub_p50_us": sub.and_then(|d| d.latency.quantile_us(0.50)).map(|v| round(v, 1)),
            "sub_p99_us": sub.and_then(|d| d.latency.quantile_us(0.99)).map(|v| round(v, 1)),
            "sub_p999_us": sub.and_then(|d| d.latency.quantile_us(0.999)).map(|v| round(v, 1)),
            "sub_max_us": sub.and_then(|d| d.latency.quantile_us(1.0)).map(|v| round(v, 1)),
            "sub_reconnects": sub.map(|d| d.reconnects),
            "sub_after_ack_p50_us": after_ack.and_then(|l| l.quantile_us(0.50)).map(|v| round(v, 1)),
            "sub_after_ack_p99_us": after_ack.and_then(|l| l.quantile_us(0.99)).map(|v| round(v, 1)),
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Writes the results to `console`: one JSON object per line with `json`,
/// else the fdatasync rate, a table, the subscribers' figures and a warning
/// per workload with failed operations.
pub fn print(
    console: &dyn Console,
    results: &[BenchResult],
    fsync: Option<&FsyncRate>,
    json: bool,
) {
    if json {
        for r in results {
            console.result(&r.to_json().to_string());
        }
        return;
    }
    if let Some(f) = fsync {
        console.result(&f.to_string());
    }
    for line in table(results) {
        console.result(&line);
    }
    for r in results {
        if let Some(d) = &r.m.subscriber {
            for line in subscriber_lines(r.workload, d) {
                console.result(&line);
            }
        }
    }
    for r in results.iter().filter(|r| r.m.errors > 0) {
        console.result(&format!(
            "warning: {} {} operations failed in {}",
            r.m.errors, r.m.op, r.workload
        ));
    }
}

/// The table's columns.
const TABLE_HEADER: [&str; 18] = [
    "workload",
    "variant",
    "store",
    "durability",
    "writers",
    "batch",
    "events",
    "dataset",
    "op",
    "seconds",
    "events/s",
    "ops/s",
    "p50 µs",
    "p99 µs",
    "max µs",
    "syncs",
    "rss MiB",
    "peak MiB",
];

/// The results as a table: a header line and one line per result, columns
/// padded to their widest cell.
fn table(results: &[BenchResult]) -> Vec<String> {
    let rows: Vec<Vec<String>> = results.iter().map(table_row).collect();
    let mut widths: Vec<usize> = TABLE_HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w.saturating_sub(c.chars().count());
                // Names left-aligned, numbers right-aligned.
                if i < 4 || i == 8 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let header: Vec<String> = TABLE_HEADER.iter().map(|h| h.to_string()).collect();
    let mut out = vec![line(&header)];
    out.extend(rows.iter().map(|row| line(row)));
    out
}

/// One result's cells, in [`TABLE_HEADER`]'s order.
fn table_row(r: &BenchResult) -> Vec<String> {
    let opt = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
    vec![
        r.workload.to_string(),
        match (r.m.variant, r.m.pipeline) {
            (Some(v), Some(depth)) => format!("{v}-{depth}"),
            (v, _) => v.unwrap_or("-").to_string(),
        },
        r.store.clone(),
        r.durability.clone(),
        r.m.writers.to_string(),
        r.m.batch.to_string(),
        r.m.events.to_string(),
        r.m.dataset_events.map_or("-".into(), |d| d.to_string()),
        r.m.op.to_string(),
        format!("{:.3}", r.seconds()),
        format!("{:.0}", r.per_sec(r.m.events)),
        format!("{:.0}", r.per_sec(r.m.ops)),
        opt(r.m.latency.quantile_us(0.50), 1),
        opt(r.m.latency.quantile_us(0.99), 1),
        opt(r.m.latency.quantile_us(1.0), 1),
        r.m.syncs.map_or("-".into(), |s| s.to_string()),
        opt(r.rss_mib, 1),
        opt(r.peak_rss_mib, 1),
    ]
}

/// What the subscriber of `workload` measured, in words.
fn subscriber_lines(workload: &str, d: &Delivery) -> Vec<String> {
    let us = |q: f64| {
        d.latency
            .quantile_us(q)
            .map_or("-".into(), |v| format!("{v:.1}"))
    };
    let mut out = vec![format!(
        "subscriber of {}: {} events, each once and in position order; delivery latency from send p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs; {} reconnects",
        workload,
        d.events,
        us(0.50),
        us(0.99),
        us(0.999),
        us(1.0),
        d.reconnects
    )];
    if let Some(a) = &d.after_ack {
        let us = |q: f64| a.quantile_us(q).map_or("-".into(), |v| format!("{v:.1}"));
        out.push(format!(
            "subscriber of {}: after the append's acknowledgement (0 when delivered first): p50 {} µs, p99 {} µs, max {} µs",
            workload,
            us(0.50),
            us(0.99),
            us(1.0)
        ));
    }
    out
}

/// The process's memory, from `/proc/self/status` (Linux only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), MiB.
    pub rss_mib: Option<f64>,
    /// Peak resident set size (`VmHWM`), MiB.
    pub peak_mib: Option<f64>,
}

/// Reads the process's memory; `None`s where the system does not say.
pub fn memory() -> Memory {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Memory::default();
    };
    parse_status(&status)
}

fn parse_status(status: &str) -> Memory {
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib / 1024.0)
        })
    };
    Memory {
        rss_mib: field("VmRSS"),
        peak_mib: field("VmHWM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let m = parse_status("Name:\tstrata\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n");
        assert_eq!(m.rss_mib, Some(10.0));
        assert_eq!(m.peak_mib, Some(20.0));
        assert!(parse_status("").rss_mib.is_none());
    }
}
