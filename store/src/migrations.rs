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
    5 "0005_read_models_file.sql",
);
/// The embedded store's read-model file (see `SqliteStore`), migrated before the log file (whose
/// 0005 moves older rows into it).
const SQLITE_READ_MODELS: &[(i64, &str, &str)] = embed!("sqlite-read-models":
    1 "0001_read_models.sql",
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
        Store::Sqlite(s) => {
            migrator(SQLITE_READ_MODELS)
                .run(s.read_model_writer())
                .await?;
            // attached: 0005 moves older read-model rows into that file
            s.with_read_models_attached(async |conn| Ok(migrator(SQLITE).run(conn).await?))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;

    /// The log file's migrations before the read models moved out of it.
    const SQLITE_BEFORE_0005: &[(i64, &str, &str)] = SQLITE.split_at(4).0;

    async fn count(store: &SqliteStore, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(store.reader())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[tokio::test]
    async fn sqlite_read_models_move_to_their_own_file_with_their_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = SqliteStore::open(&dir.path().join("lifeos.db"))
            .await
            .expect("open");
        // a store migrated by an older release: read models in the log file
        migrator(SQLITE_BEFORE_0005)
            .run(sqlite.writer())
            .await
            .expect("old migrations");
        for sql in [
            "INSERT INTO main.read_model_rows VALUES ('journal_entries@1', 'u', 'e1', 'entry', 'k', \
             '{\"text\":\"walked along the harbour\"}')",
            "INSERT INTO main.projection_checkpoints VALUES ('journal_entries', 0, 42, 'now')",
            "INSERT INTO main.projection_status (projection, active_model, state, updated_at) \
             VALUES ('journal_entries', 'journal_entries@1', 'live', 'now')",
        ] {
            sqlx::query(sql)
                .execute(sqlite.writer())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }

        let store = Store::Sqlite(sqlite.clone());
        migrate(&store).await.expect("migrate");
        migrate(&store).await.expect("migrating again does nothing");

        let in_log_file = "SELECT COUNT(*) FROM main.sqlite_master \
            WHERE name IN ('read_model_rows', 'projection_checkpoints', 'projection_status', \
                           'journal_search', 'journal_search_keys')";
        assert_eq!(
            count(&sqlite, in_log_file).await,
            0,
            "moved out of the log file"
        );
        assert_eq!(
            count(&sqlite, "SELECT COUNT(*) FROM read_models.read_model_rows").await,
            1
        );
        assert_eq!(
            count(&sqlite, "SELECT COUNT(*) FROM projection_status").await,
            1
        );
        assert_eq!(
            store
                .checkpoint("journal_entries")
                .await
                .expect("checkpoint"),
            crate::Position { tx: 0, pos: 42 }
        );
        assert_eq!(
            count(
                &sqlite,
                "SELECT COUNT(*) FROM journal_search WHERE journal_search MATCH 'harbour'"
            )
            .await,
            1,
            "the search index is refilled in the read-model file"
        );
        store.close().await;
    }
}
