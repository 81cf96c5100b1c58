//! `lifeos.v1.TaskCommands`: requests of the Tasks pillar mapped to [`TaskCommand`]s.
//!
//! CompleteTask counts the task's open subtasks in the task_list read model before handing the
//! count to the aggregate (which refuses a parent with open subtasks unless `force` is set).
//! The read model is eventually consistent, so the count is taken only after the model has
//! applied every event committed when the command arrived (the task's own last event and every
//! earlier subtask change included) and the request's `consistency_token`: a wait on the same [`Freshness`] the queries use,
//! bounded, UNAVAILABLE when it times out. A subtask created concurrently with the completion
//! may still be missed; that is the price of keeping each task its own consistency boundary.

use std::sync::Arc;
use std::time::Duration;

use aggregates::preferences::UserPreferences;
use aggregates::task::{
    IntervalUnit, NewTask, Recurrence, RecurrenceRule, RepeatFrom, Task, TaskChanges, TaskCommand,
};
use api_common::time::from_timestamp;
use api_common::{
    invalid_argument, parse_consistency_token, parse_uuid_field, status::command_status,
};
use cqrs_es::EventStore;
use projections::task_list::TaskList;
use projections::{Freshness, ReadModels};
use proto::v1::task_commands_server::TaskCommands;
use proto::v1::task_recurrence::Rule;
use proto::v1::{
    CommandAck, CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest, ReopenTaskRequest,
    SkipOccurrenceRequest, TaskIntervalUnit, TaskRecurrence, TaskRepeatFrom, UpdateTaskRequest,
};
use store::{AggregateStore, Position, Store};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{CommandContext, execute};

/// How long CompleteTask waits for the read model by default (as queries do).
const DEFAULT_SUBTASK_WAIT: Duration = Duration::from_secs(5);
/// Open subtasks are counted up to this many.
const MAX_COUNTED_SUBTASKS: usize = 10_000;

/// The Tasks command service.
#[derive(Clone)]
pub struct TaskCommandService {
    tasks: AggregateStore<Task, Store>,
    subtasks: SubtaskCheck,
}

/// Where CompleteTask counts open subtasks, and how long it waits for that model.
#[derive(Clone)]
struct SubtaskCheck {
    models: ReadModels,
    freshness: Freshness,
    limit: Duration,
}

impl TaskCommandService {
    /// A recurrence without a time zone keeps the wall-clock time of the user's preferences zone.
    async fn in_users_zone(
        &self,
        context: &CommandContext,
        mut recurrence: Recurrence,
    ) -> Result<Recurrence, Status> {
        if recurrence.time_zone.is_none() {
            let preferences =
                AggregateStore::<UserPreferences, Store>::new(self.tasks.journal().clone())
                    .load_aggregate(&context.caller.user_id.to_string())
                    .await
                    .map_err(api_common::status::command_status)?;
            recurrence.time_zone = Some(preferences.aggregate.preferences().timezone.clone());
        }
        Ok(recurrence)
    }

    /// A service writing Task aggregates through `tasks`. The open-subtask check of
    /// CompleteTask reads the task_list model in the same store, waiting (up to 5 s) on its
    /// stored checkpoint; [`TaskCommandService::with_freshness`] makes it follow a local runner.
    pub fn new(tasks: AggregateStore<Task, Store>) -> Self {
        let models = ReadModels::new(tasks.journal().clone());
        let freshness = Freshness::new(models.clone(), Arc::new(TaskList), None);
        Self {
            tasks,
            subtasks: SubtaskCheck {
                models,
                freshness,
                limit: DEFAULT_SUBTASK_WAIT,
            },
        }
    }

    /// Waits for the task_list model through `freshness` (the queries' one), for at most
    /// `limit`, before counting open subtasks.
    pub fn with_freshness(mut self, freshness: Freshness, limit: Duration) -> Self {
        self.subtasks.freshness = freshness;
        self.subtasks.limit = limit;
        self
    }

    async fn run(
        &self,
        context: CommandContext,
        task_id: Uuid,
        command: TaskCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let command = context.issue(command);
        execute(&self.tasks, &(), context, &task_id.to_string(), command).await
    }

    /// A parent must be one of the caller's live tasks.
    async fn check_parent(&self, context: &CommandContext, parent: Uuid) -> Result<(), Status> {
        let loaded = self
            .tasks
            .load_aggregate(&parent.to_string())
            .await
            .map_err(command_status)?;
        match loaded.aggregate.state() {
            Some(s) if s.owner == context.caller.user_id && s.deleted_at.is_none() => Ok(()),
            _ => Err(invalid_argument("parent_task_id", "no such task")),
        }
    }
}

impl SubtaskCheck {
    /// The open subtasks of `parent` (the caller's), once the model has applied the log head
    /// and `token`.
    async fn open_subtasks(
        &self,
        user_id: Uuid,
        parent: Uuid,
        token: Option<Position>,
    ) -> Result<u32, Status> {
        let head = self.models.committed_head().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the log head");
            match e {
                projections::ProjectionError::Store(e) => api_common::status::store_status(&e),
                _ => Status::internal("internal error"),
            }
        })?;
        let target = token.map_or(head, |t| t.max(head));
        let fresh = self
            .freshness
            .wait_for(target, self.limit)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read the task_list checkpoint");
                Status::unavailable("read model unavailable")
            })?;
        if !fresh {
            return Err(Status::unavailable(format!(
                "the task list has not caught up within {} ms, so open subtasks cannot be \
                 counted; retry, or set force",
                self.limit.as_millis()
            )));
        }
        let open = TaskList::open_subtasks(&self.models, user_id, parent, MAX_COUNTED_SUBTASKS)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot count open subtasks");
                match e {
                    projections::ProjectionError::Store(e) => api_common::status::store_status(&e),
                    _ => Status::internal("internal error"),
                }
            })?;
        Ok(u32::try_from(open).unwrap_or(u32::MAX))
    }
}

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, Status> {
    (!value.is_empty())
        .then(|| parse_uuid_field(field, value))
        .transpose()
}

/// The wire recurrence as the domain's (the rule itself is checked by the aggregate).
fn recurrence(wire: TaskRecurrence) -> Result<Recurrence, Status> {
    let bad = |reason: &str| invalid_argument("recurrence", reason);
    let repeat_from = match TaskRepeatFrom::try_from(wire.repeat_from) {
        Ok(TaskRepeatFrom::DueDate) => RepeatFrom::DueDate,
        Ok(TaskRepeatFrom::CompletionDate) => RepeatFrom::CompletionDate,
        Err(_) => return Err(bad("repeat_from is not a TaskRepeatFrom value")),
    };
    let rule = match wire.rule {
        Some(Rule::Rrule(text)) => RecurrenceRule::Rrule(text),
        Some(Rule::Every(every)) => {
            let unit = match TaskIntervalUnit::try_from(every.unit) {
                Ok(TaskIntervalUnit::Days) => IntervalUnit::Days,
                Ok(TaskIntervalUnit::Weeks) => IntervalUnit::Weeks,
                Ok(TaskIntervalUnit::Months) => IntervalUnit::Months,
                Ok(TaskIntervalUnit::Unspecified) | Err(_) => {
                    return Err(bad("every.unit must be DAYS, WEEKS or MONTHS"));
                }
            };
            RecurrenceRule::Every {
                interval: every.interval,
                unit,
            }
        }
        None => return Err(bad("give a rule: rrule or every")),
    };
    Ok(Recurrence {
        rule,
        repeat_from,
        time_zone: (!wire.time_zone.is_empty()).then_some(wire.time_zone),
    })
}

#[tonic::async_trait]
impl TaskCommands for TaskCommandService {
    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let task_id = optional_uuid("task_id", &r.task_id)?.unwrap_or_else(Uuid::now_v7);
        let parent_task_id = optional_uuid("parent_task_id", &r.parent_task_id)?;
        let due = r
            .due
            .as_ref()
            .map(|t| from_timestamp("due", t))
            .transpose()?;
        let recurrence = match r.recurrence.map(recurrence).transpose()? {
            Some(rule) => Some(self.in_users_zone(&context, rule).await?),
            None => None,
        };
        if let Some(parent) = parent_task_id
            && parent != task_id
        {
            self.check_parent(&context, parent).await?;
        }
        let command = TaskCommand::Create(NewTask {
            task_id,
            title: r.title,
            description: r.description,
            due,
            priority: r.priority,
            tags: r.tags,
            parent_task_id,
            project: r.project,
            recurrence,
        });
        self.run(context, task_id, command).await
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let task_id = parse_uuid_field("task_id", &r.task_id)?;
        let due = match (&r.due, r.clear_due) {
            (Some(t), _) => Some(Some(from_timestamp("due", t)?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let project = match (r.project, r.clear_project) {
            (Some(p), _) => Some(Some(p)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let recurrence = match (r.recurrence, r.clear_recurrence) {
            (Some(wire), _) => Some(Some(self.in_users_zone(&context, recurrence(wire)?).await?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let changes = TaskChanges {
            title: r.title,
            description: r.description,
            due,
            priority: r.priority,
            tags: r.tags.map(|t| t.values),
            project,
            recurrence,
        };
        self.run(context, task_id, TaskCommand::Update(changes))
            .await
    }

    async fn complete_task(
        &self,
        request: Request<CompleteTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.get_ref();
        let task_id = parse_uuid_field("task_id", &r.task_id)?;
        let token = parse_consistency_token(&r.consistency_token)?;
        let command = if r.force {
            TaskCommand::CompleteWithSubtasks {
                open_subtasks: 0,
                force: true,
            }
        } else {
            let open_subtasks = self
                .subtasks
                .open_subtasks(context.caller.user_id, task_id, token)
                .await?;
            TaskCommand::CompleteWithSubtasks {
                open_subtasks,
                force: false,
            }
        };
        self.run(context, task_id, command).await
    }

    async fn skip_occurrence(
        &self,
        request: Request<SkipOccurrenceRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let task_id = parse_uuid_field("task_id", &request.get_ref().task_id)?;
        self.run(context, task_id, TaskCommand::SkipOccurrence)
            .await
    }

    async fn reopen_task(
        &self,
        request: Request<ReopenTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let task_id = parse_uuid_field("task_id", &request.get_ref().task_id)?;
        self.run(context, task_id, TaskCommand::Reopen).await
    }

    async fn delete_task(
        &self,
        request: Request<DeleteTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let task_id = parse_uuid_field("task_id", &request.get_ref().task_id)?;
        self.run(context, task_id, TaskCommand::Delete).await
    }
}
