//! Group commit on PostgreSQL: the appends of several commands in one statement, so one round
//! trip, one transaction and one WAL flush for the whole group.
//!
//! The statement is all or nothing: when any batch of the group fails (a version conflict, a
//! repeated command id, a bad row), nothing is written and the caller appends the batches one by
//! one, so each command gets its own answer. Conflicts are rare, so groups almost always commit
//! whole.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgPool, Row, query};
use uuid::Uuid;

use super::{NOTIFY_CHANNEL, parse_xid};
use crate::journal::{AppendBatch, Receipt};
use crate::logged::stamp;
use crate::{Position, StoreError};

/// Every batch's events, snapshot, receipt and notification; one row per batch that wrote
/// events, with the position of its last event.
const GROUP_APPEND: &str = "\
WITH input AS ( \
    SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::bigint[], $5::text[], \
        $6::text[], $7::jsonb[], $8::jsonb[], $9::uuid[], $10::uuid[], $11::timestamptz[]) \
        WITH ORDINALITY AS u(b, at, aid, s, t, v, p, m, e, usr, r, n) \
), ins AS ( \
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
        payload, metadata, event_id, user_id, recorded_at) \
    SELECT at, aid, s, t, v, p, m, e, usr, r FROM input ORDER BY n \
    RETURNING event_id, global_position, transaction_id \
), last AS ( \
    SELECT DISTINCT ON (input.b) input.b, ins.global_position, ins.transaction_id \
    FROM ins JOIN input ON input.e = ins.event_id \
    ORDER BY input.b, ins.global_position DESC \
), snap AS ( \
    INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, payload, taken_at) \
    SELECT x.at, x.aid, x.s, x.p, now() \
    FROM UNNEST($12::text[], $13::text[], $14::bigint[], $15::jsonb[]) AS x(at, aid, s, p) \
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
    SET last_sequence = EXCLUDED.last_sequence, payload = EXCLUDED.payload, taken_at = EXCLUDED.taken_at \
    WHERE snapshots.last_sequence < EXCLUDED.last_sequence \
), rec AS ( \
    INSERT INTO command_receipts (user_id, command_id, receipt, recorded_at) \
    SELECT k.u, k.c, jsonb_set(k.r, '{position}', COALESCE( \
        (SELECT jsonb_build_object('tx', last.transaction_id::text::bigint, 'pos', last.global_position) \
         FROM last WHERE last.b = k.b), \
        'null'::jsonb)), now() \
    FROM UNNEST($16::int4[], $17::uuid[], $18::text[], $19::jsonb[]) AS k(b, u, c, r) \
) \
SELECT b, global_position, transaction_id::text AS tx, (SELECT pg_notify($20, 'group')) AS notified \
FROM last";

/// The statement's arrays: one entry per event, per snapshot, per receipt.
#[derive(Default)]
struct Columns {
    batch: Vec<i32>,
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<String>,
    payload: Vec<Value>,
    metadata: Vec<Value>,
    event_id: Vec<Uuid>,
    user_id: Vec<Option<Uuid>>,
    recorded_at: Vec<DateTime<Utc>>,
    snapshot_type: Vec<String>,
    snapshot_id: Vec<String>,
    snapshot_sequence: Vec<i64>,
    snapshot_state: Vec<Value>,
    receipt_batch: Vec<i32>,
    receipt_user: Vec<Uuid>,
    receipt_command: Vec<String>,
    receipt: Vec<Value>,
}

/// Appends every batch of `group` in one statement and returns their receipts, in order.
/// On an error nothing was written (the batches are left intact for appending one by one).
pub(super) async fn append_group(
    pool: &PgPool,
    group: &mut [AppendBatch],
) -> Result<Vec<Receipt>, StoreError> {
    let mut columns = Columns::default();
    let mut receipts = Vec::with_capacity(group.len());
    for (b, batch) in group.iter_mut().enumerate() {
        let b = b as i32;
        let mut receipt = batch.receipt();
        for (i, event) in batch.events.iter_mut().enumerate() {
            let s = stamp(event)?;
            columns.batch.push(b);
            columns.aggregate_type.push(batch.aggregate_type.clone());
            columns.aggregate_id.push(batch.aggregate_id.clone());
            columns
                .sequence
                .push((batch.expected_version + 1 + i as u64) as i64);
            columns.event_type.push(event.event_type.clone());
            columns.event_version.push(event.event_version.clone());
            columns.payload.push(event.payload.clone());
            columns.metadata.push(event.metadata.clone());
            columns.event_id.push(s.event_id);
            columns.user_id.push(s.user_id);
            columns.recorded_at.push(s.recorded_at);
            receipt.event_ids.push(s.event_id);
        }
        if let Some((sequence, state)) = &batch.snapshot {
            columns.snapshot_type.push(batch.aggregate_type.clone());
            columns.snapshot_id.push(batch.aggregate_id.clone());
            columns.snapshot_sequence.push(*sequence as i64);
            columns.snapshot_state.push(state.clone());
        }
        if let Some(key) = &batch.command {
            columns.receipt_batch.push(b);
            columns.receipt_user.push(key.user_id);
            columns.receipt_command.push(key.command_id.clone());
            columns.receipt.push(serde_json::to_value(&receipt)?);
        }
        receipts.push(receipt);
    }
    let c = columns;
    let rows = query(GROUP_APPEND)
        .bind(&c.batch)
        .bind(&c.aggregate_type)
        .bind(&c.aggregate_id)
        .bind(&c.sequence)
        .bind(&c.event_type)
        .bind(&c.event_version)
        .bind(&c.payload)
        .bind(&c.metadata)
        .bind(&c.event_id)
        .bind(&c.user_id)
        .bind(&c.recorded_at)
        .bind(&c.snapshot_type)
        .bind(&c.snapshot_id)
        .bind(&c.snapshot_sequence)
        .bind(&c.snapshot_state)
        .bind(&c.receipt_batch)
        .bind(&c.receipt_user)
        .bind(&c.receipt_command)
        .bind(&c.receipt)
        .bind(NOTIFY_CHANNEL)
        .fetch_all(pool)
        .await?;
    for row in rows {
        let b: i32 = row.try_get("b")?;
        let receipt = receipts
            .get_mut(b as usize)
            .ok_or_else(|| StoreError::Corrupt(format!("group append answered batch {b}")))?;
        receipt.position = Some(Position {
            tx: parse_xid(row.try_get("tx")?)?,
            pos: row.try_get("global_position")?,
        });
    }
    Ok(receipts)
}
