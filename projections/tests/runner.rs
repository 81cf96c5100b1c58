//! The projection runner and the `task_list` read model, end to end on both backends: commands go
//! through `AggregateStore::execute`, the runner folds the log into rows, queries read them back.
//!
//! Every case is one generic async fn taking a [`Store`]; `store::on_both_stores!` instantiates it as
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Tests wait on the runner's progress or on [`Freshness`], bounded, never on sleeps.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;

use aggregates::task::{TaskChanges, TaskCommand};
use chrono::{DateTime, TimeZone, Utc};
use projections::task_list::{TaskList, TaskStats, TaskView};
use projections::{Freshness, PoisonEvent, Projection, ProjectionError, RunnerHandle};
use store::{Journal, Position, Store};
use tokio::time::{Instant, timeout};
use uuid::Uuid;

/// The longest any test waits for the runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    list_ordering_and_pagination => sqlite_list_ordering_and_pagination, postgres_list_ordering_and_pagination;
    updates_and_stats => sqlite_updates_and_stats, postgres_updates_and_stats;
    users_are_isolated => sqlite_users_are_isolated, postgres_users_are_isolated;
    restart_resumes_without_double_counting => sqlite_restart_resumes_without_double_counting, postgres_restart_resumes_without_double_counting;
    step_commits_rows_with_checkpoint => sqlite_step_commits_rows_with_checkpoint, postgres_step_commits_rows_with_checkpoint;
    poison_event_stops_the_runner => sqlite_poison_event_stops_the_runner, postgres_poison_event_stops_the_runner;
    other_aggregates_are_ignored => sqlite_other_aggregates_are_ignored, postgres_other_aggregates_are_ignored;
    freshness_waits_bounded => sqlite_freshness_waits_bounded, postgres_freshness_waits_bounded;
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// `base()` plus `days` days.
fn day(days: i64) -> DateTime<Utc> {
    base() + chrono::Duration::days(days)
}

impl Env {
    /// Waits (bounded) until the log reader can see `target`. On PostgreSQL an event becomes
    /// readable only once every older transaction of the cluster has ended (other tests' too), so
    /// a freshly committed event may not be readable yet; the runner polls for that, and so does
    /// a test stepping by hand.
    async fn visible(&self, target: Position) {
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        let seen = timeout(WAIT, async {
            loop {
                poll.tick().await;
                if self.head().await >= target {
                    return;
                }
            }
        })
        .await;
        seen.unwrap_or_else(|_| panic!("{target} not readable within {WAIT:?}"));
    }

    async fn checkpoint(&self) -> Position {
        self.models
            .checkpoint(&TaskList::model_name())
            .await
            .expect("checkpoint")
    }

    async fn head(&self) -> Position {
        self.store.head().await.expect("log head")
    }

    async fn get(&self, user: Uuid, task: Uuid) -> Option<TaskView> {
        TaskList::get(&self.models, user, task).await.expect("get")
    }

    /// Every listed task of `user`, in one page.
    async fn list(&self, user: Uuid, include_completed: bool) -> Vec<TaskView> {
        let (tasks, next) = TaskList::list(&self.models, user, include_completed, None, 1000)
            .await
            .expect("list");
        assert!(
            next.is_none(),
            "a page bigger than the list has no next cursor"
        );
        tasks
    }

    /// Walks the list `page_size` tasks at a time through the returned cursors.
    async fn walk(&self, user: Uuid, include_completed: bool, page_size: usize) -> Vec<Uuid> {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let (page, next) = TaskList::list(
                &self.models,
                user,
                include_completed,
                cursor.as_ref(),
                page_size,
            )
            .await
            .expect("list page");
            assert!(page.len() <= page_size, "page longer than {page_size}");
            seen.extend(ids(&page));
            match next {
                Some(c) => {
                    assert_eq!(page.len(), page_size, "only the last page may be short");
                    cursor = Some(c);
                }
                None => return seen,
            }
        }
        panic!("pagination did not end; saw {seen:?}");
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

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Open tasks by due time (none last) then priority (4 first); completed only on request;
/// deleted never; pages of 2 walk every task exactly once.
async fn list_ordering_and_pagination(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let user = Uuid::now_v7();

    let pre_epoch = Utc.with_ymd_and_hms(1960, 3, 1, 0, 0, 0).unwrap();
    let (t_1960, _) = env
        .create(user, new_task("from 1960", Some(pre_epoch), 0))
        .await;
    let (t_d2_p1, _) = env
        .create(user, new_task("day 2, p1", Some(day(2)), 1))
        .await;
    let (t_nodue_p0, _) = env.create(user, new_task("no due, p0", None, 0)).await;
    let (t_d1_p0, _) = env
        .create(user, new_task("day 1, p0", Some(day(1)), 0))
        .await;
    let (t_nodue_p4, _) = env.create(user, new_task("no due, p4", None, 4)).await;
    let (t_d1_p4, _) = env
        .create(user, new_task("day 1, p4", Some(day(1)), 4))
        .await;
    let (t_d1_p2, _) = env
        .create(user, new_task("day 1, p2", Some(day(1)), 2))
        .await;
    let (t_done, _) = env
        .create(user, new_task("done, day 3", Some(day(3)), 2))
        .await;
    let (t_gone, _) = env
        .create(user, new_task("deleted, day 0", Some(day(0)), 4))
        .await;
    let (t_done_gone, _) = env
        .create(user, new_task("done then deleted", None, 1))
        .await;
    env.exec(user, t_done, TaskCommand::Complete).await;
    env.exec(user, t_gone, TaskCommand::Delete).await;
    env.exec(user, t_done_gone, TaskCommand::Complete).await;
    let last = env.exec(user, t_done_gone, TaskCommand::Delete).await;
    caught_up(&mut handle, last).await;

    let open = vec![
        t_1960, t_d1_p4, t_d1_p2, t_d1_p0, t_d2_p1, t_nodue_p4, t_nodue_p0,
    ];
    let all = vec![
        t_1960, t_d1_p4, t_d1_p2, t_d1_p0, t_d2_p1, t_done, t_nodue_p4, t_nodue_p0,
    ];
    let listed = env.list(user, false).await;
    assert_eq!(
        ids(&listed),
        open,
        "open tasks: due asc (none last), then priority desc"
    );
    assert!(listed.iter().all(|v| !v.completed));
    let listed = env.list(user, true).await;
    assert_eq!(
        ids(&listed),
        all,
        "completed tasks sort among the open ones"
    );
    assert!(
        listed
            .iter()
            .find(|v| v.task_id == t_done)
            .unwrap()
            .completed
    );

    for gone in [t_gone, t_done_gone] {
        assert_eq!(env.get(user, gone).await, None, "a deleted task is gone");
    }
    let view = env.get(user, t_1960).await.expect("pre-1970 task listed");
    assert_eq!(view.due, Some(pre_epoch));
    assert_eq!(view.title, "from 1960");

    assert_eq!(
        env.walk(user, true, 2).await,
        all,
        "pages of 2, with completed"
    );
    assert_eq!(
        env.walk(user, false, 2).await,
        open,
        "pages of 2, open only"
    );
    assert_eq!(env.walk(user, true, 1).await, all, "pages of 1");
    assert_eq!(env.walk(user, true, 8).await, all, "one exact page");

    // 10 created, 2 deleted (one of them completed), 2 completions
    assert_eq!(env.stats(user).await, stats(7, 1, 10, 2));
    stop(handle).await;
}

/// Updates change the row and its place; complete/reopen move it between groups; counters follow.
async fn updates_and_stats(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let user = Uuid::now_v7();

    let (a, _) = env
        .create(user, new_task("Write report", Some(day(1)), 1))
        .await;
    let (b, p) = env
        .create(user, new_task("Buy milk", Some(day(2)), 0))
        .await;
    caught_up(&mut handle, p).await;
    assert_eq!(ids(&env.list(user, false).await), vec![a, b]);
    assert_eq!(env.stats(user).await, stats(2, 0, 2, 0));

    let update = TaskChanges {
        title: Some("Write the report".into()),
        due: Some(None),
        priority: Some(3),
        ..TaskChanges::default()
    };
    let p = env.exec(user, a, TaskCommand::Update(update)).await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, a).await.expect("a");
    assert_eq!(view.title, "Write the report");
    assert_eq!(view.due, None, "due cleared");
    assert_eq!(view.priority, 3);
    assert!(view.updated_at > view.created_at);
    assert_eq!(
        ids(&env.list(user, false).await),
        vec![b, a],
        "no due now: last"
    );

    let update = TaskChanges {
        due: Some(Some(day(5))),
        ..TaskChanges::default()
    };
    let p = env.exec(user, a, TaskCommand::Update(update)).await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, a).await.expect("a");
    assert_eq!(view.due, Some(day(5)));
    assert_eq!(view.title, "Write the report", "unchanged fields are kept");
    assert_eq!(view.priority, 3);
    assert_eq!(ids(&env.list(user, false).await), vec![b, a]);
    assert_eq!(
        env.stats(user).await,
        stats(2, 0, 2, 0),
        "updates count nothing"
    );

    let p = env.exec(user, a, TaskCommand::Complete).await;
    caught_up(&mut handle, p).await;
    assert_eq!(ids(&env.list(user, false).await), vec![b]);
    assert_eq!(ids(&env.list(user, true).await), vec![b, a]);
    let view = env.get(user, a).await.expect("a");
    assert!(view.completed);
    assert!(view.completed_at.is_some());
    assert_eq!(env.stats(user).await, stats(1, 1, 2, 1));

    let p = env.exec(user, a, TaskCommand::Reopen).await;
    caught_up(&mut handle, p).await;
    assert_eq!(ids(&env.list(user, false).await), vec![b, a]);
    let view = env.get(user, a).await.expect("a");
    assert!(!view.completed);
    assert_eq!(view.completed_at, None);
    assert_eq!(
        env.stats(user).await,
        stats(2, 0, 2, 1),
        "reopening keeps the completion count"
    );

    env.exec(user, a, TaskCommand::Complete).await;
    let p = env.exec(user, b, TaskCommand::Complete).await;
    caught_up(&mut handle, p).await;
    assert!(env.list(user, false).await.is_empty());
    assert_eq!(ids(&env.list(user, true).await), vec![b, a]);
    assert_eq!(env.stats(user).await, stats(0, 2, 2, 3));

    let p = env.exec(user, a, TaskCommand::Delete).await;
    caught_up(&mut handle, p).await;
    assert_eq!(ids(&env.list(user, true).await), vec![b]);
    assert_eq!(
        env.stats(user).await,
        stats(0, 1, 2, 3),
        "deleting a completed task"
    );
    stop(handle).await;
}

/// Rows are per user: lists, gets and counters never cross.
async fn users_are_isolated(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let alice = Uuid::now_v7();
    let bob = Uuid::now_v7();

    let (a1, _) = env
        .create(alice, new_task("alice 1", Some(day(2)), 1))
        .await;
    let (b1, _) = env.create(bob, new_task("bob 1", Some(day(1)), 4)).await;
    let (a2, _) = env.create(alice, new_task("alice 2", None, 0)).await;
    let (b2, _) = env.create(bob, new_task("bob 2", None, 2)).await;
    env.exec(alice, a2, TaskCommand::Complete).await;
    let p = env.exec(bob, b2, TaskCommand::Delete).await;
    caught_up(&mut handle, p).await;

    assert_eq!(ids(&env.list(alice, true).await), vec![a1, a2]);
    assert_eq!(ids(&env.list(alice, false).await), vec![a1]);
    assert_eq!(ids(&env.list(bob, true).await), vec![b1]);
    assert_eq!(env.walk(bob, true, 1).await, vec![b1]);
    assert_eq!(env.walk(alice, true, 1).await, vec![a1, a2]);

    assert!(env.get(alice, a1).await.is_some());
    assert!(env.get(alice, a2).await.is_some());
    assert!(env.get(bob, b1).await.is_some());
    for (user, other) in [(bob, a1), (bob, a2), (alice, b1), (alice, b2)] {
        assert_eq!(
            env.get(user, other).await,
            None,
            "{user} must not see {other}"
        );
    }
    assert_eq!(env.stats(alice).await, stats(1, 1, 2, 1));
    assert_eq!(env.stats(bob).await, stats(1, 0, 2, 0));
    let carol = Uuid::now_v7();
    assert!(env.list(carol, true).await.is_empty());
    assert_eq!(env.stats(carol).await, TaskStats::default());
    stop(handle).await;
}

/// A new runner resumes from the stored checkpoint: nothing is applied twice.
async fn restart_resumes_without_double_counting(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();

    let mut first = env.runner().spawn();
    let (a, _) = env.create(user, new_task("a", Some(day(1)), 1)).await;
    let (b, _) = env.create(user, new_task("b", None, 2)).await;
    let (c, _) = env.create(user, new_task("c", Some(day(3)), 0)).await;
    let p = env.exec(user, b, TaskCommand::Complete).await;
    caught_up(&mut first, p).await;
    assert_eq!(env.stats(user).await, stats(2, 1, 3, 1));
    stop(first).await;
    assert_eq!(env.checkpoint().await, p, "the stopped runner's checkpoint");

    // while no runner runs
    env.exec(user, a, TaskCommand::Complete).await;
    env.exec(user, a, TaskCommand::Reopen).await;
    env.exec(user, a, TaskCommand::Complete).await;
    let (d, _) = env.create(user, new_task("d", None, 4)).await;
    env.exec(user, c, TaskCommand::Delete).await;
    let last = env
        .exec(
            user,
            d,
            TaskCommand::Update(TaskChanges {
                title: Some("d!".into()),
                ..TaskChanges::default()
            }),
        )
        .await;
    assert_eq!(
        env.checkpoint().await,
        p,
        "nothing projected without a runner"
    );

    let mut second = env.runner().spawn();
    caught_up(&mut second, last).await;
    // open: d; completed: a, b; created a, b, c, d; completions: b, a, a
    assert_eq!(env.stats(user).await, stats(1, 2, 4, 3));
    assert_eq!(ids(&env.list(user, true).await), vec![a, d, b]);
    assert_eq!(env.get(user, d).await.expect("d").title, "d!");
    assert_eq!(env.get(user, c).await, None);
    let head = env.head().await;
    assert_eq!(head, last);
    assert_eq!(env.checkpoint().await, head, "checkpoint at the log head");
    assert_eq!(*second.progress.borrow(), head);
    stop(second).await;

    // a third start with nothing new applies nothing
    let mut third = env.runner().spawn();
    caught_up(&mut third, head).await;
    stop(third).await;
    assert_eq!(env.stats(user).await, stats(1, 2, 4, 3));
    assert_eq!(env.checkpoint().await, head);
}

/// Each `step` commits the rows of its events together with the checkpoint of its last event.
async fn step_commits_rows_with_checkpoint(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let a_new = new_task("a", Some(day(1)), 1);
    let b_new = new_task("b", None, 0);
    let (a, b) = (a_new.task_id, b_new.task_id);

    // (command's event position, expected stats, expected (title, completed) of a, b present)
    type Expect = (Position, TaskStats, Option<(&'static str, bool)>, bool);
    let mut script: Vec<Expect> = Vec::new();
    let p = env.create(user, a_new).await.1;
    script.push((p, stats(1, 0, 1, 0), Some(("a", false)), false));
    let p = env.create(user, b_new).await.1;
    script.push((p, stats(2, 0, 2, 0), Some(("a", false)), true));
    let rename = TaskChanges {
        title: Some("a2".into()),
        ..TaskChanges::default()
    };
    let p = env.exec(user, a, TaskCommand::Update(rename)).await;
    script.push((p, stats(2, 0, 2, 0), Some(("a2", false)), true));
    let p = env.exec(user, a, TaskCommand::Complete).await;
    script.push((p, stats(1, 1, 2, 1), Some(("a2", true)), true));
    let p = env.exec(user, a, TaskCommand::Reopen).await;
    script.push((p, stats(2, 0, 2, 1), Some(("a2", false)), true));
    let p = env.exec(user, a, TaskCommand::Complete).await;
    script.push((p, stats(1, 1, 2, 2), Some(("a2", true)), true));
    let p = env.exec(user, b, TaskCommand::Delete).await;
    script.push((p, stats(0, 1, 2, 2), Some(("a2", true)), false));
    let p = env.exec(user, a, TaskCommand::Delete).await;
    script.push((p, stats(0, 0, 2, 2), None, false));
    for pair in script.windows(2) {
        assert!(pair[0].0 < pair[1].0, "log order follows command order");
    }

    let (last, ..) = script.last().expect("script");
    env.visible(*last).await;
    let runner = env.runner().batch_size(1);
    assert_eq!(env.checkpoint().await, Position::START);
    assert_eq!(env.stats(user).await, TaskStats::default());
    let mut checkpoint = Position::START;
    for (i, (position, stats, a_state, b_present)) in script.iter().enumerate() {
        let next = runner.step(checkpoint).await.expect("step");
        assert_eq!(next, Some(*position), "step {i} applies exactly event {i}");
        checkpoint = *position;
        assert_eq!(
            env.checkpoint().await,
            *position,
            "stored checkpoint after step {i}"
        );
        assert_eq!(env.stats(user).await, *stats, "counters after step {i}");
        let a_view = env.get(user, a).await;
        assert_eq!(
            a_view.as_ref().map(|v| (v.title.as_str(), v.completed)),
            *a_state,
            "task a after step {i}"
        );
        assert_eq!(
            env.get(user, b).await.is_some(),
            *b_present,
            "task b after step {i}"
        );
    }
    assert_eq!(
        runner.step(checkpoint).await.expect("last step"),
        None,
        "log exhausted"
    );
    assert_eq!(env.checkpoint().await, env.head().await);
}

/// An event the projection cannot apply stops the runner on it; it is never skipped.
async fn poison_event_stops_the_runner(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let (good, before) = env
        .create(user, new_task("before the poison", None, 0))
        .await;
    let (bogus_id, poison) = env
        .append_raw(
            Some(user),
            "task",
            "Bogus",
            serde_json::json!({ "Bogus": {} }),
        )
        .await;
    let (after_task, after) = env
        .create(user, new_task("after the poison", None, 0))
        .await;
    assert!(before < poison && poison < after);

    for attempt in ["first runner", "restarted runner"] {
        let mut handle = env.runner().spawn();
        let ended = timeout(WAIT, handle.progress.wait_for(|p| *p >= after))
            .await
            .unwrap_or_else(|_| panic!("{attempt}: runner neither failed nor passed in {WAIT:?}"))
            .map(|p| *p);
        assert!(
            ended.is_err(),
            "{attempt}: runner must end on the poison, got {ended:?}"
        );
        match handle.stop().await {
            Err(ProjectionError::Poison(poisoned)) => {
                let PoisonEvent {
                    projection,
                    position,
                    event_type,
                    aggregate_type,
                    aggregate_id,
                    ..
                } = *poisoned;
                assert_eq!(projection, TaskList::model_name());
                assert_eq!(position, poison, "{attempt}: names the poison's position");
                assert_eq!(event_type, "Bogus");
                assert_eq!(aggregate_type, "task");
                assert_eq!(aggregate_id, bogus_id);
            }
            other => panic!("{attempt}: expected a poison error, got {other:?}"),
        }
        assert_eq!(
            env.checkpoint().await,
            before,
            "{attempt}: checkpoint stays before it"
        );
        assert!(env.get(user, good).await.is_some());
        assert_eq!(
            env.get(user, after_task).await,
            None,
            "nothing after the poison"
        );
        assert_eq!(env.stats(user).await, stats(1, 0, 1, 0));
    }

    // stepping by hand hits the same event
    let err = env.runner().step(before).await.expect_err("poison");
    assert!(
        matches!(&err, ProjectionError::Poison(p) if p.position == poison),
        "{err:?}"
    );
    assert!(err.to_string().contains("Bogus"), "{err}");
}

/// Events of other aggregates carry no task rows: the runner passes over them.
async fn other_aggregates_are_ignored(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let (a, _) = env.create(user, new_task("a", None, 0)).await;
    env.append_raw(
        Some(user),
        "habit",
        "HabitCreated",
        serde_json::json!({ "HabitCreated": {} }),
    )
    .await;
    env.append_raw(None, "system", "Started", serde_json::json!({}))
        .await;
    let (b, last) = env.create(user, new_task("b", Some(day(1)), 0)).await;

    let mut handle = env.runner().spawn();
    caught_up(&mut handle, last).await;
    stop(handle).await;
    assert_eq!(ids(&env.list(user, true).await), vec![b, a]);
    assert_eq!(env.stats(user).await, stats(2, 0, 2, 0));
    assert_eq!(env.checkpoint().await, env.head().await);
}

/// `Freshness::wait_for` is true once the runner passed the target, false within its limit for a
/// position the log never reaches, with and without a local runner.
async fn freshness_waits_bounded(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let handle = env.runner().spawn();
    let projection: Arc<dyn Projection> = Arc::new(TaskList);
    let local = Freshness::new(
        env.models.clone(),
        projection.clone(),
        Some(handle.progress.clone()),
    );
    let stored = Freshness::new(env.models.clone(), projection.clone(), None);

    let (a, p) = env.create(user, new_task("fresh", None, 0)).await;
    assert!(
        local.wait_for(p, WAIT).await.expect("wait"),
        "local progress reaches it"
    );
    assert!(
        env.get(user, a).await.is_some(),
        "read your write after a fresh wait"
    );
    assert!(
        stored.wait_for(p, WAIT).await.expect("wait"),
        "stored checkpoint reaches it"
    );

    let head = env.head().await;
    let beyond = Position {
        tx: head.tx + 1_000_000,
        pos: head.pos + 1_000_000,
    };
    let limit = Duration::from_millis(300);
    for (name, freshness) in [("local", &local), ("stored", &stored)] {
        let started = Instant::now();
        let fresh = freshness.wait_for(beyond, limit).await.expect("wait");
        let took = started.elapsed();
        assert!(!fresh, "{name}: a position beyond the head is never fresh");
        assert!(
            took >= limit,
            "{name}: gave up after {took:?}, before the {limit:?} limit"
        );
        assert!(
            took < limit + Duration::from_secs(5),
            "{name}: overran the limit: {took:?}"
        );
    }

    // the runner gone, a local freshness falls back to the stored checkpoint
    let progress = handle.progress.clone();
    stop(handle).await;
    let orphan = Freshness::new(env.models.clone(), projection, Some(progress));
    assert!(orphan.wait_for(p, limit).await.expect("wait"));
    assert!(!orphan.wait_for(beyond, limit).await.expect("wait"));
    let (_, unprojected) = env.create(user, new_task("no runner", None, 0)).await;
    assert!(
        !orphan.wait_for(unprojected, limit).await.expect("wait"),
        "nothing applies it without a runner"
    );
}
