//! One table shape for every workload, printed as Markdown (pasted as is into RESULTS.md).

use std::time::Duration;

use serde::Serialize;

use crate::stats::Summary;

/// A ratio of this row to a baseline measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// What it is relative to, e.g. `raw INSERT`.
    pub to: String,
    /// The value (throughput ratios: this ÷ baseline; latency ratios say so in `to`).
    pub value: f64,
}

/// One measured line: a variant of a workload on a store at a concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `append`, `hot`, `rebuild`, `query`, `freshness`, `replay`.
    pub workload: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// What ran: `engine (gRPC)`, `raw INSERT`, `cqrs-es` …
    pub variant: String,
    /// Concurrent clients (or writers).
    pub concurrency: usize,
    /// Operations measured.
    pub ops: u64,
    /// Wall time of the phase, seconds.
    pub seconds: f64,
    /// Operations per second.
    pub throughput: f64,
    /// Unit of `ops` (`cmd`, `insert`, `events`, `req`…).
    pub unit: String,
    /// Latency percentiles, when latencies were recorded.
    pub latency: Option<Summary>,
    /// Peak RSS of the server child, MiB (rows measured in the server).
    pub server_rss_mib: Option<f64>,
    /// Ratios to this run's baselines.
    pub ratios: Vec<Ratio>,
}

impl Row {
    /// A row of `variant` of `workload` on `store` at `concurrency`, not measured yet.
    pub fn new(
        workload: &str,
        store: impl ToString,
        variant: impl Into<String>,
        concurrency: usize,
    ) -> Row {
        Row {
            workload: workload.to_string(),
            store: store.to_string(),
            variant: variant.into(),
            concurrency,
            ops: 0,
            seconds: 0.0,
            throughput: 0.0,
            unit: String::new(),
            latency: None,
            server_rss_mib: None,
            ratios: Vec::new(),
        }
    }

    /// The row with `ops` operations (of `unit`) done in `elapsed`, and their latencies.
    pub fn timed(mut self, ops: u64, unit: &str, elapsed: Duration, latencies: &[Duration]) -> Row {
        self.ops = ops;
        self.seconds = elapsed.as_secs_f64();
        self.throughput = if self.seconds > 0.0 {
            ops as f64 / self.seconds
        } else {
            0.0
        };
        self.unit = unit.to_string();
        self.latency = Summary::of(latencies);
        self
    }

    /// Adds a throughput ratio to `baseline` (skipped when the baseline measured nothing).
    pub fn ratio_to(&mut self, label: &str, baseline: &Row) {
        if baseline.throughput > 0.0 {
            self.ratios.push(Ratio {
                to: label.to_string(),
                value: self.throughput / baseline.throughput,
            });
        }
    }

    /// Adds a ratio computed by the caller.
    pub fn ratio(&mut self, label: &str, value: f64) {
        if value.is_finite() {
            self.ratios.push(Ratio {
                to: label.to_string(),
                value,
            });
        }
    }
}

/// Prints `rows` of one workload as a Markdown table on stdout.
pub fn print(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!(
        "| store | variant | conc. | ops | throughput | p50 ms | p95 ms | p99 ms | max ms | server peak RSS | ratio |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for r in rows {
        let lat = |f: fn(&Summary) -> f64| {
            r.latency
                .as_ref()
                .map_or_else(|| "-".to_string(), |s| format!("{:.2}", f(s)))
        };
        let ratios: Vec<String> = r
            .ratios
            .iter()
            .map(|x| format!("{:.2}× {}", x.value, x.to))
            .collect();
        println!(
            "| {} | {} | {} | {} | {:.0} {}/s | {} | {} | {} | {} | {} | {} |",
            r.store,
            r.variant,
            r.concurrency,
            r.ops,
            r.throughput,
            r.unit,
            lat(|s| s.p50),
            lat(|s| s.p95),
            lat(|s| s.p99),
            lat(|s| s.max),
            r.server_rss_mib
                .map_or_else(|| "-".to_string(), |m| format!("{m:.0} MiB")),
            if ratios.is_empty() {
                "-".to_string()
            } else {
                ratios.join(", ")
            }
        );
    }
}
