//! Storage of read-model rows and projection checkpoints, on either backend.

use std::borrow::Borrow;
use std::sync::Arc;

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::Row as _;
use sqlx::types::Json;
use store::{LogFeed, Position, Store};
use uuid::Uuid;

use crate::build_pace::BuildPace;
use crate::{Doc, Projection, ProjectionError, Row, RowKey};

/// Where a listing resumes: after the row with this `(sort_key, row_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowCursor {
    /// Sort key of the last row returned.
    pub sort_key: String,
    /// Row id of the last row returned.
    pub row_id: String,
}

impl RowCursor {
    /// A page of a listing fetched with one row more than `page_size`: at most `page_size` rows
    /// decoded as `T`, and the cursor after the last of them when there were more.
    pub fn page<T: DeserializeOwned>(
        mut rows: Vec<Row>,
        page_size: usize,
    ) -> Result<(Vec<T>, Option<RowCursor>), ProjectionError> {
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|r| RowCursor {
                sort_key: r.sort_key.clone(),
                row_id: r.key.row_id.clone(),
            })
        } else {
            None
        };
        let items = rows.iter().map(Row::decode).collect::<Result<_, _>>()?;
        Ok((items, next))
    }
}

/// A condition on a row's JSON document, evaluated by the database in the listing query itself
/// (PostgreSQL jsonb operators, SQLite `json_extract` / `json_each`), so a filtered listing pages
/// exactly like an unfiltered one: no page is cut before the filter.
///
/// Fields are top-level keys of the document, named by the code (plain identifiers); values are
/// compared as JSON strings, exactly.
///
/// ```
/// use projections::DocFilter;
/// let doc = serde_json::json!({"project": "Garden", "tags": ["home", "weekly"]});
/// assert!(DocFilter::eq("project", "Garden").matches(&doc));
/// assert!(!DocFilter::eq("project", "garden").matches(&doc));
/// assert!(DocFilter::contains("tags", "weekly").matches(&doc));
/// assert!(!DocFilter::contains("tags", "work").matches(&doc));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocFilter {
    /// `doc[field]` is the string `value`.
    Eq {
        /// A top-level key of the document.
        field: &'static str,
        /// The string it must equal.
        value: String,
    },
    /// `doc[field]` is an array holding the string `value`.
    Contains {
        /// A top-level key of the document.
        field: &'static str,
        /// The string the array must hold.
        value: String,
    },
}

impl DocFilter {
    /// `doc[field] == value`.
    pub fn eq(field: &'static str, value: impl Into<String>) -> Self {
        Self::Eq {
            field,
            value: value.into(),
        }
    }

    /// `value` is an element of the array `doc[field]`.
    pub fn contains(field: &'static str, value: impl Into<String>) -> Self {
        Self::Contains {
            field,
            value: value.into(),
        }
    }

    /// Whether `doc` passes (the in-memory twin of the SQL condition).
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Self::Eq { field, value } => doc.get(*field).and_then(Value::as_str) == Some(value),
            Self::Contains { field, value } => doc
                .get(*field)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|v| v.as_str() == Some(value))),
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Self::Eq { field, .. } | Self::Contains { field, .. } => field,
        }
    }

    fn value(&self) -> &str {
        match self {
            Self::Eq { value, .. } | Self::Contains { value, .. } => value,
        }
    }

    /// The condition, its two parameters numbered `$first` (field) and `$first + 1` (value).
    fn pg_clause(&self, first: usize) -> String {
        let (f, v) = (first, first + 1);
        match self {
            // jsonb equality: a number or a boolean never equals a string
            Self::Eq { .. } => format!(" AND doc -> ${f} = to_jsonb(${v}::text)"),
            Self::Contains { .. } => {
                format!(" AND (doc -> ${f}) @> jsonb_build_array(${v}::text)")
            }
        }
    }

    /// Like [`DocFilter::pg_clause`]; the field parameter is a JSON path (`$.field`).
    fn sqlite_clause(&self, first: usize) -> String {
        let (f, v) = (first, first + 1);
        match self {
            // typed: json_each walks a scalar as a one-element set, and `7` must not equal '7'
            Self::Eq { .. } => {
                format!(" AND json_type(doc, ${f}) = 'text' AND json_extract(doc, ${f}) = ${v}")
            }
            Self::Contains { .. } => format!(
                " AND json_type(doc, ${f}) = 'array' AND EXISTS (SELECT 1 FROM json_each(doc, ${f}) \
                 AS e WHERE e.type = 'text' AND e.value = ${v})"
            ),
        }
    }

    /// Refuses a field that is not a plain identifier (fields come from code, never clients).
    fn check(filters: &[DocFilter]) -> Result<(), ProjectionError> {
        for filter in filters {
            let field = filter.field();
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ProjectionError::Corrupt(format!(
                    "document filter on {field:?}: fields are plain identifiers"
                )));
            }
        }
        Ok(())
    }
}

/// The read-model tables of one store. Cheap to clone.
#[derive(Clone)]
pub struct ReadModels {
    store: Store,
    feed: LogFeed,
    pace: Arc<BuildPace>,
}

/// Events the shared log reader keeps per segment: two rebuild batches, so runners rebuilding
/// side by side share their reads while the slowest trails the fastest by up to that much.
const FEED_CAPACITY: usize = 10_000;

impl ReadModels {
    /// Read models in the same database as `store`'s log.
    pub fn new(store: Store) -> Self {
        let feed = LogFeed::new(store.clone(), FEED_CAPACITY);
        // a build reads on while within half the feed of the slowest: a read-ahead batch
        // still lands in the segment the slowest reads from
        let pace = Arc::new(BuildPace::new(FEED_CAPACITY as u64 / 2));
        Self { store, feed, pace }
    }

    /// The event store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The log reader every runner of these read models shares (one read per batch of the
    /// log, whatever the number of projections).
    pub fn feed(&self) -> &LogFeed {
        &self.feed
    }

    /// The builds of new generations in this process, kept reading the log together.
    pub(crate) fn pace(&self) -> &Arc<BuildPace> {
        &self.pace
    }

    /// The position of the last committed event, readable yet or not.
    ///
    /// On PostgreSQL an event committed while an older transaction is still open is not
    /// readable yet (`Journal::head` stops before it; the runner reads it once that transaction
    /// ends); this is the position past it. A model whose checkpoint reaches it has applied
    /// every event committed before this call. On SQLite (one writer) it is the log head.
    pub async fn committed_head(&self) -> Result<Position, ProjectionError> {
        match &self.store {
            Store::Postgres(s) => {
                let row: Option<(i64, String)> = sqlx::query_as(
                    "SELECT global_position, transaction_id::text AS tx FROM events \
                     ORDER BY events.transaction_id DESC, global_position DESC LIMIT 1",
                )
                .fetch_optional(s.pool())
                .await?;
                match row {
                    None => Ok(Position::START),
                    Some((pos, tx)) => Ok(Position {
                        tx: tx.parse().map_err(|_| {
                            ProjectionError::Corrupt(format!("transaction id {tx:?}"))
                        })?,
                        pos,
                    }),
                }
            }
            Store::Sqlite(_) => Ok(store::Journal::head(&self.store).await?),
        }
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
                // one statement for the whole batch (a statement per key cost a round trip to
                // sqlx's SQLite worker thread each): the keys as one JSON array of pairs;
                // CROSS JOIN keeps the keys the outer loop (else SQLite scans the whole model)
                let keys: Vec<(String, &str)> = keys
                    .iter()
                    .map(|k| (k.user_id.to_string(), k.row_id.as_str()))
                    .collect();
                let rows = sqlx::query(
                    "SELECT r.user_id, r.row_id, r.grp, r.sort_key, r.doc \
                     FROM json_each($2) AS k CROSS JOIN read_model_rows AS r \
                       ON r.model = $1 AND r.user_id = k.value ->> 0 AND r.row_id = k.value ->> 1",
                )
                .bind(model)
                .bind(serde_json::to_string(&keys)?)
                .fetch_all(s.reader())
                .await?;
                rows.iter().map(decode_sqlite).collect()
            }
        }
    }

    /// Writes `changes` to `model` and moves its checkpoint to `checkpoint`, in one transaction:
    /// `(key, Some(row))` upserts, `(key, None)` deletes (owned or borrowed).
    pub async fn commit<K: Borrow<RowKey>, R: Borrow<Row>>(
        &self,
        model: &str,
        changes: &[(K, Option<R>)],
        checkpoint: Position,
    ) -> Result<(), ProjectionError> {
        let changes: Vec<(&RowKey, Option<&Row>)> = changes
            .iter()
            .map(|(k, r)| (k.borrow(), r.as_ref().map(Borrow::borrow)))
            .collect();
        match &self.store {
            Store::Postgres(s) => {
                let mut tx = s.pool().begin().await?;
                // Rows and checkpoint are derived from the log and commit together: a crash
                // may lose the last batches (the runner re-applies them from the older
                // checkpoint) but never splits them, so they need not wait for the WAL flush
                // that every command's append waits for.
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
                let (upserts, deletes): (Vec<_>, Vec<_>) =
                    changes.into_iter().partition(|(_, row)| row.is_some());
                if !upserts.is_empty() {
                    let rows: Vec<&Row> = upserts.iter().filter_map(|(_, r)| *r).collect();
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
                    .bind(
                        rows.iter()
                            .map(|r| Json(r.doc.raw()))
                            .collect::<Vec<_>>(),
                    )
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
                // every upsert in one statement and every delete in another, the rows as one
                // JSON array each (a statement per row held the one writing connection longer)
                let (mut upserts, mut deletes) = (Vec::new(), Vec::new());
                for (key, row) in &changes {
                    let user = key.user_id.to_string();
                    match row {
                        // serialized as `[user, row, grp, sort key, doc]`
                        Some(r) => upserts.push((user, &key.row_id, &r.grp, &r.sort_key, &r.doc)),
                        None => deletes.push((user, &key.row_id)),
                    }
                }
                // Rows and checkpoint are derived from the log and commit together, in the
                // read-model file, whose writer runs `synchronous=NORMAL` (like PostgreSQL's
                // `synchronous_commit=off`: a power loss may drop the last batches, which are
                // re-applied from the older checkpoint, never split them).
                let mut tx = s.read_model_writer().begin().await?;
                if !upserts.is_empty() {
                    // `->` keeps the document as JSON text whatever its type
                    sqlx::query(
                        "INSERT INTO read_model_rows (model, user_id, row_id, grp, sort_key, doc) \
                         SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value -> 4 \
                         FROM json_each($2) WHERE true \
                         ON CONFLICT (model, user_id, row_id) DO UPDATE \
                         SET grp = excluded.grp, sort_key = excluded.sort_key, doc = excluded.doc",
                    )
                    .bind(model)
                    .bind(serde_json::to_string(&upserts)?)
                    .execute(&mut *tx)
                    .await?;
                }
                if !deletes.is_empty() {
                    sqlx::query(
                        "DELETE FROM read_model_rows WHERE model = $1 AND (user_id, row_id) IN \
                           (SELECT value ->> 0, value ->> 1 FROM json_each($2))",
                    )
                    .bind(model)
                    .bind(serde_json::to_string(&deletes)?)
                    .execute(&mut *tx)
                    .await?;
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
        self.list_in(Model::Named(model), user_id, groups, &[], cursor, limit)
            .await
    }

    /// Like [`ReadModels::list`], only the rows whose document passes every one of `filters`
    /// (evaluated in the same query, so `limit` and `cursor` apply to the filtered rows).
    pub async fn list_filtered(
        &self,
        model: &str,
        user_id: Uuid,
        groups: &[&str],
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_in(Model::Named(model), user_id, groups, filters, cursor, limit)
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
        self.list_in(
            Model::active(projection),
            user_id,
            groups,
            &[],
            cursor,
            limit,
        )
        .await
    }

    /// Like [`ReadModels::list_active`], only the rows whose document passes every one of
    /// `filters` (see [`ReadModels::list_filtered`]).
    pub async fn list_active_filtered(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_in(
            Model::active(projection),
            user_id,
            groups,
            filters,
            cursor,
            limit,
        )
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
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        DocFilter::check(filters)?;
        let start = RowCursor::default();
        let cursor = cursor.unwrap_or(&start);
        // parameters: $1..$5 below, then two per filter, then the model's
        let first_filter = 6;
        let first_model = first_filter + 2 * filters.len();
        match &self.store {
            Store::Postgres(s) => {
                let conditions: String = filters
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.pg_clause(first_filter + 2 * i))
                    .collect();
                let sql = format!(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE {} AND user_id = $1 AND grp = ANY($2) AND (sort_key, row_id) > ($3, $4){conditions} \
                     ORDER BY sort_key, row_id LIMIT $5",
                    model.clause(first_model)
                );
                let mut query = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(groups)
                    .bind(&cursor.sort_key)
                    .bind(&cursor.row_id)
                    .bind(limit as i64);
                for filter in filters {
                    query = query.bind(filter.field()).bind(filter.value());
                }
                let rows = model.bind(query).fetch_all(s.pool()).await?;
                rows.iter().map(decode_pg).collect()
            }
            Store::Sqlite(s) => {
                let conditions: String = filters
                    .iter()
                    .enumerate()
                    .map(|(i, f)| f.sqlite_clause(first_filter + 2 * i))
                    .collect();
                let paths: Vec<String> =
                    filters.iter().map(|f| format!("$.{}", f.field())).collect();
                let sql = format!(
                    "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows \
                     WHERE {} AND user_id = $1 AND grp IN (SELECT value FROM json_each($2)) \
                       AND (sort_key, row_id) > ($3, $4){conditions} \
                     ORDER BY sort_key, row_id LIMIT $5",
                    model.clause(first_model)
                );
                let mut query = sqlx::query(&sql)
                    .bind(user_id.to_string())
                    .bind(serde_json::to_string(groups)?)
                    .bind(&cursor.sort_key)
                    .bind(&cursor.row_id)
                    .bind(limit as i64);
                for (filter, path) in filters.iter().zip(&paths) {
                    query = query.bind(path.as_str()).bind(filter.value());
                }
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

pub(crate) fn decode_pg(row: &sqlx::postgres::PgRow) -> Result<Row, ProjectionError> {
    Ok(Row {
        key: RowKey::new(
            row.try_get::<Uuid, _>("user_id")?,
            row.try_get::<String, _>("row_id")?,
        ),
        grp: row.try_get("grp")?,
        sort_key: row.try_get("sort_key")?,
        doc: Doc::from_raw(row.try_get::<Json<Box<RawValue>>, _>("doc")?.0),
    })
}

pub(crate) fn decode_sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<Row, ProjectionError> {
    let user: String = row.try_get("user_id")?;
    let user_id = Uuid::parse_str(&user)
        .map_err(|e| ProjectionError::Corrupt(format!("user_id {user:?}: {e}")))?;
    Ok(Row {
        key: RowKey::new(user_id, row.try_get::<String, _>("row_id")?),
        grp: row.try_get("grp")?,
        sort_key: row.try_get("sort_key")?,
        doc: Doc::from_json(row.try_get("doc")?)?,
    })
}
