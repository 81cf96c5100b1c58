//! `lifeos.v1.CalendarQueries`: the calendar_events read model over gRPC. Occurrences are
//! expanded by the model (`rrule` crate, in each event's time zone); `Today` and `FreeBusy` use
//! the caller's local day (preferences time zone and day start hour, as the model knows them).

use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, invalid_argument};
use chrono::{Duration, Utc};
use projections::ReadModels;
use projections::calendar_daily::CalendarDaily;
use projections::calendar_events::{CalendarEvents, MAX_RANGE_DAYS, OccurrenceView, busy_blocks};
use projections::daily::day_id;
use proto::v1::calendar_queries_server::CalendarQueries;
use proto::v1::{
    BusyBlock, CalendarDay, CalendarTodayRequest, EventOccurrence, FreeBusyRequest,
    FreeBusyResponse, GetMeetingRollupRequest, ListEventsRequest, ListEventsResponse, MeetingDay,
    MeetingRollup,
};
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;
use crate::fields::{day_range, optional_day, read_error};

/// Default number of occurrences ListEvents returns.
pub const DEFAULT_LIMIT: u32 = 1_000;
/// Largest number of occurrences ListEvents returns.
pub const MAX_LIMIT: u32 = 5_000;
/// The most occurrences Today returns.
const DAY_LIMIT: usize = 5_000;

/// The Calendar query service.
#[derive(Clone)]
pub struct CalendarQueryService {
    models: ReadModels,
    events: ReadYourWrites,
}

impl CalendarQueryService {
    /// Answers from `models`, waiting on `events` (calendar_events) for consistency tokens.
    pub fn new(models: ReadModels, events: ReadYourWrites) -> Self {
        Self { models, events }
    }
}

fn occurrence_to_proto(o: OccurrenceView) -> EventOccurrence {
    let (source, external_id) = o
        .external
        .map(|e| (e.source, e.external_id))
        .unwrap_or_default();
    EventOccurrence {
        event_id: o.event_id.to_string(),
        title: o.title,
        start: Some(to_timestamp(o.start)),
        end: Some(to_timestamp(o.end)),
        all_day: o.all_day,
        time_zone: o.time_zone,
        location: o.location.unwrap_or_default(),
        recurring: o.recurring,
        source,
        external_id,
    }
}

#[tonic::async_trait]
impl CalendarQueries for CalendarQueryService {
    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let from = r
            .from
            .as_ref()
            .ok_or_else(|| invalid_argument("from", "is required"))
            .and_then(|t| from_timestamp("from", t))?;
        let to =
            r.to.as_ref()
                .ok_or_else(|| invalid_argument("to", "is required"))
                .and_then(|t| from_timestamp("to", t))?;
        if to <= from {
            return Err(invalid_argument("to", "must be after from"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(invalid_argument(
                "to",
                format!("a range spans at most {MAX_RANGE_DAYS} days"),
            ));
        }
        let limit = match r.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(invalid_argument(
                    "limit",
                    format!("must be at most {MAX_LIMIT}"),
                ));
            }
            n => n,
        } as usize;
        self.events.wait(&r.consistency_token).await?;
        let mut list =
            CalendarEvents::occurrences(&self.models, caller.user_id, from, to, limit + 1)
                .await
                .map_err(read_error)?;
        let truncated = list.len() > limit;
        list.truncate(limit);
        Ok(Response::new(ListEventsResponse {
            occurrences: list.into_iter().map(occurrence_to_proto).collect(),
            truncated,
        }))
    }

    async fn today(
        &self,
        request: Request<CalendarTodayRequest>,
    ) -> Result<Response<CalendarDay>, Status> {
        let caller = Caller::of(&request)?;
        self.events
            .wait(&request.get_ref().consistency_token)
            .await?;
        let clock = CalendarEvents::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let day = clock.day_of(Utc::now());
        let range = clock.day_range(day);
        let list = CalendarEvents::occurrences(
            &self.models,
            caller.user_id,
            range.start,
            range.end,
            DAY_LIMIT,
        )
        .await
        .map_err(read_error)?;
        Ok(Response::new(CalendarDay {
            day: day_id(day),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
            day_start: Some(to_timestamp(range.start)),
            day_end: Some(to_timestamp(range.end)),
            occurrences: list.into_iter().map(occurrence_to_proto).collect(),
        }))
    }

    async fn free_busy(
        &self,
        request: Request<FreeBusyRequest>,
    ) -> Result<Response<FreeBusyResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let day = optional_day("day", &r.day)?;
        self.events.wait(&r.consistency_token).await?;
        let clock = CalendarEvents::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let day = day.unwrap_or_else(|| clock.day_of(Utc::now()));
        let range = clock.day_range(day);
        let list = CalendarEvents::occurrences(
            &self.models,
            caller.user_id,
            range.start,
            range.end,
            usize::MAX,
        )
        .await
        .map_err(read_error)?;
        let busy = busy_blocks(&list, range.start, range.end);
        Ok(Response::new(FreeBusyResponse {
            day: day_id(day),
            day_start: Some(to_timestamp(range.start)),
            day_end: Some(to_timestamp(range.end)),
            busy: busy
                .into_iter()
                .map(|b| BusyBlock {
                    start: Some(to_timestamp(b.start)),
                    end: Some(to_timestamp(b.end)),
                })
                .collect(),
        }))
    }

    async fn get_meeting_rollup(
        &self,
        request: Request<GetMeetingRollupRequest>,
    ) -> Result<Response<MeetingRollup>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (from, to) = day_range(&r.from_day, &r.to_day)?;
        self.events.wait(&r.consistency_token).await?;
        let (clock, days) = CalendarDaily::days(&self.models, caller.user_id, from, to)
            .await
            .map_err(read_error)?;
        Ok(Response::new(MeetingRollup {
            days: days
                .into_iter()
                .map(|d| MeetingDay {
                    day: day_id(d.day),
                    meeting_seconds: d.meeting_seconds,
                    meeting_minutes: d.meeting_minutes(),
                    meetings: d.meetings,
                    first_start: d.first_start.map(to_timestamp),
                    last_end: d.last_end.map(to_timestamp),
                })
                .collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}
