//! Per-projection status: the active generation queries read, the runner's state, rebuild
//! requests, and the report operators see (`lifeos projections status`, Admin/ProjectionStatus).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row as _;
use store::{Journal, Position, Store};

use crate::{Projection, ProjectionError, ReadModels};

/// What a projection's runner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Following the log.
    Live,
    /// Following the log and building a new generation beside the active one.
    Rebuilding,
    /// Stopped on an event it cannot apply (see the detail).
    Stopped,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Live => "live",
            RunState::Rebuilding => "rebuilding",
            RunState::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> RunState {
        match s {
            "rebuilding" => RunState::Rebuilding,
            "stopped" => RunState::Stopped,
            _ => RunState::Live,
        }
    }
}

/// The stored status row of one projection.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    /// The projection's name.
    pub projection: String,
    /// The model (generation) queries read.
    pub active_model: String,
    /// The runner's state.
    pub state: RunState,
    /// Rebuild progress (`building`, `percent`) or the failing event (`error`).
    pub detail: Value,
    /// Events applied per second over the last second or so.
    pub events_per_sec: f64,
    /// Whether a rebuild was asked for and not yet started.
    pub rebuild_requested: bool,
    /// When the runner last wrote this row.
    pub updated_at: DateTime<Utc>,
}

/// The operator's view of one projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionReport {
    /// Name, e.g. `task_list`.
    pub name: String,
    /// The fold's version in this binary.
    pub version: u32,
    /// The model queries read.
    pub active_model: String,
    /// Where the active model has got to.
    pub checkpoint: Position,
    /// The head of the log.
    pub head: Position,
    /// Events in the log after the checkpoint.
    pub lag_events: u64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    /// `live`, `rebuilding` or `stopped`.
    pub state: RunState,
    /// Percent done of a running rebuild.
    pub rebuild_percent: Option<f64>,
    /// The event a stopped projection failed on, with the reason.
    pub error: Option<Value>,
    /// Recent apply rate.
    pub events_per_sec: f64,
    /// When the runner last reported (None: no runner has run it yet).
    pub updated_at: Option<DateTime<Utc>>,
}

/// The version part of a model name `<name>@<version>[#<generation>]`.
pub fn model_version(model: &str) -> Option<u32> {
    let rest = model.split_once('@')?.1;
    rest.split('#').next()?.parse().ok()
}

impl ReadModels {
    /// The stored status of `projection`, if a runner ever wrote one.
    pub async fn status(&self, projection: &str) -> Result<Option<StatusRow>, ProjectionError> {
        let sql = "SELECT projection, active_model, state, detail, events_per_sec, rebuild_requested, updated_at \
                   FROM projection_status WHERE projection = $1";
        match self.store() {
            Store::Postgres(s) => {
                let row = sqlx::query(sql)
                    .bind(projection)
                    .fetch_optional(s.pool())
                    .await?;
                row.map(|r| {
                    Ok(StatusRow {
                        projection: r.try_get("projection")?,
                        active_model: r.try_get("active_model")?,
                        state: RunState::parse(r.try_get("state")?),
                        detail: r.try_get("detail")?,
                        events_per_sec: r.try_get("events_per_sec")?,
                        rebuild_requested: r.try_get("rebuild_requested")?,
                        updated_at: r.try_get("updated_at")?,
                    })
                })
                .transpose()
            }
            Store::Sqlite(s) => {
                let row = sqlx::query(sql)
                    .bind(projection)
                    .fetch_optional(s.reader())
                    .await?;
                row.map(|r| {
                    let detail: String = r.try_get("detail")?;
                    let updated: String = r.try_get("updated_at")?;
                    Ok(StatusRow {
                        projection: r.try_get("projection")?,
                        active_model: r.try_get("active_model")?,
                        state: RunState::parse(r.try_get("state")?),
                        detail: serde_json::from_str(&detail)?,
                        events_per_sec: r.try_get("events_per_sec")?,
                        rebuild_requested: r.try_get::<i64, _>("rebuild_requested")? != 0,
                        updated_at: DateTime::parse_from_rfc3339(&updated)
                            .map_err(|e| ProjectionError::Corrupt(format!("updated_at: {e}")))?
                            .with_timezone(&Utc),
                    })
                })
                .transpose()
            }
        }
    }

    /// The model queries of `projection` read: the active generation, or the first generation
    /// of the current version before any runner has run.
    pub async fn active_model(
        &self,
        projection: &dyn Projection,
    ) -> Result<String, ProjectionError> {
        Ok(self
            .status(projection.name())
            .await?
            .map_or_else(|| projection.model(), |s| s.active_model))
    }

    /// The active model of `projection` and its checkpoint, read in one statement: a blue-green
    /// switch (activate the new generation, then drop the old one) never pairs the old
    /// generation's name with its already deleted checkpoint.
    pub async fn active_checkpoint(
        &self,
        projection: &dyn Projection,
    ) -> Result<(String, Position), ProjectionError> {
        let sql = "SELECT m.model, c.tx, c.pos FROM \
                     (SELECT COALESCE((SELECT active_model FROM projection_status WHERE projection = $1), $2) AS model) m \
                   LEFT JOIN projection_checkpoints c ON c.projection = m.model";
        let (model, tx, pos): (String, Option<i64>, Option<i64>) = match self.store() {
            Store::Postgres(s) => {
                sqlx::query_as(sql)
                    .bind(projection.name())
                    .bind(projection.model())
                    .fetch_one(s.pool())
                    .await?
            }
            Store::Sqlite(s) => {
                sqlx::query_as(sql)
                    .bind(projection.name())
                    .bind(projection.model())
                    .fetch_one(s.reader())
                    .await?
            }
        };
        let checkpoint = match (tx, pos) {
            (Some(tx), Some(pos)) => Position { tx, pos },
            _ => Position::START,
        };
        Ok((model, checkpoint))
    }

    /// Writes the runner's view (keeps a pending rebuild request).
    pub async fn put_status(
        &self,
        projection: &str,
        active_model: &str,
        state: RunState,
        detail: &Value,
        events_per_sec: f64,
    ) -> Result<(), ProjectionError> {
        let sql = "INSERT INTO projection_status (projection, active_model, state, detail, events_per_sec, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (projection) DO UPDATE SET active_model = excluded.active_model, \
                     state = excluded.state, detail = excluded.detail, \
                     events_per_sec = excluded.events_per_sec, updated_at = excluded.updated_at";
        match self.store() {
            Store::Postgres(s) => {
                sqlx::query(sql)
                    .bind(projection)
                    .bind(active_model)
                    .bind(state.as_str())
                    .bind(detail)
                    .bind(events_per_sec)
                    .bind(Utc::now())
                    .execute(s.pool())
                    .await?;
            }
            Store::Sqlite(s) => {
                sqlx::query(sql)
                    .bind(projection)
                    .bind(active_model)
                    .bind(state.as_str())
                    .bind(detail.to_string())
                    .bind(events_per_sec)
                    .bind(Utc::now().to_rfc3339())
                    .execute(s.read_model_writer())
                    .await?;
            }
        }
        Ok(())
    }

    /// Asks the runner holding `projection` to rebuild it (blue-green) at its next batch.
    pub async fn request_rebuild(
        &self,
        projection: &dyn Projection,
    ) -> Result<(), ProjectionError> {
        let active = self.active_model(projection).await?;
        let sql = "INSERT INTO projection_status (projection, active_model, state, rebuild_requested, updated_at) \
                   VALUES ($1, $2, 'live', true, $3) \
                   ON CONFLICT (projection) DO UPDATE SET rebuild_requested = true";
        match self.store() {
            Store::Postgres(s) => {
                sqlx::query(sql)
                    .bind(projection.name())
                    .bind(&active)
                    .bind(Utc::now())
                    .execute(s.pool())
                    .await?;
            }
            Store::Sqlite(s) => {
                sqlx::query(sql)
                    .bind(projection.name())
                    .bind(&active)
                    .bind(Utc::now().to_rfc3339())
                    .execute(s.read_model_writer())
                    .await?;
            }
        }
        Ok(())
    }

    /// Takes a pending rebuild request (true once per request).
    pub async fn take_rebuild_request(&self, projection: &str) -> Result<bool, ProjectionError> {
        let sql = "UPDATE projection_status SET rebuild_requested = false \
                   WHERE projection = $1 AND rebuild_requested";
        let done = match self.store() {
            Store::Postgres(s) => sqlx::query(sql)
                .bind(projection)
                .execute(s.pool())
                .await?
                .rows_affected(),
            Store::Sqlite(s) => sqlx::query(sql)
                .bind(projection)
                .execute(s.read_model_writer())
                .await?
                .rows_affected(),
        };
        Ok(done > 0)
    }

    /// Points queries of `projection` at `model` (one statement: atomic for readers).
    pub async fn activate(&self, projection: &str, model: &str) -> Result<(), ProjectionError> {
        let sql = "UPDATE projection_status SET active_model = $2, state = 'live', detail = '{}' \
                   WHERE projection = $1";
        match self.store() {
            Store::Postgres(s) => {
                sqlx::query(sql)
                    .bind(projection)
                    .bind(model)
                    .execute(s.pool())
                    .await?;
            }
            Store::Sqlite(s) => {
                sqlx::query(sql)
                    .bind(projection)
                    .bind(model)
                    .execute(s.read_model_writer())
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes every row and the checkpoint of `model` (a retired generation).
    pub async fn drop_model(&self, model: &str) -> Result<(), ProjectionError> {
        let rows = "DELETE FROM read_model_rows WHERE model = $1";
        let checkpoint = "DELETE FROM projection_checkpoints WHERE projection = $1";
        match self.store() {
            Store::Postgres(s) => {
                let mut tx = s.pool().begin().await?;
                sqlx::query(rows).bind(model).execute(&mut *tx).await?;
                sqlx::query(checkpoint)
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Store::Sqlite(s) => {
                let mut tx = s.read_model_writer().begin().await?;
                sqlx::query(rows).bind(model).execute(&mut *tx).await?;
                sqlx::query(checkpoint)
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The operator's report of `projection`.
    pub async fn report(
        &self,
        projection: &dyn Projection,
    ) -> Result<ProjectionReport, ProjectionError> {
        let status = self.status(projection.name()).await?;
        let (active_model, checkpoint) = self.active_checkpoint(projection).await?;
        let store = self.store();
        let head = store.head().await?;
        let lag_events = store.count_after(checkpoint).await?;
        let lag_seconds = match store.read_after(checkpoint, 1).await?.first() {
            Some(oldest) => {
                ((Utc::now() - oldest.recorded_at).num_milliseconds().max(0) as f64) / 1000.0
            }
            None => 0.0,
        };
        let (state, detail, rate, updated_at) = match &status {
            Some(s) => (
                s.state,
                s.detail.clone(),
                s.events_per_sec,
                Some(s.updated_at),
            ),
            None => (RunState::Live, Value::Null, 0.0, None),
        };
        Ok(ProjectionReport {
            name: projection.name().to_string(),
            version: projection.version(),
            active_model,
            checkpoint,
            head,
            lag_events,
            lag_seconds,
            state,
            rebuild_percent: detail.get("percent").and_then(Value::as_f64),
            error: detail.get("error").cloned(),
            events_per_sec: rate,
            updated_at,
        })
    }
}
