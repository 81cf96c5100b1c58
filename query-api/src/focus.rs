//! `lifeos.v1.FocusQueries`: the focus_sessions and focus_daily read models over gRPC.
//!
//! GetFocusState and ListSessions read `focus_sessions` (and wait on its consistency);
//! GetTodaySummary and GetDailyRollup read `focus_daily`, whose rows are per local day of the
//! user's clock (preferences time zone and day start hour) as that model knows it.

use aggregates::focus::FocusKind;
use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, invalid_argument};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDate, Utc};
use projections::daily::{MAX_DAYS, parse_day};
use projections::focus_daily::{DayFocus, FocusDaily};
use projections::focus_sessions::{FocusSessions, SessionState, SessionView};
use projections::{ProjectionError, ReadModels, RowCursor};
use proto::v1::focus_queries_server::FocusQueries;
use proto::v1::{
    DailyFocus, DailyRollup, FocusKind as WireKind, FocusSession, FocusSessionState, FocusState,
    GetDailyRollupRequest, GetFocusStateRequest, GetTodaySummaryRequest, ListSessionsRequest,
    ListSessionsResponse, TaskFocus, TodaySummary,
};
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;

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

fn read_error(err: ProjectionError) -> Status {
    match err {
        ProjectionError::Store(e) => api_common::status::store_status(&e),
        other => {
            tracing::error!(error = %other, "read model error");
            Status::internal("internal error")
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

fn encode_cursor(c: &RowCursor) -> String {
    let json = serde_json::json!([c.sort_key, c.row_id]).to_string();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(token: &str) -> Result<Option<RowCursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid_argument("page_token", "is not a next_page_token of ListSessions");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let (sort_key, row_id): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(Some(RowCursor { sort_key, row_id }))
}

/// A required `YYYY-MM-DD` day field.
fn day_field(field: &str, value: &str) -> Result<NaiveDate, Status> {
    if value.is_empty() {
        return Err(invalid_argument(field, "is required (a day as YYYY-MM-DD)"));
    }
    parse_day(value).ok_or_else(|| {
        invalid_argument(field, format!("must be a day as YYYY-MM-DD, got {value:?}"))
    })
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
        let page_size = match r.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(invalid_argument(
                    "page_size",
                    format!("must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        };
        let cursor = decode_cursor(&r.page_token)?;
        self.sessions.wait(&r.consistency_token).await?;
        let (sessions, next) = FocusSessions::list(
            &self.models,
            caller.user_id,
            from,
            to,
            cursor.as_ref(),
            page_size as usize,
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
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let from = day_field("from_day", &r.from_day)?;
        let to = day_field("to_day", &r.to_day)?;
        if to < from {
            return Err(invalid_argument("to_day", "must not be before from_day"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(invalid_argument(
                "to_day",
                format!("a rollup spans at most {MAX_DAYS} days"),
            ));
        }
        self.daily.wait(&r.consistency_token).await?;
        let clock = FocusDaily::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let days = FocusDaily::days(&self.models, caller.user_id, from, to)
            .await
            .map_err(read_error)?;
        Ok(Response::new(DailyRollup {
            days: days.into_iter().map(day_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_fields_are_named() {
        for (value, needle) in [
            ("", "required"),
            ("2026-3-8", "YYYY-MM-DD"),
            ("soon", "soon"),
        ] {
            let status = day_field("from_day", value).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains("from_day"), "{status:?}");
            assert!(status.message().contains(needle), "{status:?}");
        }
        assert_eq!(
            day_field("to_day", "2026-03-08").unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 8).unwrap()
        );
    }

    #[test]
    fn cursors_round_trip() {
        let c = RowCursor {
            sort_key: "2026-03-08T06:59:00.000000Z".into(),
            row_id: "x".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), Some(c));
        assert!(decode_cursor("!!").is_err());
    }
}
