//! `lifeos`: serve the API, apply migrations, issue tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lifeos::commands;
use lifeos::commands::replay::Format;
use lifeos::config::parse_snapshots;
use lifeos::{ServerConfig, StoreConfig};
use uuid::Uuid;

/// LifeOS: one event log for tasks, focus, calendar, habits, finance, health and journal.
#[derive(Parser)]
#[command(
    name = "lifeos",
    version,
    about,
    after_help = "Environment: LIFEOS_LOG sets the log filter (tracing syntax, e.g. `info` or \
                  `lifeos=debug,sqlx=warn`; default `info,sqlx=warn`). Every flag above also \
                  reads the LIFEOS_* variable shown beside it."
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

/// Store flags, common to every subcommand that touches the store.
#[derive(Args)]
struct StoreArgs {
    /// Folder of the embedded SQLite store (and of its generated JWT secret).
    #[arg(
        long,
        env = "LIFEOS_DATA_DIR",
        default_value = "./lifeos-data",
        global = true
    )]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:5432/db); selects PostgreSQL instead of SQLite.
    #[arg(
        long,
        env = "LIFEOS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// HS256 secret for bearer tokens (at least 32 bytes). Required with --database-url;
    /// on the embedded store it defaults to one generated in the data dir.
    #[arg(long, env = "LIFEOS_JWT_SECRET", global = true, hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations and this process's roles (gRPC API, projection runners, event relay)
    /// until SIGINT/SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LIFEOS_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Snapshot frequency per aggregate type, e.g. `task=100` (replaces the default list;
        /// `""` turns snapshots off). The default snapshots the long-lived aggregates, whose
        /// streams grow for ever (a user's focus timer, preferences and health logs, habits,
        /// accounts): measured flat time per command up to 10 000 events (benches/RESULTS.md).
        #[arg(
            long,
            env = "LIFEOS_SNAPSHOTS",
            default_value = "focus=100,preferences=100,health=100,habit=100,account=100",
            value_parser = parse_snapshots
        )]
        snapshots: std::collections::HashMap<String, u64>,
        /// How many recently commanded aggregates of each type stay in memory, so the next
        /// command on one needs no load (validated by version at the append: safe with several
        /// processes); 0 loads every aggregate from the store.
        #[arg(long, env = "LIFEOS_AGGREGATE_CACHE", default_value_t = lifeos::config::DEFAULT_AGGREGATE_CACHE)]
        aggregate_cache: usize,
        /// What this process does (any of api, projector, relay). Processes sharing one
        /// PostgreSQL split them; one projector and one relay are active at a time, others wait.
        #[arg(long, env = "LIFEOS_ROLES", default_value = "api,projector,relay")]
        roles: lifeos::config::Roles,
        /// NATS server with JetStream: committed events are published there as CloudEvents and
        /// the request/reply API is served on it. Without it, events go to an in-process bus.
        #[arg(long, env = "LIFEOS_NATS_URL")]
        nats_url: Option<String>,
        /// How long the JetStream stream LIFEOS_EVENTS keeps events (the log keeps them all).
        #[arg(long, env = "LIFEOS_EVENTS_MAX_AGE", default_value = "30days", value_parser = humantime::parse_duration)]
        events_max_age: Duration,
        /// First NATS subject token: <prefix>.events.*, <prefix>.commands.*, <prefix>.queries.*,
        /// <prefix>.system.*; the stream is <PREFIX>_EVENTS.
        #[arg(long, env = "LIFEOS_NATS_PREFIX", default_value = "lifeos")]
        nats_prefix: String,
        /// Longest wait of a query for its consistency token (e.g. 5s, 500ms).
        #[arg(long, env = "LIFEOS_CONSISTENCY_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
        consistency_wait: Duration,
    },
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Inspect and rebuild read models.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Print one user's read models as of a moment, folded in memory from the log (the live
    /// read models are not touched).
    Replay {
        /// The user's UUID.
        #[arg(long)]
        user: Uuid,
        /// Leave out events recorded after this RFC 3339 time (e.g. 2026-03-03T23:59:59Z).
        #[arg(long, value_parser = parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Only the read models of these pillars (comma-separated, e.g. tasks,focus).
        #[arg(long = "pillar", value_delimiter = ',')]
        pillars: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print a bearer token for a user, signed with the configured secret.
    Token {
        /// The user's UUID.
        #[arg(long)]
        user: Uuid,
        /// How long the token is valid (e.g. 24h, 30m, 7days).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Extra role claims (e.g. analyst); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ProjectionsAction {
    /// Each projection's version, active model and state.
    List,
    /// Each projection's checkpoint, head, lag (events and seconds), state and rate.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a read model blue-green (beside the live one; queries switch when it caught up).
    Rebuild {
        /// The projection's name (see `lifeos projections list`).
        name: String,
    },
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e}), e.g. 2026-03-03T23:59:59Z"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEOS_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let store = StoreConfig {
        data_dir: cli.store.data_dir,
        database_url: cli.store.database_url,
    };
    match cli.command {
        Command::Serve {
            listen,
            snapshots,
            aggregate_cache,
            roles,
            nats_url,
            events_max_age,
            nats_prefix,
            consistency_wait,
        } => {
            let config = ServerConfig {
                listen,
                jwt_secret: cli.store.jwt_secret,
                snapshots,
                aggregate_cache,
                roles,
                nats_url,
                events_max_age,
                nats_prefix,
                consistency_wait,
                ..ServerConfig::new(store)
            };
            // handlers first: a SIGTERM once "listening" is logged (or during startup) must
            // stop the server cleanly, not kill the process with the default action
            let stop = shutdown_signal();
            let server = lifeos::start(config).await?;
            stop.await;
            tracing::info!("shutting down: finishing in-flight commands");
            server.shutdown().await
        }
        Command::Migrate => {
            let store = store.open_migrated().await?;
            println!("migrations applied ({})", store.backend_name());
            store.close().await;
            Ok(())
        }
        Command::Projections { action } => {
            let store = store.open_migrated().await?;
            let result = match action {
                ProjectionsAction::List => commands::projections::reports(&store)
                    .await
                    .and_then(|r| commands::projections::print_reports(&r, false, false)),
                ProjectionsAction::Status { json } => commands::projections::reports(&store)
                    .await
                    .and_then(|r| commands::projections::print_reports(&r, json, true)),
                ProjectionsAction::Rebuild { name } => {
                    commands::projections::rebuild(&store, &name)
                        .await
                        .map(|model| println!("{name}: queries read {model}"))
                }
            };
            store.close().await;
            result
        }
        Command::Replay {
            user,
            until,
            pillars,
            format,
        } => {
            let store = store.open_migrated().await?;
            let replay = commands::replay::replay(&store, user, until, &pillars).await;
            store.close().await;
            commands::replay::print(&replay?, format)
        }
        Command::Token { user, ttl, roles } => {
            let secret = store.jwt_secret(cli.store.jwt_secret.as_deref())?;
            let auth = api_common::Auth::new(secret.as_bytes());
            println!("{}", auth.issue_with_roles(user, ttl, roles));
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by the call itself, not on the
/// first poll, so signals arriving before the caller awaits are not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn next(signal: Option<Signal>) {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        let int = next(signal(SignalKind::interrupt()).ok());
        let term = next(signal(SignalKind::terminate()).ok());
        async move {
            tokio::select! {
                _ = int => {}
                _ = term => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        tokio::signal::ctrl_c().await.ok();
    }
}
