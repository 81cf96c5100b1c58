//! The versioned schema (`migrations/` at the workspace root), embedded in the binary.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::{Store, StoreError};

macro_rules! embed {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(($version, $name, include_str!(concat!("../../migrations/", $dir, "/", $name)))),*]
    };
}

const POSTGRES: &[(i64, &str, &str)] = embed!("postgres":
    1 "0001_event_store.sql",
    2 "0002_read_models.sql",
    3 "0003_projection_status.sql",
    4 "0004_journal_search.sql",
);
const SQLITE: &[(i64, &str, &str)] = embed!("sqlite":
    1 "0001_event_store.sql",
    2 "0002_read_models.sql",
    3 "0003_projection_status.sql",
    4 "0004_journal_search.sql",
);

fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = files
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Applies every migration not yet applied (idempotent; safe to run at every start).
pub async fn migrate(store: &Store) -> Result<(), StoreError> {
    match store {
        Store::Postgres(s) => migrator(POSTGRES).run(s.pool()).await?,
        Store::Sqlite(s) => migrator(SQLITE).run(s.writer()).await?,
    }
    Ok(())
}
