//! `benches`: the LifeOS benchmark harness.
//!
//! Every workload starts its own `lifeos` server as a child process (this binary re-executed
//! with the hidden `serve-child` command, so the server's peak RSS is its own), prepares its own
//! data on a fresh store, and measures the engine beside its baselines in the same run, on the
//! same store: one table per workload. `--smoke` shrinks every size so the whole suite runs in
//! seconds (the CI smoke test).

mod child;
mod client;
mod env;
mod generator;
mod opts;
mod rss;
mod stats;
mod table;
mod workloads;

use clap::Parser;

use crate::opts::{Command, Opts};

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Command::ServeChild(args) = &opts.command {
        return runtime.block_on(child::serve(args.clone()));
    }
    let rows = runtime.block_on(workloads::run(&opts))?;
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
    }
    Ok(())
}
