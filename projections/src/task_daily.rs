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
//! Instead the model keeps one row per task ([`TaskFacts`]): when it was created, every change
//! of its due time with the instant of the change (creation, updates, occurrence completions and
//! skips moving it to the next occurrence), every change of its completed state with its instant
//! (completion, reopen, the last occurrence skipped) and when it was deleted. A query then
//! evaluates [`TaskFacts::overdue_at`] at each day's end ([`overdue_at_day_ends`], pure), so any
//! past day is answered correctly however the task changed afterwards.
//!
//! The rule, at the day's end `E` (the first instant of the next local day; the state at `E` is
//! the one left by every change that happened strictly before `E`): a task is overdue when it
//! was created before `E`, was not deleted before `E`, was not completed at `E`, and its due
//! time at `E` is before `E`. A task due exactly at `E` is not overdue at the end of that day
//! (it is due at the first instant of the next one). With days starting at 04:00, a task due at
//! 03:00 local is due within the local day that began at 04:00 the evening before, so it is
//! overdue at the end of that day (04:00) unless completed (or deleted) before 04:00.
//!
//! The day ends of the overdue count come from the user's clock **at query time**; `created`
//! and `completed` keep the clock they were folded with. They differ only for days before a
//! change of time zone or day start.
//!
//! For a day that has not ended yet, `overdue_at_day_end` is what the end of the day holds if
//! nothing changes before it (a forecast from what is known now).
//!
//! Task rows are sorted by the instant after which the task can never be overdue again (the
//! last change of a task that ended completed or deleted; never for an open task), so a query
//! reads only the tasks that may be overdue in its range.

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
/// Sort key of a task that can never be overdue (it never had a due time); sorts before every
/// instant.
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

/// What the overdue computation needs of one task: its history of due times, completion state
/// and deletion, each change with the instant it happened (in log order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFacts {
    /// The task.
    pub task_id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// `(when, due time from then on)`: the first entry is the creation's.
    pub due: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// `(when, completed from then on)`: completions, reopens, the last occurrence skipped.
    pub done: Vec<(DateTime<Utc>, bool)>,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The value of the last change (in log order) made strictly before `t`.
fn as_of<T: Copy>(changes: &[(DateTime<Utc>, T)], t: DateTime<Utc>) -> Option<T> {
    changes
        .iter()
        .rev()
        .find(|(at, _)| *at < t)
        .map(|(_, value)| *value)
}

impl TaskFacts {
    /// A task created at `created_at`, due at `due`.
    pub fn new(task_id: Uuid, created_at: DateTime<Utc>, due: Option<DateTime<Utc>>) -> Self {
        Self {
            task_id,
            created_at,
            due: vec![(created_at, due)],
            done: Vec::new(),
            deleted_at: None,
        }
    }

    /// Whether the task is overdue at instant `t` (a day's end): created before `t`, not
    /// deleted before `t`, not completed by its changes before `t`, and due before `t` by them.
    pub fn overdue_at(&self, t: DateTime<Utc>) -> bool {
        if self.created_at >= t || self.deleted_at.is_some_and(|d| d < t) {
            return false;
        }
        if as_of(&self.done, t).unwrap_or(false) {
            return false;
        }
        matches!(as_of(&self.due, t).flatten(), Some(due) if due < t)
    }

    /// Whether the task ended (after its last change) completed or deleted.
    fn closed(&self) -> bool {
        self.deleted_at.is_some() || self.done.last().is_some_and(|(_, done)| *done)
    }

    /// An instant after which the task is never overdue; `None` when it may be at any time.
    /// `Some(created_at)` for a task that never had a due time.
    pub fn overdue_never_after(&self) -> Option<DateTime<Utc>> {
        if self.due.iter().all(|(_, due)| due.is_none()) {
            return Some(self.created_at);
        }
        if !self.closed() {
            return None;
        }
        // after every change the state is the final (closed) one
        self.due
            .iter()
            .map(|(at, _)| *at)
            .chain(self.done.iter().map(|(at, _)| *at))
            .chain(self.deleted_at)
            .chain([self.created_at])
            .max()
    }

    /// The row's sort key: [`instant_key`] of [`TaskFacts::overdue_never_after`] (`~` when
    /// open-ended, `!` when never due).
    fn sort_key(&self) -> String {
        if self.due.iter().all(|(_, due)| due.is_none()) {
            return NEVER.to_string();
        }
        match self.overdue_never_after() {
            Some(at) => instant_key(at),
            None => OPEN_ENDED.to_string(),
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
    serde_json::from_value(fields.get(field)?.clone()).ok()
}

impl Projection for TaskDaily {
    fn name(&self) -> &'static str {
        "task_daily"
    }

    fn version(&self) -> u32 {
        1
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
        let payload: TaskEvent =
            serde_json::from_value(event.payload.clone()).map_err(|e| poison(e.to_string()))?;
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
                    facts.due.push((updated_at, Some(due)));
                } else if clear_due {
                    facts.due.push((updated_at, None));
                }
                (facts, None)
            }
            (TaskEvent::TaskCompleted { completed_at }, Some(mut facts)) => {
                facts.done.push((completed_at, true));
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
                facts.due.push((completed_at, Some(next_due)));
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
                    Some(next) => facts.due.push((skipped_at, Some(next))),
                    // the series is over: the task is closed, no completion counted
                    None => facts.done.push((skipped_at, true)),
                }
                (facts, None)
            }
            (TaskEvent::TaskReopened { reopened_at }, Some(mut facts)) => {
                facts.done.push((reopened_at, false));
                (facts, None)
            }
            (TaskEvent::TaskDeleted { deleted_at }, Some(mut facts)) => {
                facts.deleted_at = Some(deleted_at);
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
        t.done.push((utc(2026, 4, 3, 10, 0), true));
        t.done.push((utc(2026, 4, 5, 10, 0), false));
        t.deleted_at = Some(utc(2026, 4, 7, 10, 0));
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
        t.due
            .push((utc(2026, 4, 2, 8, 0), Some(utc(2026, 4, 5, 12, 0))));
        t.due.push((utc(2026, 4, 6, 8, 0), None));
        t.due
            .push((utc(2026, 4, 8, 8, 0), Some(utc(2026, 4, 8, 12, 0))));
        // an occurrence completed on 4/9 moves it to 4/16
        t.due
            .push((utc(2026, 4, 9, 8, 0), Some(utc(2026, 4, 16, 12, 0))));
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
        done.done.push((utc(2026, 6, 11, 1, 30), true));
        assert!(!done.overdue_at(end));
        // completed at 04:30 local: overdue at the end of 6/10, not of 6/11
        let mut late = open.clone();
        late.done.push((utc(2026, 6, 11, 2, 30), true));
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
        deleted.deleted_at = Some(utc(2026, 1, 5, 0, 0));
        assert_eq!(deleted.sort_key(), instant_key(utc(2026, 1, 5, 0, 0)));
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
        done_before.done.push((utc(2026, 4, 20, 0, 0), true));
        let mut done_after = task(utc(2026, 4, 1, 0, 0), due);
        done_after.done.push((utc(2026, 5, 3, 0, 0), true));
        let mut deleted_after = task(utc(2026, 4, 2, 0, 0), due);
        deleted_after.deleted_at = Some(utc(2026, 5, 2, 0, 0));
        let mut reopened = done_before.clone();
        reopened.task_id = Uuid::now_v7();
        reopened.done.push((utc(2026, 4, 25, 0, 0), false));
        let created_after = task(utc(2026, 5, 11, 0, 0), due);
        let all = [
            &open,
            &never_due,
            &done_before,
            &done_after,
            &deleted_after,
            &reopened,
            &created_after,
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
        assert_eq!(
            facts.done,
            vec![
                (utc(2026, 4, 1, 13, 0), true),
                (utc(2026, 4, 1, 14, 0), false),
                (utc(2026, 4, 2, 13, 0), true)
            ]
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
}
