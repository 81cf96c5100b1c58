//! The workloads, one module each, and the loop that runs them on each store.

mod append;
mod freshness;
mod hot;
mod query;
mod rebuild;
mod replay;

use std::time::{Duration, Instant};

use crate::env::{Backend, Env};
use crate::opts::{Command, Opts, Sizes, StoreChoice};
use crate::table::{self, Row};

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Append,
    Hot,
    Rebuild,
    Query,
    Freshness,
    Replay,
}

impl Workload {
    const ALL: [Workload; 6] = [
        Workload::Append,
        Workload::Hot,
        Workload::Rebuild,
        Workload::Query,
        Workload::Freshness,
        Workload::Replay,
    ];

    fn title(self) -> &'static str {
        match self {
            Workload::Append => "append: CreateTask + CompleteTask on fresh tasks",
            Workload::Hot => "hot aggregate: one daily-repeating task completed again and again",
            Workload::Rebuild => "rebuild: every read model from a generated log",
            Workload::Query => "query under load: ListTasks (50 open tasks) at a fixed rate",
            Workload::Freshness => "freshness: command ack → read model, → NATS subscriber",
            Workload::Replay => "replay: one user's whole history folded in memory",
        }
    }

    async fn run(self, env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
        match self {
            Workload::Append => append::run(env, sizes).await,
            Workload::Hot => hot::run(env, sizes).await,
            Workload::Rebuild => rebuild::run(env, sizes).await,
            Workload::Query => query::run(env, sizes).await,
            Workload::Freshness => freshness::run(env, sizes).await,
            Workload::Replay => replay::run(env, sizes).await,
        }
    }
}

/// Runs what `opts` ask for, printing one table per workload; returns every row.
pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Row>> {
    let sizes = Sizes::of(opts);
    let backends: &[Backend] = match opts.store {
        StoreChoice::Sqlite => &[Backend::Sqlite],
        StoreChoice::Postgres => &[Backend::Postgres],
        StoreChoice::Both => &[Backend::Sqlite, Backend::Postgres],
    };
    let workloads: Vec<Workload> = match opts.command {
        Command::Append => vec![Workload::Append],
        Command::Hot => vec![Workload::Hot],
        Command::Rebuild => vec![Workload::Rebuild],
        Command::Query => vec![Workload::Query],
        Command::Freshness => vec![Workload::Freshness],
        Command::Replay => vec![Workload::Replay],
        Command::All => Workload::ALL.to_vec(),
        Command::ServeChild(_) => unreachable!("handled in main"),
    };
    print_machine(opts);
    let mut all = Vec::new();
    for workload in workloads {
        let mut rows = Vec::new();
        for &backend in backends {
            let Some(env) = Env::fresh(backend).await? else {
                eprintln!("skipping {backend}: not reachable");
                continue;
            };
            let started = Instant::now();
            rows.extend(workload.run(env, &sizes).await?);
            eprintln!(
                "{workload:?} on {backend}: {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        table::print(workload.title(), &rows);
        all.extend(rows);
    }
    Ok(all)
}

/// The command, the machine and the date, for RESULTS.md.
fn print_machine(opts: &Opts) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let ram_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "benches {} — {} — {cores} cores, {ram_gib:.1} GiB RAM{}",
        args.join(" "),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        if opts.smoke { " — smoke sizes" } else { "" }
    );
}

/// Polls `done` every 50 ms until it answers true, for at most `limit`.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while !done().await? {
        if Instant::now() > deadline {
            anyhow::bail!("{what}: not done within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
