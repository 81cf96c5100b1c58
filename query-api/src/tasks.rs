//! `lifeos.v1.TaskQueries`: the task_list read model over gRPC.
//!
//! ListTasks filters by project and tag inside the read-model query (pages stay exact); GetTask
//! answers with the task's subtasks (rows whose `parent_task_id` is the task). GetDailyRollup
//! reads `task_daily` (and waits on its consistency): created and completed counts per local day,
//! and the tasks overdue at each day's end, computed from the model's per-task facts.

use aggregates::task::{IntervalUnit, Recurrence, RecurrenceRule, RepeatFrom};
use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, parse_uuid_field};
use projections::daily::day_id;
use projections::replay::replay_user;
use projections::task_daily::{TaskDaily, TaskDay as DayTasks};
use projections::task_list::{TaskFilter, TaskList, TaskView};
use projections::{Freshness, MemoryRows, Projection, ReadModels};
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
use crate::fields::{bounded, decode_cursor, encode_cursor, read_error, rollup_range};

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
        let page_size = bounded("page_size", r.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = decode_cursor(&r.page_token, "ListTasks")?;
        self.consistency.wait(&r.consistency_token).await?;
        let (include, size) = (r.include_completed, page_size);
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
        let (caller, from, to) = rollup_range(&request, &self.daily).await?;
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
