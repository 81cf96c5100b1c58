//! Read-your-writes: wait, bounded, until a read model has applied a given log position.

use std::time::Duration;

use store::Position;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{ProjectionError, ReadModels};

/// Tells whether a read model has caught up with a position, and waits for it.
#[derive(Clone)]
pub struct Freshness {
    models: ReadModels,
    model: String,
    local: Option<watch::Receiver<Position>>,
}

impl Freshness {
    /// Freshness of `model`; `local` is the progress of a runner in this process, if any
    /// (otherwise the stored checkpoint is polled).
    pub fn new(
        models: ReadModels,
        model: String,
        local: Option<watch::Receiver<Position>>,
    ) -> Self {
        Self {
            models,
            model,
            local,
        }
    }

    /// Waits until the model's checkpoint is at or past `target`, for at most `limit`.
    /// Returns `false` when it did not catch up in time.
    pub async fn wait_for(
        &self,
        target: Position,
        limit: Duration,
    ) -> Result<bool, ProjectionError> {
        let deadline = Instant::now() + limit;
        if let Some(rx) = &self.local {
            let mut rx = rx.clone();
            match tokio::time::timeout_at(deadline, rx.wait_for(|p| *p >= target)).await {
                Ok(Ok(_)) => return Ok(true),
                Ok(Err(_closed)) => {} // runner gone: fall back to the stored checkpoint
                Err(_elapsed) => return Ok(false),
            }
        }
        loop {
            if self.models.checkpoint(&self.model).await? >= target {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep_until((Instant::now() + Duration::from_millis(20)).min(deadline))
                .await;
        }
    }
}
