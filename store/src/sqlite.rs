//! The embedded backend: the same log in one SQLite file (WAL, one writer, `synchronous=FULL`,
//! appends group-committed: see `sqlite/appender.rs`), and the read models in a second file
//! beside it with a writer of its own (see [`SqliteStore`]).

mod appender;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, query};
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

use self::appender::SqliteWriter;
use crate::commit_queue::CommitQueue;
use crate::journal::{AppendBatch, AppendOutcome, CommandKey, Journal, Receipt};
use crate::{LoggedEvent, Position, StoreError};

/// The event store in an SQLite file. Cheap to clone.
///
/// Two files: the **log file** (events, snapshots, command receipts) and the **read-model
/// file** beside it ([`read_models_file`]: read-model rows, checkpoints, projection status, the
/// journal search index). SQLite locks writers per file, so each has a writing connection of its
/// own and a command's append never queues behind a read-model commit.
///
/// All log writes go through one connection (`writer`), so SQLite never sees two writers and
/// `global_position` (max + 1 inside the writing transaction) follows commit order. Appends go
/// through the store's one appender task, which commits the commands queued together in one
/// transaction (one fsync per group, not per command). Read-model writes go through
/// `read_model_writer`, with `synchronous=NORMAL` (derived data: a power loss may drop its last
/// commits, which the runners re-apply from the older checkpoint in the same file). The reading
/// connections attach the read-model file as schema `read_models`, so one statement may read
/// both and unqualified table names find either; the log writer does not (its `BEGIN IMMEDIATE`
/// would take the write lock of every attached file). No transaction writes both files
/// (migration 0005 excepted), so each file's atomicity is the only one needed.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    read_model_writer: SqlitePool,
    appender: CommitQueue,
    reader: SqlitePool,
    wake: Arc<watch::Sender<u64>>,
    path: std::path::PathBuf,
    /// The read-model file's path, as the reading connections attach it.
    attached: String,
}

impl SqliteStore {
    /// Opens (creating if missing) the log file at `path` and its read-model file
    /// ([`read_models_file`]).
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let single = || {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        // the read-model file first: the log file's connections attach it
        let read_models_path = read_models_file(path);
        let read_model_writer = single()
            .connect_with(
                options
                    .clone()
                    .filename(&read_models_path)
                    .synchronous(SqliteSynchronous::Normal),
            )
            .await
            .map_err(StoreError::Unavailable)?;
        let attached = read_models_path
            .to_str()
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the read-model file path {} is not UTF-8",
                    read_models_path.display()
                ))
            })?
            .to_string();
        let log = options.filename(path).synchronous(SqliteSynchronous::Full);
        // not attached on the writer: its BEGIN IMMEDIATE would lock every attached file
        let writer = single()
            .connect_with(log.clone())
            .await
            .map_err(StoreError::Unavailable)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .after_connect({
                let attached = attached.clone();
                move |conn, _| Box::pin(attach_read_models(conn, attached.clone()))
            })
            .connect_with(log.read_only(true))
            .await
            .map_err(StoreError::Unavailable)?;
        let wake = Arc::new(watch::channel(0).0);
        let appender = CommitQueue::start(SqliteWriter {
            writer: writer.clone(),
            wake: wake.clone(),
        })?;
        Ok(Self {
            writer,
            read_model_writer,
            appender,
            reader,
            wake,
            path: path.to_path_buf(),
            attached,
        })
    }

    /// Runs `work` on the log file's writing connection with the read-model file attached
    /// (migrations that move rows between the files), detached again after.
    pub(crate) async fn with_read_models_attached<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.acquire().await?;
        attach_read_models(&mut conn, self.attached.clone()).await?;
        let done = work(&mut conn).await;
        let detached = query(&format!("DETACH DATABASE {READ_MODELS_SCHEMA}"))
            .execute(&mut *conn)
            .await;
        if detached.is_err() {
            conn.close_on_drop();
        }
        let done = done?;
        detached?;
        Ok(done)
    }

    /// The single writing connection of the log file (appends, migrations).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The single writing connection of the read-model file (rows, checkpoints, status).
    pub fn read_model_writer(&self) -> &SqlitePool {
        &self.read_model_writer
    }

    /// The pool for reads.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends handed to the appender and not answered yet (queued or being written).
    pub fn appends_in_flight(&self) -> usize {
        self.appender.in_flight()
    }

    /// Finishes the queued appends (later ones fail), then closes the pools, flushing the WALs.
    pub async fn close(&self) {
        self.appender.close().await;
        self.reader.close().await;
        self.writer.close().await;
        self.read_model_writer.close().await;
    }

    fn decode_logged(row: &SqliteRow) -> Result<LoggedEvent, StoreError> {
        Ok(LoggedEvent {
            position: Position {
                tx: 0,
                pos: row.try_get("global_position")?,
            },
            event_id: parse_uuid(row.try_get("event_id")?)?,
            user_id: row
                .try_get::<Option<String>, _>("user_id")?
                .map(parse_uuid)
                .transpose()?,
            recorded_at: parse_time(row.try_get("recorded_at")?)?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: parse_json(row.try_get("payload")?)?,
            metadata: parse_json(row.try_get("metadata")?)?,
        })
    }

    async fn select_serialized(
        &self,
        aggregate_type: &str,
        aggregate_id: Option<&str>,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = query(&stream_query(aggregate_id.is_some()))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after_sequence)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let sequence: i64 = row.try_get("sequence")?;
                Ok(SerializedEvent {
                    aggregate_type: row.try_get("aggregate_type")?,
                    aggregate_id: row.try_get("aggregate_id")?,
                    sequence: sequence as usize,
                    event_type: row.try_get("event_type")?,
                    event_version: row.try_get("event_version")?,
                    payload: parse_json(row.try_get("payload")?)?,
                    metadata: parse_json(row.try_get("metadata")?)?,
                })
            })
            .collect()
    }
}

/// The SELECT of [`SqliteStore::select_serialized`] (`$1` type, `$2` id, `$3` after sequence):
/// one stream (`one`) in sequence order (cqrs-es's contract, as postgres-es does), or every
/// stream of a type in log order.
///
/// Two statements, not one with `($2 IS NULL OR aggregate_id = $2)`: SQLite plans that condition
/// for both cases, so it could not search the primary key by aggregate id and scanned every
/// event of the type on each load of one stream (a command's cost grew with the log).
fn stream_query(one: bool) -> String {
    let (stream, order) = if one {
        ("aggregate_id = $2", "sequence")
    } else {
        ("$2 IS NULL", "global_position")
    };
    format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = $1 AND {stream} AND sequence > $3 ORDER BY {order}"
    )
}

/// The read-model file of the log file `path`: `lifeos.db` → `lifeos.read-models.db`.
///
/// It holds only what the runners derive from the log: deleting it (server stopped) makes every
/// read model rebuild, and the event relay publish the log again from the start (subscribers
/// drop repeats by CloudEvent id; JetStream's duplicate window drops recent ones).
pub fn read_models_file(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.read-models.{}", ext.to_string_lossy()),
        None => format!("{stem}.read-models"),
    };
    path.with_file_name(name)
}

/// The schema name the read-model file is attached under on the log file's connections (also
/// spelled out in `migrations/sqlite/0005_read_models_file.sql`).
const READ_MODELS_SCHEMA: &str = "read_models";

/// Attaches the read-model file at `path` to `conn` as [`READ_MODELS_SCHEMA`]: read-only on a
/// read-only connection (ATTACH takes the main database's open flags).
async fn attach_read_models(conn: &mut SqliteConnection, path: String) -> Result<(), sqlx::Error> {
    query(&format!("ATTACH DATABASE $1 AS {READ_MODELS_SCHEMA}"))
        .bind(path)
        .execute(conn)
        .await?;
    Ok(())
}

/// RFC 3339 in UTC with a fixed nine-digit fraction, so the text sorts like the time.
fn sortable_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn parse_uuid(s: String) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("uuid {s:?}: {e}")))
}

fn parse_time(s: String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {s:?}: {e}")))
}

fn parse_json(s: String) -> Result<Value, StoreError> {
    Ok(serde_json::from_str(&s)?)
}

/// SQLITE_CONSTRAINT_PRIMARYKEY: the (aggregate_type, aggregate_id, sequence) key is taken.
fn is_version_conflict(err: sqlx::Error) -> StoreError {
    StoreError::classify(err, |code| code == "1555")
}

impl Journal for SqliteStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        if batch.events.is_empty() && batch.command.is_none() {
            return Ok(AppendOutcome::Committed(Receipt {
                aggregate_type: batch.aggregate_type,
                aggregate_id: batch.aggregate_id,
                version: batch.expected_version,
                event_ids: Vec::new(),
                position: None,
            }));
        }
        self.appender.append(batch).await
    }

    async fn receipt(&self, key: &CommandKey) -> Result<Option<Receipt>, StoreError> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT receipt FROM command_receipts WHERE user_id = $1 AND command_id = $2",
        )
        .bind(key.user_id.to_string())
        .bind(&key.command_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|s| serde_json::from_str(&s)).transpose()?)
    }

    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = query(
            "SELECT global_position, event_id, user_id, recorded_at, aggregate_type, aggregate_id, \
                sequence, event_type, event_version, payload, metadata \
             FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
        )
        .bind(after.pos)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(Self::decode_logged).collect()
    }

    async fn read_user_after(
        &self,
        user_id: Uuid,
        after: Position,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = query(
            "SELECT global_position, event_id, user_id, recorded_at, aggregate_type, aggregate_id, \
                sequence, event_type, event_version, payload, metadata \
             FROM events WHERE user_id = $3 AND ($4 IS NULL OR recorded_at <= $4) \
               AND global_position > $1 \
             ORDER BY global_position LIMIT $2",
        )
        .bind(after.pos)
        .bind(limit as i64)
        .bind(user_id.to_string())
        .bind(until.map(sortable_time))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(Self::decode_logged).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT MAX(global_position) FROM events")
            .fetch_one(&self.reader)
            .await?;
        Ok(Position {
            tx: 0,
            pos: pos.unwrap_or(0),
        })
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

impl PersistedEventRepository for SqliteStore {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self
            .select_serialized(A::TYPE, Some(aggregate_id), 0)
            .await?)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self
            .select_serialized(A::TYPE, Some(aggregate_id), last_sequence as i64)
            .await?)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT last_sequence, payload FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(StoreError::from)?;
        let Some((seq, payload)) = row else {
            return Ok(None);
        };
        Ok(Some(SerializedSnapshot {
            aggregate_id: aggregate_id.to_string(),
            aggregate: parse_json(payload)?,
            current_sequence: seq as usize,
            current_snapshot: seq as usize,
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        Ok(crate::backend::persist_via_append(self, A::TYPE, events, snapshot_update).await?)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self
            .select_serialized(A::TYPE, Some(aggregate_id), 0)
            .await?;
        Ok(crate::backend::replay_stream(events))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let events = self.select_serialized(A::TYPE, None, 0).await?;
        Ok(crate::backend::replay_stream(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loading one stream searches the primary key down to the sequence: its cost does not
    /// grow with the number of events of the type.
    #[tokio::test]
    async fn loading_one_stream_searches_the_primary_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let crate::Store::Sqlite(store) = crate::testing::sqlite_store(dir.path()).await else {
            panic!("sqlite_store opens SQLite");
        };
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", stream_query(true)))
            .bind("task")
            .bind("some-task")
            .bind(0_i64)
            .fetch_all(store.reader())
            .await
            .expect("query plan")
            .iter()
            .map(|row| row.try_get::<String, _>("detail").expect("detail"))
            .collect();
        let plan = plan.join("; ");
        assert!(
            plan.contains("aggregate_type=? AND aggregate_id=? AND sequence>?"),
            "plan: {plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "plan: {plan}");
        store.close().await;
    }
}
