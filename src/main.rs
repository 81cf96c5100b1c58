//! `lifeos`: serve the API, apply migrations, issue tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lifeos::config::parse_snapshots;
use lifeos::{ServerConfig, StoreConfig};
use uuid::Uuid;

/// LifeOS: one event log for tasks, focus, calendar, habits, finance, health and journal.
#[derive(Parser)]
#[command(name = "lifeos", version, about)]
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
    /// Run migrations, the projection runner and the gRPC API until SIGINT/SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LIFEOS_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Snapshot frequency per aggregate type, e.g. `task=100`.
        #[arg(long, env = "LIFEOS_SNAPSHOTS", default_value = "", value_parser = parse_snapshots)]
        snapshots: std::collections::HashMap<String, u64>,
        /// Longest wait of a query for its consistency token (e.g. 5s, 500ms).
        #[arg(long, env = "LIFEOS_CONSISTENCY_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
        consistency_wait: Duration,
    },
    /// Apply pending schema migrations and exit.
    Migrate,
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
            consistency_wait,
        } => {
            let config = ServerConfig {
                listen,
                jwt_secret: cli.store.jwt_secret,
                snapshots,
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
