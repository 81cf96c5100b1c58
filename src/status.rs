//! What `lifeos.system.health` and `lifeos.system.metrics` answer: the store, the projections'
//! and the relay's lag, NATS, and the command counters.

use std::sync::Arc;

use bus::{RelayState, RelayStatus};
use futures::FutureExt;
use futures::future::BoxFuture;
use projections::ReadModels;
use serde_json::{Value, json};
use store::{Journal, Store};
use tokio::sync::watch;

/// The engine's view of itself, for the NATS system endpoints.
pub struct EngineStatus {
    store: Store,
    relay: Option<watch::Receiver<RelayStatus>>,
    nats: Option<bus::async_nats::Client>,
}

impl EngineStatus {
    /// Reports on `store`, the relay of this process (if it runs one) and the NATS connection.
    pub fn new(
        store: Store,
        relay: Option<watch::Receiver<RelayStatus>>,
        nats: Option<bus::async_nats::Client>,
    ) -> Arc<Self> {
        Arc::new(Self { store, relay, nats })
    }

    async fn report(&self) -> Value {
        let head = self.store.head().await;
        let store_ok = head.is_ok();
        let models = ReadModels::new(self.store.clone());
        let mut projections = Vec::new();
        for projection in projections::all() {
            match models.report(projection.as_ref()).await {
                Ok(r) => projections.push(json!({
                    "name": r.name,
                    "state": r.state,
                    "lag_events": r.lag_events,
                    "lag_seconds": r.lag_seconds,
                    "events_per_sec": r.events_per_sec,
                })),
                Err(err) => {
                    projections.push(json!({ "name": projection.name(), "error": err.to_string() }))
                }
            }
        }
        let relay = match &self.relay {
            None => Value::Null,
            Some(rx) => {
                let status = rx.borrow().clone();
                let lag = self.store.count_after(status.checkpoint).await.ok();
                let state = match &status.state {
                    RelayState::Standby => json!("standby"),
                    RelayState::Live => json!("live"),
                    RelayState::Stopped => json!("stopped"),
                    RelayState::Retrying { since, last_error } => {
                        json!({ "retrying_since": since, "last_error": last_error })
                    }
                };
                json!({
                    "name": status.name,
                    "state": state,
                    "checkpoint": status.checkpoint.to_string(),
                    "published": status.published,
                    "lag_events": lag,
                })
            }
        };
        let nats = self
            .nats
            .as_ref()
            .map(|c| json!(format!("{:?}", c.connection_state()).to_lowercase()));
        let relay_ok = self
            .relay
            .as_ref()
            .is_none_or(|rx| !matches!(rx.borrow().state, RelayState::Retrying { .. }));
        let projections_ok = projections
            .iter()
            .all(|p| p["state"] == json!("live") || p["state"] == json!("rebuilding"));
        json!({
            "status": if store_ok && relay_ok && projections_ok { "ok" } else { "degraded" },
            "store": {
                "backend": self.store.backend_name(),
                "ok": store_ok,
                "head": head.map(|h| h.to_string()).unwrap_or_default(),
            },
            "projections": projections,
            "relay": relay,
            "nats": nats,
        })
    }
}

impl nats_api::SystemStatus for EngineStatus {
    fn health(&self) -> BoxFuture<'_, Value> {
        self.report().boxed()
    }

    fn metrics(&self) -> BoxFuture<'_, Value> {
        async move {
            let report = self.report().await;
            json!({
                "counters": api_common::metrics::COUNTERS.snapshot(),
                "projections": report["projections"],
                "relay": report["relay"],
            })
        }
        .boxed()
    }
}
