//! The server under test, as a child process: this binary re-executed as `serve-child`, which
//! runs the real `lifeos` server (`lifeos::start`) and says where it listens on stdout. The
//! parent reads its peak RSS from `/proc` and stops it by closing its stdin.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use lifeos::{ServerConfig, StoreConfig};

use crate::env::{Env, SECRET};
use crate::opts::ChildArgs;

/// Options of one child server beyond its store.
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    /// Snapshot every N events of `task` streams.
    pub task_snapshots: Option<u64>,
    /// NATS URL and subject prefix (the relay publishes there instead of in process).
    pub nats: Option<(String, String)>,
    /// `--roles` of the server (all when `None`).
    pub roles: Option<String>,
    /// Aggregates per type the server keeps in memory (its default when `None`).
    pub aggregate_cache: Option<usize>,
}

/// A running server child.
pub struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ServerChild {
    /// Starts a server on `env`'s store and waits until it listens.
    pub async fn start(env: &Env, options: &ChildOptions) -> anyhow::Result<ServerChild> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve-child")
            .arg("--data-dir")
            .arg(env.dir.path())
            .args(["--secret", SECRET]);
        if let Some(url) = &env.database_url {
            command.args(["--database-url", url]);
        }
        if let Some(n) = options.task_snapshots {
            command.arg("--snapshots").arg(format!("task={n}"));
        }
        if let Some((url, prefix)) = &options.nats {
            command.args(["--nats-url", url, "--nats-prefix", prefix]);
        }
        if let Some(roles) = &options.roles {
            command.args(["--roles", roles]);
        }
        if let Some(n) = options.aggregate_cache {
            command.arg("--aggregate-cache").arg(n.to_string());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the server child")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .context("the server child did not start within 60 s")???;
        let Some(addr) = line.trim().strip_prefix("listening ") else {
            let _ = child.kill();
            bail!("the server child failed to start (said {line:?})");
        };
        Ok(ServerChild {
            addr: addr.parse().context("child address")?,
            child,
            stdin,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its peak RSS so far, MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        crate::rss::peak_mib(self.pid())
    }

    /// Stops it (closing stdin: a clean shutdown) and returns its peak RSS, MiB.
    pub async fn stop(mut self) -> anyhow::Result<Option<f64>> {
        let peak = self.peak_rss_mib();
        drop(self.stdin.take());
        let mut child = self.child;
        let status = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let status = child.wait();
                (child, status)
            }),
        )
        .await;
        match status {
            Ok(Ok((_, status))) => {
                let status = status?;
                if !status.success() {
                    bail!("the server child exited with {status}");
                }
            }
            _ => bail!("the server child did not stop within 60 s"),
        }
        Ok(peak)
    }
}

/// The child's side: runs the server until stdin closes.
pub async fn serve(args: ChildArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = ServerConfig::new(StoreConfig {
        data_dir: args.data_dir,
        database_url: args.database_url,
    });
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.jwt_secret = Some(args.secret);
    if let Some(snapshots) = &args.snapshots {
        config.snapshots =
            lifeos::config::parse_snapshots(snapshots).map_err(anyhow::Error::msg)?;
    }
    config.nats_url = args.nats_url;
    if let Some(prefix) = args.nats_prefix {
        config.nats_prefix = prefix;
    }
    if let Some(roles) = &args.roles {
        config.roles = roles.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(n) = args.aggregate_cache {
        config.aggregate_cache = n;
    }
    config.events_max_age = Duration::from_secs(3600);
    let server = lifeos::start(config).await?;
    println!("listening {}", server.local_addr());
    // stdin closes when the parent is done (or dies)
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    server.shutdown().await
}
