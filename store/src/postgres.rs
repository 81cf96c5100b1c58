//! The PostgreSQL backend: postgres-es's events table extended with a global, gap-free read order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, query};
use tokio::sync::watch;
use uuid::Uuid;

use crate::commit_queue::{Answer, CommitQueue, GroupWriter};
use crate::journal::{AppendBatch, AppendOutcome, CommandKey, Journal, Receipt, StreamLoad};
use crate::logged::stamp;
use crate::{LoggedEvent, Position, StoreError};

/// The NOTIFY channel appends signal on (payload: the position appended).
pub const NOTIFY_CHANNEL: &str = "lifeos_events";

/// One command's append as one statement: events (`$3`…`$10` as arrays), snapshot (`$11`,
/// `$12`, when given), receipt (`$13`, `$14`, `$15` without its position, when a command id is
/// given) and notification (`$16`). Returns the last event's position (no row without events).
const APPEND: &str = "\
WITH ins AS ( \
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
        payload, metadata, event_id, user_id, recorded_at) \
    SELECT $1, $2, u.s, u.t, u.v, u.p, u.m, u.e, u.usr, u.r \
    FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::uuid[], \
        $9::uuid[], $10::timestamptz[]) WITH ORDINALITY AS u(s, t, v, p, m, e, usr, r, n) \
    ORDER BY u.n \
    RETURNING global_position, transaction_id \
), last AS ( \
    SELECT global_position, transaction_id FROM ins \
    ORDER BY transaction_id DESC, global_position DESC LIMIT 1 \
), snap AS ( \
    INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, payload, taken_at) \
    SELECT $1, $2, $11, $12, now() WHERE $11::bigint IS NOT NULL \
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
    SET last_sequence = EXCLUDED.last_sequence, payload = EXCLUDED.payload, taken_at = EXCLUDED.taken_at \
    WHERE snapshots.last_sequence < EXCLUDED.last_sequence \
), rec AS ( \
    INSERT INTO command_receipts (user_id, command_id, receipt, recorded_at) \
    SELECT $13, $14, jsonb_set($15::jsonb, '{position}', COALESCE( \
        (SELECT jsonb_build_object('tx', transaction_id::text::bigint, 'pos', global_position) FROM last), \
        'null'::jsonb)), now() \
    WHERE $14::text IS NOT NULL \
) \
SELECT global_position, transaction_id::text AS tx, \
    pg_notify($16, transaction_id::text || '.' || global_position) AS notified \
FROM last";

const SELECT_LOGGED: &str = "SELECT global_position, transaction_id::text AS tx, event_id, user_id, \
     recorded_at, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
     FROM events";

mod group;

/// The event store on PostgreSQL. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    loader: Arc<PostgresEventRepository>,
    wake: Arc<Wake>,
    /// The group-commit queue of this store's appends, started at the first append (in a
    /// tokio runtime: `from_pool` may be called outside one).
    appends: Arc<OnceLock<CommitQueue>>,
}

struct Wake {
    sender: watch::Sender<u64>,
    listening: AtomicBool,
}

impl PgStore {
    /// Connects to `url` (e.g. `postgres://user@host/db`) with a pool of `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            loader: Arc::new(PostgresEventRepository::new(pool.clone())),
            pool,
            wake: Arc::new(Wake {
                sender: watch::channel(0).0,
                listening: AtomicBool::new(false),
            }),
            appends: Arc::default(),
        }
    }

    /// This store without its queue: what the group-commit task appends through (holding
    /// the queue itself would keep the task alive for ever).
    fn direct(&self) -> PgStore {
        PgStore {
            appends: Arc::default(),
            ..self.clone()
        }
    }

    /// Commits a group of appends in one statement. When that fails (a conflict, a repeated
    /// command id, a bad row: it wrote nothing), each half is tried again the same way, down to
    /// single appends, so each command gets its own answer and one bad append costs its group
    /// about 2·log₂(n) statements, not n.
    async fn commit_group(&self, mut group: Vec<AppendBatch>) -> Vec<Answer> {
        let mut answers: Vec<Option<Answer>> = group.iter().map(|_| None).collect();
        let mut parts = vec![(0, group.len())];
        while let Some((start, end)) = parts.pop() {
            if end - start == 1 {
                answers[start] = Some(self.append_one(group[start].clone()).await);
                continue;
            }
            match group::append_group(&self.pool, &mut group[start..end]).await {
                Ok(receipts) => {
                    self.wake.sender.send_modify(|n| *n += 1);
                    for (answer, receipt) in answers[start..end].iter_mut().zip(receipts) {
                        *answer = Some(Ok(AppendOutcome::Committed(receipt)));
                    }
                }
                Err(err) => {
                    tracing::debug!(appends = end - start, error = %err, "group append failed; splitting it");
                    let middle = start + (end - start) / 2;
                    parts.push((middle, end));
                    parts.push((start, middle));
                }
            }
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(StoreError::Corrupt(
                        "an append of a group went unanswered".into(),
                    ))
                })
            })
            .collect()
    }

    /// The connection pool (read models live in the same database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts the LISTEN task once; it ends when nobody waits on [`Journal::wakeups`] any more.
    fn ensure_listener(&self) {
        if self.wake.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.pool.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match listen(&pool, &wake).await {
                    Ok(()) => break,
                    // the store was closed (shutdown): nothing to listen for any more
                    Err(_) if pool.is_closed() => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "event listener lost its connection; polling until it is back");
                        wake.sender.send_modify(|n| *n += 1);
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = wake.sender.closed() => break,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            wake.listening.store(false, Ordering::SeqCst);
        });
    }

    fn decode_logged(row: &PgRow) -> Result<LoggedEvent, StoreError> {
        Ok(LoggedEvent {
            position: Position {
                tx: parse_xid(row.try_get("tx")?)?,
                pos: row.try_get("global_position")?,
            },
            event_id: row.try_get("event_id")?,
            user_id: row.try_get("user_id")?,
            recorded_at: row.try_get("recorded_at")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
        })
    }

    async fn select_serialized(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_serialized).collect()
    }
}

/// Writes a PostgreSQL store's groups (see [`PgStore::commit_group`]).
struct PgGroupWriter(PgStore);

impl GroupWriter for PgGroupWriter {
    type Slot = ();

    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn write(&self, _: (), batches: Vec<AppendBatch>) -> Result<Vec<Answer>, StoreError> {
        Ok(self.0.commit_group(batches).await)
    }
}

/// An aggregate's snapshot (when `$3`) and the events after it, in one statement.
const LOAD_STREAM: &str = "\
    WITH s AS (SELECT last_sequence, payload FROM snapshots \
               WHERE $3 AND aggregate_type = $1 AND aggregate_id = $2) \
    SELECT 0 AS kind, $1 AS aggregate_type, $2 AS aggregate_id, last_sequence AS sequence, \
           ''::text AS event_type, ''::text AS event_version, payload, 'null'::jsonb AS metadata \
      FROM s \
    UNION ALL \
    SELECT 1, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
      FROM events \
     WHERE aggregate_type = $1 AND aggregate_id = $2 \
       AND sequence > COALESCE((SELECT last_sequence FROM s), 0) \
    ORDER BY kind, sequence";

/// Listens until every wake-up receiver is gone (Ok) or the connection fails (Err).
async fn listen(pool: &PgPool, wake: &Wake) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    // Anything appended while we were not listening is found by the next read.
    wake.sender.send_modify(|n| *n += 1);
    loop {
        tokio::select! {
            note = listener.try_recv() => match note? {
                Some(_) => wake.sender.send_modify(|n| *n += 1),
                None => wake.sender.send_modify(|n| *n += 1), // reconnected: notifications may be lost
            },
            _ = wake.sender.closed() => return Ok(()),
        }
    }
}

fn parse_xid(text: String) -> Result<i64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("transaction id {text:?} is not a number")))
}

pub(crate) fn decode_serialized(row: &PgRow) -> Result<SerializedEvent, StoreError> {
    let sequence: i64 = row.try_get("sequence")?;
    Ok(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: sequence as usize,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}

fn is_version_conflict(err: sqlx::Error) -> StoreError {
    let pk = matches!(&err, sqlx::Error::Database(db) if db.constraint() == Some("events_pkey"));
    StoreError::classify(err, |code| pk && code == "23505")
}

impl PgStore {
    /// One command's append as one statement: one round trip and its own (short) transaction.
    async fn append_one(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let mut receipt = batch.receipt();
        let AppendBatch {
            expected_version,
            mut events,
            snapshot,
            command,
            ..
        } = batch;
        if events.is_empty() && command.is_none() {
            return Ok(AppendOutcome::Committed(receipt));
        }
        let n = events.len();
        let (mut seqs, mut types, mut versions, mut payloads, mut metas) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut ids, mut users, mut times) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, ev) in events.iter_mut().enumerate() {
            let s = stamp(ev)?;
            seqs.push((expected_version + 1 + i as u64) as i64);
            types.push(std::mem::take(&mut ev.event_type));
            versions.push(std::mem::take(&mut ev.event_version));
            payloads.push(std::mem::take(&mut ev.payload));
            metas.push(std::mem::take(&mut ev.metadata));
            ids.push(s.event_id);
            users.push(s.user_id);
            times.push(s.recorded_at);
        }
        receipt.event_ids = ids.clone();
        // One statement, so one round trip and its own (short) transaction: the events, the
        // snapshot, the receipt (with the position the events got) and the notification commit
        // together or not at all. A command id seen before fails the receipt's primary key and
        // with it the whole statement.
        let (seq, state) =
            snapshot.map_or((None, None), |(seq, state)| (Some(seq as i64), Some(state)));
        let row = query(APPEND)
            .bind(&receipt.aggregate_type)
            .bind(&receipt.aggregate_id)
            .bind(&seqs)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metas)
            .bind(&ids)
            .bind(&users)
            .bind(&times)
            .bind(seq)
            .bind(state)
            .bind(command.as_ref().map(|k| k.user_id))
            .bind(command.as_ref().map(|k| k.command_id.as_str()))
            .bind(serde_json::to_value(&receipt)?)
            .bind(NOTIFY_CHANNEL)
            .fetch_optional(&self.pool)
            .await;
        let row = match row {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) if db.constraint() == Some("command_receipts_pkey") => {
                let key = command.as_ref().expect("a receipt was written");
                let first = self.receipt(key).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("receipt of command {} vanished", key.command_id))
                })?;
                return Ok(AppendOutcome::Duplicate(first));
            }
            Err(err) => return Err(is_version_conflict(err)),
        };
        if let Some(row) = row {
            receipt.position = Some(Position {
                tx: parse_xid(row.try_get("tx")?)?,
                pos: row.try_get("global_position")?,
            });
        }
        self.wake.sender.send_modify(|n| *n += 1);
        Ok(AppendOutcome::Committed(receipt))
    }
}

impl Journal for PgStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        if batch.events.is_empty() && batch.command.is_none() {
            return self.append_one(batch).await;
        }
        let queue = match self.appends.get() {
            Some(queue) => queue,
            None => {
                let started = CommitQueue::start(PgGroupWriter(self.direct()))?;
                self.appends.get_or_init(|| started)
            }
        };
        queue.append(batch).await
    }

    async fn load_stream<A: Aggregate>(
        &self,
        aggregate_id: &str,
        with_snapshot: bool,
    ) -> Result<StreamLoad, PersistenceError> {
        // One round trip: the snapshot row (kind 0, no event type) first, then the events after
        // it (kind 1), in sequence order.
        let rows = query(LOAD_STREAM)
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(with_snapshot)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from)?;
        let mut load = StreamLoad::default();
        for row in &rows {
            if row.try_get::<i32, _>("kind").map_err(StoreError::from)? == 0 {
                let sequence: i64 = row.try_get("sequence").map_err(StoreError::from)?;
                load.snapshot = Some(SerializedSnapshot {
                    aggregate_id: aggregate_id.to_string(),
                    aggregate: row.try_get("payload").map_err(StoreError::from)?,
                    current_sequence: sequence as usize,
                    current_snapshot: sequence as usize,
                });
            } else {
                load.events.push(decode_serialized(row)?);
            }
        }
        Ok(load)
    }

    async fn receipt(&self, key: &CommandKey) -> Result<Option<Receipt>, StoreError> {
        let row: Option<(Value,)> = sqlx::query_as(
            "SELECT receipt FROM command_receipts WHERE user_id = $1 AND command_id = $2",
        )
        .bind(key.user_id)
        .bind(&key.command_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v,)| serde_json::from_value(v)).transpose()?)
    }

    async fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let rows = query(&format!(
            "{SELECT_LOGGED} \
             WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id, global_position LIMIT $3"
        ))
        .bind(after.tx.to_string())
        .bind(after.pos)
        .bind(limit as i64)
        .fetch_all(&self.pool)
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
        let rows = query(&format!(
            "{SELECT_LOGGED} \
             WHERE user_id = $4 AND ($5::timestamptz IS NULL OR recorded_at <= $5) \
               AND (transaction_id, global_position) > ($1::text::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id, global_position LIMIT $3"
        ))
        .bind(after.tx.to_string())
        .bind(after.pos)
        .bind(limit as i64)
        .bind(user_id)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::decode_logged).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        // The text column needs its own name: unaliased it is called `transaction_id`, and ORDER
        // BY would sort that text ("9999" after "10000") instead of the xid8 column.
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT global_position, transaction_id::text AS tx FROM events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY events.transaction_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(Position::START),
            Some((pos, tx)) => Ok(Position {
                tx: parse_xid(tx)?,
                pos,
            }),
        }
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        let rx = self.wake.sender.subscribe();
        self.ensure_listener();
        rx
    }
}

impl PersistedEventRepository for PgStore {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        // postgres-es's own loader reads our extended table unchanged.
        self.loader.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self
            .select_serialized(A::TYPE, aggregate_id, last_sequence as i64)
            .await?)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row: Option<(i64, Value)> = sqlx::query_as(
            "SELECT last_sequence, payload FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(row.map(|(seq, payload)| SerializedSnapshot {
            aggregate_id: aggregate_id.to_string(),
            aggregate: payload,
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
        let events = self.select_serialized(A::TYPE, aggregate_id, 0).await?;
        Ok(crate::backend::replay_stream(events))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows = query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 ORDER BY global_position",
        )
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        let events = rows
            .iter()
            .map(decode_serialized)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::backend::replay_stream(events))
    }
}
