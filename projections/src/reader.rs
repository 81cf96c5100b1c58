//! Reading a read model, from its live tables or from an in-memory replay, with one API.

use std::collections::HashMap;
use std::future::Future;

use uuid::Uuid;

use crate::{DocFilter, Projection, ProjectionError, ReadModels, Row, RowCursor, RowKey, RowSet};

/// Where a projection's rows are read from: [`ReadModels`] (the active generation) or
/// [`MemoryRows`] (a replay).
pub trait RowReader: Send + Sync {
    /// The row at `key` of `projection`.
    fn get_row(
        &self,
        projection: &dyn Projection,
        key: &RowKey,
    ) -> impl Future<Output = Result<Option<Row>, ProjectionError>> + Send;

    /// Up to `limit` rows of `user_id` in the given groups, ordered by `(sort_key, row_id)`,
    /// after `cursor`.
    fn list_rows(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Row>, ProjectionError>> + Send;

    /// Like [`list_rows`](RowReader::list_rows), only the rows whose document passes every one
    /// of `filters` (applied before the page is cut: `limit` counts matching rows).
    fn list_rows_filtered(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Row>, ProjectionError>> + Send;
}

impl RowReader for ReadModels {
    async fn get_row(
        &self,
        projection: &dyn Projection,
        key: &RowKey,
    ) -> Result<Option<Row>, ProjectionError> {
        self.get_active(projection, key.user_id, &key.row_id).await
    }

    async fn list_rows(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_active(projection, user_id, groups, cursor, limit)
            .await
    }

    async fn list_rows_filtered(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_active_filtered(projection, user_id, groups, filters, cursor, limit)
            .await
    }
}

/// The rows of one projection held in memory (the result of a replay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryRows {
    rows: HashMap<RowKey, Row>,
}

impl MemoryRows {
    /// The rows a fold left in `set`.
    pub fn from_set(set: RowSet) -> Self {
        Self {
            rows: set
                .into_rows()
                .into_iter()
                .map(|r| (r.key.clone(), r))
                .collect(),
        }
    }

    /// Every row, ordered by user, then `(sort_key, row_id)`.
    pub fn rows(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.values().collect();
        rows.sort_by(|a, b| {
            (a.key.user_id, &a.sort_key, &a.key.row_id).cmp(&(
                b.key.user_id,
                &b.sort_key,
                &b.key.row_id,
            ))
        });
        rows
    }
}

impl RowReader for MemoryRows {
    async fn get_row(
        &self,
        _projection: &dyn Projection,
        key: &RowKey,
    ) -> Result<Option<Row>, ProjectionError> {
        Ok(self.rows.get(key).cloned())
    }

    async fn list_rows(
        &self,
        projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        self.list_rows_filtered(projection, user_id, groups, &[], cursor, limit)
            .await
    }

    async fn list_rows_filtered(
        &self,
        _projection: &dyn Projection,
        user_id: Uuid,
        groups: &[&str],
        filters: &[DocFilter],
        cursor: Option<&RowCursor>,
        limit: usize,
    ) -> Result<Vec<Row>, ProjectionError> {
        let after = |r: &Row| match cursor {
            Some(c) => {
                (r.sort_key.as_str(), r.key.row_id.as_str())
                    > (c.sort_key.as_str(), c.row_id.as_str())
            }
            None => true,
        };
        Ok(self
            .rows()
            .into_iter()
            .filter(|r| r.key.user_id == user_id && groups.contains(&r.grp.as_str()) && after(r))
            .filter(|r| {
                filters.is_empty() || {
                    let doc = r.doc.value();
                    filters.iter().all(|f| f.matches(&doc))
                }
            })
            .take(limit)
            .cloned()
            .collect())
    }
}
