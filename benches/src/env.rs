//! A fresh store per workload: a temp dir (the SQLite file) or fresh PostgreSQL databases
//! (`lifeos_t_*`, made and dropped by `store::testing`).

use std::fmt;

use anyhow::Context;
use store::Store;
use tempfile::TempDir;

/// Which store a workload runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store (WAL, `synchronous=FULL`).
    Sqlite,
    /// PostgreSQL on `LIFEOS_TEST_DATABASE_URL` (default 127.0.0.1:5432).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The JWT secret of every benchmark server.
pub const SECRET: &str = "lifeos benchmarks: a secret of more than 32 bytes";

/// One workload's store: the engine's database, plus any baseline databases beside it.
pub struct Env {
    /// The store kind.
    pub backend: Backend,
    /// The data dir (SQLite file, child server state).
    pub dir: TempDir,
    /// The engine's PostgreSQL database.
    pub database_url: Option<String>,
    extra: Vec<String>,
}

impl Env {
    /// A fresh, empty store; `None` when PostgreSQL is unreachable outside CI (said on stderr;
    /// in CI that panics: CI must not pass by skipping).
    pub async fn fresh(backend: Backend) -> anyhow::Result<Option<Env>> {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => match store::testing::fresh_postgres_url().await {
                Some(url) => Some(url),
                None => return Ok(None),
            },
        };
        Ok(Some(Env {
            backend,
            dir: tempfile::tempdir().context("temp dir")?,
            database_url,
            extra: Vec::new(),
        }))
    }

    /// Opens the engine's store (migrated) in this process.
    pub async fn open(&self) -> anyhow::Result<Store> {
        let store = Store::open(self.database_url.as_deref(), self.dir.path()).await?;
        store::migrate(&store).await?;
        Ok(store)
    }

    /// Another empty PostgreSQL database on the same server, dropped with this env.
    pub async fn extra_database(&mut self) -> anyhow::Result<String> {
        let url = store::testing::fresh_postgres_url()
            .await
            .context("PostgreSQL became unreachable")?;
        self.extra.push(url.clone());
        Ok(url)
    }

    /// Drops the PostgreSQL databases this env made.
    pub async fn cleanup(self) {
        let urls = self.database_url.iter().chain(self.extra.iter());
        for url in urls {
            if let Ok(store) = Store::open(Some(url), self.dir.path()).await {
                store::testing::drop_postgres_store(store).await;
            }
        }
    }
}
