//! Process-wide counters of the command path, for `lifeos.system.metrics` and logs.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    commands: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    duplicates: AtomicU64,
    events: AtomicU64,
}

/// The counters of this process.
pub static COUNTERS: Counters = Counters {
    commands: AtomicU64::new(0),
    rejected: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    duplicates: AtomicU64::new(0),
    events: AtomicU64::new(0),
};

impl Counters {
    /// A command committed `events` events; a `duplicate` was answered from its receipt and
    /// wrote nothing.
    pub fn committed(&self, events: usize, duplicate: bool) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.events.fetch_add(events as u64, Ordering::Relaxed);
        }
    }

    /// A command was refused (a client error: validation, not found, business rule).
    pub fn rejected(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A command failed on the server's side (store unavailable, conflict retries exhausted).
    pub fn failed(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as JSON.
    ///
    /// ```
    /// let before = api_common::metrics::COUNTERS.snapshot()["commands"].as_u64().unwrap();
    /// api_common::metrics::COUNTERS.committed(2, false);
    /// assert!(api_common::metrics::COUNTERS.snapshot()["commands"].as_u64().unwrap() > before);
    /// ```
    pub fn snapshot(&self) -> Value {
        json!({
            "commands": self.commands.load(Ordering::Relaxed),
            "commands_rejected": self.rejected.load(Ordering::Relaxed),
            "commands_failed": self.failed.load(Ordering::Relaxed),
            "commands_duplicate": self.duplicates.load(Ordering::Relaxed),
            "events_committed": self.events.load(Ordering::Relaxed),
        })
    }
}
