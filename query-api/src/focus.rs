//! `lifeos.v1.FocusQueries`: the focus_sessions and focus_daily read models over gRPC.
//!
//! GetFocusState and ListSessions read `focus_sessions` (and wait on its consistency);
//! GetTodaySummary and GetDailyRollup read `focus_daily`, whose rows are per local day of the
//! user's clock (preferences time zone and day start hour) as that model knows it.

use aggregates::focus::FocusKind;
use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, invalid_argument};
use chrono::Utc;
use projections::ReadModels;
use projections::focus_daily::{DayFocus, FocusDaily};
use projections::focus_sessions::{FocusSessions, SessionState, SessionView};
use proto::v1::focus_queries_server::FocusQueries;
use proto::v1::{
    DailyFocus, DailyRollup, FocusKind as WireKind, FocusSession, FocusSessionState, FocusState,
    GetDailyRollupRequest, GetFocusStateRequest, GetTodaySummaryRequest, ListSessionsRequest,
    ListSessionsResponse, TaskFocus, TodaySummary,
};
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;
use crate::fields::{
    bounded, clock_and_days, decode_cursor, encode_cursor, read_error, rollup_range,
};

/// Default page size of ListSessions.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size of ListSessions.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The Focus query service.
#[derive(Clone)]
pub struct FocusQueryService {
    models: ReadModels,
    sessions: ReadYourWrites,
    daily: ReadYourWrites,
}

impl FocusQueryService {
    /// Answers from `models`, waiting on `sessions` (focus_sessions) or `daily` (focus_daily)
    /// for consistency tokens.
    pub fn new(models: ReadModels, sessions: ReadYourWrites, daily: ReadYourWrites) -> Self {
        Self {
            models,
            sessions,
            daily,
        }
    }
}

/// The wire form of a focus kind.
pub fn kind_to_wire(kind: FocusKind) -> WireKind {
    match kind {
        FocusKind::Pomodoro => WireKind::Pomodoro,
        FocusKind::ShortBreak => WireKind::ShortBreak,
        FocusKind::LongBreak => WireKind::LongBreak,
        FocusKind::Flowtime => WireKind::Flowtime,
        FocusKind::Countdown => WireKind::Countdown,
    }
}

fn session_to_proto(v: SessionView, now: chrono::DateTime<Utc>) -> FocusSession {
    let focused_seconds = v.focused_seconds_at(now);
    FocusSession {
        session_id: v.session_id.to_string(),
        kind: kind_to_wire(v.kind) as i32,
        state: match v.state {
            SessionState::Running => FocusSessionState::Running,
            SessionState::Paused => FocusSessionState::Paused,
            SessionState::Completed => FocusSessionState::Completed,
            SessionState::Abandoned => FocusSessionState::Abandoned,
        } as i32,
        planned_minutes: v.planned_minutes,
        task_id: v.task_id.map(|t| t.to_string()).unwrap_or_default(),
        started_at: Some(to_timestamp(v.started_at)),
        ended_at: v.ended_at.map(to_timestamp),
        paused_at: v.paused_at.map(to_timestamp),
        focused_seconds,
        focused_minutes: focused_seconds as f64 / 60.0,
        interruptions: v.interruptions,
        reason: v.reason.unwrap_or_default(),
    }
}

fn day_to_proto(d: DayFocus) -> DailyFocus {
    DailyFocus {
        day: projections::daily::day_id(d.day),
        focused_seconds: d.focused_seconds,
        focused_minutes: d.focused_minutes(),
        completed: d.completed,
        abandoned: d.abandoned,
        interruptions: d.interruptions,
        breaks_completed: d.breaks_completed,
        break_seconds: d.break_seconds,
        tasks: d
            .tasks
            .into_iter()
            .map(|(task, seconds)| TaskFocus {
                task_id: task.to_string(),
                focused_seconds: seconds,
                focused_minutes: seconds as f64 / 60.0,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl FocusQueries for FocusQueryService {
    async fn get_focus_state(
        &self,
        request: Request<GetFocusStateRequest>,
    ) -> Result<Response<FocusState>, Status> {
        let caller = Caller::of(&request)?;
        self.sessions
            .wait(&request.get_ref().consistency_token)
            .await?;
        let user = caller.user_id;
        let timer = FocusSessions::timer(&self.models, user)
            .await
            .map_err(read_error)?;
        let running = match timer.running {
            Some(id) => FocusSessions::get(&self.models, user, id)
                .await
                .map_err(read_error)?,
            None => None,
        };
        let next = timer.suggested_next();
        Ok(Response::new(FocusState {
            running: running.map(|s| session_to_proto(s, Utc::now())),
            suggested_next_kind: kind_to_wire(next) as i32,
            suggested_planned_minutes: timer.default_minutes(next).unwrap_or_default(),
            completed_pomodoros_in_cycle: timer.cycle.pomodoros,
            cycles_before_long_break: timer.cycles_before_long_break,
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let from = r
            .from
            .as_ref()
            .map(|t| from_timestamp("from", t))
            .transpose()?;
        let to = r.to.as_ref().map(|t| from_timestamp("to", t)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            return Err(invalid_argument("to", "must be after from"));
        }
        let page_size = bounded("page_size", r.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = decode_cursor(&r.page_token, "ListSessions")?;
        self.sessions.wait(&r.consistency_token).await?;
        let (sessions, next) = FocusSessions::list(
            &self.models,
            caller.user_id,
            from,
            to,
            cursor.as_ref(),
            page_size,
        )
        .await
        .map_err(read_error)?;
        let now = Utc::now();
        Ok(Response::new(ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|s| session_to_proto(s, now))
                .collect(),
            next_page_token: next.as_ref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn get_today_summary(
        &self,
        request: Request<GetTodaySummaryRequest>,
    ) -> Result<Response<TodaySummary>, Status> {
        let caller = Caller::of(&request)?;
        self.daily
            .wait(&request.get_ref().consistency_token)
            .await?;
        let clock = FocusDaily::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let today = clock.day_of(Utc::now());
        let range = clock.day_range(today);
        let day = FocusDaily::day(&self.models, caller.user_id, today)
            .await
            .map_err(read_error)?;
        Ok(Response::new(TodaySummary {
            today: Some(day_to_proto(day)),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
            day_start: Some(to_timestamp(range.start)),
            day_end: Some(to_timestamp(range.end)),
        }))
    }

    async fn get_daily_rollup(
        &self,
        request: Request<GetDailyRollupRequest>,
    ) -> Result<Response<DailyRollup>, Status> {
        let (caller, from, to) = rollup_range(&request, &self.daily).await?;
        let user = caller.user_id;
        let (clock, days) = clock_and_days(
            FocusDaily::clock(&self.models, user),
            FocusDaily::days(&self.models, user, from, to),
        )
        .await?;
        Ok(Response::new(DailyRollup {
            days: days.into_iter().map(day_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}
