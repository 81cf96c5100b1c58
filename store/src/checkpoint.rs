//! Named checkpoints in the log (projections, the event relay): where a reader has got to.

use chrono::Utc;

use crate::{Position, Store, StoreError};

/// Upserts a checkpoint; `$4` is the update time.
pub(crate) const UPSERT_CHECKPOINT: &str = "INSERT INTO projection_checkpoints (projection, tx, pos, updated_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (projection) DO UPDATE SET tx = excluded.tx, pos = excluded.pos, updated_at = excluded.updated_at";

impl Store {
    /// The checkpoint stored under `name` (`Position::START` when none).
    pub async fn checkpoint(&self, name: &str) -> Result<Position, StoreError> {
        let sql = "SELECT tx, pos FROM projection_checkpoints WHERE projection = $1";
        let row: Option<(i64, i64)> = match self {
            Store::Postgres(s) => {
                sqlx::query_as(sql)
                    .bind(name)
                    .fetch_optional(s.pool())
                    .await?
            }
            Store::Sqlite(s) => {
                sqlx::query_as(sql)
                    .bind(name)
                    .fetch_optional(s.reader())
                    .await?
            }
        };
        Ok(row.map_or(Position::START, |(tx, pos)| Position { tx, pos }))
    }

    /// Stores `position` as the checkpoint `name` (on its own; projections write theirs in the
    /// transaction of their rows, with [`upsert_checkpoint_sql`]).
    pub async fn save_checkpoint(&self, name: &str, position: Position) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => {
                sqlx::query(UPSERT_CHECKPOINT)
                    .bind(name)
                    .bind(position.tx)
                    .bind(position.pos)
                    .bind(Utc::now())
                    .execute(s.pool())
                    .await?;
            }
            Store::Sqlite(s) => {
                sqlx::query(UPSERT_CHECKPOINT)
                    .bind(name)
                    .bind(position.tx)
                    .bind(position.pos)
                    .bind(Utc::now().to_rfc3339())
                    .execute(s.read_model_writer())
                    .await?;
            }
        }
        Ok(())
    }
}

/// The SQL that upserts a checkpoint: `($1 name, $2 tx, $3 pos, $4 updated_at)`.
pub fn upsert_checkpoint_sql() -> &'static str {
    UPSERT_CHECKPOINT
}
