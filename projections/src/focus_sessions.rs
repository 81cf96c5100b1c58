//! `focus_sessions`: each user's focus sessions in start order, and their focus timer (running
//! session, pomodoro cycle, cycle settings).
//!
//! Rows:
//! - one per session (group [`SESSION`], row id = session id, sort key = `started_at` as
//!   fixed-width RFC 3339 UTC with microseconds, so a time range is a key range and lists in
//!   time order);
//! - one per user, the timer (group and id [`TIMER`]): the running session's id, the
//!   [`FocusCycle`] (folded with the aggregate's own rule) and the pomodoro settings read from
//!   the `preferences` events, so the next suggested kind is answered from this model alone.

use aggregates::focus::{FocusCycle, FocusEvent, FocusKind, FocusOutcome, FocusTimer};
use aggregates::preferences::{Preferences, PreferencesEvent, UserPreferences};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::UserClock;
use crate::{
    Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet, payload_field,
};

/// Row group of the sessions.
pub const SESSION: &str = "session";
/// Row group and id of the per-user timer row.
pub const TIMER: &str = "timer";

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Running now.
    Running,
    /// Paused.
    Paused,
    /// Ended as completed.
    Completed,
    /// Ended as abandoned.
    Abandoned,
}

/// One session as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// Its id.
    pub session_id: Uuid,
    /// What it is for.
    pub kind: FocusKind,
    /// Where it is.
    pub state: SessionState,
    /// Planned length.
    pub planned_minutes: Option<u32>,
    /// The linked task.
    pub task_id: Option<Uuid>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When it was paused (while paused).
    pub paused_at: Option<DateTime<Utc>>,
    /// Start of the current running stretch (meaningful while running).
    pub active_since: DateTime<Utc>,
    /// Active milliseconds before `active_since` (pauses excluded).
    pub active_ms: i64,
    /// Active whole seconds at the end (ended sessions; see [`SessionView::focused_seconds_at`]).
    pub focused_seconds: u64,
    /// Interruptions recorded.
    pub interruptions: u32,
    /// The abandon reason.
    pub reason: Option<String>,
}

impl SessionView {
    /// Whether it has ended.
    pub fn is_ended(&self) -> bool {
        matches!(
            self.state,
            SessionState::Completed | SessionState::Abandoned
        )
    }

    /// Active whole seconds (pauses excluded) as of `now`: the final figure once ended.
    pub fn focused_seconds_at(&self, now: DateTime<Utc>) -> u64 {
        match self.state {
            SessionState::Completed | SessionState::Abandoned => self.focused_seconds,
            SessionState::Paused => (self.active_ms / 1000).max(0) as u64,
            SessionState::Running => {
                let current = (now - self.active_since).num_milliseconds().max(0);
                ((self.active_ms + current) / 1000).max(0) as u64
            }
        }
    }
}

/// A user's focus timer as this model knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerView {
    /// The running (or paused) session.
    pub running: Option<Uuid>,
    /// The pomodoro cycle.
    pub cycle: FocusCycle,
    /// Pomodoros before a long break (from the preferences).
    pub cycles_before_long_break: u32,
    /// Pomodoro length in minutes (from the preferences).
    pub pomodoro_work_minutes: u32,
    /// Short break length in minutes (from the preferences).
    pub short_break_minutes: u32,
    /// Long break length in minutes (from the preferences).
    pub long_break_minutes: u32,
}

impl Default for TimerView {
    fn default() -> Self {
        let p = Preferences::default();
        Self {
            running: None,
            cycle: FocusCycle::default(),
            cycles_before_long_break: p.cycles_before_long_break,
            pomodoro_work_minutes: p.pomodoro_work_minutes,
            short_break_minutes: p.short_break_minutes,
            long_break_minutes: p.long_break_minutes,
        }
    }
}

impl TimerView {
    /// The kind the pomodoro cycle suggests next.
    pub fn suggested_next(&self) -> FocusKind {
        self.cycle.suggest_next(self.cycles_before_long_break)
    }

    /// The default planned minutes of `kind` with these settings.
    pub fn default_minutes(&self, kind: FocusKind) -> Option<u32> {
        let prefs = Preferences {
            pomodoro_work_minutes: self.pomodoro_work_minutes,
            short_break_minutes: self.short_break_minutes,
            long_break_minutes: self.long_break_minutes,
            ..Preferences::default()
        };
        kind.default_minutes(&prefs)
    }
}

/// The `focus_sessions` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FocusSessions;

/// Fixed-width UTC RFC 3339 with microseconds (`2026-03-08T06:59:00.000000Z`): sorts like time
/// for years 0000–9999.
pub fn time_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl FocusSessions {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        FocusSessions.model()
    }

    /// `user_id`'s timer (the defaults before any focus or preferences event).
    pub async fn timer(rows: &impl RowReader, user_id: Uuid) -> Result<TimerView, ProjectionError> {
        let row = rows
            .get_row(&FocusSessions, &RowKey::new(user_id, TIMER))
            .await?;
        Ok(row.map(|r| r.decode()).transpose()?.unwrap_or_default())
    }

    /// One session of `user_id` (None when absent or someone else's).
    pub async fn get(
        rows: &impl RowReader,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<SessionView>, ProjectionError> {
        let row = rows
            .get_row(
                &FocusSessions,
                &RowKey::new(user_id, session_id.to_string()),
            )
            .await?;
        row.filter(|r| r.grp == SESSION)
            .map(|r| r.decode())
            .transpose()
    }

    /// A page of `user_id`'s sessions that started in `[from, to)` (open ends when None), in
    /// start order, after `cursor`. Returns the page and the cursor of the next one.
    pub async fn list(
        rows: &impl RowReader,
        user_id: Uuid,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<SessionView>, Option<RowCursor>), ProjectionError> {
        // (sort_key, row_id) > (key(from), "") is sort_key >= key(from)
        let start = from.map(|f| RowCursor {
            sort_key: time_key(f),
            row_id: String::new(),
        });
        let after = match (cursor, start.as_ref()) {
            (Some(c), Some(s)) => Some(if (&c.sort_key, &c.row_id) > (&s.sort_key, &s.row_id) {
                c
            } else {
                s
            }),
            (c, s) => c.or(s),
        };
        let end = to.map(time_key);
        let mut page = rows
            .list_rows(&FocusSessions, user_id, &[SESSION], after, page_size + 1)
            .await?;
        let before_end = |r: &Row| end.as_ref().is_none_or(|e| r.sort_key < *e);
        let complete = page.len() > page_size && page.iter().all(before_end);
        page.retain(before_end);
        let next = if complete {
            page.truncate(page_size);
            page.last().map(|r| RowCursor {
                sort_key: r.sort_key.clone(),
                row_id: r.key.row_id.clone(),
            })
        } else {
            page.truncate(page_size);
            None
        };
        let sessions = page.iter().map(Row::decode).collect::<Result<_, _>>()?;
        Ok((sessions, next))
    }

    /// Every session of `user_id` that started on the local days `from..=to` of `clock`, in
    /// start order (at most `limit`).
    pub async fn in_days(
        rows: &impl RowReader,
        user_id: Uuid,
        clock: &UserClock,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<SessionView>, ProjectionError> {
        let start = clock.day_range(from).start;
        let end = clock.day_range(to).end;
        let (sessions, _) = Self::list(rows, user_id, Some(start), Some(end), None, limit).await?;
        Ok(sessions)
    }
}

fn session_id_of(payload: &serde_json::Value) -> Option<Uuid> {
    payload_field(payload, "session_id")
}

impl Projection for FocusSessions {
    fn name(&self) -> &'static str {
        "focus_sessions"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[FocusTimer::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        let Some(user) = event.user_id else {
            return Vec::new();
        };
        match event.aggregate_type.as_str() {
            FocusTimer::TYPE => {
                let mut keys = vec![RowKey::new(user, TIMER)];
                if let Some(session) = session_id_of(&event.payload) {
                    keys.push(RowKey::new(user, session.to_string()));
                }
                keys
            }
            UserPreferences::TYPE => vec![RowKey::new(user, TIMER)],
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let is_focus = event.aggregate_type == FocusTimer::TYPE;
        if !is_focus && event.aggregate_type != UserPreferences::TYPE {
            return Ok(()); // the runner applies every event; other pillars' are not ours
        }
        let user = event
            .user_id
            .ok_or_else(|| poison(format!("{} event without a user id", event.aggregate_type)))?;
        let timer_key = RowKey::new(user, TIMER);
        let mut timer: TimerView = match rows.get(&timer_key) {
            Some(row) => row.decode()?,
            None => TimerView::default(),
        };
        if !is_focus {
            let PreferencesEvent::PreferencesSet { changes, .. } =
                crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
            let before = timer.clone();
            timer.cycles_before_long_break = changes
                .cycles_before_long_break
                .unwrap_or(timer.cycles_before_long_break);
            timer.pomodoro_work_minutes = changes
                .pomodoro_work_minutes
                .unwrap_or(timer.pomodoro_work_minutes);
            timer.short_break_minutes = changes
                .short_break_minutes
                .unwrap_or(timer.short_break_minutes);
            timer.long_break_minutes = changes
                .long_break_minutes
                .unwrap_or(timer.long_break_minutes);
            if timer != before {
                rows.put(Row::new(timer_key, TIMER, "", &timer)?);
            }
            return Ok(());
        }

        let payload: FocusEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let session_key = RowKey::new(user, payload.session_id().to_string());
        let current: Option<SessionView> = rows.get(&session_key).map(Row::decode).transpose()?;
        let live = current.filter(|s| !s.is_ended());
        let view = match (payload, live) {
            (
                FocusEvent::FocusStarted {
                    session_id,
                    kind,
                    planned_minutes,
                    task_id,
                    started_at,
                    ..
                },
                None,
            ) if rows.get(&session_key).is_none() => {
                timer.running = Some(session_id);
                SessionView {
                    session_id,
                    kind,
                    state: SessionState::Running,
                    planned_minutes,
                    task_id,
                    started_at,
                    ended_at: None,
                    paused_at: None,
                    active_since: started_at,
                    active_ms: 0,
                    focused_seconds: 0,
                    interruptions: 0,
                    reason: None,
                }
            }
            (FocusEvent::FocusPaused { paused_at, .. }, Some(mut s))
                if s.state == SessionState::Running =>
            {
                s.active_ms += (paused_at - s.active_since).num_milliseconds().max(0);
                s.paused_at = Some(paused_at);
                s.state = SessionState::Paused;
                s
            }
            (FocusEvent::FocusResumed { resumed_at, .. }, Some(mut s))
                if s.state == SessionState::Paused =>
            {
                s.paused_at = None;
                s.active_since = resumed_at;
                s.state = SessionState::Running;
                s
            }
            (FocusEvent::FocusInterrupted { .. }, Some(mut s)) => {
                s.interruptions = s.interruptions.saturating_add(1);
                s
            }
            (
                FocusEvent::FocusEnded {
                    session_id,
                    outcome,
                    kind,
                    ended_at,
                    focused_seconds,
                    interruptions,
                    reason,
                    ..
                },
                Some(mut s),
            ) => {
                if timer.running == Some(session_id) {
                    timer.running = None;
                }
                timer.cycle.record(kind, outcome);
                s.state = match outcome {
                    FocusOutcome::Completed => SessionState::Completed,
                    FocusOutcome::Abandoned => SessionState::Abandoned,
                };
                s.ended_at = Some(ended_at);
                s.paused_at = None;
                s.focused_seconds = focused_seconds;
                s.interruptions = interruptions;
                s.reason = reason;
                s
            }
            (payload, live) => {
                return Err(poison(format!(
                    "{} does not follow session {} ({})",
                    event.event_type,
                    payload.session_id(),
                    match (live, rows.get(&session_key)) {
                        (Some(s), _) => format!("{:?}", s.state),
                        (None, Some(_)) => "ended".to_string(),
                        (None, None) => "absent".to_string(),
                    }
                )));
            }
        };
        rows.put(Row::new(
            session_key,
            SESSION,
            time_key(view.started_at),
            &view,
        )?);
        rows.put(Row::new(timer_key, TIMER, "", &timer)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_keys_sort_like_time() {
        let times = [
            Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 8, 6, 59, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 8, 6, 59, 0).unwrap() + chrono::Duration::microseconds(1),
            Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        ];
        for pair in times.windows(2) {
            let (a, b) = (time_key(pair[0]), time_key(pair[1]));
            assert!(a < b, "{a} !< {b}");
            assert_eq!(a.len(), b.len(), "fixed width");
        }
        assert_eq!(time_key(times[1]), "2026-03-08T06:59:00.000000Z");
    }

    #[test]
    fn session_ids_are_read_from_any_event() {
        let id = Uuid::now_v7();
        let event = FocusEvent::FocusPaused {
            session_id: id,
            paused_at: Utc::now(),
        };
        assert_eq!(
            session_id_of(&serde_json::to_value(event).unwrap()),
            Some(id)
        );
        assert_eq!(session_id_of(&serde_json::json!({"Other": {}})), None);
    }
}
