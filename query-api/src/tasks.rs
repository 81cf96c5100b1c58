//! `lifeos.v1.TaskQueries`: the task_list read model over gRPC.
//!
//! ListTasks filters by project and tag inside the read-model query (pages stay exact); GetTask
//! answers with the task's subtasks (rows whose `parent_task_id` is the task). GetDailyRollup
//! reads `task_daily` (and waits on its consistency): created and completed counts per local day,
//! and the tasks overdue at each day's end, computed from the model's per-task facts.

use aggregates::task::{IntervalUnit, Recurrence, RecurrenceRule, RepeatFrom};
use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, invalid_argument, parse_uuid_field};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use projections::daily::{MAX_DAYS, day_id, parse_day};
use projections::replay::replay_user;
use projections::task_daily::{TaskDaily, TaskDay as DayTasks};
use projections::task_list::{TaskFilter, TaskList, TaskView};
use projections::{Freshness, MemoryRows, Projection, ProjectionError, ReadModels, RowCursor};
use proto::v1::task_queries_server::TaskQueries;
use proto::v1::task_recurrence::Rule;
use proto::v1::{
    GetTaskDailyRollupRequest, GetTaskRequest, ListTasksRequest, ListTasksResponse, Task,
    TaskDailyRollup, TaskDay, TaskEvery, TaskIntervalUnit, TaskRecurrence, TaskRepeatFrom,
};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;

/// Default page size of ListTasks.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size of ListTasks.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The Tasks query service.
#[derive(Clone)]
pub struct TaskQueryService {
    models: ReadModels,
    consistency: ReadYourWrites,
    daily: ReadYourWrites,
}

impl TaskQueryService {
    /// Answers from `models`, waiting on `consistency` (task_list) for tokens; GetDailyRollup
    /// waits on task_daily's stored checkpoint (up to 5 s) unless
    /// [`with_daily`](TaskQueryService::with_daily) says otherwise.
    pub fn new(models: ReadModels, consistency: ReadYourWrites) -> Self {
        let daily = ReadYourWrites::new(
            Freshness::new(models.clone(), Arc::new(TaskDaily), None),
            Duration::from_secs(5),
        );
        Self {
            models,
            consistency,
            daily,
        }
    }

    /// How GetDailyRollup waits for consistency tokens (on task_daily).
    pub fn with_daily(mut self, daily: ReadYourWrites) -> Self {
        self.daily = daily;
        self
    }
}

/// Where a query is answered from: the live model, or the caller's history replayed to `as_of`.
enum Source {
    Live,
    AsOf(MemoryRows),
}

impl TaskQueryService {
    async fn source(
        &self,
        caller: &Caller,
        as_of: Option<&prost_types::Timestamp>,
    ) -> Result<Source, Status> {
        let Some(ts) = as_of else {
            return Ok(Source::Live);
        };
        let until = from_timestamp("as_of", ts)?;
        let projections: [Arc<dyn Projection>; 1] = [Arc::new(TaskList)];
        let mut replay = replay_user(
            self.models.store(),
            &projections,
            caller.user_id,
            Some(until),
            |_| {},
        )
        .await
        .map_err(read_error)?;
        Ok(Source::AsOf(
            replay.models.remove(TaskList.name()).unwrap_or_default(),
        ))
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

fn recurrence_to_proto(r: Recurrence) -> TaskRecurrence {
    let rule = match r.rule {
        RecurrenceRule::Rrule(text) => Rule::Rrule(text),
        RecurrenceRule::Every { interval, unit } => Rule::Every(TaskEvery {
            interval,
            unit: match unit {
                IntervalUnit::Days => TaskIntervalUnit::Days,
                IntervalUnit::Weeks => TaskIntervalUnit::Weeks,
                IntervalUnit::Months => TaskIntervalUnit::Months,
            }
            .into(),
        }),
    };
    let repeat_from = match r.repeat_from {
        RepeatFrom::DueDate => TaskRepeatFrom::DueDate,
        RepeatFrom::CompletionDate => TaskRepeatFrom::CompletionDate,
    };
    TaskRecurrence {
        rule: Some(rule),
        repeat_from: repeat_from.into(),
        time_zone: r.time_zone.unwrap_or_default(),
    }
}

fn to_proto(v: TaskView) -> Task {
    Task {
        task_id: v.task_id.to_string(),
        title: v.title,
        description: v.description,
        due: v.due.map(to_timestamp),
        priority: v.priority.into(),
        tags: v.tags,
        parent_task_id: v.parent_task_id.map(|p| p.to_string()).unwrap_or_default(),
        completed: v.completed,
        completed_at: v.completed_at.map(to_timestamp),
        created_at: Some(to_timestamp(v.created_at)),
        updated_at: Some(to_timestamp(v.updated_at)),
        project: v.project.unwrap_or_default(),
        recurrence: v.recurrence.map(recurrence_to_proto),
        completed_occurrences: v.completed_occurrences,
        skipped_occurrences: v.skipped_occurrences,
        last_completed_at: v.last_completed_at.map(to_timestamp),
        subtasks: Vec::new(),
    }
}

/// A non-empty filter value.
fn filter_value(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

fn encode_cursor(c: &RowCursor) -> String {
    let json = serde_json::json!([c.sort_key, c.row_id]).to_string();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(token: &str) -> Result<Option<RowCursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid_argument("page_token", "is not a next_page_token of ListTasks");
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

/// The checked `[from_day, to_day]` of a rollup request.
fn day_range(from_day: &str, to_day: &str) -> Result<(NaiveDate, NaiveDate), Status> {
    let from = day_field("from_day", from_day)?;
    let to = day_field("to_day", to_day)?;
    if to < from {
        return Err(invalid_argument("to_day", "must not be before from_day"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(invalid_argument(
            "to_day",
            format!("a rollup spans at most {MAX_DAYS} days"),
        ));
    }
    Ok((from, to))
}

fn day_to_proto(d: DayTasks) -> TaskDay {
    TaskDay {
        day: day_id(d.day),
        created: d.created,
        completed: d.completed,
        overdue_at_day_end: d.overdue_at_day_end,
    }
}

#[tonic::async_trait]
impl TaskQueries for TaskQueryService {
    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let task_id = parse_uuid_field("task_id", &r.task_id)?;
        self.consistency.wait(&r.consistency_token).await?;
        let user = caller.user_id;
        let (view, subtasks) = match self.source(&caller, r.as_of.as_ref()).await? {
            Source::Live => (
                TaskList::get(&self.models, user, task_id).await,
                TaskList::subtasks(&self.models, user, task_id).await,
            ),
            Source::AsOf(rows) => (
                TaskList::get(&rows, user, task_id).await,
                TaskList::subtasks(&rows, user, task_id).await,
            ),
        };
        let view = view
            .map_err(read_error)?
            .ok_or_else(|| Status::not_found(format!("task {task_id} not found")))?;
        let mut task = to_proto(view);
        task.subtasks = subtasks
            .map_err(read_error)?
            .into_iter()
            .map(to_proto)
            .collect();
        Ok(Response::new(task))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
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
        self.consistency.wait(&r.consistency_token).await?;
        let (include, size) = (r.include_completed, page_size as usize);
        let filter = TaskFilter {
            project: filter_value(r.project),
            tag: filter_value(r.tag),
            parent_task_id: None,
        };
        let user = caller.user_id;
        let cursor = cursor.as_ref();
        let (page, stats) = match self.source(&caller, r.as_of.as_ref()).await? {
            Source::Live => (
                TaskList::list_where(&self.models, user, include, &filter, cursor, size).await,
                TaskList::stats(&self.models, user).await,
            ),
            Source::AsOf(rows) => (
                TaskList::list_where(&rows, user, include, &filter, cursor, size).await,
                TaskList::stats(&rows, user).await,
            ),
        };
        let (tasks, next) = page.map_err(read_error)?;
        let stats = stats.map_err(read_error)?;
        Ok(Response::new(ListTasksResponse {
            tasks: tasks.into_iter().map(to_proto).collect(),
            next_page_token: next.as_ref().map(encode_cursor).unwrap_or_default(),
            open_count: stats.open,
            completed_count: stats.completed,
            completions_total: stats.completions_total,
            created_total: stats.created_total,
        }))
    }

    async fn get_daily_rollup(
        &self,
        request: Request<GetTaskDailyRollupRequest>,
    ) -> Result<Response<TaskDailyRollup>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (from, to) = day_range(&r.from_day, &r.to_day)?;
        self.daily.wait(&r.consistency_token).await?;
        let clock = TaskDaily::clock(&self.models, caller.user_id)
            .await
            .map_err(read_error)?;
        let days = TaskDaily::days_with_clock(&self.models, caller.user_id, &clock, from, to)
            .await
            .map_err(read_error)?;
        Ok(Response::new(TaskDailyRollup {
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
    fn rollup_days_are_checked_and_named() {
        for (from, to, field, needle) in [
            ("", "2026-03-08", "from_day", "required"),
            ("2026-3-8", "2026-03-08", "from_day", "YYYY-MM-DD"),
            ("2026-03-08", "", "to_day", "required"),
            ("2026-03-08", "2026-02-30", "to_day", "2026-02-30"),
            ("2026-03-08", "2026-03-07", "to_day", "before"),
            ("2026-01-01", "2027-01-02", "to_day", "366"),
        ] {
            let status = day_range(from, to).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{from}..{to}");
            assert!(status.message().contains(field), "{status:?}");
            assert!(status.message().contains(needle), "{status:?}");
        }
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(
            day_range("2026-03-08", "2026-03-08").unwrap(),
            (day(3, 8), day(3, 8))
        );
        // 366 days, both ends included
        assert_eq!(
            day_range("2026-01-01", "2026-12-31").unwrap().1,
            day(12, 31)
        );
        assert!(day_range("2025-12-31", "2026-12-31").is_ok());
    }
}
