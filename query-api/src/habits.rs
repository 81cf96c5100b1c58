//! `lifeos.v1.HabitQueries`: the `habits` read model over gRPC.
//!
//! Streaks, completion rates and the Loop score depend on "today": they are computed at query
//! time for the caller's current local day (the clock the model keeps from their preferences).

use aggregates::habit::gamification::{level_of, xp_of_level};
use aggregates::habit::{EntryValue, Goal, HabitKind};
use api_common::time::to_timestamp;
use api_common::{Caller, invalid_argument, parse_uuid_field};
use chrono::{NaiveDate, Utc};
use projections::ReadModels;
use projections::daily::day_id;
use projections::habits::{DayOutcome, HabitView, Habits};
use proto::v1::habit_queries_server::HabitQueries;
use proto::v1::{
    GetHabitDailyRollupRequest, GetHabitProgressRequest, GetHabitRequest, Habit, HabitBadge,
    HabitDailyRollup, HabitDay, HabitDayScore, HabitDetails, HabitEntry, HabitEntryValue,
    HabitGoal, HabitKind as WireKind, HabitProgress, ListHabitsRequest, ListHabitsResponse,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::ReadYourWrites;
use crate::fields::{clock_and_days, read_error, rollup_range};

/// Days of history GetHabit returns when the request says 0.
pub const DEFAULT_HISTORY_DAYS: u32 = 30;
/// The most days of history GetHabit returns.
pub const MAX_HISTORY_DAYS: u32 = 366;

/// The Habits query service.
#[derive(Clone)]
pub struct HabitQueryService {
    models: ReadModels,
    consistency: ReadYourWrites,
}

impl HabitQueryService {
    /// Answers from `models`, waiting on `consistency` (the `habits` model) for tokens.
    pub fn new(models: ReadModels, consistency: ReadYourWrites) -> Self {
        Self {
            models,
            consistency,
        }
    }

    /// Waits for `token`, then reads the caller's local day today.
    async fn today(&self, user: Uuid, token: &str) -> Result<NaiveDate, Status> {
        self.consistency.wait(token).await?;
        let clock = Habits::clock(&self.models, user)
            .await
            .map_err(read_error)?;
        Ok(clock.day_of(Utc::now()))
    }
}

fn entry_to_proto(day: NaiveDate, value: &EntryValue) -> HabitEntry {
    let (value, amount) = match value {
        EntryValue::Yes => (HabitEntryValue::Yes, String::new()),
        EntryValue::No => (HabitEntryValue::No, String::new()),
        EntryValue::Skip => (HabitEntryValue::Skip, String::new()),
        EntryValue::Amount(a) => (HabitEntryValue::Amount, a.to_string()),
    };
    HabitEntry {
        day: day_id(day),
        value: value as i32,
        amount,
    }
}

fn habit_to_proto(v: &HabitView, today: NaiveDate) -> Habit {
    let stats = v.stats(today);
    let (kind, unit, target, goal) = match &v.kind {
        HabitKind::YesNo => (
            WireKind::YesNo,
            String::new(),
            String::new(),
            HabitGoal::Unspecified,
        ),
        HabitKind::Numeric { unit, target, goal } => (
            WireKind::Numeric,
            unit.clone(),
            target.to_string(),
            match goal {
                Goal::AtLeast => HabitGoal::AtLeast,
                Goal::AtMost => HabitGoal::AtMost,
            },
        ),
    };
    Habit {
        habit_id: v.habit_id.to_string(),
        name: v.name.clone(),
        kind: kind as i32,
        frequency_times: v.frequency.times,
        frequency_days: v.frequency.days,
        unit,
        target,
        goal: goal as i32,
        reminder_time: v
            .reminder
            .map(|t| t.format("%H:%M").to_string())
            .unwrap_or_default(),
        archived: v.archived,
        created_at: Some(to_timestamp(v.created_at)),
        start_day: day_id(v.start_day),
        current_streak: stats.current_streak,
        longest_streak: stats.longest_streak,
        score: stats.score,
        completion_rate_7: stats.rate_7,
        completion_rate_30: stats.rate_30,
        completion_rate_90: stats.rate_90,
        xp: v.xp,
        badges: v.badges.iter().map(|b| b.as_str().to_string()).collect(),
        today_entry: v.entries.get(&today).map(|e| entry_to_proto(today, e)),
    }
}

#[tonic::async_trait]
impl HabitQueries for HabitQueryService {
    async fn list_habits(
        &self,
        request: Request<ListHabitsRequest>,
    ) -> Result<Response<ListHabitsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let today = self.today(caller.user_id, &r.consistency_token).await?;
        let habits = Habits::list(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        Ok(Response::new(ListHabitsResponse {
            habits: habits
                .iter()
                .filter(|h| r.include_archived || !h.archived)
                .map(|h| habit_to_proto(h, today))
                .collect(),
            today: day_id(today),
        }))
    }

    async fn get_habit(
        &self,
        request: Request<GetHabitRequest>,
    ) -> Result<Response<HabitDetails>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let habit_id = parse_uuid_field("habit_id", &r.habit_id)?;
        let days = match r.days {
            0 => DEFAULT_HISTORY_DAYS,
            n if n > MAX_HISTORY_DAYS => {
                return Err(invalid_argument(
                    "days",
                    format!("must be at most {MAX_HISTORY_DAYS}, got {n}"),
                ));
            }
            n => n,
        };
        let today = self.today(caller.user_id, &r.consistency_token).await?;
        let habit = Habits::get(&self.models, caller.user_id, habit_id)
            .await
            .map_err(read_error)?
            .ok_or_else(|| Status::not_found(format!("habit {habit_id} not found")))?;
        let history = habit.history(today, days);
        let from = history.first().map_or(today, |(d, _, _)| *d);
        Ok(Response::new(HabitDetails {
            habit: Some(habit_to_proto(&habit, today)),
            today: day_id(today),
            entries: habit
                .entries
                .range(from..=today)
                .map(|(d, v)| entry_to_proto(*d, v))
                .collect(),
            scores: history
                .into_iter()
                .map(|(day, score, done)| HabitDayScore {
                    day: day_id(day),
                    score,
                    done,
                })
                .collect(),
        }))
    }

    async fn get_habit_progress(
        &self,
        request: Request<GetHabitProgressRequest>,
    ) -> Result<Response<HabitProgress>, Status> {
        let caller = Caller::of(&request)?;
        self.consistency
            .wait(&request.get_ref().consistency_token)
            .await?;
        let progress = Habits::progress(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let level = level_of(progress.xp);
        Ok(Response::new(HabitProgress {
            xp: progress.xp,
            level,
            level_xp: xp_of_level(level),
            next_level_xp: xp_of_level(level + 1),
            badges: progress
                .badges
                .iter()
                .map(|(badge, b)| HabitBadge {
                    badge: badge.as_str().to_string(),
                    count: b.count,
                    first_earned_at: Some(to_timestamp(b.first_earned_at)),
                })
                .collect(),
            completions: progress.completions,
        }))
    }

    async fn get_habit_daily_rollup(
        &self,
        request: Request<GetHabitDailyRollupRequest>,
    ) -> Result<Response<HabitDailyRollup>, Status> {
        let (caller, from, to) = rollup_range(&request, &self.consistency).await?;
        let user = caller.user_id;
        let (clock, days) = clock_and_days(
            Habits::clock(&self.models, user),
            Habits::days(&self.models, user, from, to),
        )
        .await?;
        let habits = Habits::list(&self.models, user).await.map_err(read_error)?;
        Ok(Response::new(HabitDailyRollup {
            days: days
                .into_iter()
                .map(|d| {
                    let due = habits
                        .iter()
                        .filter(|h| {
                            d.habits.contains_key(&h.habit_id)
                                || (!h.archived && h.start_day <= d.day)
                        })
                        .count() as u32;
                    HabitDay {
                        day: day_id(d.day),
                        due,
                        done: d.count(DayOutcome::Done),
                        skipped: d.count(DayOutcome::Skipped),
                        missed: d.count(DayOutcome::Missed),
                        xp: d.xp,
                    }
                })
                .collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}
