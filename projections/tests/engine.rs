//! The projection engine on both backends: blue-green rebuilds under load, rebuild == live,
//! version bumps, replay as of a moment, poison events in the status, and lease takeover.
//!
//! Every case is one generic async fn taking a [`Store`]; `store::on_both_stores!` instantiates it as
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Waits are on the runner's progress or on polls of the status, bounded by
//! [`WAIT`]; never on sleeps.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aggregates::task::{TaskChanges, TaskCommand};
use chrono::Utc;
use projections::replay::replay_user;
use projections::status::{RunState, StatusRow};
use projections::task_list::{TaskList, TaskStats, TaskView};
use projections::{
    Projection, ProjectionError, ProjectionRunner, ReadModels, Row, RowKey, RowSet, RunnerHandle,
};
use sqlx::Row as _;
use store::{LoggedEvent, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for the runner or a status change.
const WAIT: Duration = Duration::from_secs(30);
/// Concurrent readers, and rebuilds, of the blue-green test.
const READERS: usize = 6;
const ROUNDS: usize = 6;
/// Tasks created before the blue-green test's runner starts.
const SEED: usize = 150;
/// How often a status poll looks again.
const POLL: Duration = Duration::from_millis(10);

store::on_both_stores! {
    blue_green_switch_under_concurrent_writes => sqlite_blue_green_switch_under_concurrent_writes, postgres_blue_green_switch_under_concurrent_writes;
    rebuild_equals_live => sqlite_rebuild_equals_live, postgres_rebuild_equals_live;
    version_bump_builds_beside_and_switches => sqlite_version_bump_builds_beside_and_switches, postgres_version_bump_builds_beside_and_switches;
    a_build_failing_half_way_starts_again => sqlite_a_build_failing_half_way_starts_again, postgres_a_build_failing_half_way_starts_again;
    replay_as_of => sqlite_replay_as_of, postgres_replay_as_of;
    poison_shows_in_status_and_stops_only_its_projection => sqlite_poison_shows_in_status_and_stops_only_its_projection, postgres_poison_shows_in_status_and_stops_only_its_projection;
    lease_takeover => sqlite_lease_takeover, postgres_lease_takeover;
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn rename(title: String) -> TaskCommand {
    TaskCommand::Update(TaskChanges {
        title: Some(title),
        ..TaskChanges::default()
    })
}

/// One stored row, as the digest compares it: `(user, row_id, grp, sort_key, doc as JSON text)`.
type DigestRow = (Uuid, String, String, String, String);

impl Env {
    async fn active(&self) -> String {
        self.models
            .active_model(&TaskList)
            .await
            .expect("active model")
    }

    async fn status(&self, projection: &str) -> StatusRow {
        self.models
            .status(projection)
            .await
            .expect("status")
            .unwrap_or_else(|| panic!("no status row for {projection}"))
    }

    /// Every listed task of `user` (completed included), in one page.
    async fn list(&self, user: Uuid) -> Vec<TaskView> {
        let (tasks, next) = TaskList::list(&self.models, user, true, None, 100_000)
            .await
            .expect("list");
        assert!(next.is_none(), "one page holds every task");
        tasks
    }

    /// Every row stored under `model`, of any user, sorted.
    async fn rows_of(&self, model: &str) -> Vec<DigestRow> {
        let sql =
            "SELECT user_id, row_id, grp, sort_key, doc FROM read_model_rows WHERE model = $1";
        let mut rows: Vec<DigestRow> = match &self.store {
            Store::Postgres(s) => sqlx::query(sql)
                .bind(model)
                .fetch_all(s.pool())
                .await
                .expect("rows of a model")
                .iter()
                .map(|r| {
                    let doc: serde_json::Value = r.get("doc");
                    (
                        r.get::<Uuid, _>("user_id"),
                        r.get("row_id"),
                        r.get("grp"),
                        r.get("sort_key"),
                        doc.to_string(),
                    )
                })
                .collect(),
            Store::Sqlite(s) => sqlx::query(sql)
                .bind(model)
                .fetch_all(s.reader())
                .await
                .expect("rows of a model")
                .iter()
                .map(|r| {
                    let user: String = r.get("user_id");
                    let doc: String = r.get("doc");
                    let doc: serde_json::Value = serde_json::from_str(&doc).expect("JSON doc");
                    (
                        Uuid::parse_str(&user).expect("user uuid"),
                        r.get("row_id"),
                        r.get("grp"),
                        r.get("sort_key"),
                        doc.to_string(),
                    )
                })
                .collect(),
        };
        rows.sort();
        rows
    }

    /// Polls the status of `projection` (bounded) until `done` holds; returns that status.
    async fn status_until(
        &self,
        projection: &str,
        what: &str,
        done: impl Fn(&StatusRow) -> bool,
    ) -> StatusRow {
        let mut poll = tokio::time::interval(POLL);
        let mut last = None;
        let found = timeout(WAIT, async {
            loop {
                poll.tick().await;
                if let Some(status) = self.models.status(projection).await.expect("status") {
                    if done(&status) {
                        return status;
                    }
                    last = Some(status);
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("{projection}: not {what} within {WAIT:?}; last {last:?}"))
    }

    /// Requests a rebuild of `task_list`, waits (bounded) until it is live on a generation other
    /// than `from`, checks that generation's checkpoint is `head`, and returns its name.
    async fn rebuild_task_list(&self, from: &str, head: Position) -> String {
        self.models
            .request_rebuild(&TaskList)
            .await
            .expect("rebuild");
        let status = self
            .status_until("task_list", "switched", |s| {
                s.active_model != from && s.state == RunState::Live
            })
            .await;
        assert_eq!(
            self.models
                .checkpoint(&status.active_model)
                .await
                .expect("checkpoint"),
            head,
            "the rebuilt model is at the head"
        );
        status.active_model
    }

    /// Polls (bounded) until `model` holds no row and no checkpoint.
    async fn until_dropped(&self, model: &str) {
        let mut poll = tokio::time::interval(POLL);
        let dropped = timeout(WAIT, async {
            loop {
                poll.tick().await;
                let checkpoint = self.models.checkpoint(model).await.expect("checkpoint");
                if checkpoint == Position::START && self.rows_of(model).await.is_empty() {
                    return;
                }
            }
        })
        .await;
        dropped.unwrap_or_else(|_| panic!("{model} still has rows after {WAIT:?}"));
    }
}

/// Waits (bounded) until `handle`'s runner has applied `target`.
async fn caught_up(handle: &mut RunnerHandle, target: Position) {
    let reached = timeout(WAIT, handle.progress.wait_for(|p| *p >= target))
        .await
        .unwrap_or_else(|_| panic!("runner did not reach {target} within {WAIT:?}"))
        .map(|p| *p);
    reached.unwrap_or_else(|_| panic!("runner ended before reaching {target}"));
}

async fn stop(handle: RunnerHandle) {
    handle.stop().await.expect("runner stops cleanly");
}

/// Re-raises the panic of a spawned task (keeping its message), or returns its value.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("task failed: {err}"),
    }
}

/// A small seeded generator (SplitMix64), so a failing workload can be replayed exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `task_list` reporting another version: the same fold, built as a new model.
#[derive(Default)]
struct TaskListV2 {
    /// While false, every apply fails with a transient (retried) error: holds a build back.
    open: Arc<AtomicBool>,
    /// The fold fails once on the event at this position, after it has changed the rows (a
    /// fold error half-way through a batch); `failed` records that it did.
    fail_once_at: Option<Position>,
    failed: AtomicBool,
}

impl Projection for TaskListV2 {
    fn name(&self) -> &'static str {
        TaskList.name()
    }

    fn version(&self) -> u32 {
        2
    }

    fn reads(&self) -> &'static [&'static str] {
        TaskList.reads()
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        TaskList.keys(event)
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(ProjectionError::Corrupt("held back by the test".into()));
        }
        TaskList.apply(event, rows)?;
        if Some(event.position) == self.fail_once_at && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(ProjectionError::Corrupt("failing once, by the test".into()));
        }
        Ok(())
    }
}

/// A second projection, over another aggregate type: events per user of `habit` aggregates.
struct HabitCount;

const HABIT_COUNT_ROW: &str = "count";

impl Projection for HabitCount {
    fn name(&self) -> &'static str {
        "habit_count"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &["habit"]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        match (event.aggregate_type.as_str(), event.user_id) {
            ("habit", Some(user)) => vec![RowKey::new(user, HABIT_COUNT_ROW)],
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        if event.aggregate_type != "habit" {
            return Ok(());
        }
        let Some(user) = event.user_id else {
            return Err(ProjectionError::poison(
                &self.model(),
                event,
                "habit event without a user",
            ));
        };
        let key = RowKey::new(user, HABIT_COUNT_ROW);
        let count = rows
            .get(&key)
            .map(|r| r.doc.value()["events"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        rows.put(Row::new(
            key,
            "count",
            "",
            &serde_json::json!({ "events": count + 1 }),
        )?);
        Ok(())
    }
}

async fn habit_count(models: &ReadModels, user: Uuid) -> u64 {
    let model = models.active_model(&HabitCount).await.expect("active");
    models
        .get(&model, user, HABIT_COUNT_ROW)
        .await
        .expect("habit row")
        .map_or(0, |r| r.doc.value()["events"].as_u64().expect("events"))
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Rebuilds switch the active model while a writer keeps executing commands and a reader keeps
/// querying: every answer holds at least every task whose create the runner had applied before
/// the query started (never an empty or half-built model), and `created_total` never goes down.
async fn blue_green_switch_under_concurrent_writes(store: Store) {
    let env = Arc::new(Env::new(store));
    let user = Uuid::now_v7();

    // a model big enough to take several rebuild batches
    let mut seeded = Vec::new();
    for i in 0..SEED {
        seeded.push(
            env.create(user, new_task(&format!("seed {i}"), None, (i % 5) as u32))
                .await,
        );
    }
    let last_seed = seeded.last().expect("seeded").1;
    let mut handle = env.runner().batch_size(16).rebuild_batch_size(48).spawn();
    caught_up(&mut handle, last_seed).await;
    assert_eq!(env.list(user).await.len(), SEED);

    // (task, position of its create) of every acknowledged create
    let acked: Arc<Mutex<Vec<(Uuid, Position)>>> = Arc::new(Mutex::new(seeded));
    let done = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));

    let writer = tokio::spawn({
        let (env, acked, done, writes) = (env.clone(), acked.clone(), done.clone(), writes.clone());
        async move {
            let mut open: Vec<Uuid> = acked.lock().unwrap().iter().map(|(id, _)| *id).collect();
            let mut all = open.clone();
            let (mut completions, mut last) = (0u64, Position::START);
            let mut i = 0usize;
            while !done.load(Ordering::SeqCst) {
                i += 1;
                last = match i % 4 {
                    0 if !open.is_empty() => {
                        let task = open.swap_remove(i % open.len());
                        completions += 1;
                        env.exec(user, task, TaskCommand::Complete).await
                    }
                    1 => {
                        let task = all[i % all.len()];
                        env.exec(user, task, rename(format!("renamed {i}"))).await
                    }
                    _ => {
                        let (task, position) =
                            env.create(user, new_task(&format!("w {i}"), None, 1)).await;
                        acked.lock().unwrap().push((task, position));
                        open.push(task);
                        all.push(task);
                        position
                    }
                };
                writes.fetch_add(1, Ordering::SeqCst);
            }
            (last, open.len() as u64, completions)
        }
    });

    // an operator watching the status: the active model's checkpoint never goes back
    let observer = tokio::spawn({
        let (env, done) = (env.clone(), done.clone());
        async move {
            let mut seen = Position::START;
            let mut reports = 0u64;
            while !done.load(Ordering::SeqCst) {
                let report = env.models.report(&TaskList).await.expect("report");
                assert!(
                    report.checkpoint >= seen,
                    "the reported checkpoint went back from {seen} to {} ({})",
                    report.checkpoint,
                    report.active_model
                );
                seen = report.checkpoint;
                reports += 1;
            }
            reports
        }
    });

    // several readers: their queries interleave with the runner's switch at many points
    let readers: Vec<_> = (0..READERS).map(|_| tokio::spawn({
        let (env, acked, done, queries) =
            (env.clone(), acked.clone(), done.clone(), queries.clone());
        let progress = handle.progress.clone();
        async move {
            let mut created_before = 0u64;
            while !done.load(Ordering::SeqCst) {
                // what the runner had applied before this query started
                let applied = *progress.borrow();
                let expected: Vec<Uuid> = acked
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, p)| *p <= applied)
                    .map(|(id, _)| *id)
                    .collect();
                let listed: HashSet<Uuid> = ids(&env.list(user).await).into_iter().collect();
                let missing: Vec<&Uuid> =
                    expected.iter().filter(|id| !listed.contains(id)).collect();
                assert!(
                    missing.is_empty(),
                    "a list answered {} tasks; {} applied before it are missing (e.g. {:?})",
                    listed.len(),
                    missing.len(),
                    missing.first()
                );
                let counters = env.stats(user).await;
                assert!(
                    counters.created_total >= expected.len() as u64,
                    "created_total {} < {} creates applied before the query",
                    counters.created_total,
                    expected.len()
                );
                assert!(
                    counters.created_total >= created_before,
                    "created_total went down: {created_before} -> {}",
                    counters.created_total
                );
                created_before = counters.created_total;
                queries.fetch_add(1, Ordering::SeqCst);
            }
        }
    })).collect();

    let mut models = vec![env.active().await];
    assert_eq!(models[0], "task_list@1", "the first generation");
    for round in 0..ROUNDS {
        let before = models.last().unwrap().clone();
        let queries_before = queries.load(Ordering::SeqCst);
        let writes_before = writes.load(Ordering::SeqCst);
        env.models
            .request_rebuild(&TaskList)
            .await
            .expect("request a rebuild");
        let status = env
            .status_until("task_list", "switched", |s| {
                s.active_model != before && !s.rebuild_requested
            })
            .await;
        let new = status.active_model;
        assert!(
            new.starts_with("task_list@1#"),
            "round {round}: a new generation of version 1: {new}"
        );
        assert!(!models.contains(&new), "round {round}: {new} is new");
        env.until_dropped(&before).await;
        assert!(
            !env.rows_of(&new).await.is_empty(),
            "round {round}: the new model has rows"
        );
        // the reader kept answering through the switch
        let seen = queries.load(Ordering::SeqCst);
        let more = timeout(WAIT, async {
            let mut poll = tokio::time::interval(POLL);
            while queries.load(Ordering::SeqCst) <= seen.max(queries_before) {
                poll.tick().await;
            }
        })
        .await;
        assert!(more.is_ok(), "round {round}: the readers stalled");
        assert!(
            writes.load(Ordering::SeqCst) > writes_before,
            "round {round}: commands kept flowing during the rebuild"
        );
        models.push(new);
        if writer.is_finished() || observer.is_finished() || readers.iter().any(|r| r.is_finished())
        {
            break; // one failed: its panic is raised below
        }
    }

    done.store(true, Ordering::SeqCst);
    let (last, open, completions) = join(writer).await;
    for reader in readers {
        join(reader).await;
    }
    assert!(join(observer).await > 0, "the status was watched");
    assert_eq!(models.len(), ROUNDS + 1, "every round switched");
    assert!(queries.load(Ordering::SeqCst) > 0);
    caught_up(&mut handle, last).await;

    let acked = acked.lock().unwrap().clone();
    let listed = env.list(user).await;
    let mut listed_ids = ids(&listed);
    listed_ids.sort();
    let mut created: Vec<Uuid> = acked.iter().map(|(id, _)| *id).collect();
    created.sort();
    assert_eq!(listed_ids, created, "exactly every created task, once");
    let total = acked.len() as u64;
    assert_eq!(
        env.stats(user).await,
        stats(open, total - open, total, completions),
        "counters after {} rebuilds",
        models.len() - 1
    );
    assert_eq!(
        env.models.status("task_list").await.unwrap().unwrap().state,
        RunState::Live
    );
    for old in &models[..models.len() - 1] {
        assert!(env.rows_of(old).await.is_empty(), "{old} was dropped");
    }
    stop(handle).await;
}

/// The row-by-row digest of a rebuilt model equals the one kept live, for a random mixed
/// workload over several users; both equal an in-memory replay of each user.
async fn rebuild_equals_live(store: Store) {
    let env = Env::new(store);
    let users: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let mut handle = env.runner().batch_size(16).rebuild_batch_size(7).spawn();

    #[derive(Clone, Copy)]
    struct Known {
        user: Uuid,
        id: Uuid,
        completed: bool,
    }
    let mut rng = Rng(0x5EED_2025);
    let mut live: Vec<Known> = Vec::new();
    let mut last = Position::START;
    let day = |d: usize| base() + chrono::Duration::days(d as i64);
    for n in 0..240 {
        let op = rng.below(100);
        if live.is_empty() || op < 30 {
            let user = users[rng.below(users.len())];
            let due = match rng.below(3) {
                0 => None,
                _ => Some(day(rng.below(20))),
            };
            let mut new = new_task(&format!("task {n}"), due, rng.below(5) as u32);
            new.tags = (0..rng.below(3)).map(|t| format!("tag{t}")).collect();
            let (id, p) = env.create(user, new).await;
            live.push(Known {
                user,
                id,
                completed: false,
            });
            last = p;
            continue;
        }
        let i = rng.below(live.len());
        let task = live[i];
        last = match op {
            30..=59 => {
                let changes = TaskChanges {
                    title: Some(format!("task {n} renamed")),
                    priority: (rng.below(2) == 0).then(|| rng.below(5) as u32),
                    due: match rng.below(3) {
                        0 => Some(None),
                        1 => Some(Some(day(rng.below(20)))),
                        _ => None,
                    },
                    ..TaskChanges::default()
                };
                env.exec(task.user, task.id, TaskCommand::Update(changes))
                    .await
            }
            60..=79 if !task.completed => {
                live[i].completed = true;
                env.exec(task.user, task.id, TaskCommand::Complete).await
            }
            60..=79 => {
                live[i].completed = false;
                env.exec(task.user, task.id, TaskCommand::Reopen).await
            }
            _ => {
                live.swap_remove(i);
                env.exec(task.user, task.id, TaskCommand::Delete).await
            }
        };
    }
    caught_up(&mut handle, last).await;
    store::testing::wait_for_head(&env.store, last).await;

    let live_model = env.active().await;
    let live_digest = env.rows_of(&live_model).await;
    let tasks = live_digest.iter().filter(|r| r.2 != "stats").count();
    assert_eq!(tasks, live.len(), "one row per live task");
    assert_eq!(
        live_digest.len(),
        tasks + users.len(),
        "plus one stats row per user"
    );

    // the runner's batched fold equals an in-memory fold of each user's history
    let all: Vec<Arc<dyn Projection>> = vec![Arc::new(TaskList)];
    let mut replayed: Vec<DigestRow> = Vec::new();
    for user in &users {
        let replay = replay_user(&env.store, &all, *user, None, |_| {})
            .await
            .expect("replay");
        replayed.extend(replay.models["task_list"].rows().into_iter().map(|r| {
            (
                r.key.user_id,
                r.key.row_id.clone(),
                r.grp.clone(),
                r.sort_key.clone(),
                r.doc.value().to_string(),
            )
        }));
    }
    replayed.sort();
    assert_eq!(replayed, live_digest, "in-memory replay == live model");

    let rebuilt = env.rebuild_task_list(&live_model, last).await;
    assert!(rebuilt.starts_with("task_list@1#"), "{rebuilt}");
    let rebuilt_digest = env.rows_of(&rebuilt).await;
    assert_eq!(rebuilt_digest.len(), live_digest.len(), "row count");
    for (i, (a, b)) in live_digest.iter().zip(&rebuilt_digest).enumerate() {
        assert_eq!(a, b, "row {i} differs");
    }
    assert_eq!(rebuilt_digest, live_digest);
    env.until_dropped(&live_model).await;
    stop(handle).await;

    // a build whose rows outgrow a tiny memory budget writes and lets go of them as it goes
    // (and loads them back when a later batch touches them): the same rows again
    let mut handle = env
        .runner()
        .batch_size(16)
        .rebuild_batch_size(7)
        .build_memory(4_096)
        .spawn();
    caught_up(&mut handle, last).await;
    let again = env.rebuild_task_list(&rebuilt, last).await;
    assert_eq!(env.rows_of(&again).await, live_digest);
    env.until_dropped(&rebuilt).await;
    stop(handle).await;
}

/// A runner whose projection reports version 2 builds `task_list@2#…` beside `task_list@1`
/// (which keeps answering), then switches; queries answer the same data, and it keeps following.
async fn version_bump_builds_beside_and_switches(store: Store) {
    let env = Env::new(store);
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut v1 = env.runner().spawn();
    let (a, _) = env.create(alice, new_task("a", Some(base()), 2)).await;
    let (b, _) = env.create(alice, new_task("b", None, 0)).await;
    let (c, _) = env.create(bob, new_task("c", None, 4)).await;
    env.exec(alice, b, TaskCommand::Complete).await;
    env.exec(alice, a, rename("a!".into())).await;
    let last = env.exec(bob, c, TaskCommand::Delete).await;
    caught_up(&mut v1, last).await;
    stop(v1).await;
    assert_eq!(env.active().await, "task_list@1");
    let before = (
        env.list(alice).await,
        env.list(bob).await,
        env.stats(alice).await,
        env.stats(bob).await,
    );
    assert_eq!(ids(&before.0), vec![a, b]);
    assert!(before.1.is_empty());
    let v1_rows = env.rows_of("task_list@1").await;

    // the build is held back: the new generation is being built beside the live one
    let gate = Arc::new(AtomicBool::new(false));
    let v2: Arc<dyn Projection> = Arc::new(TaskListV2 {
        open: gate.clone(),
        ..TaskListV2::default()
    });
    let mut handle = ProjectionRunner::new(v2.clone(), env.models.clone())
        .rebuild_batch_size(2)
        .spawn();
    let building = env
        .status_until("task_list", "rebuilding", |s| {
            s.state == RunState::Rebuilding
        })
        .await;
    assert_eq!(
        building.active_model, "task_list@1",
        "queries still read v1"
    );
    let target = building.detail["building"]
        .as_str()
        .expect("the model being built")
        .to_string();
    assert!(target.starts_with("task_list@2#"), "{target}");
    assert_eq!(env.active().await, "task_list@1");
    assert_eq!(
        (
            env.list(alice).await,
            env.list(bob).await,
            env.stats(alice).await,
            env.stats(bob).await,
        ),
        before,
        "v1 answers while v2 is built"
    );
    assert_eq!(env.rows_of("task_list@1").await, v1_rows);
    let report = env.models.report(v2.as_ref()).await.expect("report");
    assert_eq!(report.version, 2);
    assert_eq!(report.state, RunState::Rebuilding);
    assert_eq!(report.active_model, "task_list@1");

    gate.store(true, Ordering::SeqCst);
    let switched = env
        .status_until("task_list", "switched to v2", |s| {
            s.active_model != "task_list@1"
        })
        .await;
    assert_eq!(switched.active_model, target, "the model that was built");
    assert_eq!(env.active().await, target);
    assert_eq!(
        (
            env.list(alice).await,
            env.list(bob).await,
            env.stats(alice).await,
            env.stats(bob).await,
        ),
        before,
        "v2 answers the same"
    );
    assert_eq!(env.rows_of(&target).await, v1_rows, "row for row the same");
    env.until_dropped("task_list@1").await;

    // it keeps following the log, and a restart of v2 does not build again
    let (d, p) = env.create(alice, new_task("d", None, 1)).await;
    caught_up(&mut handle, p).await;
    assert_eq!(ids(&env.list(alice).await), vec![a, d, b]);
    assert_eq!(env.stats(alice).await, stats(2, 1, 3, 1));
    stop(handle).await;
    let mut again = ProjectionRunner::new(v2.clone(), env.models.clone()).spawn();
    caught_up(&mut again, p).await;
    let status = env.status("task_list").await;
    assert_eq!(status.state, RunState::Live);
    assert_eq!(
        status.active_model, target,
        "no second build for the same version"
    );
    stop(again).await;
    assert_eq!(env.stats(alice).await, stats(2, 1, 3, 1));
}

/// A build whose fold fails in the middle of a batch, after changing rows it holds, starts its
/// generation again when it is retried: the rows it builds equal the live ones (applying the
/// rest of the batch to the half-changed rows would count the failed event twice).
async fn a_build_failing_half_way_starts_again(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let mut v1 = env.runner().spawn();
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    for n in 0..12 {
        let (id, p) = env.create(user, new_task(&format!("t{n}"), None, 1)).await;
        ids.push(id);
        positions.push(p);
    }
    for id in &ids[..6] {
        positions.push(env.exec(user, *id, TaskCommand::Complete).await);
    }
    let last = *positions.last().expect("events");
    caught_up(&mut v1, last).await;
    stop(v1).await;
    let v1_rows = env.rows_of("task_list@1").await;

    // fails on a completion in the middle of the build's third batch of 5
    let v2 = Arc::new(TaskListV2 {
        open: Arc::new(AtomicBool::new(true)),
        fail_once_at: Some(positions[13]),
        ..TaskListV2::default()
    });
    let mut handle = ProjectionRunner::new(v2.clone(), env.models.clone())
        .rebuild_batch_size(5)
        .spawn();
    let switched = env
        .status_until("task_list", "switched to v2", |s| {
            s.active_model.starts_with("task_list@2#")
        })
        .await;
    assert!(v2.failed.load(Ordering::SeqCst), "the fold failed once");
    caught_up(&mut handle, last).await;
    assert_eq!(env.rows_of(&switched.active_model).await, v1_rows);
    assert_eq!(env.stats(user).await, stats(6, 6, 12, 6));
    stop(handle).await;
}

/// `replay_user` up to T folds only what was recorded up to T; without T, everything; never
/// another user's events; and it leaves the live model as it was.
async fn replay_as_of(store: Store) {
    let env = Env::new(store);
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let mut handle = env.runner().spawn();

    let (a, _) = env.create(user, new_task("a", None, 1)).await;
    let (b, _) = env.create(user, new_task("b", Some(base()), 3)).await;
    env.exec(user, b, TaskCommand::Complete).await;
    env.exec(user, a, rename("a as of T".into())).await;
    let (x, _) = env.create(other, new_task("other's x", None, 0)).await;
    let t = Utc::now();
    env.exec(user, a, TaskCommand::Complete).await;
    env.exec(user, a, rename("a after T".into())).await;
    env.exec(user, b, TaskCommand::Delete).await;
    let (c, _) = env.create(user, new_task("c", None, 0)).await;
    let (y, _) = env.create(other, new_task("other's y", None, 0)).await;
    let last = env.exec(other, x, TaskCommand::Complete).await;
    caught_up(&mut handle, last).await;
    store::testing::wait_for_head(&env.store, last).await;
    stop(handle).await;

    let live_model = env.active().await;
    let live_rows = env.rows_of(&live_model).await;
    let live_checkpoint = env
        .models
        .checkpoint(&live_model)
        .await
        .expect("checkpoint");
    assert_eq!(live_checkpoint, last);

    let all: Vec<Arc<dyn Projection>> = vec![Arc::new(TaskList)];
    let past = replay_user(&env.store, &all, user, Some(t), |_| {})
        .await
        .expect("replay as of T");
    assert_eq!(past.user_id, user);
    assert_eq!(past.until, Some(t));
    assert_eq!(past.events, 4, "4 events of the user up to T");
    let rows = &past.models["task_list"];
    assert!(rows.rows().iter().all(|r| r.key.user_id == user));
    let a_then = TaskList::get(rows, user, a)
        .await
        .unwrap()
        .expect("a as of T");
    assert_eq!(a_then.title, "a as of T");
    assert!(!a_then.completed, "a was completed after T");
    let b_then = TaskList::get(rows, user, b)
        .await
        .unwrap()
        .expect("b as of T");
    assert!(
        b_then.completed,
        "b was completed (and not yet deleted) at T"
    );
    assert_eq!(
        TaskList::get(rows, user, c).await.unwrap(),
        None,
        "c came after T"
    );
    let (listed, _) = TaskList::list(rows, user, true, None, 100).await.unwrap();
    assert_eq!(ids(&listed), vec![b, a]);
    assert_eq!(
        TaskList::stats(rows, user).await.unwrap(),
        stats(1, 1, 2, 1)
    );
    for foreign in [x, y] {
        assert_eq!(TaskList::get(rows, other, foreign).await.unwrap(), None);
    }
    assert_eq!(
        TaskList::stats(rows, other).await.unwrap(),
        TaskStats::default()
    );

    let now = replay_user(&env.store, &all, user, None, |_| {})
        .await
        .expect("replay of everything");
    assert_eq!(now.events, 8);
    let rows = &now.models["task_list"];
    assert!(rows.rows().iter().all(|r| r.key.user_id == user));
    let a_now = TaskList::get(rows, user, a).await.unwrap().expect("a");
    assert_eq!(a_now.title, "a after T");
    assert!(a_now.completed);
    assert_eq!(
        TaskList::get(rows, user, b).await.unwrap(),
        None,
        "b deleted"
    );
    let (listed, _) = TaskList::list(rows, user, true, None, 100).await.unwrap();
    assert_eq!(ids(&listed), vec![a, c]);
    assert_eq!(
        TaskList::stats(rows, user).await.unwrap(),
        stats(1, 1, 3, 2)
    );
    // the full replay is the live model's rows of this user
    let live_of_user: Vec<DigestRow> = live_rows.iter().filter(|r| r.0 == user).cloned().collect();
    let mut replayed: Vec<DigestRow> = rows
        .rows()
        .into_iter()
        .map(|r| {
            (
                r.key.user_id,
                r.key.row_id.clone(),
                r.grp.clone(),
                r.sort_key.clone(),
                r.doc.value().to_string(),
            )
        })
        .collect();
    replayed.sort();
    assert_eq!(replayed, live_of_user);

    let progress_calls = Arc::new(AtomicU64::new(0));
    let other_now = replay_user(&env.store, &all, other, None, {
        let calls = progress_calls.clone();
        move |n| {
            calls.store(n, Ordering::SeqCst);
        }
    })
    .await
    .expect("the other user's replay");
    assert_eq!(other_now.events, 3);
    assert_eq!(
        progress_calls.load(Ordering::SeqCst),
        3,
        "progress reports the count"
    );
    let rows = &other_now.models["task_list"];
    assert!(rows.rows().iter().all(|r| r.key.user_id == other));
    assert_eq!(TaskList::get(rows, other, a).await.unwrap(), None);
    assert_eq!(
        TaskList::stats(rows, other).await.unwrap(),
        stats(1, 1, 2, 1)
    );

    // the live model was not touched
    assert_eq!(env.active().await, live_model);
    assert_eq!(env.rows_of(&live_model).await, live_rows);
    assert_eq!(
        env.models
            .checkpoint(&live_model)
            .await
            .expect("checkpoint"),
        live_checkpoint
    );
}

/// A poison task event stops `task_list` and shows in its report (state, failing event); a
/// projection over another aggregate type keeps running.
async fn poison_shows_in_status_and_stops_only_its_projection(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let mut tasks = env.runner().spawn();
    let mut habits = ProjectionRunner::new(Arc::new(HabitCount), env.models.clone()).spawn();

    let (good, before) = env
        .create(user, new_task("before the poison", None, 0))
        .await;
    let (_, habit_before) = env
        .append_raw(Some(user), "habit", "HabitCreated", serde_json::json!({}))
        .await;
    let (bogus, poison) = env
        .append_raw(
            Some(user),
            "task",
            "Bogus",
            serde_json::json!({ "Bogus": {} }),
        )
        .await;
    let (_, habit_after) = env
        .append_raw(Some(user), "habit", "HabitChecked", serde_json::json!({}))
        .await;
    let (after_task, after) = env
        .create(user, new_task("after the poison", None, 0))
        .await;
    assert!(before < habit_before && habit_before < poison && poison < after);
    store::testing::wait_for_head(&env.store, after).await;

    // the task runner ends on the poison
    let ended = timeout(WAIT, tasks.progress.wait_for(|p| *p >= after))
        .await
        .unwrap_or_else(|_| panic!("task runner neither failed nor passed in {WAIT:?}"))
        .map(|p| *p);
    assert!(
        ended.is_err(),
        "the runner must end on the poison: {ended:?}"
    );
    let err = tasks.stop().await.expect_err("stopped by the poison");
    assert!(
        matches!(&err, ProjectionError::Poison(p) if p.position == poison),
        "{err:?}"
    );

    let report = env.models.report(&TaskList).await.expect("report");
    assert_eq!(report.state, RunState::Stopped);
    assert_eq!(
        report.checkpoint, habit_before,
        "stopped just before the poison (having passed over the habit event)"
    );
    assert_eq!(report.head, after);
    assert_eq!(
        report.lag_events, 3,
        "the poison and the two events after it"
    );
    assert!(report.lag_seconds >= 0.0);
    let error = report.error.expect("the failing event is reported");
    assert_eq!(
        error["position"],
        serde_json::to_value(poison).unwrap(),
        "{error}"
    );
    assert_eq!(error["event_type"], "Bogus", "{error}");
    assert_eq!(error["aggregate_type"], "task", "{error}");
    assert_eq!(error["aggregate_id"], bogus.as_str(), "{error}");
    assert!(
        error["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{error}"
    );
    assert!(
        env.models
            .get(&report.active_model, user, &good.to_string())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        TaskList::get(&env.models, user, after_task).await.unwrap(),
        None,
        "nothing after the poison"
    );

    // the habit projection went past the poison and keeps going
    caught_up(&mut habits, habit_after).await;
    assert_eq!(habit_count(&env.models, user).await, 2);
    let (_, more) = env
        .append_raw(Some(user), "habit", "HabitChecked", serde_json::json!({}))
        .await;
    caught_up(&mut habits, more).await;
    assert!(!habits.is_finished());
    assert_eq!(habit_count(&env.models, user).await, 3);
    let habit_report = env.models.report(&HabitCount).await.expect("report");
    assert_eq!(habit_report.state, RunState::Live);
    assert_eq!(habit_report.error, None);
    assert_eq!(habit_report.checkpoint, more);
    assert_eq!(habit_report.lag_events, 0);
    assert_eq!(
        env.models.report(&TaskList).await.unwrap().state,
        RunState::Stopped,
        "still stopped"
    );
    stop(habits).await;
}

/// Two runners of one projection: only the lease holder applies; when it stops, the standby
/// takes over from the checkpoint. Counters are exact throughout.
async fn lease_takeover(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let mut first = env.runner().spawn();
    let (a, p) = env.create(user, new_task("a", None, 0)).await;
    caught_up(&mut first, p).await; // the first runner leads

    let second = env.runner().spawn();
    let (b, _) = env.create(user, new_task("b", None, 1)).await;
    env.exec(user, a, TaskCommand::Complete).await;
    let (c, p) = env.create(user, new_task("c", None, 2)).await;
    caught_up(&mut first, p).await;
    assert_eq!(
        *second.progress.borrow(),
        Position::START,
        "the standby applies nothing while the first runs"
    );
    assert_eq!(env.stats(user).await, stats(2, 1, 3, 1));
    assert_eq!(
        ids(&env.list(user).await),
        vec![c, b, a],
        "priority 2, 1, 0"
    );

    stop(first).await;
    let checkpoint = env
        .models
        .checkpoint(&TaskList::model_name())
        .await
        .expect("checkpoint");
    assert_eq!(checkpoint, p);
    let mut second = second;
    let took_over = timeout(WAIT, second.progress.wait_for(|p| *p != Position::START))
        .await
        .expect("the standby takes over in time")
        .map(|p| *p)
        .expect("the standby runs");
    assert_eq!(took_over, checkpoint, "it continues from the checkpoint");
    assert_eq!(
        env.stats(user).await,
        stats(2, 1, 3, 1),
        "nothing applied twice"
    );

    env.exec(user, a, TaskCommand::Reopen).await;
    env.exec(user, b, TaskCommand::Complete).await;
    let (d, p) = env.create(user, new_task("d", None, 3)).await;
    caught_up(&mut second, p).await;
    assert_eq!(env.stats(user).await, stats(3, 1, 4, 2));
    let mut listed = ids(&env.list(user).await);
    listed.sort();
    let mut expected = vec![a, b, c, d];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        env.models.report(&TaskList).await.unwrap().lag_events,
        0,
        "the new holder is at the head"
    );
    stop(second).await;
}
