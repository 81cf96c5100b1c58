//! `focus_daily`: one row per user per **local** day — focused minutes, completed and abandoned
//! sessions, interruptions, breaks, and the minutes of each linked task.
//!
//! The local day comes from the user's clock ([`UserClock`]: preferences time zone and day start
//! hour), which this projection keeps from the `preferences` events in a row of its own model
//! (see [`crate::daily`]). A session is attributed, whole, to the local day it **ends** in (its
//! `FocusEnded` event carries everything the rollup needs). Changing the time zone later does not
//! re-bucket days already rolled up.
//!
//! What counts:
//! - `focused_seconds`: the active time (pauses excluded) of focus sessions — pomodoro, flowtime
//!   and countdown — whether completed or abandoned (the time was spent); breaks go to
//!   `break_seconds`;
//! - `completed` / `abandoned`: focus sessions by outcome; `breaks_completed`: completed breaks;
//! - `interruptions`: recorded during any session that ended that day;
//! - `tasks`: focused seconds per linked task.

use std::collections::BTreeMap;

use aggregates::focus::{FocusEvent, FocusOutcome, FocusTimer};
use aggregates::preferences::UserPreferences;
use chrono::NaiveDate;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet};

/// One user's focus on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFocus {
    /// The local day.
    pub day: NaiveDate,
    /// Active seconds of focus sessions (pauses excluded; breaks not included).
    pub focused_seconds: u64,
    /// Focus sessions completed.
    pub completed: u32,
    /// Focus sessions abandoned.
    pub abandoned: u32,
    /// Interruptions of the sessions that ended this day.
    pub interruptions: u32,
    /// Breaks completed.
    pub breaks_completed: u32,
    /// Active seconds of breaks.
    pub break_seconds: u64,
    /// Focused seconds per linked task.
    pub tasks: BTreeMap<Uuid, u64>,
}

impl DayFocus {
    /// A day with nothing in it.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            focused_seconds: 0,
            completed: 0,
            abandoned: 0,
            interruptions: 0,
            breaks_completed: 0,
            break_seconds: 0,
            tasks: BTreeMap::new(),
        }
    }

    /// Focused minutes (seconds / 60).
    pub fn focused_minutes(&self) -> f64 {
        self.focused_seconds as f64 / 60.0
    }
}

/// The `focus_daily` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FocusDaily;

impl FocusDaily {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        FocusDaily.model()
    }

    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &FocusDaily, user_id).await
    }

    /// `user_id`'s focus on `day` (an empty day when nothing ended then).
    pub async fn day(
        rows: &impl RowReader,
        user_id: Uuid,
        day: NaiveDate,
    ) -> Result<DayFocus, ProjectionError> {
        let row = rows
            .get_row(&FocusDaily, &daily::day_key(user_id, day))
            .await?;
        Ok(row
            .filter(|r| r.grp == DAY_GROUP)
            .map(|r| r.decode())
            .transpose()?
            .unwrap_or_else(|| DayFocus::empty(day)))
    }

    /// Every day from `from` to `to` (both included), empty days filled in.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayFocus>, ProjectionError> {
        let day_of = |d: &DayFocus| d.day;
        daily::filled_days(
            rows,
            &FocusDaily,
            user_id,
            (from, to),
            day_of,
            DayFocus::empty,
        )
        .await
    }
}

/// The instant a focus event lands on (only `FocusEnded` is rolled up).
fn ended_at(event: &LoggedEvent) -> Option<chrono::DateTime<chrono::Utc>> {
    let fields = event.payload.get("FocusEnded")?;
    serde::Deserialize::deserialize(fields.get("ended_at")?).ok()
}

impl Projection for FocusDaily {
    fn name(&self) -> &'static str {
        "focus_daily"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[FocusTimer::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        daily::rollup_keys(event, FocusTimer::TYPE, ended_at, daily::instant_keys)
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, FocusTimer::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: FocusEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let FocusEvent::FocusEnded {
            outcome,
            kind,
            task_id,
            ended_at,
            focused_seconds,
            interruptions,
            ..
        } = payload
        else {
            return Ok(()); // only ends are rolled up
        };
        let user = event
            .user_id
            .ok_or_else(|| poison("focus event without a user id".to_string()))?;
        let clock = UserClock::get(rows, user)?;
        let day = clock.loaded_day_of(ended_at).map_err(poison)?;
        let key = daily::day_key(user, day);
        let mut totals: DayFocus = match rows.get(&key) {
            Some(row) => row.decode()?,
            None => DayFocus::empty(day),
        };
        totals.interruptions = totals.interruptions.saturating_add(interruptions);
        if kind.is_break() {
            totals.break_seconds += focused_seconds;
            if outcome == FocusOutcome::Completed {
                totals.breaks_completed += 1;
            }
        } else {
            totals.focused_seconds += focused_seconds;
            match outcome {
                FocusOutcome::Completed => totals.completed += 1,
                FocusOutcome::Abandoned => totals.abandoned += 1,
            }
            if let Some(task) = task_id {
                *totals.tasks.entry(task).or_default() += focused_seconds;
            }
        }
        let id = daily::day_id(day);
        rows.put(Row::new(key, DAY_GROUP, id, &totals)?);
        Ok(())
    }
}
