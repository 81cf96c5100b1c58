//! Group commit for the SQLite appends.
//!
//! The file has one writing connection and runs `synchronous=FULL`, so every COMMIT waits for an
//! fsync: one transaction per command caps the engine at the disk's fsync rate however many
//! clients wait. Instead every store has one appender task. It takes the first queued append,
//! waits for the writing connection (commands arriving meanwhile join the group), takes every
//! other append queued by then and writes them all in one transaction, each command inside a
//! savepoint of its own, so a version conflict, a repeated command id or a bad event undoes only
//! that command. One COMMIT, one fsync, answers the whole group; nothing is acknowledged before
//! it, and a failed COMMIT fails every command of the group. The appender never waits for a group
//! to fill: a lone command is written at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Connection, query, query_scalar};
use tokio::sync::{mpsc, oneshot, watch};

use super::{is_version_conflict, sortable_time};
use crate::journal::{AppendBatch, AppendOutcome, Receipt};
use crate::logged::stamp;
use crate::{Position, StoreError};

/// The most commands one transaction takes; the rest wait for the next group.
const MAX_GROUP: usize = 256;

/// Where the appender answers one command.
type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

/// What the appender is asked.
enum Request {
    /// Write this command's batch and answer once it is committed (or failed).
    Append { batch: AppendBatch, reply: Reply },
    /// Take no more requests, finish the queued ones, then answer.
    Close(oneshot::Sender<()>),
}

/// The handle to a store's appender task; every clone of the store shares the one task, which
/// ends when the last handle is dropped or the store is closed.
#[derive(Clone)]
pub(super) struct Appender {
    queue: mpsc::UnboundedSender<Request>,
    in_flight: Arc<AtomicUsize>,
}

impl Appender {
    /// Starts the appender task on the current tokio runtime; it writes through `writer` and
    /// bumps `wake` once per committed group.
    pub(super) fn start(
        writer: SqlitePool,
        wake: Arc<watch::Sender<u64>>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            StoreError::Unavailable(sqlx::Error::Configuration(
                format!("the SQLite appender needs a tokio runtime: {e}").into(),
            ))
        })?;
        let (queue, requests) = mpsc::unbounded_channel();
        runtime.spawn(run(writer, wake, requests));
        Ok(Self {
            queue,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Queues `batch` (never empty: the caller answers those itself) and waits for its outcome.
    /// Every caller awaits its answer, so the queue holds at most one request per waiting caller.
    pub(super) async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request::Append { batch, reply })
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let _counted = InFlight::count(&self.in_flight);
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }

    /// Commands queued or being written, not answered yet.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Stops taking appends and waits until the queued ones are answered; later appends fail.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Request::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Counts one command in flight for as long as it lives (also when its caller gives up).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The appender task: one group after the other until every handle is gone or it is closed.
async fn run(
    writer: SqlitePool,
    wake: Arc<watch::Sender<u64>>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut closers = Vec::new();
    while let Some(request) = requests.recv().await {
        let mut group = Vec::new();
        take(request, &mut group, &mut closers, &mut requests);
        if group.is_empty() {
            continue;
        }
        // Wait for the connection first and take the queue after: what arrived meanwhile
        // (while the previous group or a read model held the writer) joins this group.
        let conn = writer.acquire().await;
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => take(request, &mut group, &mut closers, &mut requests),
                Err(_) => break,
            }
        }
        // A caller that stopped waiting before its command was written gets nothing written.
        group.retain(|(_, reply)| !reply.is_closed());
        if group.is_empty() {
            continue;
        }
        let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let written = match conn {
            Ok(mut conn) => write_group(&mut conn, batches).await,
            Err(err) => Err(err),
        };
        match written {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, Ok(AppendOutcome::Committed(_))))
                {
                    // before the answers: a caller that saw its receipt also sees the signal
                    wake.send_modify(|n| *n += 1);
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, commands = replies.len(), "SQLite group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(sqlx::Error::Io(
                        std::io::Error::other(format!("group commit failed: {err}")),
                    ))));
                }
            }
        }
    }
    for closer in closers {
        let _ = closer.send(());
    }
}

/// Adds an append to `group`, or records a close request and stops the queue.
fn take(
    request: Request,
    group: &mut Vec<(AppendBatch, Reply)>,
    closers: &mut Vec<oneshot::Sender<()>>,
    requests: &mut mpsc::UnboundedReceiver<Request>,
) {
    match request {
        Request::Append { batch, reply } => group.push((batch, reply)),
        Request::Close(done) => {
            closers.push(done);
            requests.close(); // the queued requests are still taken, no new one is accepted
        }
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
    let AppendBatch {
        aggregate_type,
        aggregate_id,
        expected_version,
        mut events,
        snapshot,
        command,
    } = batch;
    let mut receipt = Receipt {
        aggregate_type,
        aggregate_id,
        version: expected_version + events.len() as u64,
        event_ids: Vec::with_capacity(events.len()),
        position: None,
    };
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
