//! `system.health` and `system.metrics`: JSON from a provider the server passes in.

use futures::future::BoxFuture;
use serde_json::Value;

/// What the server knows about itself (store, relay lag, projection lag, NATS, counters),
/// answered on `lifeos.system.health` and `lifeos.system.metrics`.
///
/// Object safe: pass it as `Arc<dyn SystemStatus>`.
pub trait SystemStatus: Send + Sync {
    /// The health report, answered as is on `system.health`.
    fn health(&self) -> BoxFuture<'_, Value>;

    /// The metrics, answered on `system.metrics` with this service's own counters added under
    /// the key `nats_api` (a non-object value is put under `provider`).
    fn metrics(&self) -> BoxFuture<'_, Value>;
}

/// The key under which the NATS API's own counters appear in `system.metrics`.
pub(crate) const COUNTERS_KEY: &str = "nats_api";

/// The provider's metrics with `counters` merged in.
pub(crate) fn merge_metrics(provided: Value, counters: Value) -> Value {
    let mut merged = match provided {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        other => {
            let mut map = serde_json::Map::new();
            map.insert("provider".into(), other);
            map
        }
    };
    merged.insert(COUNTERS_KEY.into(), counters);
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counters_join_the_provider_metrics() {
        let c = json!({"requests": 1});
        assert_eq!(
            merge_metrics(json!({"events": 5}), c.clone()),
            json!({"events": 5, "nats_api": {"requests": 1}})
        );
        assert_eq!(
            merge_metrics(json!(7), c.clone()),
            json!({"provider": 7, "nats_api": {"requests": 1}})
        );
        assert_eq!(
            merge_metrics(Value::Null, c),
            json!({"nats_api": {"requests": 1}})
        );
    }
}
