//! The SQLite side of group commit (`crate::commit_queue`).
//!
//! The file has one writing connection and runs `synchronous=FULL`, so every COMMIT waits for an
//! fsync: one transaction per command caps the engine at the disk's fsync rate however many
//! clients wait. A group is written in one transaction on the writing connection, each command
//! inside a savepoint of its own, so a version conflict, a repeated command id or a bad event
//! undoes only that command. One COMMIT, one fsync, answers the whole group; a failed COMMIT
//! fails every command of the group.

use std::sync::Arc;

use chrono::Utc;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool};
use sqlx::{Connection, query, query_scalar};
use tokio::sync::watch;

use super::{is_version_conflict, sortable_time};
use crate::commit_queue::{Answer, GroupWriter};
use crate::journal::{AppendBatch, AppendOutcome};
use crate::logged::stamp;
use crate::{Position, StoreError};

/// Writes a store's groups through its one writing connection and signals each commit.
pub(super) struct SqliteWriter {
    /// The log file's writing connection (one; read models write through their own file's).
    pub(super) writer: SqlitePool,
    /// The store's append signal.
    pub(super) wake: Arc<watch::Sender<u64>>,
}

impl GroupWriter for SqliteWriter {
    type Slot = PoolConnection<Sqlite>;

    async fn ready(&self) -> Result<Self::Slot, StoreError> {
        self.writer.acquire().await.map_err(StoreError::Unavailable)
    }

    async fn write(
        &self,
        mut conn: Self::Slot,
        batches: Vec<AppendBatch>,
    ) -> Result<Vec<Answer>, StoreError> {
        let answers = write_group(&mut conn, batches)
            .await
            .map_err(StoreError::Unavailable)?;
        if answers
            .iter()
            .any(|a| matches!(a, Ok(AppendOutcome::Committed(_))))
        {
            // before the answers: a caller that saw its receipt also sees the signal
            self.wake.send_modify(|n| *n += 1);
        }
        Ok(answers)
    }
}

/// Writes `batches` in one transaction, each in a savepoint, and commits once. The outer error
/// (begin, savepoint bookkeeping, commit) fails the whole group; an inner one only its command.
async fn write_group(
    conn: &mut SqliteConnection,
    batches: Vec<AppendBatch>,
) -> Result<Vec<Result<AppendOutcome, StoreError>>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        query("SAVEPOINT command").execute(&mut *tx).await?;
        let outcome = write_command(&mut tx, batch).await;
        if !matches!(outcome, Ok(AppendOutcome::Committed(_))) {
            query("ROLLBACK TO command").execute(&mut *tx).await?;
        }
        query("RELEASE command").execute(&mut *tx).await?;
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// One command's rows: its events (`global_position = max + 1` each), its snapshot and its
/// receipt. A repeated command id answers the stored first receipt (the caller rolls back).
async fn write_command(
    conn: &mut SqliteConnection,
    batch: AppendBatch,
) -> Result<AppendOutcome, StoreError> {
    let mut receipt = batch.receipt();
    let AppendBatch {
        expected_version,
        mut events,
        snapshot,
        command,
        ..
    } = batch;
    for (i, ev) in events.iter_mut().enumerate() {
        let s = stamp(ev)?;
        let pos: i64 = query_scalar(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata, global_position, event_id, user_id, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, \
                (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events), $8, $9, $10) \
             RETURNING global_position",
        )
        .bind(&receipt.aggregate_type)
        .bind(&receipt.aggregate_id)
        .bind((expected_version + 1 + i as u64) as i64)
        .bind(&ev.event_type)
        .bind(&ev.event_version)
        .bind(ev.payload.to_string())
        .bind(ev.metadata.to_string())
        .bind(s.event_id.to_string())
        .bind(s.user_id.map(|u| u.to_string()))
        .bind(sortable_time(s.recorded_at))
        .fetch_one(&mut *conn)
        .await
        .map_err(is_version_conflict)?;
        receipt.event_ids.push(s.event_id);
        receipt.position = Some(Position { tx: 0, pos });
    }
    if let Some((seq, state)) = &snapshot {
        query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, payload, taken_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
             SET last_sequence = excluded.last_sequence, payload = excluded.payload, taken_at = excluded.taken_at \
             WHERE snapshots.last_sequence < excluded.last_sequence",
        )
        .bind(&receipt.aggregate_type)
        .bind(&receipt.aggregate_id)
        .bind(*seq as i64)
        .bind(state.to_string())
        .bind(Utc::now().to_rfc3339())
        .execute(&mut *conn)
        .await?;
    }
    if let Some(key) = &command {
        let inserted = query(
            "INSERT INTO command_receipts (user_id, command_id, receipt, recorded_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(key.user_id.to_string())
        .bind(&key.command_id)
        .bind(serde_json::to_string(&receipt)?)
        .bind(Utc::now().to_rfc3339())
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            // Read in this transaction: the first receipt may be an earlier command of the group.
            let first: Option<String> = query_scalar(
                "SELECT receipt FROM command_receipts WHERE user_id = $1 AND command_id = $2",
            )
            .bind(key.user_id.to_string())
            .bind(&key.command_id)
            .fetch_optional(&mut *conn)
            .await?;
            let first = first.ok_or_else(|| {
                StoreError::Corrupt(format!("receipt of command {} vanished", key.command_id))
            })?;
            return Ok(AppendOutcome::Duplicate(serde_json::from_str(&first)?));
        }
    }
    Ok(AppendOutcome::Committed(receipt))
}
