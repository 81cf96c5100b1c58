//! The rows of a generation being built, held in memory between its batches.
//!
//! A build is the only writer of its generation, and a half-built generation is never resumed
//! (a crash or a lost lease starts a new one), so its rows need reach the database only before
//! the generation becomes the active one, or when they outgrow the memory budget. Held that way,
//! a row that many batches touch (a user's stats, a habit, a month) is loaded at most once and
//! written once per flush instead of once per batch, and a key the build has never let go of
//! needs no load at all.

use std::collections::HashMap;

use crate::{Row, RowKey, RowSet};

/// One held row: its current state, whether the database has it, and when it was last used.
#[derive(Debug)]
struct Held {
    row: Option<Row>,
    /// Changed since the last flush.
    dirty: bool,
    /// The estimated heap size of `row`.
    bytes: usize,
    /// The batch that last touched it (eviction drops the least recently touched first).
    batch: u64,
}

/// The write-behind row store of one build.
#[derive(Debug)]
pub(crate) struct BuildRows {
    held: HashMap<RowKey, Held>,
    bytes: usize,
    budget: usize,
    /// Whether any row has been let go of: until then a key not held is a row that does not
    /// exist, and nothing is loaded.
    evicted: bool,
    batch: u64,
}

impl BuildRows {
    /// An empty store that flushes and evicts once its rows hold more than `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            held: HashMap::new(),
            bytes: 0,
            budget,
            evicted: false,
            batch: 0,
        }
    }

    /// Takes out the held rows among `keys` (sorted, deduplicated) for a batch to work on, and
    /// names the keys that must be loaded from the database (none until a row was evicted).
    pub(crate) fn take(&mut self, keys: &[RowKey]) -> (Vec<Row>, Vec<RowKey>) {
        self.batch += 1;
        let mut rows = Vec::new();
        let mut missing = Vec::new();
        for key in keys {
            match self.held.get_mut(key) {
                Some(held) => {
                    held.batch = self.batch;
                    if let Some(row) = held.row.take() {
                        rows.push(row);
                    }
                }
                None if self.evicted => missing.push(key.clone()),
                None => {}
            }
        }
        (rows, missing)
    }

    /// Puts back the rows a batch worked on (taken, loaded and written ones); `loaded` are the
    /// keys it loaded from the database, so those it did not find are held as absent.
    pub(crate) fn put_back(&mut self, set: RowSet, loaded: Vec<RowKey>) {
        for key in loaded {
            if !set.has(&key) {
                let bytes = entry_bytes(&key, None);
                self.bytes += bytes;
                self.held.insert(
                    key,
                    Held {
                        row: None,
                        dirty: false,
                        bytes,
                        batch: self.batch,
                    },
                );
            }
        }
        for (key, row, changed) in set.into_entries() {
            let bytes = entry_bytes(&key, row.as_ref());
            match self.held.get_mut(&key) {
                Some(held) => {
                    self.bytes = self.bytes - held.bytes + bytes;
                    held.row = row;
                    held.bytes = bytes;
                    held.dirty |= changed;
                    held.batch = self.batch;
                }
                None => {
                    self.bytes += bytes;
                    self.held.insert(
                        key,
                        Held {
                            row,
                            dirty: changed,
                            bytes,
                            batch: self.batch,
                        },
                    );
                }
            }
        }
    }

    /// Whether the held rows have outgrown the budget (time to flush and evict).
    pub(crate) fn over_budget(&self) -> bool {
        self.bytes > self.budget
    }

    /// The rows changed since the last flush, to write (`None`: delete).
    pub(crate) fn changes(&self) -> Vec<(&RowKey, Option<&Row>)> {
        self.held
            .iter()
            .filter(|(_, h)| h.dirty)
            .map(|(k, h)| (k, h.row.as_ref()))
            .collect()
    }

    /// Marks every row written (after [`changes`](Self::changes) committed), then lets go of the
    /// least recently touched rows until at most half the budget is held.
    pub(crate) fn flushed(&mut self) {
        for held in self.held.values_mut() {
            held.dirty = false;
        }
        if self.bytes <= self.budget / 2 {
            return;
        }
        let mut ages: Vec<(u64, usize)> = self.held.values().map(|h| (h.batch, h.bytes)).collect();
        ages.sort_unstable();
        // the oldest batch whose rows may stay: drop whole batches, oldest first
        let mut left = self.bytes;
        let mut keep_from = 0;
        for (batch, bytes) in ages {
            if left <= self.budget / 2 {
                break;
            }
            left -= bytes;
            keep_from = batch + 1;
        }
        let before = self.held.len();
        let mut freed = 0;
        self.held.retain(|_, h| {
            let keep = h.batch >= keep_from;
            if !keep {
                freed += h.bytes;
            }
            keep
        });
        self.bytes -= freed;
        self.evicted |= self.held.len() < before;
    }

    /// Rows held (for tests and logs).
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

/// The estimated heap size of a held entry: its key, and its row's strings and JSON nodes.
fn entry_bytes(key: &RowKey, row: Option<&Row>) -> usize {
    std::mem::size_of::<(RowKey, Held)>() + key.row_id.len() + row.map_or(0, row_bytes)
}

/// The heap size of a row: its strings, the document's JSON text among them.
fn row_bytes(row: &Row) -> usize {
    row.key.row_id.len() + row.grp.len() + row.sort_key.len() + row.doc.json().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn row(user: Uuid, id: &str, n: usize) -> Row {
        Row::new(
            RowKey::new(user, id),
            "g",
            "s",
            &json!({ "text": "x".repeat(n) }),
        )
        .unwrap()
    }

    #[test]
    fn nothing_is_loaded_until_a_row_was_evicted() {
        let user = Uuid::now_v7();
        let mut rows = BuildRows::new(1 << 20);
        let keys = vec![RowKey::new(user, "a"), RowKey::new(user, "b")];
        let (taken, missing) = rows.take(&keys);
        assert!(taken.is_empty() && missing.is_empty());
        let mut set = RowSet::new(taken);
        set.put(row(user, "a", 10));
        rows.put_back(set, Vec::new());
        let (taken, missing) = rows.take(&keys);
        assert_eq!(taken.len(), 1, "the written row is held");
        assert!(
            missing.is_empty(),
            "b never existed and nothing was evicted"
        );
        rows.put_back(RowSet::new(taken), Vec::new());
        assert_eq!(rows.changes().len(), 1, "a is still to be written");
    }

    #[test]
    fn a_flush_writes_each_changed_row_once_and_evicts_the_oldest() {
        let user = Uuid::now_v7();
        // room for about two of these rows
        let r = row(user, "r0", 1_000);
        let budget = 2 * entry_bytes(&r.key, Some(&r)) + 100;
        let mut rows = BuildRows::new(budget);
        for i in 0..3 {
            let key = RowKey::new(user, format!("r{i}"));
            let (taken, _) = rows.take(std::slice::from_ref(&key));
            let mut set = RowSet::new(taken);
            set.put(row(user, &key.row_id, 1_000));
            rows.put_back(set, Vec::new());
        }
        assert!(rows.over_budget());
        assert_eq!(rows.changes().len(), 3);
        rows.flushed();
        assert!(rows.changes().is_empty(), "flushed rows are clean");
        assert!(rows.len() < 3, "the oldest rows were let go of");
        assert!(!rows.over_budget());
        // the newest row is still held; an evicted one must now be loaded
        let (taken, missing) = rows.take(&[RowKey::new(user, "r0"), RowKey::new(user, "r2")]);
        assert_eq!(taken.len(), 1);
        assert_eq!(missing, vec![RowKey::new(user, "r0")]);
    }

    #[test]
    fn a_deleted_row_is_written_as_a_delete() {
        let user = Uuid::now_v7();
        let mut rows = BuildRows::new(1 << 20);
        let key = RowKey::new(user, "a");
        let mut set = RowSet::new(rows.take(std::slice::from_ref(&key)).0);
        set.put(row(user, "a", 10));
        rows.put_back(set, Vec::new());
        rows.flushed();
        let mut set = RowSet::new(rows.take(std::slice::from_ref(&key)).0);
        set.delete(&key);
        rows.put_back(set, Vec::new());
        assert_eq!(rows.changes(), vec![(&key, None)]);
    }
}
