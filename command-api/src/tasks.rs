//! `lifeos.v1.TaskCommands`: requests of the Tasks pillar mapped to [`TaskCommand`]s.

use aggregates::task::{NewTask, Task, TaskChanges, TaskCommand};
use api_common::time::from_timestamp;
use api_common::{invalid_argument, parse_uuid_field, status::command_status};
use cqrs_es::EventStore;
use proto::v1::task_commands_server::TaskCommands;
use proto::v1::{
    CommandAck, CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest, ReopenTaskRequest,
    UpdateTaskRequest,
};
use store::{AggregateStore, Store};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{CommandContext, execute};

/// The Tasks command service.
#[derive(Clone)]
pub struct TaskCommandService {
    tasks: AggregateStore<Task, Store>,
}

impl TaskCommandService {
    /// A service writing Task aggregates through `tasks`.
    pub fn new(tasks: AggregateStore<Task, Store>) -> Self {
        Self { tasks }
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

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, Status> {
    (!value.is_empty())
        .then(|| parse_uuid_field(field, value))
        .transpose()
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
        let changes = TaskChanges {
            title: r.title,
            description: r.description,
            due,
            priority: r.priority,
            tags: r.tags.map(|t| t.values),
        };
        self.run(context, task_id, TaskCommand::Update(changes))
            .await
    }

    async fn complete_task(
        &self,
        request: Request<CompleteTaskRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let task_id = parse_uuid_field("task_id", &request.get_ref().task_id)?;
        self.run(context, task_id, TaskCommand::Complete).await
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
