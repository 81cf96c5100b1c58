//! The shape every read-model row has, and the set of rows one batch works on.

use std::collections::{HashMap, HashSet};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;

use crate::ProjectionError;

/// Identifies one row of a read model: the user it belongs to and its id within the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// The owner (every read model is per user).
    pub user_id: Uuid,
    /// The row's id within the model (e.g. the task id).
    pub row_id: String,
}

impl RowKey {
    /// A key for `row_id` of `user_id`.
    pub fn new(user_id: Uuid, row_id: impl Into<String>) -> Self {
        Self {
            user_id,
            row_id: row_id.into(),
        }
    }
}

/// One read-model row: a JSON document with a filter group and a sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Owner and id.
    pub key: RowKey,
    /// A filter bucket queries select on (e.g. `open`, `completed`).
    pub grp: String,
    /// Queries list rows ordered by `(sort_key, row_id)`.
    pub sort_key: String,
    /// The row's content.
    pub doc: Value,
}

impl Row {
    /// A row holding `doc` serialized.
    pub fn new<T: Serialize>(
        key: RowKey,
        grp: impl Into<String>,
        sort_key: impl Into<String>,
        doc: &T,
    ) -> Result<Self, ProjectionError> {
        Ok(Self {
            key,
            grp: grp.into(),
            sort_key: sort_key.into(),
            doc: serde_json::to_value(doc)?,
        })
    }

    /// The document decoded as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ProjectionError> {
        // deserialized from a borrow: cloning the whole document first doubled the cost
        Ok(T::deserialize(&self.doc)?)
    }
}

/// The rows a batch of events works on: loaded once, changed in memory, written once.
#[derive(Debug, Default)]
pub struct RowSet {
    rows: HashMap<RowKey, Option<Row>>,
    // changed keys in first-change order, and the same keys for O(1) membership (a batch or a
    // replay changes thousands of rows: a linear `contains` made folds quadratic)
    dirty: Vec<RowKey>,
    marked: HashSet<RowKey>,
}

impl RowSet {
    /// A set holding `loaded` rows; any other key reads as absent.
    pub fn new(loaded: Vec<Row>) -> Self {
        Self {
            rows: loaded
                .into_iter()
                .map(|r| (r.key.clone(), Some(r)))
                .collect(),
            dirty: Vec::new(),
            marked: HashSet::new(),
        }
    }

    /// The current row at `key`, if any.
    pub fn get(&self, key: &RowKey) -> Option<&Row> {
        self.rows.get(key).and_then(Option::as_ref)
    }

    /// Inserts or replaces a row.
    pub fn put(&mut self, row: Row) {
        self.mark(&row.key);
        self.rows.insert(row.key.clone(), Some(row));
    }

    /// Removes the row at `key`.
    pub fn delete(&mut self, key: &RowKey) {
        self.mark(key);
        self.rows.insert(key.clone(), None);
    }

    fn mark(&mut self, key: &RowKey) {
        if self.marked.insert(key.clone()) {
            self.dirty.push(key.clone());
        }
    }

    /// Every row present (loaded or written), for in-memory folds.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows.into_values().flatten().collect()
    }

    /// Whether `key` was loaded or written.
    pub(crate) fn has(&self, key: &RowKey) -> bool {
        self.rows.contains_key(key)
    }

    /// Every loaded or written key with its row (`None`: deleted) and whether it changed.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (RowKey, Option<Row>, bool)> {
        let marked = self.marked;
        self.rows.into_iter().map(move |(key, row)| {
            let changed = marked.contains(&key);
            (key, row, changed)
        })
    }

    /// The changed rows: `(key, Some(row))` to upsert, `(key, None)` to delete.
    pub fn into_changes(mut self) -> Vec<(RowKey, Option<Row>)> {
        self.dirty
            .into_iter()
            .map(|k| {
                let row = self.rows.remove(&k).flatten();
                (k, row)
            })
            .collect()
    }
}
