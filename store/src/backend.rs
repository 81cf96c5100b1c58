//! The backend chosen at run time, and the glue both backends share.

use std::path::Path;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::journal::{AppendBatch, AppendOutcome, CommandKey, Journal, Receipt, StreamLoad};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{LoggedEvent, Position, StoreError};

/// The event store, on PostgreSQL or on the embedded SQLite file.
///
/// cqrs-es's repository trait is not object safe, so the choice is this enum.
#[derive(Clone)]
pub enum Store {
    /// PostgreSQL (`--database-url`).
    Postgres(PgStore),
    /// The embedded default: `<data dir>/lifeos.db`.
    Sqlite(SqliteStore),
}

macro_rules! dispatch {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            Store::Postgres($s) => $body,
            Store::Sqlite($s) => $body,
        }
    };
}

impl Store {
    /// Opens PostgreSQL when `database_url` is given, else the SQLite file in `data_dir`
    /// (created if missing).
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match database_url {
            Some(url) => Ok(Store::Postgres(PgStore::connect(url, 16).await?)),
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Unavailable(sqlx::Error::Configuration(
                        format!("cannot create data dir {}: {e}", data_dir.display()).into(),
                    ))
                })?;
                Ok(Store::Sqlite(
                    SqliteStore::open(&data_dir.join("lifeos.db")).await?,
                ))
            }
        }
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// How many readable events come after `after` in the log (a reader's lag).
    pub async fn count_after(&self, after: Position) -> Result<u64, StoreError> {
        let n: i64 = match self {
            Store::Postgres(s) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM events \
                     WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
                       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
                )
                .bind(after.tx.to_string())
                .bind(after.pos)
                .fetch_one(s.pool())
                .await?
            }
            Store::Sqlite(s) => {
                sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position > $1")
                    .bind(after.pos)
                    .fetch_one(s.reader())
                    .await?
            }
        };
        Ok(n as u64)
    }

    /// Closes the connection pools.
    pub async fn close(&self) {
        match self {
            Store::Postgres(s) => s.pool().close().await,
            Store::Sqlite(s) => s.close().await,
        }
    }
}

impl Journal for Store {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        dispatch!(self, s => s.append(batch).await)
    }
    async fn load_stream<A: Aggregate>(
        &self,
        aggregate_id: &str,
        with_snapshot: bool,
    ) -> Result<StreamLoad, PersistenceError> {
        dispatch!(self, s => s.load_stream::<A>(aggregate_id, with_snapshot).await)
    }
    async fn receipt(&self, key: &CommandKey) -> Result<Option<Receipt>, StoreError> {
        dispatch!(self, s => s.receipt(key).await)
    }
    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        dispatch!(self, s => s.read_after(after, limit).await)
    }
    async fn read_user_after(
        &self,
        user_id: Uuid,
        after: Position,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        dispatch!(self, s => s.read_user_after(user_id, after, until, limit).await)
    }
    async fn head(&self) -> Result<Position, StoreError> {
        dispatch!(self, s => s.head().await)
    }
    fn wakeups(&self) -> watch::Receiver<u64> {
        dispatch!(self, s => s.wakeups())
    }
}

impl PersistedEventRepository for Store {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        dispatch!(self, s => s.get_events::<A>(aggregate_id).await)
    }
    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        dispatch!(self, s => s.get_last_events::<A>(aggregate_id, last_sequence).await)
    }
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        dispatch!(self, s => s.get_snapshot::<A>(aggregate_id).await)
    }
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        dispatch!(self, s => s.persist::<A>(events, snapshot_update).await)
    }
    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        dispatch!(self, s => s.stream_events::<A>(aggregate_id).await)
    }
    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        dispatch!(self, s => s.stream_all_events::<A>().await)
    }
}

/// cqrs-es's `persist` expressed as one [`Journal::append`] (no command receipt).
pub(crate) async fn persist_via_append<J: Journal>(
    journal: &J,
    aggregate_type: &str,
    events: &[SerializedEvent],
    snapshot_update: Option<(String, Value, usize)>,
) -> Result<(), StoreError> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    let last_sequence = events.last().map_or(0, |e| e.sequence) as u64;
    let batch = AppendBatch {
        aggregate_type: aggregate_type.to_string(),
        aggregate_id: first.aggregate_id.clone(),
        expected_version: first.sequence.saturating_sub(1) as u64,
        events: events.to_vec(),
        snapshot: snapshot_update.map(|(_, state, _)| (last_sequence, state)),
        command: None,
    };
    journal.append(batch).await.map(|_| ())
}

/// Feeds already loaded events into a cqrs-es replay stream.
pub(crate) fn replay_stream(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    tokio::spawn(async move {
        for event in events {
            if feed.push(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    stream
}
