//! The projection runner: log → rows + checkpoint, one transaction per batch.

use std::sync::Arc;
use std::time::Duration;

use store::{Journal, Position};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Projection, ProjectionError, ReadModels, RowKey, RowSet};

/// Keeps one projection up to date with the log, in the background.
pub struct ProjectionRunner {
    projection: Arc<dyn Projection>,
    models: ReadModels,
    batch_size: usize,
    idle_poll: Duration,
}

/// A running projection: its progress, and how to stop it.
pub struct RunnerHandle {
    /// The position the read model has applied (its checkpoint), updated after every batch.
    pub progress: watch::Receiver<Position>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ProjectionError>>,
}

impl RunnerHandle {
    /// Asks the runner to stop after its current batch and waits for it. Returns the error that
    /// stopped it earlier, if one did (a poison event).
    pub async fn stop(self) -> Result<(), ProjectionError> {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(ProjectionError::Corrupt(format!(
                "projection task panicked: {join}"
            ))),
        }
    }

    /// Whether the runner has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl ProjectionRunner {
    /// A runner for `projection` writing into `models`.
    pub fn new(projection: Arc<dyn Projection>, models: ReadModels) -> Self {
        Self {
            projection,
            models,
            batch_size: 500,
            idle_poll: Duration::from_millis(250),
        }
    }

    /// Events read and applied per transaction (default 500).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Starts the runner on the current tokio runtime.
    pub fn spawn(self) -> RunnerHandle {
        let (progress_tx, progress) = watch::channel(Position::START);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.run(progress_tx, stop_rx));
        RunnerHandle {
            progress,
            stop,
            task,
        }
    }

    /// Applies at most one batch after `checkpoint`; returns the new checkpoint, or None when the
    /// log has nothing newer.
    pub async fn step(&self, checkpoint: Position) -> Result<Option<Position>, ProjectionError> {
        let model = self.projection.model();
        let events = self
            .models
            .store()
            .read_after(checkpoint, self.batch_size)
            .await?;
        let mut events = events;
        loop {
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(None);
            };
            let mut keys: Vec<RowKey> = events
                .iter()
                .flat_map(|e| self.projection.keys(e))
                .collect();
            keys.sort();
            keys.dedup();
            let mut rows = RowSet::new(self.models.load(&model, &keys).await?);
            let failed = events.iter().enumerate().find_map(|(i, event)| {
                self.projection
                    .apply(event, &mut rows)
                    .err()
                    .map(|e| (i, e))
            });
            match failed {
                None => {
                    self.models
                        .commit(&model, &rows.into_changes(), last)
                        .await?;
                    return Ok(Some(last));
                }
                // Commit the events before the one that failed (from freshly loaded rows: the
                // failed apply may have changed some), so the projection stops exactly on it.
                Some((i, _)) if i > 0 => events.truncate(i),
                Some((_, err)) => return Err(err),
            }
        }
    }

    async fn run(
        self,
        progress: watch::Sender<Position>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ProjectionError> {
        let model = self.projection.model();
        let mut wake = self.models.store().wakeups();
        let mut backoff = Duration::from_millis(50);
        let mut checkpoint = None;
        loop {
            if *stop.borrow() {
                tracing::info!(projection = %model, "projection stopped");
                return Ok(());
            }
            wake.borrow_and_update();
            let result = match checkpoint {
                None => self.models.checkpoint(&model).await.map(|p| {
                    checkpoint = Some(p);
                    progress.send_replace(p);
                    Some(p)
                }),
                Some(cp) => self.step(cp).await,
            };
            match result {
                Ok(Some(p)) => {
                    checkpoint = Some(p);
                    progress.send_replace(p);
                    backoff = Duration::from_millis(50);
                    continue;
                }
                Ok(None) => {}
                Err(err @ ProjectionError::Poison(_)) => {
                    tracing::error!(projection = %model, error = %err, "projection stopped on a poison event");
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(projection = %model, error = %err, retry_in = ?backoff, "projection batch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(self.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
