//! The event relay: tails the log from its checkpoint and publishes every event, in order, once
//! acknowledged advancing the checkpoint. The log is the outbox.
//!
//! One relay per publisher name publishes at a time: it holds the lease `relay:<publisher>`
//! (a PostgreSQL advisory lock, or a lock file beside the SQLite database); the others wait as hot
//! standbys and take over from the checkpoint when the holder stops or dies.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::{Journal, Lease, LogFeed, Position, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{BusError, CloudEvent, Publisher};

/// What a relay is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RelayState {
    /// Waiting for the lease (another relay publishes), or not started yet.
    Standby,
    /// Holding the lease and publishing (or waiting for new events).
    Live,
    /// Publishing (or the store) keeps failing: retrying with backoff. Nothing is lost: the
    /// checkpoint has not moved past the failed batch.
    Retrying {
        /// When the current run of failures began.
        since: DateTime<Utc>,
        /// The latest error.
        last_error: String,
    },
    /// Stopped on request.
    Stopped,
}

impl RelayState {
    /// `standby`, `live`, `retrying` or `stopped` (for health reports and metrics labels).
    pub fn label(&self) -> &'static str {
        match self {
            RelayState::Standby => "standby",
            RelayState::Live => "live",
            RelayState::Retrying { .. } => "retrying",
            RelayState::Stopped => "stopped",
        }
    }
}

/// A relay's progress, for health reports.
///
/// Serializes as `{"name": "relay:jetstream:LIFEOS_EVENTS", "state": "retrying", "since": "…",
/// "last_error": "…", "checkpoint": "812.40", "published": 1234}` (`since` and `last_error` only
/// when retrying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayStatus {
    /// The lease and checkpoint name, `relay:<publisher name>`.
    pub name: String,
    /// What it is doing.
    #[serde(flatten)]
    pub state: RelayState,
    /// The last position published and checkpointed (as read when the lease was taken, then
    /// after every batch; `Position::START` before the first lease).
    #[serde(serialize_with = "crate::cloudevent::position_string::serialize")]
    pub checkpoint: Position,
    /// Events this relay published and checkpointed since it was spawned.
    pub published: u64,
}

/// Tails the log of a [`Store`] and publishes every event to a [`Publisher`].
///
/// ```no_run
/// # async fn run(store: store::Store) -> Result<(), bus::BusError> {
/// use std::sync::Arc;
/// use bus::{InProcessBus, Relay};
/// let bus = InProcessBus::default();
/// let mut events = bus.subscribe();
/// let relay = Relay::new(store, Arc::new(bus)).spawn();
/// let first = events.recv().await;
/// relay.stop().await?;
/// # Ok(()) }
/// ```
pub struct Relay {
    store: Store,
    feed: LogFeed,
    publisher: Arc<dyn Publisher>,
    batch_size: usize,
    idle_poll: Duration,
    lease_retry: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Relay {
    /// A relay from `store` to `publisher`, with batches of 256, a 250 ms poll fallback, a
    /// lease retried every second, and retries backing off from 100 ms to 5 s.
    pub fn new(store: Store, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            feed: LogFeed::new(store.clone(), 1_024),
            store,
            publisher,
            batch_size: 256,
            idle_poll: Duration::from_millis(250),
            lease_retry: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Events read and published per batch (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Reads the log through `feed`, shared with other consumers of this process (the
    /// projection runners), instead of through a feed of its own.
    pub fn feed(mut self, feed: LogFeed) -> Self {
        self.feed = feed;
        self
    }

    /// How often to look at the log when no wake-up arrives (wake-ups miss other processes'
    /// appends on SQLite, and transactions that end without appending on PostgreSQL).
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.idle_poll = every;
        self
    }

    /// How often a standby tries to take the lease.
    pub fn lease_retry(mut self, every: Duration) -> Self {
        self.lease_retry = every;
        self
    }

    /// The first and the longest pause between retries of a failing batch (doubling between).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// The lease and checkpoint name: `relay:<publisher name>`.
    pub fn name(&self) -> String {
        format!("relay:{}", self.publisher.name())
    }

    /// Starts the relay on the current tokio runtime (as a standby until it gets the lease).
    pub fn spawn(self) -> RelayHandle {
        let (status_tx, status) = watch::channel(RelayStatus {
            name: self.name(),
            state: RelayState::Standby,
            checkpoint: Position::START,
            published: 0,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.run(status_tx, stop_rx));
        RelayHandle { status, stop, task }
    }

    async fn run(self, status: watch::Sender<RelayStatus>, mut stop: watch::Receiver<bool>) {
        let name = self.name();
        let mut retry = Retry::new(self.min_backoff, self.max_backoff);
        'standby: loop {
            status.send_if_modified(|s| {
                let live = s.state == RelayState::Live;
                if live {
                    s.state = RelayState::Standby;
                }
                live
            });
            let mut lease = match self.acquire(&name, &mut stop, &status, &mut retry).await {
                Ok(Some(lease)) => lease,
                Ok(None) => break 'standby,
                Err(err) => {
                    retry.failed(&name, &status, &err);
                    if retry.pause(&mut stop).await {
                        break 'standby;
                    }
                    continue 'standby;
                }
            };
            tracing::info!(relay = %name, "relay holds the lease; publishing");
            let mut checkpoint = None;
            let mut wake = self.store.wakeups();
            loop {
                if stop_requested(&stop) {
                    lease.release().await;
                    break 'standby;
                }
                wake.borrow_and_update();
                match self.step(&name, &mut lease, &mut checkpoint).await {
                    Ok(Step::Published { count, to }) => {
                        retry.succeeded(&name);
                        status.send_modify(|s| {
                            s.state = RelayState::Live;
                            s.checkpoint = to;
                            s.published += count;
                        });
                    }
                    Ok(Step::Idle(at)) => {
                        retry.succeeded(&name);
                        status.send_if_modified(|s| {
                            let changed = s.state != RelayState::Live || s.checkpoint != at;
                            s.state = RelayState::Live;
                            s.checkpoint = at;
                            changed
                        });
                        tokio::select! {
                            changed = wake.changed() => {
                                if changed.is_err() {
                                    // The store's signal is gone: poll only.
                                    wake = self.store.wakeups();
                                    tokio::time::sleep(self.idle_poll).await;
                                }
                            }
                            _ = tokio::time::sleep(self.idle_poll) => {}
                            _ = stop.changed() => {}
                        }
                    }
                    Ok(Step::LeaseLost) => {
                        tracing::warn!(relay = %name, "relay lost its lease; back to standby");
                        drop(lease);
                        continue 'standby;
                    }
                    Err(err) => {
                        retry.failed(&name, &status, &err);
                        if retry.pause(&mut stop).await {
                            lease.release().await;
                            break 'standby;
                        }
                    }
                }
            }
        }
        status.send_modify(|s| s.state = RelayState::Stopped);
        tracing::info!(relay = %name, "relay stopped");
    }

    /// Waits for the lease; `None` when asked to stop first.
    async fn acquire(
        &self,
        name: &str,
        stop: &mut watch::Receiver<bool>,
        status: &watch::Sender<RelayStatus>,
        retry: &mut Retry,
    ) -> Result<Option<Lease>, BusError> {
        loop {
            if stop_requested(stop) {
                return Ok(None);
            }
            // In a task of its own: a relay aborted mid-attempt must not drop a half-taken lock
            // (the finished task drops its unclaimed lease, which releases it).
            let store = self.store.clone();
            let lease_name = name.to_string();
            let attempt = tokio::spawn(async move { store.try_lease(&lease_name).await });
            match attempt.await {
                Ok(Ok(Some(lease))) => return Ok(Some(lease)),
                Ok(Ok(None)) => {
                    // The store answers again after a failure: a plain standby.
                    if retry.succeeded(name) {
                        status.send_modify(|s| s.state = RelayState::Standby);
                    }
                }
                Ok(Err(err)) => return Err(err.into()),
                Err(join) => return Err(BusError::Task(format!("taking the lease: {join}"))),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.lease_retry) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Publishes at most one batch after the checkpoint.
    async fn step(
        &self,
        name: &str,
        lease: &mut Lease,
        checkpoint: &mut Option<Position>,
    ) -> Result<Step, BusError> {
        let from = match *checkpoint {
            Some(position) => position,
            None => *checkpoint.insert(self.store.checkpoint(name).await?),
        };
        let events = self.feed.read_after(from, self.batch_size).await?;
        let Some(to) = events.last().map(|e| e.position) else {
            return Ok(Step::Idle(from));
        };
        if !lease.is_held().await {
            return Ok(Step::LeaseLost);
        }
        let batch: Vec<CloudEvent> = events.iter().map(|e| CloudEvent::from_logged(e)).collect();
        self.publisher.publish(&batch).await?;
        // Another relay may have taken over while we published: it owns the checkpoint now.
        if !lease.is_held().await {
            return Ok(Step::LeaseLost);
        }
        self.store.save_checkpoint(name, to).await?;
        *checkpoint = Some(to);
        tracing::debug!(relay = %name, count = batch.len(), checkpoint = %to, "published a batch");
        Ok(Step::Published {
            count: batch.len() as u64,
            to,
        })
    }
}

/// What one step did.
enum Step {
    /// `count` events were published; the checkpoint is now `to`.
    Published { count: u64, to: Position },
    /// Nothing new after this checkpoint.
    Idle(Position),
    /// The lease's session is gone: another relay may be publishing.
    LeaseLost,
}

/// Whether the relay was asked to stop (or its handle dropped).
fn stop_requested(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Exponential backoff and the `Retrying` state of a run of failures.
struct Retry {
    min: Duration,
    max: Duration,
    next: Duration,
    failing_since: Option<DateTime<Utc>>,
    failures: u64,
}

impl Retry {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
            failing_since: None,
            failures: 0,
        }
    }

    fn failed(&mut self, name: &str, status: &watch::Sender<RelayStatus>, err: &BusError) {
        let since = *self.failing_since.get_or_insert_with(Utc::now);
        self.failures += 1;
        tracing::warn!(
            relay = %name,
            error = %err,
            failures = self.failures,
            retry_in = ?self.next,
            "relay cannot publish; retrying"
        );
        status.send_modify(|s| {
            s.state = RelayState::Retrying {
                since,
                last_error: err.to_string(),
            }
        });
    }

    /// Ends a run of failures; true when there was one.
    fn succeeded(&mut self, name: &str) -> bool {
        self.next = self.min;
        let Some(since) = self.failing_since.take() else {
            return false;
        };
        tracing::info!(
            relay = %name,
            failures = self.failures,
            failing_since = %since,
            "relay recovered"
        );
        self.failures = 0;
        true
    }

    /// The pause before the next retry; doubles the one after, up to the cap.
    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// Sleeps the current backoff and doubles it; true when asked to stop meanwhile.
    async fn pause(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let pause = self.next_pause();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
        stop_requested(stop)
    }
}

/// A running relay: its status, and how to stop it.
///
/// Dropping the handle stops the relay after its current batch, as [`stop`](Self::stop) does
/// (without waiting).
pub struct RelayHandle {
    status: watch::Receiver<RelayStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RelayHandle {
    /// A receiver of the relay's status (updated on every state change and batch).
    pub fn status(&self) -> watch::Receiver<RelayStatus> {
        self.status.clone()
    }

    /// The status now.
    pub fn current(&self) -> RelayStatus {
        self.status.borrow().clone()
    }

    /// Whether the relay task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the relay to stop, lets it finish the batch in flight (publish and checkpoint),
    /// releases the lease, and returns the final status.
    pub async fn stop(self) -> Result<RelayStatus, BusError> {
        let RelayHandle { status, stop, task } = self;
        let _ = stop.send(true);
        task.await.map_err(|e| BusError::Task(e.to_string()))?;
        let last = status.borrow().clone();
        Ok(last)
    }

    /// Kills the relay where it stands, as a crash would: a batch may be published but not
    /// checkpointed (the next relay re-publishes it; JetStream drops the repeats). The lease is
    /// released as the task's resources are dropped.
    pub fn abort(self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_for_health_reports() {
        let status = RelayStatus {
            name: "relay:jetstream:LIFEOS_EVENTS".into(),
            state: RelayState::Retrying {
                since: "2025-06-01T12:00:00Z".parse().unwrap(),
                last_error: "NATS down".into(),
            },
            checkpoint: Position { tx: 812, pos: 40 },
            published: 7,
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "name": "relay:jetstream:LIFEOS_EVENTS",
                "state": "retrying",
                "since": "2025-06-01T12:00:00Z",
                "last_error": "NATS down",
                "checkpoint": "812.40",
                "published": 7,
            })
        );
        assert_eq!(status.state.label(), "retrying");
        let live = RelayStatus {
            state: RelayState::Live,
            ..status
        };
        assert_eq!(serde_json::to_value(&live).unwrap()["state"], "live");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut retry = Retry::new(Duration::from_millis(100), Duration::from_millis(350));
        let (status, _) = watch::channel(RelayStatus {
            name: "relay:x".into(),
            state: RelayState::Live,
            checkpoint: Position::START,
            published: 0,
        });
        let mut pauses = Vec::new();
        for _ in 0..4 {
            retry.failed("relay:x", &status, &BusError::Config("x".into()));
            pauses.push(retry.next_pause());
        }
        assert_eq!(
            pauses,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
        let RelayState::Retrying { since, last_error } = status.borrow().state.clone() else {
            panic!("retrying expected");
        };
        assert_eq!(last_error, "invalid bus configuration: x");
        retry.failed("relay:x", &status, &BusError::Config("y".into()));
        assert!(
            matches!(&status.borrow().state, RelayState::Retrying { since: s, .. } if *s == since),
            "the run of failures keeps its start"
        );
        assert!(retry.succeeded("relay:x"));
        assert!(!retry.succeeded("relay:x"));
        assert_eq!(retry.next, Duration::from_millis(100));
    }
}
