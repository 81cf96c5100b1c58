//! The projection runner: log → rows + checkpoint, one transaction per batch; one runner per
//! projection across processes (a lease), blue-green rebuilds beside the live model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use store::{Journal, Lease, Position};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::build_pace::PaceSlot;
use crate::build_rows::BuildRows;
use crate::status::{RunState, model_version};
use crate::{Projection, ProjectionError, ReadModels, Row, RowKey, RowSet};

/// How often a standby runner retries the lease.
const LEASE_RETRY: Duration = Duration::from_millis(500);
/// How often the runner rewrites its status row and checks its lease.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often a rebuild recounts the events left (its progress total).
const RECOUNT: Duration = Duration::from_secs(30);
/// How long a woken runner lets further commits arrive before it reads them: under load, one
/// batch (one read, one read-model transaction) then carries many commands instead of one.
const WAKE_COALESCE: Duration = Duration::from_millis(2);
/// How long a build ahead of the others waits for them before the runner sees to its live
/// model again.
const PACE_PATIENCE: Duration = Duration::from_millis(200);

/// When a batch writes its read-model transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Always (rows and checkpoint): [`ProjectionRunner::step`].
    Always,
    /// Only when the batch changed a row. Every runner reads every event, and most events
    /// belong to other pillars: following the log live, a batch that changed nothing leaves
    /// its checkpoint in memory (queries in this process wait on that progress) and the
    /// runner stores it with its next batch or heartbeat. A crash before then re-reads
    /// events that change nothing.
    WhenChanged,
}

/// Keeps one projection up to date with the log, in the background.
pub struct ProjectionRunner {
    projection: Arc<dyn Projection>,
    models: ReadModels,
    batch_size: usize,
    rebuild_batch_size: usize,
    build_memory: usize,
    idle_poll: Duration,
}

/// A running projection: its progress, and how to stop it.
pub struct RunnerHandle {
    /// The position the active read model has applied (its checkpoint), updated after every
    /// batch; `Position::START` while the runner waits as a standby.
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

/// The generation being built beside the active one.
struct Build {
    model: String,
    checkpoint: Position,
    /// Its rows, written behind: when they outgrow their budget, and before the switch.
    rows: BuildRows,
    applied: u64,
    total: u64,
    /// When `total` was last counted.
    counted: Instant,
    /// A batch failed half-way through its fold: start the generation again.
    restart: bool,
    /// Its place among the builds of this process (they read the log together).
    pace: PaceSlot,
}

impl Build {
    /// A build of `model` from the start of the log, which holds `total` events.
    fn new(model: String, total: u64, memory: usize, pace: PaceSlot) -> Self {
        Self {
            pace,
            model,
            checkpoint: Position::START,
            rows: BuildRows::new(memory),
            applied: 0,
            total,
            counted: Instant::now(),
            restart: false,
        }
    }
}

/// Why the inner loop ended.
enum Exit {
    Stopped,
    LeaseLost,
}

impl ProjectionRunner {
    /// A runner for `projection` writing into `models`.
    pub fn new(projection: Arc<dyn Projection>, models: ReadModels) -> Self {
        Self {
            projection,
            models,
            batch_size: 500,
            rebuild_batch_size: 5_000,
            build_memory: 8 << 20,
            idle_poll: Duration::from_millis(250),
        }
    }

    /// Events read and applied per transaction while following the log (default 500).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Events per transaction while building a new generation (default 5 000).
    pub fn rebuild_batch_size(mut self, n: usize) -> Self {
        self.rebuild_batch_size = n.max(1);
        self
    }

    /// How many bytes of rows a build holds in memory before it writes them (default 8 MiB):
    /// rows stay held between a build's batches, so a row many batches touch is loaded and
    /// written once per flush, not once per batch.
    pub fn build_memory(mut self, bytes: usize) -> Self {
        self.build_memory = bytes;
        self
    }

    /// Starts the runner on the current tokio runtime. It waits as a hot standby until it holds
    /// the projection's lease.
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

    /// Applies at most one batch after `checkpoint` to the active model; returns the new
    /// checkpoint, or None when the log has nothing newer.
    pub async fn step(&self, checkpoint: Position) -> Result<Option<Position>, ProjectionError> {
        let model = self.models.active_model(self.projection.as_ref()).await?;
        Ok(self
            .step_model(&model, checkpoint, self.batch_size, Commit::Always)
            .await?
            .map(|(p, _, _)| p))
    }

    /// One batch into `model`: returns the new checkpoint, the number of events applied and
    /// whether that checkpoint was stored (with [`Commit::WhenChanged`], a batch that changed
    /// no row writes nothing: its checkpoint is stored with the next batch or heartbeat).
    async fn step_model(
        &self,
        model: &str,
        checkpoint: Position,
        batch_size: usize,
        commit: Commit,
    ) -> Result<Option<(Position, u64, bool)>, ProjectionError> {
        let started = Instant::now();
        let mut events = self
            .models
            .feed()
            .read_after(checkpoint, batch_size)
            .await?;
        let read = started.elapsed();
        loop {
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(None);
            };
            let keys = self.keys(&events);
            let loading = Instant::now();
            let mut rows = RowSet::new(self.models.load(model, &keys).await?);
            let load = loading.elapsed();
            let applying = Instant::now();
            let failed = events.iter().enumerate().find_map(|(i, event)| {
                self.projection
                    .apply(event, &mut rows)
                    .err()
                    .map(|e| (i, e))
            });
            match failed {
                None => {
                    let changes = rows.into_changes();
                    let apply = applying.elapsed();
                    if changes.is_empty() && commit == Commit::WhenChanged {
                        return Ok(Some((last, events.len() as u64, false)));
                    }
                    let committing = Instant::now();
                    self.models.commit(model, &changes, last).await?;
                    tracing::debug!(
                        projection = self.projection.name(),
                        events = events.len(),
                        keys = keys.len(),
                        rows = changes.len(),
                        read_ms = read.as_secs_f64() * 1e3,
                        load_ms = load.as_secs_f64() * 1e3,
                        apply_ms = apply.as_secs_f64() * 1e3,
                        commit_ms = committing.elapsed().as_secs_f64() * 1e3,
                        "projection batch"
                    );
                    return Ok(Some((last, events.len() as u64, true)));
                }
                // Commit the events before the one that failed (from freshly loaded rows: the
                // failed apply may have changed some), so the projection stops exactly on it.
                Some((i, _)) if i > 0 => events.truncate(i),
                Some((_, err)) => return Err(err),
            }
        }
    }

    /// The rows `events` touch, sorted, each once.
    fn keys(&self, events: &[Arc<store::LoggedEvent>]) -> Vec<RowKey> {
        let mut keys: Vec<RowKey> = events
            .iter()
            .flat_map(|e| self.projection.keys(e))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// One batch into the generation being built, on its held rows (loading only rows it let go
    /// of); writes them when they outgrow their budget. A fold error leaves the held rows
    /// half-changed: the generation starts again if the runner retries (a poison event stops
    /// the runner, as it does for a live model). Returns the events applied (0 while it waits
    /// for slower builds).
    async fn step_build(&self, b: &mut Build) -> Result<u64, ProjectionError> {
        if b.restart {
            self.models.drop_model(&b.model).await?;
            *b = Build::new(
                b.model.clone(),
                b.total,
                self.build_memory,
                self.models.pace().join(),
            );
        }
        if !b.pace.turn(b.checkpoint, PACE_PATIENCE).await {
            return Ok(0);
        }
        let started = Instant::now();
        let events = self
            .models
            .feed()
            .read_after(b.checkpoint, self.rebuild_batch_size)
            .await?;
        let read = started.elapsed();
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(0);
        };
        let keys = self.keys(&events);
        let loading = Instant::now();
        let (mut rows, missing) = b.rows.take(&keys);
        if !missing.is_empty() {
            match self.models.load(&b.model, &missing).await {
                Ok(loaded) => rows.extend(loaded),
                Err(err) => {
                    // give the taken rows back unchanged: the batch is read again later
                    b.rows.put_back(RowSet::new(rows), Vec::new());
                    return Err(err);
                }
            }
        }
        let load = loading.elapsed();
        let applying = Instant::now();
        let mut set = RowSet::new(rows);
        if let Some(err) = events
            .iter()
            .find_map(|event| self.projection.apply(event, &mut set).err())
        {
            // the fold may have changed the rows it took before it failed: the held rows are
            // no longer the generation's, so it is built again from the start if it is retried
            b.restart = true;
            return Err(err);
        }
        b.rows.put_back(set, missing);
        let apply = applying.elapsed();
        b.checkpoint = last;
        b.applied += events.len() as u64;
        b.pace.advanced(last);
        let flushing = Instant::now();
        let flushed = b.rows.over_budget();
        if flushed {
            self.flush(b).await?;
        }
        tracing::debug!(
            projection = self.projection.name(),
            events = events.len(),
            keys = keys.len(),
            held = b.rows.len(),
            flushed,
            read_ms = read.as_secs_f64() * 1e3,
            load_ms = load.as_secs_f64() * 1e3,
            apply_ms = apply.as_secs_f64() * 1e3,
            commit_ms = flushing.elapsed().as_secs_f64() * 1e3,
            "projection build batch"
        );
        Ok(events.len() as u64)
    }

    /// Writes a build's changed rows and its checkpoint in one transaction.
    async fn flush(&self, b: &mut Build) -> Result<(), ProjectionError> {
        self.models
            .commit(&b.model, &b.rows.changes(), b.checkpoint)
            .await?;
        b.rows.flushed();
        Ok(())
    }

    async fn run(
        self,
        progress: watch::Sender<Position>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ProjectionError> {
        let name = self.projection.name();
        let lease_name = format!("projection:{name}");
        loop {
            let lease = tokio::select! {
                lease = self.models.store().lease(&lease_name, LEASE_RETRY) => lease,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(err) => {
                    tracing::warn!(projection = name, error = %err, "cannot take the projection lease; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE_RETRY) => continue,
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                    }
                }
            };
            tracing::info!(projection = name, "projection runner holds its lease");
            match self.lead(lease, &progress, &mut stop).await {
                Ok(Exit::Stopped) => {
                    tracing::info!(projection = name, "projection stopped");
                    return Ok(());
                }
                Ok(Exit::LeaseLost) => {
                    tracing::warn!(projection = name, "projection lease lost; back to standby");
                }
                Err(poison @ ProjectionError::Poison(_)) => return Err(poison),
                // the store failed outside a batch (status, checkpoint): let go of the lease,
                // wait, and start over; a standby elsewhere may take over meanwhile
                Err(err) => {
                    tracing::warn!(projection = name, error = %err, "projection runner failed; restarting");
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE_RETRY) => {}
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                    }
                }
            }
        }
    }

    /// Follows the log while holding the lease.
    async fn lead(
        &self,
        mut lease: Lease,
        progress: &watch::Sender<Position>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Exit, ProjectionError> {
        let name = self.projection.name();
        let mut wake = self.models.store().wakeups();
        let mut live_model = self.models.active_model(self.projection.as_ref()).await?;
        let mut live = self.models.checkpoint(&live_model).await?;
        // the live checkpoint as stored (`live` runs ahead over batches that changed nothing)
        let mut stored = live;
        progress.send_replace(live);
        let mut build = None;
        if model_version(&live_model) != Some(self.projection.version()) {
            tracing::info!(projection = name, from = %live_model, "new projection version: building it beside the live one");
            build = Some(self.start_build().await?);
        }
        self.report(&live_model, &build, 0.0, None).await?;
        let mut backoff = Duration::from_millis(50);
        let mut heartbeat = Instant::now();
        let mut applied_since = 0u64;
        let mut check_rebuild = true;
        let mut behind = false;
        loop {
            if *stop.borrow() {
                if live > stored {
                    self.models
                        .commit::<RowKey, Row>(&live_model, &[], live)
                        .await?;
                }
                return Ok(Exit::Stopped);
            }
            wake.borrow_and_update();
            // a rebuild request is looked for at start and on every heartbeat, not on every
            // wake-up (one write per runner per commit otherwise)
            if build.is_none()
                && std::mem::take(&mut check_rebuild)
                && self.models.take_rebuild_request(name).await?
            {
                tracing::info!(projection = name, "rebuild requested");
                build = Some(self.start_build().await?);
                self.report(&live_model, &build, 0.0, None).await?;
            }
            let result = self
                .advance(
                    &mut live_model,
                    &mut live,
                    &mut stored,
                    &mut build,
                    &mut behind,
                )
                .await;
            let progressed = match result {
                Ok(n) => {
                    progress.send_replace(live);
                    backoff = Duration::from_millis(50);
                    applied_since += n;
                    // a short live batch read the log to its end: wait for the next wake-up
                    // instead of reading again at once (a rebuild keeps going)
                    n > 0 && (build.is_some() || n >= self.batch_size as u64)
                }
                Err(ProjectionError::Poison(poison)) => {
                    tracing::error!(projection = name, error = %poison, "projection stopped on a poison event");
                    // the stored checkpoint names the last event before the poison
                    if live > stored {
                        self.models
                            .commit::<RowKey, Row>(&live_model, &[], live)
                            .await?;
                    }
                    let detail = json!({ "error": *poison.clone() });
                    self.report_state(&live_model, RunState::Stopped, &detail, 0.0)
                        .await?;
                    return Err(ProjectionError::Poison(poison));
                }
                Err(err) => {
                    tracing::warn!(projection = name, error = %err, retry_in = ?backoff, "projection batch failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if heartbeat.elapsed() >= HEARTBEAT {
                // writes keep coming during a rebuild: the total is what is built plus what is
                // left, recounted now and then (a count of a large log is a scan: 13 runners
                // counting every second kept PostgreSQL busy during a million-event rebuild)
                if let Some(b) = &mut build
                    && b.counted.elapsed() >= RECOUNT
                    && let Ok(rest) = self.models.store().count_after(b.checkpoint).await
                {
                    b.total = b.applied + rest;
                    b.counted = Instant::now();
                }
                let rate = applied_since as f64 / heartbeat.elapsed().as_secs_f64();
                self.report(&live_model, &build, rate, None).await?;
                heartbeat = Instant::now();
                applied_since = 0;
                if !lease.is_held().await {
                    return Ok(Exit::LeaseLost);
                }
                check_rebuild = true;
                if live > stored {
                    self.models
                        .commit::<RowKey, Row>(&live_model, &[], live)
                        .await?;
                    stored = live;
                }
            }
            if !progressed {
                tokio::select! {
                    // let the commits of concurrent commands gather into one batch
                    _ = wake.changed() => tokio::time::sleep(WAKE_COALESCE).await,
                    _ = tokio::time::sleep(self.idle_poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One live batch, then one rebuild batch (so a rebuild never stalls the live model);
    /// switches to the new generation once it has caught up. Returns the events applied.
    async fn advance(
        &self,
        live_model: &mut String,
        live: &mut Position,
        stored: &mut Position,
        build: &mut Option<Build>,
        behind: &mut bool,
    ) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        // behind the log (the last live batch was full: a server start, a long pause) the live
        // model catches up in rebuild-sized batches: fewer reads, each row written once per
        // batch instead of once per small batch
        let size = if *behind {
            self.rebuild_batch_size
        } else {
            self.batch_size
        };
        *behind = false;
        if let Some((p, n, committed)) = self
            .step_model(live_model, *live, size, Commit::WhenChanged)
            .await?
        {
            *live = p;
            if committed {
                *stored = p;
            }
            applied += n;
            *behind = n >= size as u64;
        }
        let Some(b) = build else {
            return Ok(applied);
        };
        applied += self.step_build(b).await?;
        // Caught up with the live model (which holds everything readable when its batch was
        // read): from now on the new generation is the live one. Waiting instead for a build
        // batch that finds nothing new would never end while commands keep arriving faster than
        // one per batch. Queries switch with one statement; the old rows go afterwards.
        if b.checkpoint >= *live {
            let name = self.projection.name();
            self.flush(b).await?;
            self.models.activate(name, &b.model).await?;
            let old = std::mem::replace(live_model, b.model.clone());
            *live = b.checkpoint;
            *stored = b.checkpoint;
            tracing::info!(projection = name, from = %old, to = %live_model, events = b.applied, "switched to the rebuilt model");
            *build = None;
            self.models.drop_model(&old).await?;
            self.report(live_model, build, 0.0, None).await?;
        }
        Ok(applied)
    }

    async fn start_build(&self) -> Result<Build, ProjectionError> {
        // never the live generation's name (a build in the same millisecond as the last one)
        let mut generation = chrono::Utc::now().timestamp_millis();
        let live = self.models.active_model(self.projection.as_ref()).await?;
        let mut model = format!("{}#{generation}", self.projection.model());
        while model == live {
            generation += 1;
            model = format!("{}#{generation}", self.projection.model());
        }
        // a generation left half-built by a crash is never reused: start clean
        self.models.drop_model(&model).await?;
        let total = self.models.store().count_after(Position::START).await?;
        Ok(Build::new(
            model,
            total,
            self.build_memory,
            self.models.pace().join(),
        ))
    }

    async fn report(
        &self,
        live_model: &str,
        build: &Option<Build>,
        rate: f64,
        error: Option<Value>,
    ) -> Result<(), ProjectionError> {
        let (state, detail) = match (build, error) {
            (_, Some(error)) => (RunState::Stopped, json!({ "error": error })),
            (Some(b), None) => {
                let percent = if b.total == 0 {
                    100.0
                } else {
                    (b.applied as f64 * 100.0 / b.total as f64).min(100.0)
                };
                (
                    RunState::Rebuilding,
                    json!({ "building": b.model, "percent": percent, "applied": b.applied, "total": b.total }),
                )
            }
            (None, None) => (RunState::Live, json!({})),
        };
        self.report_state(live_model, state, &detail, rate).await
    }

    async fn report_state(
        &self,
        live_model: &str,
        state: RunState,
        detail: &Value,
        rate: f64,
    ) -> Result<(), ProjectionError> {
        self.models
            .put_status(self.projection.name(), live_model, state, detail, rate)
            .await
    }
}
