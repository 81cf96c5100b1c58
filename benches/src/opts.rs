//! Command line: which workloads, on which stores, at which sizes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Measures the LifeOS engine against its ceilings (raw INSERTs, documented cqrs-es usage,
/// plain log scans) in one run, on PostgreSQL and on the embedded SQLite store.
#[derive(Debug, Parser)]
#[command(name = "benches")]
pub struct Opts {
    /// Which workload.
    #[command(subcommand)]
    pub command: Command,
    /// The stores to run on.
    #[arg(long, value_enum, default_value_t = StoreChoice::Both, global = true)]
    pub store: StoreChoice,
    /// Tiny sizes: every workload in seconds (CI).
    #[arg(long, global = true)]
    pub smoke: bool,
    /// Also write every result row as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Concurrent gRPC clients of the append workload (comma-separated).
    #[arg(long, value_delimiter = ',', global = true)]
    pub clients: Option<Vec<usize>>,
    /// How long each measured phase runs (append, query, freshness), e.g. `10s`.
    #[arg(long, value_parser = humantime::parse_duration, global = true)]
    pub duration: Option<Duration>,
    /// Events in the generated log of the rebuild workload.
    #[arg(long, global = true)]
    pub events: Option<u64>,
    /// Users the rebuild log is spread over.
    #[arg(long, global = true)]
    pub users: Option<usize>,
    /// Stream lengths the hot-aggregate workload measures at (comma-separated).
    #[arg(long, value_delimiter = ',', global = true)]
    pub stream_sizes: Option<Vec<u64>>,
    /// Commands timed at each stream length (hot aggregate).
    #[arg(long, global = true)]
    pub commands: Option<usize>,
    /// Writers of the query-under-load and freshness workloads.
    #[arg(long, global = true)]
    pub writers: Option<usize>,
    /// ListTasks requests per second of the query-under-load workload.
    #[arg(long, global = true)]
    pub rate: Option<u32>,
    /// Events in the user history of the replay workload.
    #[arg(long, global = true)]
    pub history: Option<u64>,
    /// Replays timed (replay workload).
    #[arg(long, global = true)]
    pub replays: Option<usize>,
    /// Roles of the server child (`api,projector,relay`; default all): to see what the
    /// projection runners and the relay cost the append path.
    #[arg(long, global = true)]
    pub server_roles: Option<String>,
    /// Aggregates per type the server child keeps in memory (append; default: the server's
    /// default; 0 turns the cache off to see what loading each aggregate costs).
    #[arg(long, global = true)]
    pub aggregate_cache: Option<usize>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 7, global = true)]
    pub seed: u64,
}

/// The workloads.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// N concurrent gRPC clients: CreateTask then CompleteTask; raw INSERT and cqrs-es baselines.
    Append,
    /// Time per command as one aggregate's stream grows, with and without snapshots.
    Hot,
    /// Full rebuild of every read model from a generated log, against a plain log scan.
    Rebuild,
    /// ListTasks latency at a fixed rate while writers append.
    Query,
    /// Ack → read model, and ack → NATS subscriber, under writers.
    Freshness,
    /// Fold one user's whole history in memory.
    Replay,
    /// Every workload, one after the other.
    All,
    /// (internal) Runs the server the parent measures; prints `listening <addr>`, stops on EOF.
    #[command(hide = true)]
    ServeChild(ChildArgs),
}

/// What the child server runs on.
#[derive(Debug, Clone, Args)]
pub struct ChildArgs {
    /// The data dir (SQLite file, when no database URL).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// PostgreSQL database URL.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The JWT secret.
    #[arg(long)]
    pub secret: String,
    /// Snapshot policy, `task=100`.
    #[arg(long)]
    pub snapshots: Option<String>,
    /// NATS server for the relay.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// NATS subject prefix.
    #[arg(long)]
    pub nats_prefix: Option<String>,
    /// Roles of the server (default: all).
    #[arg(long)]
    pub roles: Option<String>,
    /// Aggregates per type kept in memory (default: the server's).
    #[arg(long)]
    pub aggregate_cache: Option<usize>,
}

/// `--store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// The embedded SQLite store only.
    Sqlite,
    /// PostgreSQL only.
    Postgres,
    /// Both, SQLite first.
    Both,
}

/// `small` in smoke mode, else `full`.
fn pick<T>(smoke: bool, full: T, small: T) -> T {
    if smoke { small } else { full }
}

/// Every size a workload needs, from the options or the full/smoke defaults.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Append: concurrent clients.
    pub clients: Vec<usize>,
    /// Measured phase length.
    pub duration: Duration,
    /// Rebuild: events in the log.
    pub events: u64,
    /// Rebuild: users.
    pub users: usize,
    /// Hot: stream lengths.
    pub stream_sizes: Vec<u64>,
    /// Hot: commands per length.
    pub commands: usize,
    /// Query / freshness: writers.
    pub writers: usize,
    /// Query: ListTasks per second.
    pub rate: u32,
    /// Replay: events of the user.
    pub history: u64,
    /// Replay: replays timed.
    pub replays: usize,
    /// Append: the server child's roles (all when `None`).
    pub server_roles: Option<String>,
    /// Append: the server child's aggregate cache (the server's default when `None`).
    pub aggregate_cache: Option<usize>,
    /// Data seed.
    pub seed: u64,
}

impl Sizes {
    /// The sizes `opts` ask for.
    pub fn of(opts: &Opts) -> Self {
        let smoke = opts.smoke;
        Sizes {
            clients: opts
                .clients
                .clone()
                .unwrap_or_else(|| pick(smoke, vec![1, 8, 32, 64], vec![1, 4])),
            duration: opts.duration.unwrap_or(pick(
                smoke,
                Duration::from_secs(10),
                Duration::from_millis(300),
            )),
            events: opts.events.unwrap_or(pick(smoke, 1_000_000, 2_000)),
            users: opts.users.unwrap_or(pick(smoke, 1_000, 10)),
            stream_sizes: opts
                .stream_sizes
                .clone()
                .unwrap_or_else(|| pick(smoke, vec![1, 10, 100, 1_000, 10_000], vec![1, 10, 100])),
            commands: opts.commands.unwrap_or(pick(smoke, 100, 3)),
            writers: opts.writers.unwrap_or(pick(smoke, 32, 4)),
            rate: opts.rate.unwrap_or(pick(smoke, 50, 20)),
            history: opts.history.unwrap_or(pick(smoke, 10_000, 300)),
            replays: opts.replays.unwrap_or(pick(smoke, 20, 2)),
            server_roles: opts.server_roles.clone(),
            aggregate_cache: opts.aggregate_cache,
            seed: opts.seed,
        }
    }
}
