//! Storage of read-model rows and projection checkpoints, on either backend.

use chrono::Utc;
use serde_json::Value;
use sqlx::Row as _;
use store::{Position, Store};
use uuid::Uuid;

use crate::{Projection, ProjectionError, Row, RowKey};

/// Where a listing resumes: after the row with this `(sort_key, row_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowCursor {
    /// Sort key of the last row returned.
    pub sort_key: String,
    /// Row id of the last row returned.
    pub row_id: String,
}

/// The read-model tables of one store. Cheap to clone.
#[derive(Clone)]
pub struct ReadModels {
    store: Store,
}

type Changes = [(RowKey, Option<Row>)];

impl ReadModels {
    /// Read models in the same database as `store`'s log.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The event store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The checkpoint of `model` (`Position::START` before its first batch).
    pub async fn checkpoint(&self, model: &str) -> Result<Position, ProjectionError> {
        Ok(self.store.checkpoint(model).await?)
    }

    /// The stored rows among `keys` of `model`.
    pub async fn load(&self, model: &str, keys: &[RowKey]) -> Result<Vec<Row>, ProjectionError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match &self.store {
            Store::Postgres(s) => {
                let users: Vec<Uuid> = keys.iter().map(|k| k.user_id).collect();
                let ids: Vec<&str> = keys.iter().map(|k| k.row_id.as_str()).collect();
                let rows = sqlx::query(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE model = $1 AND (user_id, row_id) IN \
                       (SELECT * FROM UNNEST($2::uuid[], $3::text[]))",
                )
                .bind(model)
                .bind(&users)
                .bind(&ids)
                .fetch_all(s.pool())
                .await?;
                rows.iter().map(decode_pg).collect()
            }
            Store::Sqlite(s) => {
                let mut out = Vec::with_capacity(keys.len());
                let mut conn = s.reader().acquire().await?;
                for key in keys {
                    let row = sqlx::query(
                        "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                         WHERE model = $1 AND user_id = $2 AND row_id = $3",
                    )
                    .bind(model)
                    .bind(key.user_id.to_string())
                    .bind(&key.row_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(row) = row {
                        out.push(decode_sqlite(&row)?);
                    }
                }
                Ok(out)
            }
        }
    }

    /// Writes `changes` to `model` and moves its checkpoint to `checkpoint`, in one transaction.
    pub async fn commit(
        &self,
        model: &str,
        changes: &Changes,
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        match &self.store {
            Store::Postgres(s) => {
                let mut tx = s.pool().begin().await?;
                let (upserts, deletes): (Vec<_>, Vec<_>) =
                    changes.iter().partition(|(_, row)| row.is_some());
                if !upserts.is_empty() {
                    let rows: Vec<&Row> = upserts.iter().filter_map(|(_, r)| r.as_ref()).collect();
                    sqlx::query(
                        "INSERT INTO read_model_rows (model, user_id, row_id, grp, sort_key, doc) \
                         SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) \
                         ON CONFLICT (model, user_id, row_id) DO UPDATE \
                         SET grp = EXCLUDED.grp, sort_key = EXCLUDED.sort_key, doc = EXCLUDED.doc",
                    )
                    .bind(model)
                    .bind(rows.iter().map(|r| r.key.user_id).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.key.row_id.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.grp.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.sort_key.as_str()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| &r.doc).collect::<Vec<_>>())
                    .execute(&mut *tx)
                    .await?;
                }
                if !deletes.is_empty() {
                    sqlx::query(
                        "DELETE FROM read_model_rows WHERE model = $1 AND (user_id, row_id) IN \
                           (SELECT * FROM UNNEST($2::uuid[], $3::text[]))",
                    )
                    .bind(model)
                    .bind(deletes.iter().map(|(k, _)| k.user_id).collect::<Vec<_>>())
                    .bind(
                        deletes
                            .iter()
                            .map(|(k, _)| k.row_id.as_str())
                            .collect::<Vec<_>>(),
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(store::upsert_checkpoint_sql())
                    .bind(model)
                    .bind(checkpoint.tx)
                    .bind(checkpoint.pos)
                    .bind(Utc::now())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Store::Sqlite(s) => {
                let mut tx = s.writer().begin().await?;
                for (key, row) in changes {
                    match row {
                        Some(row) => {
                            sqlx::query(
                                "INSERT INTO read_model_rows (model, user_id, row_id, grp, sort_key, doc) \
                                 VALUES ($1, $2, $3, $4, $5, $6) \
                                 ON CONFLICT (model, user_id, row_id) DO UPDATE \
                                 SET grp = excluded.grp, sort_key = excluded.sort_key, doc = excluded.doc",
                            )
                            .bind(model)
                            .bind(key.user_id.to_string())
                            .bind(&key.row_id)
                            .bind(&row.grp)
                            .bind(&row.sort_key)
                            .bind(row.doc.to_string())
                            .execute(&mut *tx)
                            .await?;
                        }
                        None => {
                            sqlx::query(
                                "DELETE FROM read_model_rows WHERE model = $1 AND user_id = $2 AND row_id = $3",
                            )
                            .bind(model)
                            .bind(key.user_id.to_string())
                            .bind(&key.row_id)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                sqlx::query(store::upsert_checkpoint_sql())
                    .bind(model)
                    .bind(checkpoint.tx)
                    .bind(checkpoint.pos)
                    .bind(Utc::now().to_rfc3339())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// One row of `model` owned by `user_id`.
    pub async fn get(
        &self,
        model: &str,
        user_id: Uuid,
        row_id: &str,
    ) -> Result<Option<Row>, ProjectionError> {
        self.get_in(Model::Named(model), user_id, row_id).await
    }

    /// One row of `projection`'s active generation (see [`ReadModels::list_active`]).
    pub async fn get_active(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        row_id: &str,
    ) -> Result<Option<Row>, ProjectionError> {
        self.get_in(Model::active(projection), user_id, row_id)
            .await
    }

    /// Up to `limit` rows of `user_id` in `model` whose group is one of `groups`, ordered by
    /// `(sort_key, row_id)`, after `cursor`.
    pub async fn list(
        &self,
        model: &str,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_in(Model::Named(model), user_id, groups, cursor, limit)
            .await
    }

    /// Like [`ReadModels::list`], in `projection`'s active generation. The generation is
    /// resolved in the very statement that reads the rows (one snapshot): a blue-green switch
    /// that drops the old generation right after activating the new one can never make a query
    /// read the old generation's name, then find its rows gone.
    pub async fn list_active(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_in(Model::active(projection), user_id, groups, cursor, limit)
            .await
    }

    async fn get_in(
        &self,
        model: Model<'_>,
        user_id: Uuid,
        row_id: &str,
    ) -> Result<Option<Row>, ProjectionError> {
        let sql = format!(
            "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
             WHERE {} AND user_id = $1 AND row_id = $2",
            model.clause(3)
        );
        match &self.store {
            Store::Postgres(s) => {
                let query = sqlx::query(&sql).bind(user_id).bind(row_id);
                let row = model.bind(query).fetch_optional(s.pool()).await?;
                row.as_ref().map(decode_pg).transpose()
            }
            Store::Sqlite(s) => {
                let query = sqlx::query(&sql).bind(user_id.to_string()).bind(row_id);
                let row = model.bind(query).fetch_optional(s.reader()).await?;
                row.as_ref().map(decode_sqlite).transpose()
            }
        }
    }

    async fn list_in(
        &self,
        model: Model<'_>,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        let start = RowCursor::default();
        let cursor = cursor.unwrap_or(&start);
        match &self.store {
            Store::Postgres(s) => {
                let sql = format!(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE {} AND user_id = $1 AND grp = ANY($2) AND (sort_key, row_id) > ($3, $4) \
                     ORDER BY sort_key, row_id LIMIT $5",
                    model.clause(6)
                );
                let query = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(groups)
                    .bind(&cursor.sort_key)
                    .bind(&cursor.row_id)
                    .bind(limit as i64);
                let rows = model.bind(query).fetch_all(s.pool()).await?;
                rows.iter().map(decode_pg).collect()
            }
            Store::Sqlite(s) => {
                let sql = format!(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE {} AND user_id = $1 AND grp IN (SELECT value FROM json_each($2)) \
                       AND (sort_key, row_id) > ($3, $4) \
                     ORDER BY sort_key, row_id LIMIT $5",
                    model.clause(6)
                );
                let query = sqlx::query(&sql)
                    .bind(user_id.to_string())
                    .bind(serde_json::to_string(groups)?)
                    .bind(&cursor.sort_key)
                    .bind(&cursor.row_id)
                    .bind(limit as i64);
                let rows = model.bind(query).fetch_all(s.reader()).await?;
                rows.iter().map(decode_sqlite).collect()
            }
        }
    }
}

/// Which model a row query reads.
enum Model<'a> {
    /// This model.
    Named(&'a str),
    /// The active generation of `projection` (`default` before any runner has run).
    Active {
        projection: &'static str,
        default: String,
    },
}

impl Model<'_> {
    fn active(projection: &dyn Projection) -> Model<'static> {
        Model::Active {
            projection: projection.name(),
            default: projection.model(),
        }
    }

    /// The condition on `model`, its parameters numbered from `$first`.
    fn clause(&self, first: usize) -> String {
        match self {
            Model::Named(_) => format!("model = ${first}"),
            Model::Active { .. } => format!(
                "model = COALESCE((SELECT active_model FROM projection_status WHERE projection = ${first}), ${})",
                first + 1
            ),
        }
    }

    /// Binds the parameters of [`Model::clause`] (after every other parameter of the query).
    fn bind<'q, DB: sqlx::Database>(
        &'q self,
        query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        match self {
            Model::Named(model) => query.bind(*model),
            Model::Active {
                projection,
                default,
            } => query.bind(*projection).bind(default.as_str()),
        }
    }
}

fn decode_pg(row: &sqlx::postgres::PgRow) -> Result<Row, ProjectionError> {
    Ok(Row {
        key: RowKey::new(
            row.try_get::<Uuid, _>("user_id")?,
            row.try_get::<String, _>("row_id")?,
        ),
        grp: row.try_get("grp")?,
        sort_key: row.try_get("sort_key")?,
        doc: row.try_get::<Value, _>("doc")?,
    })
}

fn decode_sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<Row, ProjectionError> {
    let user: String = row.try_get("user_id")?;
    let user_id = Uuid::parse_str(&user)
        .map_err(|e| ProjectionError::Corrupt(format!("user_id {user:?}: {e}")))?;
    let doc: String = row.try_get("doc")?;
    Ok(Row {
        key: RowKey::new(user_id, row.try_get::<String, _>("row_id")?),
        grp: row.try_get("grp")?,
        sort_key: row.try_get("sort_key")?,
        doc: serde_json::from_str(&doc)?,
    })
}
