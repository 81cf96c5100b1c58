//! The `task_list` read model for projects, tags, subtasks and recurring tasks, on both
//! backends: filters evaluated by the store (pages stay exact), subtask listings and counts,
//! and the rows of recurring tasks across completed and skipped occurrences.
//!
//! Every case is one generic async fn taking a [`Store`]; `store::on_both_stores!` instantiates it
//! as `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is
//! unreachable outside CI). Tests wait on the runner's progress, bounded, never on sleeps.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aggregates::Issued;
use aggregates::task::{
    IntervalUnit, NewTask, Recurrence, RecurrenceRule, RepeatFrom, Task, TaskChanges, TaskCommand,
};
use chrono::{DateTime, TimeZone, Utc};
use projections::replay::replay_user;
use projections::task_list::{TaskFilter, TaskList, TaskStats, TaskView};
use projections::{
    DocFilter, MemoryRows, Projection, ProjectionError, ProjectionRunner, ReadModels, Row,
    RowCursor, RowKey, RowReader, RunnerHandle,
};
use store::{AggregateStore, Position, Store, meta};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for the runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    rows_round_trip_in_one_statement => sqlite_rows_round_trip_in_one_statement, postgres_rows_round_trip_in_one_statement;
    project_and_tag_filters_page_exactly => sqlite_project_and_tag_filters_page_exactly, postgres_project_and_tag_filters_page_exactly;
    doc_filters_match_in_sql_as_in_memory => sqlite_doc_filters_match_in_sql_as_in_memory, postgres_doc_filters_match_in_sql_as_in_memory;
    subtasks_are_listed_and_counted => sqlite_subtasks_are_listed_and_counted, postgres_subtasks_are_listed_and_counted;
    recurring_rows_follow_their_occurrences => sqlite_recurring_rows_follow_their_occurrences, postgres_recurring_rows_follow_their_occurrences;
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

struct Env {
    tasks: AggregateStore<Task, Store>,
    models: ReadModels,
    clock: AtomicI64,
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn day(days: i64) -> DateTime<Utc> {
    base() + chrono::Duration::days(days)
}

fn task(title: &str, due: Option<DateTime<Utc>>) -> NewTask {
    NewTask {
        task_id: Uuid::now_v7(),
        title: title.to_string(),
        due,
        ..NewTask::default()
    }
}

fn ids(views: &[TaskView]) -> Vec<Uuid> {
    views.iter().map(|v| v.task_id).collect()
}

fn stats(open: u64, completed: u64, created_total: u64, completions_total: u64) -> TaskStats {
    TaskStats {
        open,
        completed,
        created_total,
        completions_total,
    }
}

impl Env {
    fn new(store: Store) -> Self {
        Self {
            tasks: AggregateStore::new(store.clone()),
            models: ReadModels::new(store),
            clock: AtomicI64::new(0),
        }
    }

    /// Executes `command` at the next minute of the test clock.
    async fn exec(&self, user: Uuid, task_id: Uuid, command: TaskCommand) -> Position {
        let at = base() + chrono::Duration::minutes(self.clock.fetch_add(1, Ordering::SeqCst));
        self.exec_at(user, task_id, at, command).await
    }

    /// Executes `command` issued at `at`; returns the position of its (one) event.
    async fn exec_at(
        &self,
        user: Uuid,
        task_id: Uuid,
        at: DateTime<Utc>,
        command: TaskCommand,
    ) -> Position {
        let what = format!("{command:?}");
        let metadata = HashMap::from([(meta::USER_ID.to_string(), user.to_string())]);
        let outcome = self
            .tasks
            .execute(
                &task_id.to_string(),
                Issued::new(user, at, command),
                &(),
                metadata,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what} on task {task_id}: {e:?}"));
        assert_eq!(
            outcome.receipt.event_ids.len(),
            1,
            "{what} writes one event"
        );
        outcome.receipt.position.expect("a position")
    }

    async fn create(&self, user: Uuid, new: NewTask) -> (Uuid, Position) {
        let id = new.task_id;
        (id, self.exec(user, id, TaskCommand::Create(new)).await)
    }

    fn runner(&self) -> ProjectionRunner {
        ProjectionRunner::new(Arc::new(TaskList), self.models.clone())
    }

    async fn get(&self, user: Uuid, id: Uuid) -> TaskView {
        TaskList::get(&self.models, user, id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("task {id} listed"))
    }

    async fn stats(&self, user: Uuid) -> TaskStats {
        TaskList::stats(&self.models, user).await.expect("stats")
    }

    /// Walks the filtered list `page_size` tasks at a time through the returned cursors,
    /// asserting every page but the last is full.
    async fn walk(
        &self,
        rows: &impl RowReader,
        user: Uuid,
        include_completed: bool,
        filter: &TaskFilter,
        page_size: usize,
    ) -> Vec<Uuid> {
        let mut seen = Vec::new();
        let mut cursor: Option<RowCursor> = None;
        for _ in 0..100 {
            let (page, next) = TaskList::list_where(
                rows,
                user,
                include_completed,
                filter,
                cursor.as_ref(),
                page_size,
            )
            .await
            .expect("list page");
            seen.extend(ids(&page));
            match next {
                Some(c) => {
                    assert_eq!(page.len(), page_size, "only the last page may be short");
                    cursor = Some(c);
                }
                None => {
                    assert!(page.len() <= page_size);
                    return seen;
                }
            }
        }
        panic!("pagination did not end; saw {seen:?}");
    }
}

async fn caught_up(handle: &mut RunnerHandle, target: Position) {
    timeout(WAIT, handle.progress.wait_for(|p| *p >= target))
        .await
        .unwrap_or_else(|_| panic!("runner did not reach {target} within {WAIT:?}"))
        .map(|p| *p)
        .unwrap_or_else(|_| panic!("runner ended before reaching {target}"));
}

async fn stop(handle: RunnerHandle) {
    handle.stop().await.expect("runner stops cleanly");
}

fn filter(project: Option<&str>, tag: Option<&str>) -> TaskFilter {
    TaskFilter {
        project: project.map(str::to_string),
        tag: tag.map(str::to_string),
        parent_task_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Project and tag filters (alone, together, with and without completed tasks) walk exactly
/// the matching tasks in list order at every page size, on the live model and on a replay; the
/// tasks that do not match sit between the matching ones, so a filter applied after the page
/// was cut would show short or empty pages.
async fn project_and_tag_filters_page_exactly(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let with = |title: &str, due: i64, project: Option<&str>, tags: &[&str]| NewTask {
        project: project.map(str::to_string),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..task(title, Some(day(due)))
    };
    // in list (due) order; garden tasks interleaved with others
    let (g1, _) = env
        .create(alice, with("g1", 1, Some("Garden"), &["weekly"]))
        .await;
    let (h1, _) = env
        .create(alice, with("h1", 2, Some("House"), &["weekly"]))
        .await;
    let (n1, _) = env.create(alice, with("n1", 3, None, &["weekly"])).await;
    let (g2, _) = env.create(alice, with("g2", 4, Some("Garden"), &[])).await;
    let (h2, _) = env.create(alice, with("h2", 5, Some("House"), &[])).await;
    let (g3, _) = env
        .create(alice, with("g3", 6, Some("Garden"), &["weekly", "tools"]))
        .await;
    let (lower, _) = env
        .create(
            alice,
            with("garden, lower case", 7, Some("garden"), &["Weekly"]),
        )
        .await;
    let (g4, _) = env
        .create(alice, with("g4, completed", 8, Some("Garden"), &["weekly"]))
        .await;
    env.exec(alice, g4, TaskCommand::Complete).await;
    // Bob's garden task is never Alice's
    env.create(bob, with("bob's", 0, Some("Garden"), &["weekly"]))
        .await;
    let (n2, last) = env.create(alice, with("n2", 9, None, &[])).await;
    caught_up(&mut handle, last).await;

    let garden = filter(Some("Garden"), None);
    let weekly = filter(None, Some("weekly"));
    let garden_weekly = filter(Some("Garden"), Some("weekly"));
    let cases: [(&str, &TaskFilter, bool, Vec<Uuid>); 6] = [
        ("project", &garden, false, vec![g1, g2, g3]),
        (
            "project, completed too",
            &garden,
            true,
            vec![g1, g2, g3, g4],
        ),
        ("tag", &weekly, false, vec![g1, h1, n1, g3]),
        (
            "tag, completed too",
            &weekly,
            true,
            vec![g1, h1, n1, g3, g4],
        ),
        ("project and tag", &garden_weekly, false, vec![g1, g3]),
        (
            "project and tag, completed",
            &garden_weekly,
            true,
            vec![g1, g3, g4],
        ),
    ];
    for (what, filter, completed, expected) in &cases {
        for page_size in [1, 2, 3, 50] {
            assert_eq!(
                env.walk(&env.models, alice, *completed, filter, page_size)
                    .await,
                *expected,
                "{what}, pages of {page_size}"
            );
        }
    }
    let none = filter(Some("Nowhere"), None);
    assert!(
        env.walk(&env.models, alice, true, &none, 1)
            .await
            .is_empty()
    );
    assert_eq!(
        env.walk(
            &env.models,
            alice,
            false,
            &filter(Some("garden"), Some("Weekly")),
            1
        )
        .await,
        vec![lower],
        "exact, case-sensitive matches"
    );
    assert_eq!(
        env.walk(&env.models, alice, false, &TaskFilter::default(), 1)
            .await,
        vec![g1, h1, n1, g2, h2, g3, lower, n2],
        "no filter: every open task"
    );

    // a replay of Alice's history answers the same (as_of queries)
    let projections: [Arc<dyn Projection>; 1] = [Arc::new(TaskList)];
    let mut replay = replay_user(env.models.store(), &projections, alice, None, |_| {})
        .await
        .expect("replay");
    let memory: MemoryRows = replay.models.remove(TaskList.name()).expect("task_list");
    for (what, filter, completed, expected) in &cases {
        assert_eq!(
            env.walk(&memory, alice, *completed, filter, 1).await,
            *expected,
            "replayed: {what}"
        );
    }

    // moving a task to another project, or removing its project, moves it between filters
    let move_h2 = TaskChanges {
        project: Some(Some("Garden".into())),
        tags: Some(vec!["weekly".into()]),
        ..TaskChanges::default()
    };
    env.exec(alice, h2, TaskCommand::Update(move_h2)).await;
    let drop_g1 = TaskChanges {
        project: Some(None),
        ..TaskChanges::default()
    };
    let p = env.exec(alice, g1, TaskCommand::Update(drop_g1)).await;
    caught_up(&mut handle, p).await;
    assert_eq!(
        env.walk(&env.models, alice, false, &garden, 1).await,
        vec![g2, h2, g3]
    );
    assert_eq!(
        env.walk(&env.models, alice, false, &garden_weekly, 1).await,
        vec![h2, g3]
    );
    assert_eq!(env.get(alice, g1).await.project, None);
    assert_eq!(env.get(alice, h2).await.project.as_deref(), Some("Garden"));
    stop(handle).await;
}

/// `ReadModels::list_filtered` and `MemoryRows` agree on every kind of document: equality on
/// strings only, containment in arrays only, missing fields and nulls never match; a field that
/// is not a plain identifier is refused.
async fn doc_filters_match_in_sql_as_in_memory(store: Store) {
    let models = ReadModels::new(store);
    let model = "doc_filter_test@1";
    let user = Uuid::now_v7();
    let docs = [
        ("a", serde_json::json!({"p": "x", "t": ["one", "two"]})),
        ("b", serde_json::json!({"p": "y", "t": ["two"]})),
        ("c", serde_json::json!({"p": null, "t": []})),
        ("d", serde_json::json!({"t": "two"})),
        ("e", serde_json::json!({"p": 7, "t": [2, "one"]})),
        ("f", serde_json::json!({"p": "x", "t": ["On e", "one"]})),
        (
            "g",
            serde_json::json!({"p": "x'; DROP TABLE events; --", "t": ["o\"ne"]}),
        ),
    ];
    let rows: Vec<(RowKey, Option<Row>)> = docs
        .iter()
        .enumerate()
        .map(|(i, (id, doc))| {
            let key = RowKey::new(user, *id);
            let row = Row::new(key.clone(), "g", format!("{i:02}"), doc).expect("row");
            (key, Some(row))
        })
        .collect();
    models
        .commit(model, &rows, Position { tx: 0, pos: 0 })
        .await
        .expect("commit rows");
    // a memory twin of the same rows
    let mut set = projections::RowSet::default();
    for (_, row) in &rows {
        set.put(row.clone().expect("row"));
    }
    let memory = MemoryRows::from_set(set);

    let cases: Vec<(Vec<DocFilter>, Vec<&str>)> = vec![
        (vec![DocFilter::eq("p", "x")], vec!["a", "f"]),
        (vec![DocFilter::eq("p", "7")], vec![]),
        (vec![DocFilter::eq("t", "two")], vec!["d"]),
        (vec![DocFilter::contains("t", "two")], vec!["a", "b"]),
        (vec![DocFilter::contains("t", "one")], vec!["a", "e", "f"]),
        (vec![DocFilter::contains("p", "x")], vec![]),
        (vec![DocFilter::eq("missing", "x")], vec![]),
        (
            vec![DocFilter::eq("p", "x"), DocFilter::contains("t", "two")],
            vec!["a"],
        ),
        (
            vec![DocFilter::eq("p", "x'; DROP TABLE events; --")],
            vec!["g"],
        ),
        (vec![DocFilter::contains("t", "o\"ne")], vec!["g"]),
        (vec![], vec!["a", "b", "c", "d", "e", "f", "g"]),
    ];
    for (filters, expected) in cases {
        for limit in [1, 2, 100] {
            let sql = models
                .list_filtered(model, user, &["g"], &filters, None, limit)
                .await
                .expect("list_filtered");
            let sql: Vec<&str> = sql.iter().map(|r| r.key.row_id.as_str()).collect();
            let want: Vec<&str> = expected.iter().copied().take(limit).collect();
            assert_eq!(sql, want, "SQL, {filters:?}, limit {limit}");
        }
        let in_memory = memory
            .list_rows_filtered(&TaskList, user, &["g"], &filters, None, 100)
            .await
            .expect("memory");
        let in_memory: Vec<&str> = in_memory.iter().map(|r| r.key.row_id.as_str()).collect();
        assert_eq!(in_memory, expected, "memory, {filters:?}");
    }
    // after a cursor, and for another user, and in another group
    let after_a = RowCursor {
        sort_key: "00".into(),
        row_id: "a".into(),
    };
    let rows = models
        .list_filtered(
            model,
            user,
            &["g"],
            &[DocFilter::eq("p", "x")],
            Some(&after_a),
            10,
        )
        .await
        .expect("after a cursor");
    assert_eq!(
        rows.iter()
            .map(|r| r.key.row_id.as_str())
            .collect::<Vec<_>>(),
        ["f"]
    );
    let other = models
        .list_filtered(
            model,
            Uuid::now_v7(),
            &["g"],
            &[DocFilter::eq("p", "x")],
            None,
            10,
        )
        .await
        .expect("another user");
    assert!(other.is_empty());
    let other_group = models
        .list_filtered(model, user, &["h"], &[DocFilter::eq("p", "x")], None, 10)
        .await
        .expect("another group");
    assert!(other_group.is_empty());

    let err = models
        .list_filtered(
            model,
            user,
            &["g"],
            &[DocFilter::eq("p') OR ('1", "x")],
            None,
            10,
        )
        .await
        .expect_err("a field that is not an identifier");
    assert!(matches!(err, ProjectionError::Corrupt(_)), "{err:?}");
}

/// `TaskList::subtasks` lists a parent's open and completed subtasks in list order (not the
/// deleted ones, not another parent's, not another user's); `open_subtasks` counts the open
/// ones only.
async fn subtasks_are_listed_and_counted(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (parent, _) = env.create(alice, task("parent", Some(day(5)))).await;
    let (other_parent, _) = env.create(alice, task("other parent", None)).await;
    let child = |title: &str, due: i64, parent: Uuid| NewTask {
        parent_task_id: Some(parent),
        ..task(title, Some(day(due)))
    };
    let (s3, _) = env.create(alice, child("s3", 3, parent)).await;
    let (s1, _) = env.create(alice, child("s1", 1, parent)).await;
    let (s2, _) = env.create(alice, child("s2", 2, parent)).await;
    let (gone, _) = env.create(alice, child("deleted", 0, parent)).await;
    env.create(alice, child("elsewhere", 1, other_parent)).await;
    // Bob cannot make his task Alice's subtask through the API; in the model it stays his
    env.create(bob, child("bob's", 1, parent)).await;
    env.exec(alice, s2, TaskCommand::Complete).await;
    let p = env.exec(alice, gone, TaskCommand::Delete).await;
    caught_up(&mut handle, p).await;

    let subtasks = TaskList::subtasks(&env.models, alice, parent)
        .await
        .expect("subtasks");
    assert_eq!(
        ids(&subtasks),
        vec![s1, s2, s3],
        "in list order, completed too"
    );
    assert!(subtasks[1].completed);
    let open = |user, parent| {
        let models = env.models.clone();
        async move {
            TaskList::open_subtasks(&models, user, parent, 100)
                .await
                .expect("open subtasks")
        }
    };
    assert_eq!(open(alice, parent).await, 2);
    assert_eq!(open(alice, other_parent).await, 1);
    assert_eq!(open(bob, parent).await, 1, "Bob's own row only");
    assert_eq!(open(alice, s1).await, 0, "a leaf has none");
    assert_eq!(
        TaskList::open_subtasks(&env.models, alice, parent, 1)
            .await
            .expect("bounded count"),
        1,
        "counting stops at the limit"
    );

    let p = env.exec(alice, s1, TaskCommand::Complete).await;
    env.exec(alice, s3, TaskCommand::Complete).await;
    let last = env.exec(alice, s2, TaskCommand::Reopen).await;
    assert!(p < last);
    caught_up(&mut handle, last).await;
    assert_eq!(open(alice, parent).await, 1);
    assert_eq!(
        ids(&TaskList::subtasks(&env.models, alice, parent)
            .await
            .expect("subtasks")),
        vec![s1, s2, s3]
    );
    stop(handle).await;
}

/// A recurring task is one open row across its occurrences: completing one counts a completion
/// and moves its due time (and its place in the list); skipping moves it without a completion;
/// the last occurrence of a COUNT rule completes the task for good; skipping the last one
/// closes it without a completion.
async fn recurring_rows_follow_their_occurrences(store: Store) {
    let env = Env::new(store);
    let mut handle = env.runner().spawn();
    let user = Uuid::now_v7();
    let every_2_days = Recurrence {
        rule: RecurrenceRule::Every {
            interval: 2,
            unit: IntervalUnit::Days,
        },
        repeat_from: RepeatFrom::DueDate,
        time_zone: None,
    };
    let (plants, _) = env
        .create(
            user,
            NewTask {
                recurrence: Some(every_2_days.clone()),
                project: Some("Home".into()),
                ..task("water the plants", Some(day(1)))
            },
        )
        .await;
    let (report, _) = env.create(user, task("report", Some(day(2)))).await;
    let three_times = Recurrence {
        rule: RecurrenceRule::Rrule("FREQ=DAILY;COUNT=3".into()),
        repeat_from: RepeatFrom::DueDate,
        time_zone: None,
    };
    let (vitamins, p) = env
        .create(
            user,
            NewTask {
                recurrence: Some(three_times),
                ..task("vitamins", Some(day(10)))
            },
        )
        .await;
    caught_up(&mut handle, p).await;
    let order = |env: &Env| {
        let models = env.models.clone();
        async move {
            let (page, _) = TaskList::list(&models, user, false, None, 100)
                .await
                .expect("list");
            ids(&page)
        }
    };
    assert_eq!(order(&env).await, vec![plants, report, vitamins]);
    let view = env.get(user, plants).await;
    assert_eq!(view.recurrence, Some(every_2_days.clone()));
    assert_eq!(view.project.as_deref(), Some("Home"));

    // completed: still open, due two days later, now after the report
    let p = env
        .exec_at(user, plants, day(1), TaskCommand::Complete)
        .await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, plants).await;
    assert!(!view.completed);
    assert_eq!(view.completed_at, None);
    assert_eq!(view.due, Some(day(3)));
    assert_eq!(view.completed_occurrences, 1);
    assert_eq!(view.last_completed_at, Some(day(1)));
    assert_eq!(order(&env).await, vec![report, plants, vitamins]);
    assert_eq!(
        env.stats(user).await,
        stats(3, 0, 3, 1),
        "a completion, still open"
    );

    // skipped: due moves, nothing counted
    let p = env
        .exec_at(user, plants, day(3), TaskCommand::SkipOccurrence)
        .await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, plants).await;
    assert_eq!(view.due, Some(day(5)));
    assert_eq!(
        (view.completed_occurrences, view.skipped_occurrences),
        (1, 1)
    );
    assert_eq!(env.stats(user).await, stats(3, 0, 3, 1));

    // COUNT=3: two occurrences completed, the third completes the task for good
    env.exec_at(user, vitamins, day(10), TaskCommand::Complete)
        .await;
    let p = env
        .exec_at(user, vitamins, day(11), TaskCommand::Complete)
        .await;
    caught_up(&mut handle, p).await;
    assert_eq!(env.get(user, vitamins).await.due, Some(day(12)));
    let p = env
        .exec_at(user, vitamins, day(12), TaskCommand::Complete)
        .await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, vitamins).await;
    assert!(view.completed);
    assert_eq!(view.completed_at, Some(day(12)));
    assert_eq!(view.due, Some(day(12)), "the last occurrence's due");
    assert_eq!(view.completed_occurrences, 3);
    assert_eq!(env.stats(user).await, stats(2, 1, 3, 4));
    assert_eq!(order(&env).await, vec![report, plants]);

    // a one-occurrence rule skipped: closed, no completion
    let once = Recurrence {
        rule: RecurrenceRule::Rrule("FREQ=WEEKLY;COUNT=1".into()),
        repeat_from: RepeatFrom::CompletionDate,
        time_zone: None,
    };
    let (once_id, _) = env
        .create(
            user,
            NewTask {
                recurrence: Some(once),
                ..task("once", Some(day(4)))
            },
        )
        .await;
    let p = env
        .exec_at(user, once_id, day(4), TaskCommand::SkipOccurrence)
        .await;
    caught_up(&mut handle, p).await;
    let view = env.get(user, once_id).await;
    assert!(view.completed, "the series is over");
    assert_eq!(view.completed_at, Some(day(4)));
    assert_eq!(
        (view.completed_occurrences, view.skipped_occurrences),
        (0, 1)
    );
    assert_eq!(
        env.stats(user).await,
        stats(2, 2, 4, 4),
        "closed, without a completion"
    );

    // stopping the recurrence shows in the row
    let p = env
        .exec(
            user,
            plants,
            TaskCommand::Update(TaskChanges {
                recurrence: Some(None),
                ..TaskChanges::default()
            }),
        )
        .await;
    caught_up(&mut handle, p).await;
    assert_eq!(env.get(user, plants).await.recurrence, None);
    stop(handle).await;
}

/// On PostgreSQL an event committed while an older transaction is open is not readable yet:
/// `Journal::head` stops before it, `ReadModels::committed_head` does not (so a wait for it
/// covers every event committed before), and once the older transaction ends both agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_committed_head_passes_an_open_older_transaction() {
    use store::Journal;

    let Some(store) = store::testing::fresh_postgres_store().await else {
        return;
    };
    let Store::Postgres(pg) = &store else {
        unreachable!("a PostgreSQL store");
    };
    let env = Env::new(store.clone());
    let user = Uuid::now_v7();
    let (_, before) = env.create(user, task("before", None)).await;
    // an older transaction, holding a transaction id, still open
    let mut older = pg.pool().begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *older)
        .await
        .expect("take a transaction id");
    let (_, after) = env.create(user, task("after", None)).await;
    assert!(before < after);
    assert!(
        store.head().await.expect("head") < after,
        "not readable while an older transaction is open"
    );
    assert_eq!(
        env.models.committed_head().await.expect("committed head"),
        after
    );
    older.rollback().await.expect("rollback");
    let readable = timeout(WAIT, async {
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        loop {
            poll.tick().await;
            if store.head().await.expect("head") >= after {
                return;
            }
        }
    })
    .await;
    readable.expect("readable once the older transaction ended");
    assert_eq!(
        env.models.committed_head().await.expect("committed head"),
        after
    );
    store::testing::drop_postgres_store(store).await;
}

/// On SQLite (one writer) the committed head is the log head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_committed_head_is_the_head() {
    use store::Journal;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = store::testing::sqlite_store(dir.path()).await;
    let env = Env::new(store.clone());
    assert_eq!(
        env.models.committed_head().await.expect("empty"),
        Position::START
    );
    let (_, p) = env.create(Uuid::now_v7(), task("one", None)).await;
    assert_eq!(env.models.committed_head().await.expect("head"), p);
    assert_eq!(store.head().await.expect("head"), p);
    store.close().await;
}

/// A batch of rows written and loaded back whole (the SQLite path sends a batch as one JSON
/// array: documents of every JSON type, quotes and non-ASCII text survive it), deletes in the
/// same commit, missing keys absent; and the writing connection the command appends share stays
/// `synchronous=FULL` after a read-model commit (which runs NORMAL).
async fn rows_round_trip_in_one_statement(store: Store) {
    let models = ReadModels::new(store.clone());
    let model = "round_trip_test@1";
    let user = Uuid::now_v7();
    let docs = [
        serde_json::json!({"title": "grüße ✓ \"quoted\" 'single'", "n": [1, 2.5, null]}),
        serde_json::json!("a bare string"),
        serde_json::json!(42),
        serde_json::json!([{"deep": {"er": true}}]),
        serde_json::json!(null),
    ];
    let key = |i: usize| RowKey::new(user, format!("r{i}"));
    let rows: Vec<(RowKey, Option<Row>)> = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            (
                key(i),
                Some(Row::new(key(i), "g", format!("{i}"), doc).expect("row")),
            )
        })
        .collect();
    models
        .commit(model, &rows, Position { tx: 0, pos: 1 })
        .await
        .expect("commit rows");
    let wanted: Vec<RowKey> = (0..7).map(key).collect();
    let mut loaded = models.load(model, &wanted).await.expect("load");
    loaded.sort_by(|a, b| a.key.cmp(&b.key));
    let written: Vec<Row> = rows.iter().map(|(_, r)| r.clone().expect("row")).collect();
    assert_eq!(loaded, written);

    let changes = vec![
        (key(1), None),
        (key(3), None),
        (
            key(5),
            Some(Row::new(key(5), "h", "5", &docs[0]).expect("row")),
        ),
    ];
    models
        .commit(model, &changes, Position { tx: 0, pos: 2 })
        .await
        .expect("commit changes");
    let mut loaded = models.load(model, &wanted).await.expect("load");
    loaded.sort_by(|a, b| a.key.cmp(&b.key));
    let ids: Vec<&str> = loaded.iter().map(|r| r.key.row_id.as_str()).collect();
    assert_eq!(ids, ["r0", "r2", "r4", "r5"]);
    assert_eq!(loaded[3].grp, "h");
    assert_eq!(
        models.checkpoint(model).await.expect("checkpoint"),
        Position { tx: 0, pos: 2 }
    );
    if let Store::Sqlite(s) = &store {
        let pragma = |pool| async move {
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(pool)
                .await
                .expect("pragma");
            level
        };
        assert_eq!(pragma(s.writer()).await, 2, "appends keep synchronous=FULL");
        assert_eq!(
            pragma(s.read_model_writer()).await,
            1,
            "read models commit with synchronous=NORMAL in their own file"
        );
    }
}
