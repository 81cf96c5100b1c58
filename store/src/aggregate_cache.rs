//! The command path's in-memory aggregate cache: the state the last command left an aggregate
//! in, so the next command on it decides without loading its stream.
//!
//! A cached state is never trusted blindly; it is validated by version at the append: the
//! command's events are written at `version + 1 …`, and the log's primary key refuses them when
//! any other writer (another process, another store instance) got there first. That conflict
//! evicts the entry and the command runs again on a fresh load. A refusal decided on a cached
//! state is also decided again on a fresh load before the caller sees it.
//!
//! An entry is *taken* while a command works on it (not cloned): concurrent commands on one
//! aggregate in one process fall back to loading, as they would without a cache.

use std::sync::{Arc, Mutex};

use hashlink::LruCache;

/// An aggregate as the last committed command left it.
#[derive(Debug)]
pub struct Cached<A> {
    /// The state, with every event up to `version` applied.
    pub aggregate: A,
    /// The stream's last sequence this state includes.
    pub version: u64,
}

/// Up to `capacity` recently used aggregates of one type, least recently used evicted first.
/// Cheap to clone (clones share the entries).
pub struct AggregateCache<A> {
    entries: Option<Arc<Mutex<Entries<A>>>>,
}

/// The cached aggregates by id, least recently used first.
type Entries<A> = LruCache<String, Cached<A>>;

impl<A> Clone for AggregateCache<A> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
        }
    }
}

impl<A> Default for AggregateCache<A> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<A> AggregateCache<A> {
    /// A cache of `capacity` aggregates (`0`: no cache, every command loads its aggregate).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| Arc::new(Mutex::new(LruCache::new(capacity)))),
        }
    }

    /// Whether this cache keeps anything.
    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// Takes the entry of `aggregate_id` out (a command is about to work on it).
    pub fn take(&self, aggregate_id: &str) -> Option<Cached<A>> {
        self.entries
            .as_ref()
            .and_then(|e| lock(e).remove(aggregate_id))
    }

    /// Puts a committed state back, unless a newer one is there already.
    pub fn put(&self, aggregate_id: &str, entry: Cached<A>) {
        let Some(entries) = &self.entries else { return };
        let mut entries = lock(entries);
        if entries
            .peek(aggregate_id)
            .is_none_or(|held| held.version < entry.version)
        {
            entries.insert(aggregate_id.to_string(), entry);
        }
    }

    /// Drops whatever is cached of `aggregate_id` (its stream moved on without us).
    pub fn forget(&self, aggregate_id: &str) {
        if let Some(entries) = &self.entries {
            lock(entries).remove(aggregate_id);
        }
    }

    /// How many aggregates are cached now.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| lock(e).len())
    }

    /// Whether nothing is cached now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The entries, also after a panic elsewhere poisoned the lock (the map itself stays valid:
/// every operation on it is a single call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_states_win_and_taking_empties() {
        let cache = AggregateCache::new(2);
        cache.put(
            "a",
            Cached {
                aggregate: "v2",
                version: 2,
            },
        );
        cache.put(
            "a",
            Cached {
                aggregate: "v1",
                version: 1,
            },
        );
        let taken = cache.take("a").expect("cached");
        assert_eq!((taken.aggregate, taken.version), ("v2", 2));
        assert!(cache.take("a").is_none(), "a taken entry is gone");
    }

    #[test]
    fn least_recently_used_leaves_first() {
        let cache = AggregateCache::new(2);
        for (id, version) in [("a", 1), ("b", 1), ("c", 1)] {
            cache.put(
                id,
                Cached {
                    aggregate: (),
                    version,
                },
            );
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.take("a").is_none());
        assert!(cache.take("c").is_some());
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let cache = AggregateCache::new(0);
        cache.put(
            "a",
            Cached {
                aggregate: (),
                version: 1,
            },
        );
        assert!(!cache.enabled());
        assert!(cache.take("a").is_none());
    }
}
