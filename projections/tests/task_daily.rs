//! The `task_daily` read model end to end on both backends: task and preferences commands go
//! through `AggregateStore::execute` with explicit times, the runner folds the log, and
//! `TaskDaily::days` answers created, completed and overdue-at-day-end per local day.
//!
//! Every case is one generic async fn taking a [`Store`]; [`store::on_both_stores!`]
//! instantiates it as `sqlite_<case>` and `postgres_<case>` (the latter returns early when
//! PostgreSQL is unreachable outside CI). Tests wait on the runner's progress, bounded, never on
//! sleeps.

mod common;

use common::{user_metadata, utc};
use std::sync::Arc;
use std::time::Duration;

use aggregates::Issued;
use aggregates::preferences::UserPreferences;
use aggregates::task::{
    IntervalUnit, NewTask, Recurrence, RecurrenceRule, RepeatFrom, Task, TaskChanges, TaskCommand,
};
use chrono::{DateTime, NaiveDate, Utc};
use projections::daily::UserClock;
use projections::task_daily::{TaskDaily, TaskDay};
use projections::{Projection, ProjectionRunner, ReadModels, RunnerHandle};
use store::{AggregateStore, Journal, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for the runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    rollup_across_spring_dst_in_new_york => sqlite_rollup_across_spring_dst_in_new_york, postgres_rollup_across_spring_dst_in_new_york;
    rollup_across_autumn_dst_in_paris => sqlite_rollup_across_autumn_dst_in_paris, postgres_rollup_across_autumn_dst_in_paris;
    rollup_with_a_4am_day_start => sqlite_rollup_with_a_4am_day_start, postgres_rollup_with_a_4am_day_start;
    occurrences_reopen_and_delete => sqlite_occurrences_reopen_and_delete, postgres_occurrences_reopen_and_delete;
    restart_without_double_counting => sqlite_restart_without_double_counting, postgres_restart_without_double_counting;
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Env {
    store: Store,
    tasks: AggregateStore<Task, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
    models: ReadModels,
}

impl Env {
    fn new(store: Store) -> Self {
        Self {
            tasks: AggregateStore::new(store.clone()),
            preferences: AggregateStore::new(store.clone()),
            models: ReadModels::new(store.clone()),
            store,
        }
    }

    fn runner(&self) -> RunnerHandle {
        ProjectionRunner::new(Arc::new(TaskDaily), self.models.clone()).spawn()
    }

    /// Executes `command` on `task` as `user` at `at`; returns the position of its (one) event.
    async fn exec(
        &self,
        user: Uuid,
        task: Uuid,
        at: DateTime<Utc>,
        command: TaskCommand,
    ) -> Position {
        let what = format!("{command:?}");
        let outcome = self
            .tasks
            .execute(
                &task.to_string(),
                Issued::new(user, at, command),
                &(),
                user_metadata(user),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(
            outcome.receipt.event_ids.len(),
            1,
            "{what} writes one event"
        );
        outcome.receipt.position.expect("a position")
    }

    /// Creates a task of `user` at `at`, due at `due`; returns its id.
    async fn create(&self, user: Uuid, at: DateTime<Utc>, due: Option<DateTime<Utc>>) -> Uuid {
        self.create_with(user, at, due, None).await
    }

    async fn create_with(
        &self,
        user: Uuid,
        at: DateTime<Utc>,
        due: Option<DateTime<Utc>>,
        recurrence: Option<Recurrence>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let new = NewTask {
            task_id: id,
            title: format!("task {id}"),
            due,
            recurrence,
            ..NewTask::default()
        };
        self.exec(user, id, at, TaskCommand::Create(new)).await;
        id
    }

    async fn complete(&self, user: Uuid, task: Uuid, at: DateTime<Utc>) -> Position {
        self.exec(user, task, at, TaskCommand::Complete).await
    }

    /// Sets `user`'s clock (at the start of 2026).
    async fn clock(&self, user: Uuid, timezone: &str, day_start_hour: u32) -> Position {
        common::set_clock(&self.preferences, user, timezone, day_start_hour).await
    }

    async fn days(&self, user: Uuid, from: NaiveDate, to: NaiveDate) -> Vec<TaskDay> {
        TaskDaily::days(&self.models, user, from, to)
            .await
            .expect("days")
    }
}

/// Waits (bounded) until `runner` has applied `target`.
async fn caught_up(runner: &mut RunnerHandle, target: Position) {
    let reached = timeout(WAIT, runner.progress.wait_for(|p| *p >= target))
        .await
        .unwrap_or_else(|_| panic!("runner did not reach {target} within {WAIT:?}"))
        .map(|p| *p);
    reached.unwrap_or_else(|_| panic!("runner ended before reaching {target}"));
}

/// (day, created, completed, overdue at day end) of each day.
fn summary(days: &[TaskDay]) -> Vec<(NaiveDate, u32, u32, u32)> {
    days.iter()
        .map(|d| (d.day, d.created, d.completed, d.overdue_at_day_end))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// New York, days from midnight, across 2026-03-08 (23 hours: 05:00Z to 04:00Z): creations and
/// completions land on their local day, and a task due 00:30 EDT the next day is not overdue at
/// the end of the short day (a fixed EST offset would end it at 05:00Z, after that due time).
async fn rollup_across_spring_dst_in_new_york(store: Store) {
    let env = Env::new(store);
    let mut runner = env.runner();
    let user = Uuid::now_v7();
    env.clock(user, "America/New_York", 0).await;
    let range = UserClock::new("America/New_York", 0).day_range(date(2026, 3, 8));
    assert_eq!(
        (range.start, range.end),
        (utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0))
    );

    // created 3/7 23:30 EST, due 3/8 01:30 EST; completed 3/9 12:00 EDT
    let a = env
        .create(user, utc(2026, 3, 8, 4, 30), Some(utc(2026, 3, 8, 6, 30)))
        .await;
    // created 01:50 EST, completed 03:15 EDT (across the jump)
    let b = env.create(user, utc(2026, 3, 8, 6, 50), None).await;
    env.complete(user, b, utc(2026, 3, 8, 7, 15)).await;
    // due 3/9 00:30 EDT: after the end of the 23-hour day
    env.create(user, utc(2026, 3, 8, 16, 0), Some(utc(2026, 3, 9, 4, 30)))
        .await;
    // due 3/8 23:45 EDT, completed 23:50 EDT (3/9 in UTC): a completion of 3/8, not overdue
    let d = env
        .create(user, utc(2026, 3, 8, 16, 5), Some(utc(2026, 3, 9, 3, 45)))
        .await;
    env.complete(user, d, utc(2026, 3, 9, 3, 50)).await;
    // created 3/9 00:10 EDT
    env.create(user, utc(2026, 3, 9, 4, 10), None).await;
    let p = env.complete(user, a, utc(2026, 3, 9, 16, 0)).await;
    caught_up(&mut runner, p).await;

    let days = env.days(user, date(2026, 3, 6), date(2026, 3, 10)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 3, 6), 0, 0, 0),
            // a was created at 23:30, due after midnight
            (date(2026, 3, 7), 1, 0, 0),
            // a is overdue at 04:00Z; c (due 04:30Z) not yet; d was completed in time
            (date(2026, 3, 8), 3, 2, 1),
            // a completed; c overdue
            (date(2026, 3, 9), 1, 1, 1),
            (date(2026, 3, 10), 0, 0, 1),
        ]
    );
    assert_eq!(
        TaskDaily::clock(&env.models, user).await.unwrap(),
        UserClock::new("America/New_York", 0)
    );
    runner.stop().await.expect("runner stops");
}

/// Paris, days from midnight, across 2026-10-25 (25 hours: 10/24 22:00Z to 10/25 23:00Z): a task
/// due 23:30 CET is overdue at the end of the long day, and a completion at 23:45 CET counts for
/// the 25th (a fixed CEST offset would end the day at 22:00Z and get both wrong).
async fn rollup_across_autumn_dst_in_paris(store: Store) {
    let env = Env::new(store);
    let mut runner = env.runner();
    let user = Uuid::now_v7();
    env.clock(user, "Europe/Paris", 0).await;
    let range = UserClock::new("Europe/Paris", 0).day_range(date(2026, 10, 25));
    assert_eq!(
        (range.start, range.end),
        (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0))
    );

    // created 10/24 23:30 CEST (21:30Z): the 24th; due 10/25 23:30 CET
    let late = env
        .create(
            user,
            utc(2026, 10, 24, 21, 30),
            Some(utc(2026, 10, 25, 22, 30)),
        )
        .await;
    // created 10/25 00:30 CEST (22:30Z on the 24th): the 25th; due 02:30 CEST, done 02:30 CET
    let twice = env
        .create(
            user,
            utc(2026, 10, 24, 22, 30),
            Some(utc(2026, 10, 25, 0, 30)),
        )
        .await;
    env.complete(user, twice, utc(2026, 10, 25, 1, 30)).await;
    // completed 23:45 CET (22:45Z): the 25th
    let evening = env
        .create(
            user,
            utc(2026, 10, 25, 12, 0),
            Some(utc(2026, 10, 25, 20, 0)),
        )
        .await;
    env.complete(user, evening, utc(2026, 10, 25, 22, 45)).await;
    // created 10/26 00:15 CET (23:15Z on the 25th): the 26th
    env.create(user, utc(2026, 10, 25, 23, 15), None).await;
    let p = env.complete(user, late, utc(2026, 10, 26, 9, 0)).await;
    caught_up(&mut runner, p).await;

    let days = env.days(user, date(2026, 10, 24), date(2026, 10, 26)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 10, 24), 1, 0, 0),
            // late due 22:30Z is before the 23:00Z end; evening completed at 22:45Z in time
            (date(2026, 10, 25), 2, 2, 1),
            (date(2026, 10, 26), 1, 1, 0),
        ]
    );
    runner.stop().await.expect("runner stops");
}

/// Paris with days from 04:00 around 2026-10-25 (the local day 10/24 has 25 hours: 02:00Z to
/// 03:00Z the next day). The rule at a 04:00 day start: a task due 03:00 local on the 26th is due
/// within the local day 10/25, so it is overdue at the end of that day (10/26 04:00) when still
/// open then — not when completed before 04:00 (a completion at 02:30 local also counts for the
/// 25th); a task due exactly 04:00 is not overdue until the end of the next day.
async fn rollup_with_a_4am_day_start(store: Store) {
    let env = Env::new(store);
    let mut runner = env.runner();
    let user = Uuid::now_v7();
    env.clock(user, "Europe/Paris", 4).await;
    let clock = UserClock::new("Europe/Paris", 4);
    let long = clock.day_range(date(2026, 10, 24));
    assert_eq!(
        (long.start, long.end),
        (utc(2026, 10, 24, 2, 0), utc(2026, 10, 25, 3, 0))
    );
    assert_eq!(
        clock.day_range(date(2026, 10, 25)).end,
        utc(2026, 10, 26, 3, 0)
    );

    let created = utc(2026, 10, 20, 10, 0); // 12:00 CEST on the 20th
    // due 10/26 03:00 CET, left open
    env.create(user, created, Some(utc(2026, 10, 26, 2, 0)))
        .await;
    // due 10/26 03:00 CET, completed 02:30 CET: counts for the 25th, in time
    let done = env
        .create(user, created, Some(utc(2026, 10, 26, 2, 0)))
        .await;
    env.complete(user, done, utc(2026, 10, 26, 1, 30)).await;
    // due exactly 04:00 CET on the 26th: the first instant of the local day 10/26
    env.create(user, created, Some(utc(2026, 10, 26, 3, 0)))
        .await;
    // created 10/24 14:00 CEST, due 20:00 CEST, completed 10/25 03:30 CET (after the clocks
    // went back at 01:00Z, before 04:00): the long day 10/24
    let night = env
        .create(
            user,
            utc(2026, 10, 24, 12, 0),
            Some(utc(2026, 10, 24, 18, 0)),
        )
        .await;
    let p = env.complete(user, night, utc(2026, 10, 25, 2, 30)).await;
    caught_up(&mut runner, p).await;

    let days = env.days(user, date(2026, 10, 20), date(2026, 10, 26)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 10, 20), 3, 0, 0),
            (date(2026, 10, 21), 0, 0, 0),
            (date(2026, 10, 22), 0, 0, 0),
            (date(2026, 10, 23), 0, 0, 0),
            (date(2026, 10, 24), 1, 1, 0),
            (date(2026, 10, 25), 0, 1, 1),
            (date(2026, 10, 26), 0, 0, 2),
        ]
    );
    runner.stop().await.expect("runner stops");
}

/// UTC days. A daily recurring task: each completed occurrence counts, and a late completion
/// (repeat from due date) leaves it overdue; skipping counts nothing. A task completed, then
/// reopened, then deleted: the completion stays counted, it is overdue only while reopened, and
/// past days answer the same before and after the later changes.
async fn occurrences_reopen_and_delete(store: Store) {
    let env = Env::new(store);
    let mut runner = env.runner();
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let daily = Recurrence {
        rule: RecurrenceRule::Every {
            interval: 1,
            unit: IntervalUnit::Days,
        },
        repeat_from: RepeatFrom::DueDate,
        time_zone: None,
    };

    // due 6/1 09:00, then 6/2, 6/3 ...
    let r = env
        .create_with(
            user,
            utc(2026, 6, 1, 8, 0),
            Some(utc(2026, 6, 1, 9, 0)),
            Some(daily),
        )
        .await;
    env.complete(user, r, utc(2026, 6, 1, 10, 0)).await; // next 6/2 09:00, missed on 6/2
    env.complete(user, r, utc(2026, 6, 3, 8, 0)).await; // the 6/2 one, late: next 6/3 09:00
    // x: due 6/1 12:00, completed 6/1 11:00, reopened 6/2 08:00
    let x = env
        .create(user, utc(2026, 6, 1, 8, 30), Some(utc(2026, 6, 1, 12, 0)))
        .await;
    env.complete(user, x, utc(2026, 6, 1, 11, 0)).await;
    env.exec(user, x, utc(2026, 6, 2, 8, 0), TaskCommand::Reopen)
        .await;
    // someone else's overdue task is never counted
    env.create(other, utc(2026, 6, 1, 8, 0), Some(utc(2026, 6, 1, 9, 0)))
        .await;
    let p = env
        .exec(user, r, utc(2026, 6, 4, 7, 0), TaskCommand::SkipOccurrence)
        .await; // 6/3 09:00 skipped: next 6/4 09:00
    caught_up(&mut runner, p).await;

    let expected_before = vec![
        // r's occurrence and x completed; r due 6/2 09:00 now
        (date(2026, 6, 1), 2, 2, 0),
        // r (due 6/2 09:00) and x (reopened, due 6/1) overdue
        (date(2026, 6, 2), 0, 0, 2),
        // r completed late, due 6/3 09:00 again: still overdue; x too
        (date(2026, 6, 3), 0, 1, 2),
        // r skipped to 6/4 09:00: overdue; x
        (date(2026, 6, 4), 0, 0, 2),
    ];
    let from_to = (date(2026, 6, 1), date(2026, 6, 4));
    assert_eq!(
        summary(&env.days(user, from_to.0, from_to.1).await),
        expected_before
    );

    // later changes: x deleted on 6/4 at 10:00, r postponed on 6/4 to 6/20
    env.exec(user, x, utc(2026, 6, 4, 10, 0), TaskCommand::Delete)
        .await;
    let p = env
        .exec(
            user,
            r,
            utc(2026, 6, 4, 11, 0),
            TaskCommand::Update(TaskChanges {
                due: Some(Some(utc(2026, 6, 20, 9, 0))),
                ..TaskChanges::default()
            }),
        )
        .await;
    caught_up(&mut runner, p).await;
    let after = summary(&env.days(user, from_to.0, date(2026, 6, 21)).await);
    assert_eq!(
        after[..3],
        expected_before[..3],
        "past days are answered as they were"
    );
    assert_eq!(
        after[3],
        (date(2026, 6, 4), 0, 0, 0),
        "deleted and postponed that day"
    );
    assert_eq!(after[18], (date(2026, 6, 19), 0, 0, 0));
    assert_eq!(after[19], (date(2026, 6, 20), 0, 0, 1));
    assert_eq!(
        summary(&env.days(other, date(2026, 6, 1), date(2026, 6, 1)).await),
        vec![(date(2026, 6, 1), 1, 0, 1)]
    );
    runner.stop().await.expect("runner stops");
}

/// A new runner resumes from its checkpoint: nothing is counted twice.
async fn restart_without_double_counting(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let at = |h, m| utc(2026, 7, 10, h, m);
    let model = TaskDaily.model();

    let mut first = env.runner();
    let a = env.create(user, at(8, 0), Some(at(9, 0))).await;
    let p = env.complete(user, a, at(10, 0)).await;
    caught_up(&mut first, p).await;
    first.stop().await.expect("runner stops");
    assert_eq!(env.models.checkpoint(&model).await.unwrap(), p);
    assert_eq!(
        summary(&env.days(user, date(2026, 7, 10), date(2026, 7, 10)).await),
        vec![(date(2026, 7, 10), 1, 1, 0)]
    );

    // while no runner runs
    env.create(user, at(11, 0), Some(at(12, 0))).await;
    let b = env.create(user, at(11, 30), None).await;
    let last = env.complete(user, b, at(13, 0)).await;
    assert_eq!(
        env.models.checkpoint(&model).await.unwrap(),
        p,
        "nothing projected without a runner"
    );

    let mut second = env.runner();
    caught_up(&mut second, last).await;
    second.stop().await.expect("runner stops");
    let expected = vec![(date(2026, 7, 10), 3, 2, 1)];
    assert_eq!(
        summary(&env.days(user, date(2026, 7, 10), date(2026, 7, 10)).await),
        expected
    );
    let head = env.store.head().await.unwrap();
    assert_eq!(head, last);

    // a third start with nothing new applies nothing
    let mut third = env.runner();
    caught_up(&mut third, head).await;
    third.stop().await.expect("runner stops");
    assert_eq!(env.models.checkpoint(&model).await.unwrap(), head);
    assert_eq!(
        summary(&env.days(user, date(2026, 7, 10), date(2026, 7, 10)).await),
        expected
    );
}
