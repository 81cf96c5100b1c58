//! The Focus read models end to end on both backends: commands go through
//! `AggregateStore::execute` with explicit times, the runners fold the log into `focus_sessions`
//! and `focus_daily`, queries read them back.
//!
//! Every case is one generic async fn taking a [`Store`]; `store::on_both_stores!` instantiates it as
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Tests wait on the runners' progress, bounded, never on sleeps.

mod common;

use common::{user_metadata, utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aggregates::Issued;
use aggregates::focus::{FocusCommand, FocusKind, FocusTimer, StartFocus};
use aggregates::preferences::{PreferencesPatch, UserPreferences};
use chrono::{DateTime, NaiveDate, Utc};
use projections::daily::UserClock;
use projections::focus_daily::{DayFocus, FocusDaily};
use projections::focus_sessions::{FocusSessions, SessionState, SessionView, TimerView};
use projections::{Projection, ProjectionRunner, ReadModels, RunnerHandle};
use store::{AggregateStore, Journal, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for a runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    sessions_in_a_day_range => sqlite_sessions_in_a_day_range, postgres_sessions_in_a_day_range;
    rollup_across_dst_in_new_york => sqlite_rollup_across_dst_in_new_york, postgres_rollup_across_dst_in_new_york;
    rollup_with_a_4am_day_start_in_paris => sqlite_rollup_with_a_4am_day_start_in_paris, postgres_rollup_with_a_4am_day_start_in_paris;
    minutes_per_linked_task_and_cycle => sqlite_minutes_per_linked_task_and_cycle, postgres_minutes_per_linked_task_and_cycle;
    changing_the_zone_does_not_rebucket => sqlite_changing_the_zone_does_not_rebucket, postgres_changing_the_zone_does_not_rebucket;
    restart_without_double_counting => sqlite_restart_without_double_counting, postgres_restart_without_double_counting;
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A store with the focus and preferences command paths and the read models on it.
struct Env {
    store: Store,
    timers: AggregateStore<FocusTimer, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
    models: ReadModels,
}

/// The two focus runners.
struct Runners {
    sessions: RunnerHandle,
    daily: RunnerHandle,
}

impl Runners {
    /// Waits (bounded) until both runners have applied `target`.
    async fn caught_up(&mut self, target: Position) {
        for (name, handle) in [("sessions", &mut self.sessions), ("daily", &mut self.daily)] {
            let reached = timeout(WAIT, handle.progress.wait_for(|p| *p >= target))
                .await
                .unwrap_or_else(|_| panic!("{name} runner did not reach {target} within {WAIT:?}"))
                .map(|p| *p);
            reached.unwrap_or_else(|_| panic!("{name} runner ended before reaching {target}"));
        }
    }

    async fn stop(self) {
        self.sessions.stop().await.expect("sessions runner stops");
        self.daily.stop().await.expect("daily runner stops");
    }
}

/// One session to run through the command path.
struct Session {
    kind: FocusKind,
    task: Option<Uuid>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    abandon: bool,
    /// (pause, resume) pairs.
    pauses: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    interruptions: Vec<DateTime<Utc>>,
}

fn session(kind: FocusKind, start: DateTime<Utc>, end: DateTime<Utc>) -> Session {
    Session {
        kind,
        task: None,
        start,
        end,
        abandon: false,
        pauses: Vec::new(),
        interruptions: Vec::new(),
    }
}

fn pomodoro(start: DateTime<Utc>, end: DateTime<Utc>) -> Session {
    session(FocusKind::Pomodoro, start, end)
}

impl Session {
    fn task(mut self, task: Uuid) -> Self {
        self.task = Some(task);
        self
    }

    fn abandoned(mut self) -> Self {
        self.abandon = true;
        self
    }

    fn pause(mut self, at: DateTime<Utc>, until: DateTime<Utc>) -> Self {
        self.pauses.push((at, until));
        self
    }

    fn interrupt(mut self, at: DateTime<Utc>) -> Self {
        self.interruptions.push(at);
        self
    }
}

impl Env {
    fn new(store: Store) -> Self {
        Self {
            timers: AggregateStore::new(store.clone()),
            preferences: AggregateStore::new(store.clone()),
            models: ReadModels::new(store.clone()),
            store,
        }
    }

    fn runners(&self) -> Runners {
        Runners {
            sessions: ProjectionRunner::new(Arc::new(FocusSessions), self.models.clone()).spawn(),
            daily: ProjectionRunner::new(Arc::new(FocusDaily), self.models.clone()).spawn(),
        }
    }

    /// Executes `command` on `user`'s timer at `at`; returns the position of its (one) event.
    async fn exec(&self, user: Uuid, at: DateTime<Utc>, command: FocusCommand) -> Position {
        let what = format!("{command:?}");
        let outcome = self
            .timers
            .execute(
                &user.to_string(),
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

    /// Sets `user`'s preferences at `at`.
    async fn prefs(&self, user: Uuid, at: DateTime<Utc>, patch: PreferencesPatch) -> Position {
        common::set_preferences(&self.preferences, user, at, patch).await
    }

    async fn clock(&self, user: Uuid, timezone: &str, day_start_hour: u32) -> Position {
        common::set_clock(&self.preferences, user, timezone, day_start_hour).await
    }

    /// Runs `s` (start, interruptions, pauses, end) as `user`; returns its id and the position
    /// of its last event.
    async fn run(&self, user: Uuid, s: Session) -> (Uuid, Position) {
        let id = Uuid::now_v7();
        let planned = match s.kind {
            FocusKind::Flowtime => None,
            _ => Some(((s.end - s.start).num_minutes().max(1)) as u32),
        };
        self.exec(
            user,
            s.start,
            FocusCommand::Start(StartFocus {
                session_id: id,
                kind: s.kind,
                planned_minutes: planned,
                task_id: s.task,
            }),
        )
        .await;
        let mut steps: Vec<(DateTime<Utc>, FocusCommand)> = Vec::new();
        for (at, until) in s.pauses {
            steps.push((at, FocusCommand::Pause { session_id: id }));
            steps.push((until, FocusCommand::Resume { session_id: id }));
        }
        for at in s.interruptions {
            steps.push((
                at,
                FocusCommand::RecordInterruption {
                    session_id: id,
                    reason: "door".into(),
                },
            ));
        }
        steps.sort_by_key(|(at, _)| *at);
        for (at, command) in steps {
            self.exec(user, at, command).await;
        }
        let end = if s.abandon {
            FocusCommand::Abandon {
                session_id: id,
                reason: "gave up".into(),
            }
        } else {
            FocusCommand::Complete { session_id: id }
        };
        (id, self.exec(user, s.end, end).await)
    }

    async fn days(&self, user: Uuid, from: NaiveDate, to: NaiveDate) -> Vec<DayFocus> {
        FocusDaily::days(&self.models, user, from, to)
            .await
            .expect("days")
    }

    async fn in_days(&self, user: Uuid, from: NaiveDate, to: NaiveDate) -> Vec<Uuid> {
        let clock = FocusDaily::clock(&self.models, user).await.expect("clock");
        let sessions = FocusSessions::in_days(&self.models, user, &clock, from, to, 1000)
            .await
            .expect("sessions in days");
        ids(&sessions)
    }

    async fn timer(&self, user: Uuid) -> TimerView {
        FocusSessions::timer(&self.models, user)
            .await
            .expect("timer")
    }

    async fn checkpoints(&self) -> (Position, Position) {
        (
            self.models
                .checkpoint(&FocusSessions.model())
                .await
                .expect("sessions checkpoint"),
            self.models
                .checkpoint(&FocusDaily.model())
                .await
                .expect("daily checkpoint"),
        )
    }
}

fn ids(sessions: &[SessionView]) -> Vec<Uuid> {
    sessions.iter().map(|s| s.session_id).collect()
}

/// (day, completed, abandoned, focused minutes) of each day.
fn summary(days: &[DayFocus]) -> Vec<(NaiveDate, u32, u32, f64)> {
    days.iter()
        .map(|d| (d.day, d.completed, d.abandoned, d.focused_minutes()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Sessions list by start time; a local day range of New York on the DST day (23 hours) takes
/// exactly the sessions that started on it; pages walk them in order; users never cross.
async fn sessions_in_a_day_range(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    env.clock(alice, "America/New_York", 0).await;

    // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z); the local day is 05:00Z to 04:00Z
    let (before, _) = env
        .run(
            alice,
            pomodoro(utc(2026, 3, 8, 4, 30), utc(2026, 3, 8, 4, 55)),
        )
        .await; // 3/7 23:30 EST
    let (early, _) = env
        .run(
            alice,
            pomodoro(utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 5, 55)),
        )
        .await; // 00:30 EST
    let (jump, _) = env
        .run(
            alice,
            pomodoro(utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7, 15)),
        )
        .await; // 01:50 EST to 03:15 EDT
    let (late, _) = env
        .run(
            alice,
            pomodoro(utc(2026, 3, 9, 3, 30), utc(2026, 3, 9, 3, 50)),
        )
        .await; // 3/8 23:30 EDT
    let (next, _) = env
        .run(
            alice,
            pomodoro(utc(2026, 3, 9, 4, 10), utc(2026, 3, 9, 4, 30)),
        )
        .await; // 3/9 00:10 EDT
    let (bobs, _) = env
        .run(
            bob,
            pomodoro(utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 12, 25)),
        )
        .await;
    let running = Uuid::now_v7();
    let p = env
        .exec(
            alice,
            utc(2026, 3, 9, 10, 0),
            FocusCommand::Start(StartFocus {
                session_id: running,
                kind: FocusKind::Flowtime,
                planned_minutes: None,
                task_id: None,
            }),
        )
        .await;
    runners.caught_up(p).await;

    assert_eq!(
        env.in_days(alice, date(2026, 3, 8), date(2026, 3, 8)).await,
        vec![early, jump, late],
        "the local day of New York, not the UTC one"
    );
    assert_eq!(
        env.in_days(alice, date(2026, 3, 7), date(2026, 3, 9)).await,
        vec![before, early, jump, late, next, running]
    );
    assert_eq!(
        env.in_days(bob, date(2026, 3, 8), date(2026, 3, 8)).await,
        vec![bobs],
        "bob's clock is UTC and his sessions are his own"
    );

    // a time range is [from, to)
    let (page, next_page) = FocusSessions::list(
        &env.models,
        alice,
        Some(utc(2026, 3, 8, 5, 30)),
        Some(utc(2026, 3, 9, 3, 30)),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(ids(&page), vec![early, jump]);
    assert!(next_page.is_none());

    // pages of 2 walk every session once, in start order
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next_page) =
            FocusSessions::list(&env.models, alice, None, None, cursor.as_ref(), 2)
                .await
                .unwrap();
        assert!(page.len() <= 2);
        seen.extend(ids(&page));
        match next_page {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, vec![before, early, jump, late, next, running]);

    let jumped = FocusSessions::get(&env.models, alice, jump)
        .await
        .unwrap()
        .expect("the session across the jump");
    assert_eq!(jumped.state, SessionState::Completed);
    assert_eq!(
        jumped.focused_seconds,
        25 * 60,
        "25 real minutes, not 85 wall ones"
    );
    assert_eq!(
        FocusSessions::get(&env.models, bob, jump).await.unwrap(),
        None,
        "bob cannot read alice's session"
    );

    let timer = env.timer(alice).await;
    assert_eq!(timer.running, Some(running));
    let live = FocusSessions::get(&env.models, alice, running)
        .await
        .unwrap()
        .expect("running session");
    assert_eq!(live.state, SessionState::Running);
    assert_eq!(
        live.focused_seconds_at(utc(2026, 3, 9, 10, 7)),
        7 * 60,
        "running: as of the query"
    );
    assert_eq!(env.timer(bob).await.running, None);
    runners.stop().await;
}

/// New York, days from midnight, across 2026-03-08 (23 hours): each session lands on the local
/// day it ended in, and a session across the jump counts its real minutes.
async fn rollup_across_dst_in_new_york(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let user = Uuid::now_v7();
    env.clock(user, "America/New_York", 0).await;

    // ends 3/7 23:59 EST (3/8 in UTC)
    env.run(
        user,
        pomodoro(utc(2026, 3, 8, 4, 34), utc(2026, 3, 8, 4, 59)),
    )
    .await;
    // ends 01:30 EST
    env.run(
        user,
        pomodoro(utc(2026, 3, 8, 6, 5), utc(2026, 3, 8, 6, 30)),
    )
    .await;
    // 01:50 EST to 03:15 EDT: 25 minutes
    env.run(
        user,
        pomodoro(utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7, 15)),
    )
    .await;
    // ends 3/8 23:50 EDT (3/9 in UTC)
    env.run(
        user,
        pomodoro(utc(2026, 3, 9, 3, 25), utc(2026, 3, 9, 3, 50)),
    )
    .await;
    // ends 3/9 00:10 EDT
    let (_, p) = env
        .run(
            user,
            pomodoro(utc(2026, 3, 9, 3, 55), utc(2026, 3, 9, 4, 10)).abandoned(),
        )
        .await;
    runners.caught_up(p).await;

    let days = env.days(user, date(2026, 3, 6), date(2026, 3, 10)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 3, 6), 0, 0, 0.0),
            (date(2026, 3, 7), 1, 0, 25.0),
            (date(2026, 3, 8), 3, 0, 75.0),
            (date(2026, 3, 9), 0, 1, 15.0),
            (date(2026, 3, 10), 0, 0, 0.0),
        ]
    );
    let clock = FocusDaily::clock(&env.models, user).await.unwrap();
    assert_eq!(clock, UserClock::new("America/New_York", 0));
    let range = clock.day_range(date(2026, 3, 8));
    assert_eq!(range.end - range.start, chrono::Duration::hours(23));
    assert_eq!(
        FocusDaily::day(&env.models, user, date(2026, 3, 8))
            .await
            .unwrap()
            .completed,
        3
    );
    runners.stop().await;
}

/// Paris with days from 04:00: a session ending at 02:30 local counts for the previous day, also
/// on the night summer time begins (2026-03-29, 02:00 CET → 03:00 CEST).
async fn rollup_with_a_4am_day_start_in_paris(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let user = Uuid::now_v7();
    env.clock(user, "Europe/Paris", 4).await;

    // ends 3/28 02:30 CET → the 27th
    env.run(
        user,
        pomodoro(utc(2026, 3, 28, 1, 5), utc(2026, 3, 28, 1, 30)),
    )
    .await;
    // ends 3/28 12:00 CET → the 28th
    env.run(
        user,
        pomodoro(utc(2026, 3, 28, 10, 35), utc(2026, 3, 28, 11, 0)),
    )
    .await;
    // ends 3/29 03:30 CEST (after the jump, before 04:00) → the 28th
    env.run(
        user,
        pomodoro(utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 30)),
    )
    .await;
    // ends 3/29 04:10 CEST → the 29th
    env.run(
        user,
        pomodoro(utc(2026, 3, 29, 1, 45), utc(2026, 3, 29, 2, 10)),
    )
    .await;
    // ends 3/30 02:30 CEST → the 29th
    let (_, p) = env
        .run(
            user,
            pomodoro(utc(2026, 3, 30, 0, 5), utc(2026, 3, 30, 0, 30)),
        )
        .await;
    runners.caught_up(p).await;

    let days = env.days(user, date(2026, 3, 27), date(2026, 3, 30)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 3, 27), 1, 0, 25.0),
            (date(2026, 3, 28), 2, 0, 65.0),
            (date(2026, 3, 29), 2, 0, 50.0),
            (date(2026, 3, 30), 0, 0, 0.0),
        ]
    );
    runners.stop().await;
}

/// Focused minutes exclude pauses and breaks, counts follow outcomes, each linked task gets its
/// minutes; the timer row follows the pomodoro cycle with the user's settings.
async fn minutes_per_linked_task_and_cycle(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (task_a, task_b) = (Uuid::now_v7(), Uuid::now_v7());
    let patch = PreferencesPatch {
        cycles_before_long_break: Some(2),
        long_break_minutes: Some(20),
        ..PreferencesPatch::default()
    };
    env.prefs(user, utc(2026, 3, 31, 0, 0), patch).await;
    let at = |h, m| utc(2026, 4, 1, h, m);

    // 25 minutes with a 5 minute pause and 2 interruptions: 20 focused
    env.run(
        user,
        pomodoro(at(9, 0), at(9, 25))
            .task(task_a)
            .pause(at(9, 10), at(9, 15))
            .interrupt(at(9, 5))
            .interrupt(at(9, 12)),
    )
    .await;
    env.run(user, session(FocusKind::ShortBreak, at(9, 25), at(9, 30)))
        .await;
    env.run(user, pomodoro(at(10, 0), at(10, 25)).task(task_a))
        .await;
    let timer = {
        let p = env
            .exec(
                other,
                at(10, 30),
                FocusCommand::Start(StartFocus {
                    session_id: Uuid::now_v7(),
                    kind: FocusKind::Pomodoro,
                    planned_minutes: Some(25),
                    task_id: Some(task_a),
                }),
            )
            .await;
        runners.caught_up(p).await;
        env.timer(user).await
    };
    assert_eq!(timer.cycle.pomodoros, 2);
    assert_eq!(
        timer.suggested_next(),
        FocusKind::LongBreak,
        "2 pomodoros with cycles_before_long_break = 2"
    );
    assert_eq!(timer.default_minutes(FocusKind::LongBreak), Some(20));
    assert_eq!(timer.running, None);

    env.run(
        user,
        session(FocusKind::Countdown, at(11, 0), at(11, 35)).task(task_b),
    )
    .await;
    env.run(
        user,
        session(FocusKind::Flowtime, at(13, 0), at(13, 30)).abandoned(),
    )
    .await;
    let (_, p) = env
        .run(
            user,
            pomodoro(at(14, 0), at(14, 5)).task(task_b).abandoned(),
        )
        .await;
    runners.caught_up(p).await;

    let day = FocusDaily::day(&env.models, user, date(2026, 4, 1))
        .await
        .unwrap();
    assert_eq!(
        day,
        DayFocus {
            day: date(2026, 4, 1),
            focused_seconds: (20 + 25 + 35 + 30 + 5) * 60,
            completed: 3,
            abandoned: 2,
            interruptions: 2,
            breaks_completed: 1,
            break_seconds: 5 * 60,
            tasks: BTreeMap::from([(task_a, 45 * 60), (task_b, 40 * 60)]),
        }
    );
    assert_eq!(day.focused_minutes(), 115.0);
    let timer = env.timer(user).await;
    assert_eq!(
        (timer.cycle.pomodoros, timer.suggested_next()),
        (2, FocusKind::LongBreak),
        "countdown, flowtime and abandoned pomodoros are outside the cycle"
    );
    let others = FocusDaily::day(&env.models, other, date(2026, 4, 1))
        .await
        .unwrap();
    assert_eq!(
        others,
        DayFocus::empty(date(2026, 4, 1)),
        "nothing ended for the other user"
    );
    assert!(env.timer(other).await.running.is_some());
    runners.stop().await;
}

/// Days already rolled up stay where they are when the user changes zone; later sessions use the
/// new zone.
async fn changing_the_zone_does_not_rebucket(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let user = Uuid::now_v7();

    // UTC: ends 5/1 23:30 (5/2 08:30 in Tokyo)
    env.run(
        user,
        pomodoro(utc(2026, 5, 1, 23, 5), utc(2026, 5, 1, 23, 30)),
    )
    .await;
    let patch = PreferencesPatch {
        timezone: Some("Asia/Tokyo".into()),
        ..PreferencesPatch::default()
    };
    env.prefs(user, utc(2026, 5, 2, 0, 0), patch).await;
    // Tokyo: ends 5/2 23:00 JST
    env.run(
        user,
        pomodoro(utc(2026, 5, 2, 13, 35), utc(2026, 5, 2, 14, 0)),
    )
    .await;
    // Tokyo: ends 5/3 01:00 JST (5/2 in UTC)
    let (_, p) = env
        .run(
            user,
            pomodoro(utc(2026, 5, 2, 15, 35), utc(2026, 5, 2, 16, 0)),
        )
        .await;
    runners.caught_up(p).await;

    let days = env.days(user, date(2026, 5, 1), date(2026, 5, 3)).await;
    assert_eq!(
        summary(&days),
        vec![
            (date(2026, 5, 1), 1, 0, 25.0),
            (date(2026, 5, 2), 1, 0, 25.0),
            (date(2026, 5, 3), 1, 0, 25.0),
        ]
    );
    assert_eq!(
        FocusDaily::clock(&env.models, user).await.unwrap(),
        UserClock::new("Asia/Tokyo", 0)
    );
    runners.stop().await;
}

/// New runners resume from their checkpoints: nothing is counted twice.
async fn restart_without_double_counting(store: Store) {
    let env = Env::new(store);
    let user = Uuid::now_v7();
    let task = Uuid::now_v7();
    let at = |h, m| utc(2026, 6, 10, h, m);

    let mut first = env.runners();
    env.run(user, pomodoro(at(9, 0), at(9, 25)).task(task))
        .await;
    let (_, p) = env
        .run(user, session(FocusKind::ShortBreak, at(9, 25), at(9, 30)))
        .await;
    first.caught_up(p).await;
    first.stop().await;
    assert_eq!(
        env.checkpoints().await,
        (p, p),
        "the stopped runners' checkpoints"
    );
    let before = FocusDaily::day(&env.models, user, date(2026, 6, 10))
        .await
        .unwrap();
    assert_eq!((before.completed, before.breaks_completed), (1, 1));

    // while no runner runs
    env.run(user, pomodoro(at(10, 0), at(10, 25)).task(task))
        .await;
    let (_, last) = env
        .run(user, pomodoro(at(11, 0), at(11, 10)).abandoned())
        .await;
    assert_eq!(
        env.checkpoints().await,
        (p, p),
        "nothing projected without runners"
    );

    let mut second = env.runners();
    second.caught_up(last).await;
    second.stop().await;
    let after = FocusDaily::day(&env.models, user, date(2026, 6, 10))
        .await
        .unwrap();
    assert_eq!(
        (after.completed, after.abandoned, after.breaks_completed),
        (2, 1, 1)
    );
    assert_eq!(after.focused_seconds, (25 + 25 + 10) * 60);
    assert_eq!(after.tasks, BTreeMap::from([(task, 50 * 60)]));
    assert_eq!(env.timer(user).await.cycle.pomodoros, 2);
    let (sessions, _) = FocusSessions::list(&env.models, user, None, None, None, 100)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 4);
    let head = env.store.head().await.unwrap();
    assert_eq!(head, last);
    assert_eq!(env.checkpoints().await, (head, head));

    // a third start with nothing new applies nothing
    let mut third = env.runners();
    third.caught_up(head).await;
    third.stop().await;
    assert_eq!(
        FocusDaily::day(&env.models, user, date(2026, 6, 10))
            .await
            .unwrap(),
        after
    );
}
