//! Read-your-writes: wait, bounded, until a read model has applied a given log position.

use std::sync::Arc;
use std::time::Duration;

use store::Position;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Projection, ProjectionError, ReadModels};

/// Tells whether a read model has caught up with a position, and waits for it.
#[derive(Clone)]
pub struct Freshness {
    models: ReadModels,
    projection: Arc<dyn Projection>,
    local: Option<watch::Receiver<Position>>,
}

impl Freshness {
    /// Freshness of `projection`'s active model; `local` is the progress of its runner in this
    /// process, if any (otherwise only the stored checkpoint is checked).
    pub fn new(
        models: ReadModels,
        projection: Arc<dyn Projection>,
        local: Option<watch::Receiver<Position>>,
    ) -> Self {
        Self {
            models,
            projection,
            local,
        }
    }

    /// Waits until the model's checkpoint is at or past `target`, for at most `limit`.
    /// Returns `false` when it did not catch up in time.
    ///
    /// The local runner's progress answers at once; the stored checkpoint (another process's
    /// runner, or a standby here) is checked at most every 100 ms.
    pub async fn wait_for(
        &self,
        target: Position,
        limit: Duration,
    ) -> Result<bool, ProjectionError> {
        let deadline = Instant::now() + limit;
        let mut local = self.local.clone();
        loop {
            if let Some(rx) = &mut local
                && *rx.borrow_and_update() >= target
            {
                return Ok(true);
            }
            let (_, checkpoint) = self
                .models
                .active_checkpoint(self.projection.as_ref())
                .await?;
            if checkpoint >= target {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let pause = (now + Duration::from_millis(100)).min(deadline);
            match &mut local {
                Some(rx) => {
                    if let Ok(Err(_closed)) = tokio::time::timeout_at(pause, rx.changed()).await {
                        local = None; // runner gone: the stored checkpoint is all there is
                    }
                }
                None => {
                    let pause = (now + Duration::from_millis(20)).min(deadline);
                    tokio::time::sleep_until(pause).await;
                }
            }
        }
    }
}
