//! `task_daily`: per user per **local** day — tasks created, completions, and tasks overdue at
//! the end of the day.
//!
//! The local day comes from the user's clock ([`UserClock`]: preferences time zone and day start
//! hour), kept from the `preferences` events in a row of this model (see [`crate::daily`]).
//!
//! ## Created and completed: folded
//!
//! Each day row ([`DayTasks`]) counts, on the local day of the event's own time (the clock the
//! user had when the event was folded, like every rollup):
//! - `created`: `TaskCreated`;
//! - `completed`: every completion recorded — `TaskCompleted` and `TaskOccurrenceCompleted` (a
//!   completed occurrence of a recurring task counts once). A skipped occurrence is not a
//!   completion. **Reopening does not take back a completion already counted** (the work was
//!   done that day; a later completion after the reopen counts again), and deleting a task takes
//!   back neither its creation nor its completions.
//!
//! ## Overdue at day end: computed when queried
//!
//! No event fires when a due time passes, so "overdue at the end of day D" cannot be folded.
//! Instead the model keeps one row per task ([`TaskFacts`]) that answers "was it overdue at
//! instant `t`" exactly for any `t`, past or future, however the task changed afterwards. A
//! query evaluates [`TaskFacts::overdue_at`] at each day's end ([`overdue_at_day_ends`], pure).
//!
//! The rule, at an instant `t` (a day's end `E` is the first instant of the next local day):
//! the state at `t` is the one left by every change made strictly before `t`, so the state set
//! by the change at `c_i` holds for `t` in `(c_i, c_{i+1}]`. The changes are the creation
//! (its due time), due time updates, occurrence completions and skips (moving the due time to
//! the next occurrence), completion, reopen, the last occurrence skipped (completed) and
//! deletion. A task is overdue at `t` when it was created before `t`, is not deleted, not
//! completed, and its due time is before `t`. A task due exactly at `E` is not overdue at the
//! end of that day (it is due at the first instant of the next one). With days starting at
//! 04:00, a task due at 03:00 local is due within the local day that began at 04:00 the evening
//! before, so it is overdue at the end of that day (04:00) unless completed (or deleted) before
//! 04:00.
//!
//! The row does not keep the history of changes (a recurring task completed every day would
//! grow it without bound, and it is decoded and re-encoded on every event): it keeps the closed
//! stretches `(from, to]` during which the task was overdue, and the current state with the
//! instant of the last change. A change at `c` closes the current stretch `(since, c]`: when its
//! state was open (not completed, not deleted, due at `d`), the task was overdue on
//! `(max(since, d), c]`, which is recorded (merged with the previous stretch when they touch).
//! A task completed before each due time thus keeps a row of constant size; one completed late
//! gains one stretch per late completion.
//!
//! **Out-of-order instants.** Changes are applied in log order. A change whose instant is before
//! the previous change's (clock skew between processes) is taken to happen at the previous
//! change's instant: a change takes effect no earlier than the changes before it in the log, so
//! recorded stretches are never rewritten.
//!
//! The day ends of the overdue count come from the user's clock **at query time**; `created`
//! and `completed` keep the clock they were folded with. They differ only for days before a
//! change of time zone or day start.
//!
//! For a day that has not ended yet, `overdue_at_day_end` is what the end of the day holds if
//! nothing changes before it (a forecast from what is known now).
//!
//! Task rows are sorted by the instant after which the task is never overdue as far as is
//! known ([`TaskFacts::overdue_never_after`]: the end of its last overdue stretch; open-ended
//! while its current state can still become overdue), so a query reads only the tasks that may
//! be overdue in its range.

use aggregates::preferences::UserPreferences;
use aggregates::task::{Task, TaskEvent};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::{Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet};

/// Row group of the per-task facts.
pub const TASK_GROUP: &str = "task";
/// Sort key of a task that was never overdue and cannot become overdue without a change;
/// sorts before every instant.
const NEVER: &str = "!";
/// Sort key of a task that may still be overdue at any later instant; sorts after every instant.
const OPEN_ENDED: &str = "~";
/// Task rows read per round trip by a query.
const TASK_PAGE: usize = 1_000;

/// One user's task counts folded for one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTasks {
    /// The local day.
    pub day: NaiveDate,
    /// Tasks created.
    pub created: u32,
    /// Completions recorded (completed occurrences of recurring tasks included; not taken back
    /// by a reopen).
    pub completed: u32,
}

/// One local day of the rollup as queries answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDay {
    /// The local day.
    pub day: NaiveDate,
    /// Tasks created.
    pub created: u32,
    /// Completions recorded.
    pub completed: u32,
    /// Tasks overdue at the end of the day ([`TaskFacts::overdue_at`] its end).
    pub overdue_at_day_end: u32,
}

/// What the overdue computation needs of one task: the stretches it was overdue in, and its
/// state since its last change (see the module documentation). Change it with
/// [`TaskFacts::set_due`], [`TaskFacts::set_done`] and [`TaskFacts::delete`], in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFacts {
    /// The task.
    pub task_id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Closed stretches `(from, to)` during which the task was overdue: overdue at `t` iff
    /// `from < t <= to`. In order, disjoint, merged when adjacent.
    pub overdue: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The instant of the last change (`created_at` before any): the state below holds for
    /// every instant after it.
    pub since: DateTime<Utc>,
    /// The due time.
    pub due: Option<DateTime<Utc>>,
    /// Completed (a completion, or the last occurrence skipped; a reopen clears it).
    pub done: bool,
    /// Deleted (for good).
    pub deleted: bool,
}

impl TaskFacts {
    /// A task created at `created_at`, due at `due`.
    pub fn new(task_id: Uuid, created_at: DateTime<Utc>, due: Option<DateTime<Utc>>) -> Self {
        Self {
            task_id,
            created_at,
            overdue: Vec::new(),
            since: created_at,
            due,
            done: false,
            deleted: false,
        }
    }

    /// The due time of the current state when it can be overdue (not completed, not deleted).
    fn open_due(&self) -> Option<DateTime<Utc>> {
        if self.done || self.deleted {
            None
        } else {
            self.due
        }
    }

    /// Ends the current state with a change at `at` (clamped to [`TaskFacts::since`]): records
    /// the part of `(since, at]` the task was overdue in, and moves `since` to `at`.
    fn change(&mut self, at: DateTime<Utc>) {
        let at = at.max(self.since);
        if let Some(due) = self.open_due() {
            let from = self.since.max(due);
            if from < at {
                match self.overdue.last_mut() {
                    Some(last) if last.1 == from => last.1 = at,
                    _ => self.overdue.push((from, at)),
                }
            }
        }
        self.since = at;
    }

    /// The due time changes to `due` at `at` (an update, an occurrence completed or skipped).
    pub fn set_due(&mut self, at: DateTime<Utc>, due: Option<DateTime<Utc>>) {
        self.change(at);
        self.due = due;
    }

    /// The task is completed (`true`) or reopened (`false`) at `at`.
    pub fn set_done(&mut self, at: DateTime<Utc>, done: bool) {
        self.change(at);
        self.done = done;
    }

    /// The task is deleted at `at`.
    pub fn delete(&mut self, at: DateTime<Utc>) {
        self.change(at);
        self.deleted = true;
    }

    /// Whether the task is overdue at instant `t` (a day's end): in one of its overdue
    /// stretches, or after its last change with its current state open and due before `t`.
    pub fn overdue_at(&self, t: DateTime<Utc>) -> bool {
        // the first stretch ending at or after `t` is the only one that may hold it
        let i = self.overdue.partition_point(|(_, to)| *to < t);
        if self.overdue.get(i).is_some_and(|(from, _)| *from < t) {
            return true;
        }
        t > self.since && self.open_due().is_some_and(|due| due < t)
    }

    /// An instant after which the task is never overdue as far as is known (a later change
    /// may make it overdue again, and moves it): the end of its last overdue stretch,
    /// `created_at` when it never was. `None` while its current state can still become
    /// overdue (open with a due time).
    pub fn overdue_never_after(&self) -> Option<DateTime<Utc>> {
        if self.open_due().is_some() {
            return None;
        }
        Some(self.overdue.last().map_or(self.created_at, |(_, to)| *to))
    }

    /// The row's sort key: [`instant_key`] of [`TaskFacts::overdue_never_after`] (`~` when
    /// open-ended, `!` when never overdue).
    fn sort_key(&self) -> String {
        if self.open_due().is_some() {
            OPEN_ENDED.to_string()
        } else {
            match self.overdue.last() {
                Some((_, to)) => instant_key(*to),
                None => NEVER.to_string(),
            }
        }
    }
}

/// An instant as text that sorts like the instant (pre-1970 included).
fn instant_key(at: DateTime<Utc>) -> String {
    format!(
        "{:020}",
        (at.timestamp_micros() as i128 - i64::MIN as i128) as u128
    )
}

/// For each of `ends` (day ends), how many of `tasks` are overdue at it.
pub fn overdue_at_day_ends(tasks: &[TaskFacts], ends: &[DateTime<Utc>]) -> Vec<u32> {
    ends.iter()
        .map(|end| tasks.iter().filter(|t| t.overdue_at(*end)).count() as u32)
        .collect()
}

/// The `task_daily` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskDaily;

impl TaskDaily {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        TaskDaily.model()
    }

    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &TaskDaily, user_id).await
    }

    /// The facts of `user_id`'s task (None when unknown).
    pub async fn task(
        rows: &impl RowReader,
        user_id: Uuid,
        task_id: Uuid,
    ) -> Result<Option<TaskFacts>, ProjectionError> {
        let row = rows
            .get_row(&TaskDaily, &RowKey::new(user_id, task_id.to_string()))
            .await?;
        row.filter(|r| r.grp == TASK_GROUP)
            .map(|r| r.decode())
            .transpose()
    }

    /// The tasks of `user_id` that may be overdue at some instant at or after `since` and were
    /// created before `until`.
    pub async fn tasks_overdue_candidates(
        rows: &impl RowReader,
        user_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<TaskFacts>, ProjectionError> {
        Self::candidates_in_pages(rows, user_id, since, until, TASK_PAGE).await
    }

    async fn candidates_in_pages(
        rows: &impl RowReader,
        user_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        page_size: usize,
    ) -> Result<Vec<TaskFacts>, ProjectionError> {
        // (sort_key, row_id) > (key, "") is sort_key >= key: tasks that may be overdue after
        // `since`
        let mut cursor = RowCursor {
            sort_key: instant_key(since),
            row_id: String::new(),
        };
        let mut tasks = Vec::new();
        loop {
            let page = rows
                .list_rows(&TaskDaily, user_id, &[TASK_GROUP], Some(&cursor), page_size)
                .await?;
            for row in &page {
                let facts: TaskFacts = row.decode()?;
                if facts.created_at < until {
                    tasks.push(facts);
                }
            }
            match page.last() {
                Some(last) if page.len() == page_size => {
                    cursor = RowCursor {
                        sort_key: last.sort_key.clone(),
                        row_id: last.key.row_id.clone(),
                    };
                }
                _ => return Ok(tasks),
            }
        }
    }

    /// Every day from `from` to `to` (both included), empty days filled in, with the overdue
    /// count at each day's end in `clock` (see the module documentation).
    pub async fn days_with_clock(
        rows: &impl RowReader,
        user_id: Uuid,
        clock: &UserClock,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<TaskDay>, ProjectionError> {
        if to < from {
            return Ok(Vec::new());
        }
        let empty = |day| DayTasks {
            day,
            ..DayTasks::default()
        };
        let day_of = |d: &DayTasks| d.day;
        let days = daily::filled_days(rows, &TaskDaily, user_id, (from, to), day_of, empty).await?;
        let ends: Vec<DateTime<Utc>> = days.iter().map(|d| clock.day_range(d.day).end).collect();
        let since = clock.day_range(from).start;
        let until = ends.iter().copied().max().unwrap_or(since);
        let tasks = Self::tasks_overdue_candidates(rows, user_id, since, until).await?;
        let overdue = overdue_at_day_ends(&tasks, &ends);
        Ok(days
            .into_iter()
            .zip(overdue)
            .map(|(folded, overdue_at_day_end)| TaskDay {
                day: folded.day,
                created: folded.created,
                completed: folded.completed,
                overdue_at_day_end,
            })
            .collect())
    }

    /// [`TaskDaily::days_with_clock`] with the user's clock as this model knows it.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<TaskDay>, ProjectionError> {
        let clock = Self::clock(rows, user_id).await?;
        Self::days_with_clock(rows, user_id, &clock, from, to).await
    }
}

/// The instant a task event is counted on, if it is counted (created or completed).
fn counted_at(event: &LoggedEvent) -> Option<DateTime<Utc>> {
    let (variant, field) = match event.event_type.as_str() {
        "TaskCreated" => ("TaskCreated", "created_at"),
        "TaskCompleted" => ("TaskCompleted", "completed_at"),
        "TaskOccurrenceCompleted" => ("TaskOccurrenceCompleted", "completed_at"),
        _ => return None,
    };
    let fields = event.payload.get(variant)?;
    serde::Deserialize::deserialize(fields.get(field)?).ok()
}

impl Projection for TaskDaily {
    fn name(&self) -> &'static str {
        "task_daily"
    }

    fn version(&self) -> u32 {
        // 2: overdue stretches and the current state instead of the history of changes
        2
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Task::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        match (event.aggregate_type.as_str(), event.user_id) {
            (Task::TYPE, Some(user)) => {
                let mut keys = vec![
                    UserClock::key(user),
                    RowKey::new(user, event.aggregate_id.clone()),
                ];
                // the day depends on the clock row, known only once loaded: name every day the
                // instant can fall in, the fold picks one
                if let Some(at) = counted_at(event) {
                    keys.extend(daily::day_keys(user, at));
                }
                keys
            }
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, Task::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let user = event
            .user_id
            .ok_or_else(|| poison("task event without a user id".to_string()))?;
        let payload: TaskEvent = crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let task_key = RowKey::new(user, event.aggregate_id.clone());
        let current: Option<TaskFacts> = rows.get(&task_key).map(Row::decode).transpose()?;
        let (facts, counted) = match (payload, current) {
            (
                TaskEvent::TaskCreated {
                    task_id,
                    due,
                    created_at,
                    ..
                },
                None,
            ) => (
                TaskFacts::new(task_id, created_at, due),
                Some((created_at, Count::Created)),
            ),
            (
                TaskEvent::TaskUpdated {
                    due,
                    clear_due,
                    updated_at,
                    ..
                },
                Some(mut facts),
            ) => {
                if let Some(due) = due {
                    facts.set_due(updated_at, Some(due));
                } else if clear_due {
                    facts.set_due(updated_at, None);
                }
                (facts, None)
            }
            (TaskEvent::TaskCompleted { completed_at }, Some(mut facts)) => {
                facts.set_done(completed_at, true);
                (facts, Some((completed_at, Count::Completed)))
            }
            (
                TaskEvent::TaskOccurrenceCompleted {
                    completed_at,
                    next_due,
                    ..
                },
                Some(mut facts),
            ) => {
                facts.set_due(completed_at, Some(next_due));
                (facts, Some((completed_at, Count::Completed)))
            }
            (
                TaskEvent::TaskOccurrenceSkipped {
                    skipped_at,
                    next_due,
                    ..
                },
                Some(mut facts),
            ) => {
                match next_due {
                    Some(next) => facts.set_due(skipped_at, Some(next)),
                    // the series is over: the task is closed, no completion counted
                    None => facts.set_done(skipped_at, true),
                }
                (facts, None)
            }
            (TaskEvent::TaskReopened { reopened_at }, Some(mut facts)) => {
                facts.set_done(reopened_at, false);
                (facts, None)
            }
            (TaskEvent::TaskDeleted { deleted_at }, Some(mut facts)) => {
                facts.delete(deleted_at);
                (facts, None)
            }
            (_, current) => {
                return Err(poison(format!(
                    "{} does not follow the task's state (task row {})",
                    event.event_type,
                    if current.is_some() {
                        "present"
                    } else {
                        "absent"
                    }
                )));
            }
        };
        let sort_key = facts.sort_key();
        rows.put(Row::new(task_key, TASK_GROUP, sort_key, &facts)?);

        if let Some((at, count)) = counted {
            let clock = UserClock::get(rows, user)?;
            let day = clock.loaded_day_of(at).map_err(poison)?;
            let key = daily::day_key(user, day);
            let mut totals: DayTasks = match rows.get(&key) {
                Some(row) => row.decode()?,
                None => DayTasks {
                    day,
                    ..DayTasks::default()
                },
            };
            match count {
                Count::Created => totals.created += 1,
                Count::Completed => totals.completed += 1,
            }
            rows.put(Row::new(key, DAY_GROUP, daily::day_id(day), &totals)?);
        }
        Ok(())
    }
}

/// What a task event adds to its day.
#[derive(Debug, Clone, Copy)]
enum Count {
    Created,
    Completed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use store::Position;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn task(created: DateTime<Utc>, due: Option<DateTime<Utc>>) -> TaskFacts {
        TaskFacts::new(Uuid::now_v7(), created, due)
    }

    #[test]
    fn due_before_the_end_and_open_is_overdue() {
        let end = utc(2026, 4, 2, 0, 0);
        let t = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 1, 17, 0)));
        assert!(t.overdue_at(end));
        assert!(!t.overdue_at(utc(2026, 4, 1, 17, 0)), "due exactly at t");
        assert!(t.overdue_at(utc(2026, 4, 1, 17, 0) + Duration::seconds(1)));
        assert!(!t.overdue_at(utc(2026, 4, 1, 9, 0)), "created exactly at t");
        let no_due = task(utc(2026, 4, 1, 9, 0), None);
        assert!(!no_due.overdue_at(end));
        let later = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 3, 0, 0)));
        assert!(!later.overdue_at(end));
        assert!(later.overdue_at(utc(2026, 4, 4, 0, 0)));
    }

    #[test]
    fn a_task_created_after_the_end_is_not_counted_even_if_due_before() {
        let t = task(utc(2026, 4, 3, 9, 0), Some(utc(2026, 4, 1, 9, 0)));
        assert!(!t.overdue_at(utc(2026, 4, 2, 0, 0)));
        assert!(t.overdue_at(utc(2026, 4, 4, 0, 0)));
    }

    #[test]
    fn completion_reopen_and_delete_follow_their_instants() {
        let mut t = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 1, 12, 0)));
        t.set_done(utc(2026, 4, 3, 10, 0), true);
        t.set_done(utc(2026, 4, 5, 10, 0), false);
        t.delete(utc(2026, 4, 7, 10, 0));
        let ends: Vec<_> = (1..=8).map(|d| utc(2026, 4, d + 1, 0, 0)).collect();
        // ends of 4/1 .. 4/8
        assert_eq!(
            overdue_at_day_ends(std::slice::from_ref(&t), &ends),
            vec![1, 1, 0, 0, 1, 1, 0, 0]
        );
        // a change exactly at the end belongs to the next day
        assert!(t.overdue_at(utc(2026, 4, 3, 10, 0)));
        assert!(!t.overdue_at(utc(2026, 4, 3, 10, 0) + Duration::seconds(1)));
        assert_eq!(t.overdue_never_after(), Some(utc(2026, 4, 7, 10, 0)));
    }

    #[test]
    fn due_changes_and_occurrences_move_the_due_time() {
        let mut t = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 1, 12, 0)));
        // postponed on 4/2 to 4/5, then the due time removed on 4/6, set again on 4/8 to 4/8
        t.set_due(utc(2026, 4, 2, 8, 0), Some(utc(2026, 4, 5, 12, 0)));
        t.set_due(utc(2026, 4, 6, 8, 0), None);
        t.set_due(utc(2026, 4, 8, 8, 0), Some(utc(2026, 4, 8, 12, 0)));
        // an occurrence completed on 4/9 moves it to 4/16
        t.set_due(utc(2026, 4, 9, 8, 0), Some(utc(2026, 4, 16, 12, 0)));
        let ends: Vec<_> = (1..=10).map(|d| utc(2026, 4, d + 1, 0, 0)).collect();
        assert_eq!(
            overdue_at_day_ends(&[t.clone()], &ends),
            vec![1, 0, 0, 0, 1, 0, 0, 1, 0, 0]
        );
        assert_eq!(t.overdue_never_after(), None, "open: may be overdue later");
        assert_eq!(t.sort_key(), OPEN_ENDED);
    }

    #[test]
    fn a_4am_day_start_moves_the_end_and_the_rule() {
        // Paris, days from 04:00 (CEST, UTC+2, in June): the local day 6/10 ends 6/11 04:00
        let clock = UserClock::new("Europe/Paris", 4);
        let end = clock.day_range(date(2026, 6, 10)).end;
        assert_eq!(end, utc(2026, 6, 11, 2, 0));
        // due 03:00 local on 6/11: within the local day 6/10, so overdue at its end when open
        let due = utc(2026, 6, 11, 1, 0);
        let open = task(utc(2026, 6, 10, 8, 0), Some(due));
        assert!(open.overdue_at(end));
        assert!(!open.overdue_at(clock.day_range(date(2026, 6, 9)).end));
        // completed at 03:30 local (before the day's end): not overdue
        let mut done = open.clone();
        done.set_done(utc(2026, 6, 11, 1, 30), true);
        assert!(!done.overdue_at(end));
        // completed at 04:30 local: overdue at the end of 6/10, not of 6/11
        let mut late = open.clone();
        late.set_done(utc(2026, 6, 11, 2, 30), true);
        assert!(late.overdue_at(end));
        assert!(!late.overdue_at(clock.day_range(date(2026, 6, 11)).end));
        // due exactly at 04:00 local: not overdue at the end of 6/10, only of 6/11
        let at_end = task(utc(2026, 6, 10, 8, 0), Some(end));
        assert!(!at_end.overdue_at(end));
        assert!(at_end.overdue_at(clock.day_range(date(2026, 6, 11)).end));
    }

    #[test]
    fn sort_keys_order_like_instants() {
        let a = instant_key(utc(1960, 1, 1, 0, 0));
        let b = instant_key(utc(2026, 1, 1, 0, 0));
        let c = instant_key(utc(2026, 1, 1, 0, 0) + Duration::microseconds(1));
        assert!(NEVER < a.as_str() && a < b && b < c && c.as_str() < OPEN_ENDED);
        let never_due = task(utc(2026, 1, 1, 0, 0), None);
        assert_eq!(never_due.sort_key(), NEVER);
        let mut deleted = task(utc(2026, 1, 1, 0, 0), Some(utc(2026, 1, 2, 0, 0)));
        deleted.delete(utc(2026, 1, 5, 0, 0));
        assert_eq!(deleted.sort_key(), instant_key(utc(2026, 1, 5, 0, 0)));
        // completed before it was due: never overdue
        let mut on_time = task(utc(2026, 1, 1, 0, 0), Some(utc(2026, 1, 2, 0, 0)));
        on_time.set_done(utc(2026, 1, 1, 12, 0), true);
        assert_eq!(on_time.sort_key(), NEVER);
        assert_eq!(on_time.overdue_never_after(), Some(utc(2026, 1, 1, 0, 0)));
    }

    #[tokio::test]
    async fn queries_read_only_the_tasks_that_may_be_overdue() {
        let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
        let since = utc(2026, 5, 1, 0, 0);
        let until = utc(2026, 5, 10, 0, 0);
        let due = Some(utc(2026, 4, 1, 0, 0));
        let open = task(utc(2026, 4, 1, 0, 0), due);
        let never_due = task(utc(2026, 4, 1, 0, 0), None);
        let mut done_before = task(utc(2026, 4, 1, 0, 0), due);
        done_before.set_done(utc(2026, 4, 20, 0, 0), true);
        let mut done_after = task(utc(2026, 4, 1, 0, 0), due);
        done_after.set_done(utc(2026, 5, 3, 0, 0), true);
        let mut deleted_after = task(utc(2026, 4, 2, 0, 0), due);
        deleted_after.delete(utc(2026, 5, 2, 0, 0));
        let mut reopened = done_before.clone();
        reopened.task_id = Uuid::now_v7();
        reopened.set_done(utc(2026, 4, 25, 0, 0), false);
        let created_after = task(utc(2026, 5, 11, 0, 0), due);
        // open, but its due time removed: overdue until then only
        let mut cleared_before = task(utc(2026, 4, 1, 0, 0), due);
        cleared_before.set_due(utc(2026, 4, 30, 0, 0), None);
        let mut cleared_after = task(utc(2026, 4, 1, 0, 0), due);
        cleared_after.set_due(utc(2026, 5, 1, 0, 0), None);
        let all = [
            &open,
            &never_due,
            &done_before,
            &done_after,
            &deleted_after,
            &reopened,
            &created_after,
            &cleared_before,
            &cleared_after,
        ];
        let mut set = RowSet::default();
        for (owner, facts) in all.iter().map(|f| (user, *f)).chain([(other, &open)]) {
            let key = RowKey::new(owner, facts.task_id.to_string());
            set.put(Row::new(key, TASK_GROUP, facts.sort_key(), facts).unwrap());
        }
        set.put(
            Row::new(
                daily::day_key(user, date(2026, 5, 1)),
                DAY_GROUP,
                "2026-05-01",
                &DayTasks::default(),
            )
            .unwrap(),
        );
        let rows = crate::MemoryRows::from_set(set);
        for page_size in [1, 2, 3, 1000] {
            let found = TaskDaily::candidates_in_pages(&rows, user, since, until, page_size)
                .await
                .unwrap();
            let mut ids: Vec<Uuid> = found.iter().map(|f| f.task_id).collect();
            ids.sort();
            let mut expected = vec![
                open.task_id,
                done_after.task_id,
                deleted_after.task_id,
                reopened.task_id,
                cleared_after.task_id,
            ];
            expected.sort();
            assert_eq!(ids, expected, "pages of {page_size}");
        }
    }

    fn event(user: Uuid, task: Uuid, payload: serde_json::Value) -> LoggedEvent {
        let event_type = payload
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        LoggedEvent {
            position: Position { tx: 0, pos: 1 },
            event_id: Uuid::now_v7(),
            user_id: Some(user),
            recorded_at: Utc::now(),
            aggregate_type: Task::TYPE.to_string(),
            aggregate_id: task.to_string(),
            sequence: 1,
            event_type,
            event_version: "1".to_string(),
            payload,
            metadata: serde_json::json!({}),
        }
    }

    #[test]
    fn fold_counts_completions_and_keeps_facts() {
        let (user, id) = (Uuid::now_v7(), Uuid::now_v7());
        let created = serde_json::to_value(TaskEvent::TaskCreated {
            task_id: id,
            user_id: user,
            title: "t".into(),
            description: String::new(),
            due: Some(utc(2026, 4, 1, 12, 0)),
            priority: 0,
            tags: vec![],
            parent_task_id: None,
            created_at: utc(2026, 4, 1, 9, 0),
            project: None,
            recurrence: None,
        })
        .unwrap();
        let events = [
            created,
            serde_json::to_value(TaskEvent::TaskCompleted {
                completed_at: utc(2026, 4, 1, 13, 0),
            })
            .unwrap(),
            serde_json::to_value(TaskEvent::TaskReopened {
                reopened_at: utc(2026, 4, 1, 14, 0),
            })
            .unwrap(),
            serde_json::to_value(TaskEvent::TaskCompleted {
                completed_at: utc(2026, 4, 2, 13, 0),
            })
            .unwrap(),
        ];
        let mut rows = RowSet::default();
        for payload in events {
            let e = event(user, id, payload);
            assert!(
                TaskDaily
                    .keys(&e)
                    .contains(&RowKey::new(user, id.to_string()))
            );
            TaskDaily.apply(&e, &mut rows).unwrap();
        }
        let day = |d| -> DayTasks {
            rows.get(&daily::day_key(user, d))
                .map(|r| r.decode().unwrap())
                .unwrap_or_default()
        };
        assert_eq!(
            (
                day(date(2026, 4, 1)).created,
                day(date(2026, 4, 1)).completed
            ),
            (1, 1)
        );
        assert_eq!(
            day(date(2026, 4, 2)).completed,
            1,
            "completed again after the reopen"
        );
        let facts: TaskFacts = rows
            .get(&RowKey::new(user, id.to_string()))
            .unwrap()
            .decode()
            .unwrap();
        assert!(facts.done && !facts.deleted);
        assert_eq!(facts.since, utc(2026, 4, 2, 13, 0));
        assert_eq!(
            facts.overdue,
            vec![
                (utc(2026, 4, 1, 12, 0), utc(2026, 4, 1, 13, 0)),
                (utc(2026, 4, 1, 14, 0), utc(2026, 4, 2, 13, 0)),
            ],
            "due 12:00, completed 13:00, reopened 14:00, completed the next day"
        );
        assert!(
            facts.overdue_at(utc(2026, 4, 2, 0, 0)),
            "reopened on 4/1, due then"
        );
        assert!(!facts.overdue_at(utc(2026, 4, 3, 0, 0)));

        // an event for a task never created is a poison event
        let orphan = event(
            user,
            Uuid::now_v7(),
            serde_json::to_value(TaskEvent::TaskReopened {
                reopened_at: utc(2026, 4, 1, 14, 0),
            })
            .unwrap(),
        );
        assert!(matches!(
            TaskDaily.apply(&orphan, &mut rows),
            Err(ProjectionError::Poison(_))
        ));
    }

    /// The model before stretches, kept as the reference: every change with its instant, the
    /// state at `t` the one left by the last change (in log order) strictly before `t`.
    #[derive(Debug)]
    struct History {
        created_at: DateTime<Utc>,
        due: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
        done: Vec<(DateTime<Utc>, bool)>,
        deleted_at: Option<DateTime<Utc>>,
    }

    impl History {
        fn overdue_at(&self, t: DateTime<Utc>) -> bool {
            fn as_of<T: Copy>(changes: &[(DateTime<Utc>, T)], t: DateTime<Utc>) -> Option<T> {
                changes
                    .iter()
                    .rev()
                    .find(|(at, _)| *at < t)
                    .map(|(_, v)| *v)
            }
            if self.created_at >= t || self.deleted_at.is_some_and(|d| d < t) {
                return false;
            }
            if as_of(&self.done, t).unwrap_or(false) {
                return false;
            }
            matches!(as_of(&self.due, t).flatten(), Some(due) if due < t)
        }
    }

    /// xorshift64: deterministic pseudo-random numbers for the property test.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn overdue_stretches_match_the_history_of_changes() {
        let base = utc(2026, 4, 1, 0, 0);
        let minute = |m: u64| base + Duration::minutes(m as i64);
        // due times from 10 minutes before the first creation to after most changes
        let random_due = |rng: &mut XorShift| match rng.below(5) {
            0 => None,
            _ => Some(minute(rng.below(70)) - Duration::minutes(10)),
        };
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let (mut stretches, mut several, mut merged) = (0, 0, 0);
        for case in 0..5_000 {
            let created = minute(rng.below(5));
            let due = random_due(&mut rng);
            let mut facts = TaskFacts::new(Uuid::nil(), created, due);
            let mut history = History {
                created_at: created,
                due: vec![(created, due)],
                done: Vec::new(),
                deleted_at: None,
            };
            let mut at = created;
            for _ in 0..rng.below(25) {
                // monotonic, often several changes at the same instant
                at += Duration::minutes(rng.below(4) as i64);
                let before = (facts.overdue.len(), facts.overdue.last().copied());
                match rng.below(10) {
                    0..=3 => {
                        let due = random_due(&mut rng);
                        facts.set_due(at, due);
                        history.due.push((at, due));
                    }
                    4 => {
                        // an update leaving the due time as it is
                        facts.set_due(at, facts.due);
                        history.due.push((at, facts.due));
                    }
                    5 | 6 => {
                        facts.set_done(at, true);
                        history.done.push((at, true));
                    }
                    7 | 8 => {
                        facts.set_done(at, false);
                        history.done.push((at, false));
                    }
                    _ if history.deleted_at.is_none() => {
                        facts.delete(at);
                        history.deleted_at = Some(at);
                    }
                    _ => {}
                }
                // the last stretch extended: merged with the one this change closed
                merged += usize::from(
                    facts.overdue.len() == before.0 && facts.overdue.last().copied() != before.1,
                );
            }
            assert!(
                facts
                    .overdue
                    .iter()
                    .all(|(from, to)| from >= &created && from < to)
                    && facts.overdue.windows(2).all(|w| w[0].1 < w[1].0),
                "case {case}: stretches in order, disjoint, merged: {facts:?}"
            );
            stretches += facts.overdue.len();
            several += usize::from(facts.overdue.len() > 1);
            let row: TaskFacts =
                serde_json::from_value(serde_json::to_value(&facts).unwrap()).unwrap();
            assert_eq!(row, facts);
            let never_after = facts.overdue_never_after();
            let sort_key = facts.sort_key();
            // every half minute, so every change instant and due time is checked exactly, and
            // between them
            for half in 0..=2 * 130 {
                let t = base - Duration::minutes(15) + Duration::seconds(30 * half);
                let overdue = facts.overdue_at(t);
                assert_eq!(
                    overdue,
                    history.overdue_at(t),
                    "case {case} at {t}: {facts:?} / {history:?}"
                );
                if overdue {
                    // a query of a range starting at or before `t` reads the row
                    assert!(sort_key >= instant_key(t), "case {case} at {t}: {facts:?}");
                    assert!(never_after.is_none_or(|n| t <= n), "case {case} at {t}");
                }
            }
        }
        // the cases do exercise what they check (2224, 400 and 1075 with this seed)
        assert!(stretches > 2_000, "{stretches} stretches");
        assert!(several > 300, "{several} tasks with several stretches");
        assert!(merged > 1_000, "{merged} stretches merged");
    }

    fn created_event(user: Uuid, id: Uuid, at: DateTime<Utc>, due: DateTime<Utc>) -> LoggedEvent {
        let payload = TaskEvent::TaskCreated {
            task_id: id,
            user_id: user,
            title: "t".into(),
            description: String::new(),
            due: Some(due),
            priority: 0,
            tags: vec![],
            parent_task_id: None,
            created_at: at,
            project: None,
            recurrence: None,
        };
        event(user, id, serde_json::to_value(payload).unwrap())
    }

    #[test]
    fn occurrences_completed_before_they_are_due_keep_the_row_size() {
        let (user, id) = (Uuid::now_v7(), Uuid::now_v7());
        let nine = utc(2026, 1, 1, 9, 0);
        let mut rows = RowSet::default();
        let created = created_event(user, id, utc(2026, 1, 1, 8, 0), nine);
        TaskDaily.apply(&created, &mut rows).unwrap();
        let key = RowKey::new(user, id.to_string());
        let size = |rows: &RowSet| rows.get(&key).unwrap().doc.to_string().len();
        let first = size(&rows);
        for day in 0..10_000 {
            let due = nine + Duration::days(day);
            let completed = TaskEvent::TaskOccurrenceCompleted {
                completed_at: due - Duration::minutes(30),
                due,
                next_due: due + Duration::days(1),
            };
            let completed = event(user, id, serde_json::to_value(completed).unwrap());
            TaskDaily.apply(&completed, &mut rows).unwrap();
            assert_eq!(size(&rows), first, "after {} completions", day + 1);
        }
        let row = rows.get(&key).unwrap();
        assert_eq!(row.sort_key, OPEN_ENDED);
        let facts: TaskFacts = row.decode().unwrap();
        assert!(facts.overdue.is_empty());
        assert_eq!(facts.due, Some(nine + Duration::days(10_000)));
        assert!(!facts.overdue_at(nine + Duration::days(5_000) + Duration::minutes(1)));
        assert!(facts.overdue_at(nine + Duration::days(10_000) + Duration::minutes(1)));
    }

    #[test]
    fn occurrences_completed_late_add_one_stretch_a_day_merged_when_adjacent() {
        let nine = utc(2026, 1, 1, 9, 0);
        let (hour, day) = (Duration::hours(1), Duration::days(1));
        let mut t = task(utc(2026, 1, 1, 8, 0), Some(nine));
        // each day's occurrence completed at 10:00, an hour late
        for d in 0..365 {
            let due = nine + day * d;
            t.set_due(due + hour, Some(due + day));
            assert_eq!(t.overdue.len(), d as usize + 1);
        }
        for d in 0..365 {
            let due = nine + day * d;
            assert_eq!(t.overdue[d as usize], (due, due + hour));
            assert!(!t.overdue_at(due));
            assert!(t.overdue_at(due + Duration::seconds(1)));
            assert!(t.overdue_at(due + hour));
            assert!(!t.overdue_at(due + hour + Duration::seconds(1)));
        }
        // a day missed: the next day at 10:00 its occurrence is completed, moving the due time
        // to that day's 09:00 (still past), then that one at 10:05
        let missed = nine + day * 365;
        t.set_due(missed + day + hour, Some(missed + day));
        t.set_due(
            missed + day + hour + Duration::minutes(5),
            Some(missed + day * 2),
        );
        assert_eq!(t.overdue.len(), 366, "one stretch for both");
        assert_eq!(
            t.overdue.last(),
            Some(&(missed, missed + day + hour + Duration::minutes(5)))
        );
        assert!(t.overdue_at(missed + day + hour + Duration::minutes(1)));
        assert!(!t.overdue_at(missed + day * 2));
    }

    #[test]
    fn a_change_logged_after_a_later_one_takes_effect_at_that_later_instant() {
        let mut t = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 1, 10, 0)));
        t.set_due(utc(2026, 4, 1, 12, 0), Some(utc(2026, 4, 1, 15, 0)));
        assert_eq!(
            t.overdue,
            vec![(utc(2026, 4, 1, 10, 0), utc(2026, 4, 1, 12, 0))]
        );
        // a process with a slow clock moves the due time "at 11:00", logged after the change
        // at 12:00: it takes effect at 12:00
        t.set_due(utc(2026, 4, 1, 11, 0), Some(utc(2026, 4, 1, 16, 0)));
        assert_eq!(t.since, utc(2026, 4, 1, 12, 0));
        assert_eq!(
            t.overdue,
            vec![(utc(2026, 4, 1, 10, 0), utc(2026, 4, 1, 12, 0))],
            "the stretch recorded stays"
        );
        assert!(t.overdue_at(utc(2026, 4, 1, 11, 30)), "still due at 10:00");
        assert!(t.overdue_at(utc(2026, 4, 1, 12, 0)));
        assert!(
            !t.overdue_at(utc(2026, 4, 1, 15, 30)),
            "due at 16:00 from 12:00 on"
        );
        assert!(t.overdue_at(utc(2026, 4, 1, 16, 30)));
        // before the creation: takes effect at the creation
        let mut early = task(utc(2026, 4, 1, 9, 0), Some(utc(2026, 4, 1, 10, 0)));
        early.set_done(utc(2026, 4, 1, 8, 0), true);
        assert_eq!(early.since, utc(2026, 4, 1, 9, 0));
        assert!(early.overdue.is_empty());
        assert!(!early.overdue_at(utc(2026, 4, 1, 10, 30)));
        assert_eq!(early.sort_key(), NEVER);
    }
}
