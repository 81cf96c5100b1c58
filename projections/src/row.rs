//! The shape every read-model row has, and the set of rows one batch works on.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use serde_json::value::RawValue;
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

/// A row's document, kept as the JSON text it is stored as.
///
/// A fold decodes it straight into its own type and encodes it straight back, and the
/// database gets the same text: no tree of JSON values in between (their many small
/// allocations were the largest cost of a rebuild, and several times the text's size).
#[derive(Debug, Clone)]
pub struct Doc(Box<RawValue>);

impl Doc {
    /// `value` serialized.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, ProjectionError> {
        Ok(Self(serde_json::value::to_raw_value(value)?))
    }

    /// A document from stored JSON text (checked to be JSON).
    pub fn from_json(text: String) -> Result<Self, ProjectionError> {
        Ok(Self(RawValue::from_string(text)?))
    }

    /// A document from JSON text a database returned (already checked by its decoder).
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The stored text as sqlx binds and reads a JSON column.
    pub(crate) fn raw(&self) -> &RawValue {
        &self.0
    }

    /// Decoded as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ProjectionError> {
        Ok(serde_json::from_str(self.0.get())?)
    }

    /// As a JSON value (for inspection and in-memory filters; folds use [`decode`](Self::decode)).
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).expect("a Doc holds JSON")
    }
}

/// Documents are equal when they hold the same JSON value, whatever the key order and spacing
/// (PostgreSQL's jsonb returns its own).
impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() || self.value() == other.value()
    }
}

impl Serialize for Doc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl fmt::Display for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
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
    pub doc: Doc,
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
            doc: Doc::new(doc)?,
        })
    }

    /// The document decoded as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ProjectionError> {
        self.doc.decode()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct View {
        title: String,
        tags: Vec<String>,
        done: Option<u32>,
    }

    #[test]
    fn a_doc_decodes_to_what_it_was_made_from() {
        let view = View {
            title: "a \"quoted\"\n title".into(),
            tags: vec!["x".into()],
            done: None,
        };
        let doc = Doc::new(&view).unwrap();
        assert_eq!(doc.decode::<View>().unwrap(), view);
        assert_eq!(doc.value()["tags"][0], "x");
    }

    #[test]
    fn docs_compare_as_json_values() {
        let ours = Doc::new(&serde_json::json!({"a": 1, "b": [true]})).unwrap();
        // jsonb hands documents back with its own key order and spacing
        let stored = Doc::from_json(r#"{"b": [true], "a": 1}"#.to_string()).unwrap();
        assert_eq!(ours, stored);
        assert_ne!(
            ours,
            Doc::from_json(r#"{"a": 2, "b": [true]}"#.into()).unwrap()
        );
    }

    #[test]
    fn stored_text_that_is_not_json_is_refused() {
        assert!(Doc::from_json("{\"a\": ".into()).is_err());
    }
}
