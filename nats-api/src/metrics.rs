//! The service's own counters: requests and errors per endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Counters of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct EndpointCounters {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl EndpointCounters {
    /// Counts one answered request, and whether it was an error reply.
    pub(crate) fn record(&self, error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `{"requests": n, "errors": n}`.
    pub(crate) fn snapshot(&self) -> Value {
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
        })
    }
}

/// The counters of every endpoint, keyed by subject relative to the prefix
/// (`commands.tasks.create`); the set of endpoints is fixed at start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    endpoints: BTreeMap<String, EndpointCounters>,
}

impl Counters {
    /// Zeroed counters for `subjects`.
    pub(crate) fn new<'a>(subjects: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            endpoints: subjects
                .into_iter()
                .map(|s| (s.to_string(), EndpointCounters::default()))
                .collect(),
        }
    }

    /// The counters of `subject` (None for an unknown one).
    pub(crate) fn endpoint(&self, subject: &str) -> Option<&EndpointCounters> {
        self.endpoints.get(subject)
    }

    /// `{"requests": total, "errors": total, "endpoints": {"<subject>": {...}}}`.
    pub(crate) fn snapshot(&self) -> Value {
        let mut requests = 0;
        let mut errors = 0;
        let mut endpoints = serde_json::Map::new();
        for (subject, c) in &self.endpoints {
            requests += c.requests.load(Ordering::Relaxed);
            errors += c.errors.load(Ordering::Relaxed);
            endpoints.insert(subject.clone(), c.snapshot());
        }
        json!({"requests": requests, "errors": errors, "endpoints": endpoints})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        let c = Counters::new(["a", "b"]);
        c.endpoint("a").unwrap().record(false);
        c.endpoint("a").unwrap().record(true);
        c.endpoint("b").unwrap().record(true);
        assert!(c.endpoint("c").is_none());
        assert_eq!(
            c.snapshot(),
            json!({"requests": 3, "errors": 2, "endpoints": {
                "a": {"requests": 2, "errors": 1}, "b": {"requests": 1, "errors": 1}}})
        );
    }
}
