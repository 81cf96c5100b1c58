//! Server configuration and the JWT secret's resolution.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use api_common::auth::MIN_SECRET_LEN;
use store::Store;

/// Which store to open.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The embedded store's folder (also where the generated JWT secret is kept).
    pub data_dir: PathBuf,
    /// PostgreSQL URL; None selects the embedded SQLite store.
    pub database_url: Option<String>,
}

impl StoreConfig {
    /// Opens the store and applies pending migrations.
    pub async fn open_migrated(&self) -> anyhow::Result<Store> {
        let store = Store::open(self.database_url.as_deref(), &self.data_dir)
            .await
            .with_context(|| match &self.database_url {
                Some(_) => "cannot connect to PostgreSQL (--database-url)".to_string(),
                None => format!("cannot open the store in {}", self.data_dir.display()),
            })?;
        store::migrate(&store).await.context("migrations failed")?;
        Ok(store)
    }

    /// The JWT secret: `explicit` (`LIFEOS_JWT_SECRET`) if given; on the embedded store, else the
    /// one kept in the data dir (generated on first use); on PostgreSQL it must be given, since
    /// every API process has to share it.
    pub fn jwt_secret(&self, explicit: Option<&str>) -> anyhow::Result<String> {
        if let Some(secret) = explicit {
            if secret.len() < MIN_SECRET_LEN {
                bail!("LIFEOS_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes long");
            }
            return Ok(secret.to_string());
        }
        if self.database_url.is_some() {
            bail!(
                "LIFEOS_JWT_SECRET (or --jwt-secret) is required with --database-url: \
                 every process serving the same database must share it"
            );
        }
        secret_in_dir(&self.data_dir)
    }
}

fn secret_in_dir(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("jwt-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let secret = text.trim().to_string();
        if secret.len() >= MIN_SECRET_LEN {
            return Ok(secret);
        }
        bail!(
            "{} holds a secret shorter than {MIN_SECRET_LEN} bytes",
            path.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let secret = api_common::Auth::generate_secret();
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a JWT secret for the embedded store");
    Ok(secret)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// Aggregates of each type the command path keeps in memory by default.
pub const DEFAULT_AGGREGATE_CACHE: usize = 1024;

/// Everything `lifeos serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreConfig,
    /// The JWT secret (see [`StoreConfig::jwt_secret`]).
    pub jwt_secret: Option<String>,
    /// Snapshot frequency per aggregate type (`task` → every N events; absent: never).
    pub snapshots: HashMap<String, u64>,
    /// How many recently commanded aggregates of each type the command path keeps in memory
    /// (`0`: load every aggregate from the store; see `store::AggregateCache`).
    pub aggregate_cache: usize,
    /// How long a query waits for its consistency token.
    pub consistency_wait: Duration,
    /// What this process does.
    pub roles: Roles,
    /// NATS server (JetStream) for the event relay and the request/reply API; None: the
    /// in-process bus.
    pub nats_url: Option<String>,
    /// How long JetStream keeps published events (the log keeps them for ever).
    pub events_max_age: Duration,
    /// First subject token on NATS: `<prefix>.events.*`, `<prefix>.commands.*`,
    /// `<prefix>.queries.*`, `<prefix>.system.*`, stream `<PREFIX>_EVENTS` (default `lifeos`).
    pub nats_prefix: String,
}

impl ServerConfig {
    /// Defaults for `store`: 127.0.0.1:50051, every role, no NATS, no snapshots, a cache of
    /// [`DEFAULT_AGGREGATE_CACHE`] aggregates per type, 5 s consistency wait.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            store,
            jwt_secret: None,
            snapshots: HashMap::new(),
            aggregate_cache: DEFAULT_AGGREGATE_CACHE,
            consistency_wait: Duration::from_secs(5),
            roles: Roles::all(),
            nats_url: None,
            events_max_age: Duration::from_secs(30 * 24 * 3600),
            nats_prefix: "lifeos".to_string(),
        }
    }
}

/// The roles of one `lifeos serve` process: several processes sharing a PostgreSQL (and NATS)
/// split them; the embedded default runs them all. Every process serves gRPC health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The gRPC API (and the NATS request/reply API when NATS is configured).
    pub api: bool,
    /// The projection runners (one active per projection across processes, others standby).
    pub projector: bool,
    /// The event relay to the bus (one active across processes, others standby).
    pub relay: bool,
}

impl Roles {
    /// Every role: the embedded default.
    pub fn all() -> Self {
        Self {
            api: true,
            projector: true,
            relay: true,
        }
    }
}

impl std::str::FromStr for Roles {
    type Err = String;

    /// Parses `api,projector,relay` (any non-empty subset).
    fn from_str(text: &str) -> Result<Self, String> {
        let mut roles = Roles {
            api: false,
            projector: false,
            relay: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "api" => roles.api = true,
                "projector" => roles.projector = true,
                "relay" => roles.relay = true,
                other => {
                    return Err(format!(
                        "unknown role {other:?}: expected api, projector or relay"
                    ));
                }
            }
        }
        if roles
            == (Roles {
                api: false,
                projector: false,
                relay: false,
            })
        {
            return Err("at least one role: api, projector, relay".to_string());
        }
        Ok(roles)
    }
}

/// Parses `task=100,habit=50` (aggregate type = snapshot every N events).
pub fn parse_snapshots(text: &str) -> Result<HashMap<String, u64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, n) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected <aggregate type>=<events>"))?;
            let n: u64 = n
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: {n:?} is not a number of events"))?;
            Ok((name.trim().to_string(), n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_or_name_the_bad_one() {
        let r: Roles = "api, relay".parse().unwrap();
        assert!(r.api && r.relay && !r.projector);
        assert_eq!(
            "api,projector,relay".parse::<Roles>().unwrap(),
            Roles::all()
        );
        assert!("api,cook".parse::<Roles>().unwrap_err().contains("cook"));
        assert!("".parse::<Roles>().is_err());
    }

    #[test]
    fn snapshot_flags_parse_or_name_the_bad_part() {
        let m = parse_snapshots("task=100, habit=5").unwrap();
        assert_eq!(m["task"], 100);
        assert_eq!(m["habit"], 5);
        assert!(parse_snapshots("task").unwrap_err().contains("task"));
        assert!(parse_snapshots("task=x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn embedded_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            data_dir: dir.path().to_path_buf(),
            database_url: None,
        };
        let first = config.jwt_secret(None).unwrap();
        assert_eq!(config.jwt_secret(None).unwrap(), first);
        assert!(first.len() >= MIN_SECRET_LEN);
        let pg = StoreConfig {
            database_url: Some("postgres://x".into()),
            ..config
        };
        assert!(
            pg.jwt_secret(None).is_err(),
            "PostgreSQL needs an explicit secret"
        );
        assert!(pg.jwt_secret(Some("short")).is_err());
    }
}
