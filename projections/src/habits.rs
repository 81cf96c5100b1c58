//! `habits`: each user's habits with their entries, their XP and badges, and the daily rollup of
//! all their habits — one model, so one consistency token serves every habit query.
//!
//! Rows (per user):
//! - one per habit (group [`HABIT`], row id = habit id, sort key = creation time): the
//!   definition, every day's current entry, XP and badges ([`HabitView`]). Streaks, completion
//!   rates and the Loop score depend on "today", so they are computed when queried
//!   ([`HabitView::stats`]) with the same functions the aggregate uses;
//! - one progress row (group and id [`PROGRESS`]): cumulative XP, completions and badges
//!   ([`ProgressView`]; the level follows from the XP);
//! - one per local day with entries ([`crate::daily`] day rows): each habit's outcome that day
//!   and the XP earned ([`HabitDayView`]). The day of an entry is the local day the client gave,
//!   so no clock is needed to bucket it;
//! - the user's clock ([`UserClock`], from the `preferences` events): the local day a habit was
//!   created on, and "today" for the queries.

use std::collections::{BTreeMap, BTreeSet};

use aggregates::habit::gamification::Badge;
use aggregates::habit::streak::{Mark, Marks};
use aggregates::habit::{EntryValue, Frequency, Habit, HabitEvent, HabitKind, score};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::focus_sessions::time_key;
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet};

/// Row group of the habit rows.
pub const HABIT: &str = "habit";
/// Row group and id of the per-user progress row.
pub const PROGRESS: &str = "progress";
/// The most habits a listing returns.
pub const MAX_HABITS: usize = 1000;

/// One habit as the model knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HabitView {
    /// Its id.
    pub habit_id: Uuid,
    /// Its name.
    pub name: String,
    /// Yes/no or numeric.
    pub kind: HabitKind,
    /// N in D.
    pub frequency: Frequency,
    /// Reminder time.
    pub reminder: Option<NaiveTime>,
    /// Archived.
    pub archived: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The local day it was created on (the user's clock when the creation was folded).
    pub start_day: NaiveDate,
    /// Every day's current entry.
    pub entries: BTreeMap<NaiveDate, EntryValue>,
    /// XP it earned.
    pub xp: u64,
    /// Badges it earned.
    pub badges: BTreeSet<Badge>,
}

/// A habit's figures on a given local day.
#[derive(Debug, Clone, PartialEq)]
pub struct HabitStats {
    /// The streak ending today (or yesterday while today is not logged).
    pub current_streak: u32,
    /// The longest streak up to today.
    pub longest_streak: u32,
    /// The Loop strength score today.
    pub score: f64,
    /// Completion rates over the last 7, 30 and 90 days.
    pub rate_7: f64,
    /// See `rate_7`.
    pub rate_30: f64,
    /// See `rate_7`.
    pub rate_90: f64,
}

impl HabitView {
    /// The marks of its days up to `until`.
    pub fn marks(&self, until: NaiveDate) -> Marks {
        Marks::new(&self.entries, &self.kind, self.frequency, until)
    }

    /// Its first day: the creation day, or an earlier backfilled entry's.
    pub fn first_day(&self) -> NaiveDate {
        self.entries
            .keys()
            .next()
            .map_or(self.start_day, |d| (*d).min(self.start_day))
    }

    /// Its streaks, rates and score on local day `today`.
    pub fn stats(&self, today: NaiveDate) -> HabitStats {
        let marks = self.marks(today);
        let start = self.first_day();
        HabitStats {
            current_streak: marks.current(today),
            longest_streak: marks.longest(today),
            score: score::score_on(&self.entries, &self.kind, self.frequency, today),
            rate_7: marks.completion_rate(start, today, 7),
            rate_30: marks.completion_rate(start, today, 30),
            rate_90: marks.completion_rate(start, today, 90),
        }
    }

    /// The score and mark of each of the `days` days up to `today`, oldest first.
    pub fn history(&self, today: NaiveDate, days: u32) -> Vec<(NaiveDate, f64, bool)> {
        let marks = self.marks(today);
        let scores: BTreeMap<NaiveDate, f64> =
            score::scores(&self.entries, &self.kind, self.frequency, today)
                .into_iter()
                .collect();
        let initial = score::score_on(&BTreeMap::new(), &self.kind, self.frequency, today);
        let from = today - Duration::days(i64::from(days) - 1);
        from.iter_days()
            .take_while(|d| *d <= today)
            .map(|d| {
                let s = scores.get(&d).copied().unwrap_or(initial);
                (d, s, marks.mark(d) == Mark::Done)
            })
            .collect()
    }
}

/// A badge in a user's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeCount {
    /// How many habits earned it.
    pub count: u32,
    /// When the first one did.
    pub first_earned_at: DateTime<Utc>,
}

/// A user's XP and badges over all their habits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressView {
    /// Cumulative XP.
    pub xp: u64,
    /// Check-ins that earned XP.
    pub completions: u32,
    /// Badges by kind.
    pub badges: BTreeMap<Badge, BadgeCount>,
}

/// How a habit's entry of a day counts in the rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayOutcome {
    /// YES or the target met.
    Done,
    /// SKIP.
    Skipped,
    /// NO or the target missed.
    Missed,
}

/// One user's habits on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HabitDayView {
    /// The local day.
    pub day: NaiveDate,
    /// Each habit's outcome (its current entry).
    pub habits: BTreeMap<Uuid, DayOutcome>,
    /// XP earned by the check-ins of this day.
    pub xp: u32,
}

impl HabitDayView {
    /// A day without entries.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            habits: BTreeMap::new(),
            xp: 0,
        }
    }

    /// Entries with `outcome`.
    pub fn count(&self, outcome: DayOutcome) -> u32 {
        self.habits.values().filter(|o| **o == outcome).count() as u32
    }
}

/// The `habits` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Habits;

impl Habits {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        Habits.model()
    }

    /// `user_id`'s clock as this model knows it.
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &Habits, user_id).await
    }

    /// One habit of `user_id` (None when absent or someone else's).
    pub async fn get(
        rows: &impl RowReader,
        user_id: Uuid,
        habit_id: Uuid,
    ) -> Result<Option<HabitView>, ProjectionError> {
        let row = rows
            .get_row(&Habits, &RowKey::new(user_id, habit_id.to_string()))
            .await?;
        row.filter(|r| r.grp == HABIT)
            .map(|r| r.decode())
            .transpose()
    }

    /// Every habit of `user_id` (at most [`MAX_HABITS`]), in creation order.
    pub async fn list(
        rows: &impl RowReader,
        user_id: Uuid,
    ) -> Result<Vec<HabitView>, ProjectionError> {
        rows.list_rows(&Habits, user_id, &[HABIT], None, MAX_HABITS)
            .await?
            .iter()
            .map(Row::decode)
            .collect()
    }

    /// `user_id`'s XP and badges.
    pub async fn progress(
        rows: &impl RowReader,
        user_id: Uuid,
    ) -> Result<ProgressView, ProjectionError> {
        let row = rows
            .get_row(&Habits, &RowKey::new(user_id, PROGRESS))
            .await?;
        Ok(row.map(|r| r.decode()).transpose()?.unwrap_or_default())
    }

    /// Every day from `from` to `to` (both included), empty days filled in.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<HabitDayView>, ProjectionError> {
        let day_of = |d: &HabitDayView| d.day;
        daily::filled_days(
            rows,
            &Habits,
            user_id,
            (from, to),
            day_of,
            HabitDayView::empty,
        )
        .await
    }
}

fn progress_key(user: Uuid) -> RowKey {
    RowKey::new(user, PROGRESS)
}

fn habit_key(user: Uuid, habit_id: Uuid) -> RowKey {
    RowKey::new(user, habit_id.to_string())
}

impl Projection for Habits {
    fn name(&self) -> &'static str {
        "habits"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Habit::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        let (Habit::TYPE, Some(user)) = (event.aggregate_type.as_str(), event.user_id) else {
            return Vec::new();
        };
        let Ok(payload) = crate::decode_payload::<HabitEvent>(event) else {
            return Vec::new(); // apply reports it as a poison event
        };
        let mut keys = vec![
            UserClock::key(user),
            progress_key(user),
            habit_key(user, payload.habit_id()),
        ];
        if let HabitEvent::HabitChecked { day, .. } = payload {
            keys.push(daily::day_key(user, day));
        }
        keys
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, Habit::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: HabitEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let user = event
            .user_id
            .ok_or_else(|| poison("habit event without a user id".to_string()))?;
        let key = habit_key(user, payload.habit_id());
        if let HabitEvent::HabitCreated {
            habit_id,
            name,
            kind,
            frequency,
            reminder,
            created_at,
            ..
        } = payload
        {
            let clock = UserClock::get(rows, user)?;
            let view = HabitView {
                habit_id,
                name,
                kind,
                frequency,
                reminder,
                archived: false,
                created_at,
                start_day: clock.day_of(created_at),
                entries: BTreeMap::new(),
                xp: 0,
                badges: BTreeSet::new(),
            };
            rows.put(Row::new(key, HABIT, sort_key(&view), &view)?);
            return Ok(());
        }
        let mut view: HabitView = rows
            .get(&key)
            .ok_or_else(|| poison(format!("habit {} was never created", payload.habit_id())))?
            .decode()?;
        let mut progress: ProgressView = match rows.get(&progress_key(user)) {
            Some(row) => row.decode()?,
            None => ProgressView::default(),
        };
        match payload {
            HabitEvent::HabitCreated { .. } | HabitEvent::HabitStreakReached { .. } => {}
            HabitEvent::HabitUpdated {
                name,
                kind,
                frequency,
                reminder,
                ..
            } => {
                view.name = name;
                view.kind = kind;
                view.frequency = frequency;
                view.reminder = reminder;
            }
            HabitEvent::HabitArchived { .. } => view.archived = true,
            HabitEvent::HabitUnarchived { .. } => view.archived = false,
            HabitEvent::HabitChecked {
                habit_id,
                day,
                value,
                success,
                xp,
                ..
            } => {
                let outcome = match (&value, success) {
                    (EntryValue::Skip, _) => DayOutcome::Skipped,
                    (_, true) => DayOutcome::Done,
                    (_, false) => DayOutcome::Missed,
                };
                view.entries.insert(day, value);
                view.xp += u64::from(xp);
                progress.xp += u64::from(xp);
                if xp > 0 {
                    progress.completions += 1;
                }
                let day_key = daily::day_key(user, day);
                let mut totals: HabitDayView = match rows.get(&day_key) {
                    Some(row) => row.decode()?,
                    None => HabitDayView::empty(day),
                };
                totals.habits.insert(habit_id, outcome);
                totals.xp += xp;
                rows.put(Row::new(day_key, DAY_GROUP, daily::day_id(day), &totals)?);
            }
            HabitEvent::HabitBadgeEarned {
                badge, earned_at, ..
            } => {
                view.badges.insert(badge);
                progress
                    .badges
                    .entry(badge)
                    .and_modify(|b| b.count += 1)
                    .or_insert(BadgeCount {
                        count: 1,
                        first_earned_at: earned_at,
                    });
            }
        }
        let sort = sort_key(&view);
        rows.put(Row::new(key, HABIT, sort, &view)?);
        rows.put(Row::new(progress_key(user), PROGRESS, "", &progress)?);
        Ok(())
    }
}

/// Creation order, ties by id.
fn sort_key(view: &HabitView) -> String {
    format!("{}/{}", time_key(view.created_at), view.habit_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::habit::HabitKind;
    use aggregates::preferences::{PreferencesEvent, PreferencesPatch};
    use store::Position;

    const USER: Uuid = Uuid::from_u128(0xa11ce);
    const H1: Uuid = Uuid::from_u128(1);
    const H2: Uuid = Uuid::from_u128(2);

    fn logged(aggregate_type: &str, payload: serde_json::Value) -> LoggedEvent {
        LoggedEvent {
            position: Position { tx: 0, pos: 1 },
            event_id: Uuid::now_v7(),
            user_id: Some(USER),
            recorded_at: Utc::now(),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: Uuid::now_v7().to_string(),
            sequence: 1,
            event_type: "Whatever".to_string(),
            event_version: "1".to_string(),
            payload,
            metadata: serde_json::json!({}),
        }
    }

    fn habit_event(event: HabitEvent) -> LoggedEvent {
        logged(Habit::TYPE, serde_json::to_value(event).unwrap())
    }

    fn created(habit_id: Uuid, at: DateTime<Utc>) -> HabitEvent {
        HabitEvent::HabitCreated {
            habit_id,
            user_id: USER,
            name: "Read".into(),
            kind: HabitKind::YesNo,
            frequency: Frequency::DAILY,
            reminder: None,
            created_at: at,
        }
    }

    fn checked(habit_id: Uuid, n: i64, value: EntryValue, xp: u32) -> HabitEvent {
        HabitEvent::HabitChecked {
            habit_id,
            day: day(n),
            success: value == EntryValue::Yes,
            value,
            previous: None,
            streak: 1,
            xp,
            checked_at: Utc::now(),
        }
    }

    fn first_badge(habit_id: Uuid) -> HabitEvent {
        HabitEvent::HabitBadgeEarned {
            habit_id,
            badge: Badge::FirstCheckIn,
            day: day(1),
            earned_at: Utc::now(),
        }
    }

    #[test]
    fn the_fold_keeps_habits_progress_and_days() {
        let mut rows = RowSet::default();
        let clock = PreferencesEvent::PreferencesSet {
            user_id: USER,
            changes: PreferencesPatch {
                timezone: Some("Pacific/Kiritimati".into()),
                ..Default::default()
            },
            at: Utc::now(),
        };
        // 12:00 UTC on 1 March is 02:00 on 2 March in Kiritimati (UTC+14)
        let noon = day(1).and_hms_opt(12, 0, 0).unwrap().and_utc();
        let check_day1 = habit_event(checked(H1, 1, EntryValue::Yes, 11));
        assert!(
            Habits
                .keys(&check_day1)
                .contains(&daily::day_key(USER, day(1))),
            "a check-in names its day row"
        );
        let events = [
            logged(UserPreferences::TYPE, serde_json::to_value(clock).unwrap()),
            habit_event(created(H1, noon)),
            habit_event(created(H2, noon)),
            check_day1,
            habit_event(first_badge(H1)),
            habit_event(checked(H2, 1, EntryValue::Yes, 11)),
            habit_event(first_badge(H2)),
            // a correction of day 1: NO replaces YES, no new XP
            habit_event(checked(H1, 1, EntryValue::No, 0)),
        ];
        for event in &events {
            Habits.apply(event, &mut rows).expect("applies");
        }
        let h1: HabitView = rows.get(&habit_key(USER, H1)).unwrap().decode().unwrap();
        assert_eq!(h1.start_day, day(2), "the local day of the creation");
        assert_eq!(h1.entries.get(&day(1)), Some(&EntryValue::No));
        assert_eq!(h1.xp, 11);
        let progress: ProgressView = rows.get(&progress_key(USER)).unwrap().decode().unwrap();
        assert_eq!((progress.xp, progress.completions), (22, 2));
        assert_eq!(progress.badges[&Badge::FirstCheckIn].count, 2);
        let day1: HabitDayView = rows
            .get(&daily::day_key(USER, day(1)))
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(
            (
                day1.count(DayOutcome::Done),
                day1.count(DayOutcome::Missed),
                day1.xp
            ),
            (1, 1, 22)
        );
    }

    #[test]
    fn a_check_in_of_an_unknown_habit_is_poison() {
        let mut rows = RowSet::default();
        let event = habit_event(checked(H1, 1, EntryValue::Yes, 11));
        assert!(Habits.apply(&event, &mut rows).is_err());
    }

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + Duration::days(n - 1)
    }

    fn view(entries: &[(i64, EntryValue)]) -> HabitView {
        HabitView {
            habit_id: Uuid::nil(),
            name: "Read".into(),
            kind: HabitKind::YesNo,
            frequency: Frequency::DAILY,
            reminder: None,
            archived: false,
            created_at: day(1).and_hms_opt(8, 0, 0).unwrap().and_utc(),
            start_day: day(1),
            entries: entries.iter().map(|(n, v)| (day(*n), v.clone())).collect(),
            xp: 0,
            badges: BTreeSet::new(),
        }
    }

    #[test]
    fn stats_are_computed_for_the_given_today() {
        let all: Vec<_> = (1..=30).map(|n| (n, EntryValue::Yes)).collect();
        let v = view(&all);
        let stats = v.stats(day(30));
        assert_eq!((stats.current_streak, stats.longest_streak), (30, 30));
        assert!((stats.score - 0.7980).abs() <= 0.0001, "{stats:?}");
        assert_eq!(
            (stats.rate_7, stats.rate_30, stats.rate_90),
            (1.0, 1.0, 1.0)
        );
        // three days later with nothing logged: the streak is over, the score decays
        let later = v.stats(day(33));
        assert_eq!((later.current_streak, later.longest_streak), (0, 30));
        assert!((later.score - 0.6801).abs() <= 0.0001, "{later:?}");
        assert!((later.rate_7 - 4.0 / 6.0).abs() < 1e-9, "{later:?}");
    }

    #[test]
    fn history_has_one_score_per_day() {
        let v = view(&[(3, EntryValue::Yes)]);
        let h = v.history(day(4), 4);
        assert_eq!(h.len(), 4);
        assert_eq!(h[0], (day(1), 0.0, false));
        assert!(h[2].1 > 0.05 && h[2].2);
        assert!(h[3].1 < h[2].1 && !h[3].2);
    }
}
