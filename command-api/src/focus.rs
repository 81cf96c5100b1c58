//! `lifeos.v1.FocusCommands`: requests of the Focus pillar mapped to [`FocusCommand`]s on the
//! caller's [`FocusTimer`] (aggregate id = user id; see `aggregates::focus` for why).
//!
//! The service only maps requests and fills what the pure aggregate cannot know: planned minutes
//! default from the caller's preferences (read from the `UserPreferences` aggregate, always
//! current), a linked task must be one of the caller's live tasks, and a session id is assigned
//! when the client gives none.

use aggregates::focus::{FocusCommand, FocusKind, FocusTimer, StartFocus};
use aggregates::preferences::UserPreferences;
use aggregates::task::Task;
use api_common::{invalid_argument, parse_uuid_field, status::command_status};
use cqrs_es::EventStore;
use proto::v1::focus_commands_server::FocusCommands;
use proto::v1::{
    AbandonFocusRequest, CommandAck, CompleteFocusRequest, FocusKind as WireKind,
    PauseFocusRequest, RecordInterruptionRequest, ResumeFocusRequest, StartFocusRequest,
    StartFocusResponse,
};
use store::{AggregateStore, Store};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::context::first_acked_event;
use crate::{CommandContext, execute};

/// The Focus command service.
#[derive(Clone)]
pub struct FocusCommandService {
    timers: AggregateStore<FocusTimer, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
    tasks: AggregateStore<Task, Store>,
}

impl FocusCommandService {
    /// A service writing focus timers through `timers`, reading defaults from `preferences` and
    /// linked tasks from `tasks`.
    pub fn new(
        timers: AggregateStore<FocusTimer, Store>,
        preferences: AggregateStore<UserPreferences, Store>,
        tasks: AggregateStore<Task, Store>,
    ) -> Self {
        Self {
            timers,
            preferences,
            tasks,
        }
    }

    async fn run(
        &self,
        context: CommandContext,
        command: FocusCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let timer = context.caller.user_id.to_string();
        let command = context.issue(command);
        execute(&self.timers, &(), context, &timer, command).await
    }

    /// The planned minutes of a new session: the given ones (checked for range by the
    /// aggregate, which names `planned_minutes`), else the preferences' default for the kind.
    async fn planned_minutes(
        &self,
        context: &CommandContext,
        kind: FocusKind,
        given: Option<i32>,
    ) -> Result<Option<u32>, Status> {
        if let Some(minutes) = given {
            return u32::try_from(minutes).map(Some).map_err(|_| {
                invalid_argument(
                    "planned_minutes",
                    format!("must be 1 to 1440 minutes (24 h), got {minutes}"),
                )
            });
        }
        if !matches!(
            kind,
            FocusKind::Pomodoro | FocusKind::ShortBreak | FocusKind::LongBreak
        ) {
            return Ok(None); // flowtime: open-ended; countdown: the aggregate asks for it
        }
        let loaded = self
            .preferences
            .load_aggregate(&context.caller.user_id.to_string())
            .await
            .map_err(command_status)?;
        Ok(kind.default_minutes(loaded.aggregate.preferences()))
    }

    /// A linked task must be one of the caller's live tasks.
    async fn check_task(&self, context: &CommandContext, task_id: Uuid) -> Result<(), Status> {
        let loaded = self
            .tasks
            .load_aggregate(&task_id.to_string())
            .await
            .map_err(command_status)?;
        match loaded.aggregate.state() {
            Some(s) if s.owner == context.caller.user_id && s.deleted_at.is_none() => Ok(()),
            _ => Err(invalid_argument("task_id", "no such task")),
        }
    }

    /// For a repeated command id: the session and planned minutes of the `FocusStarted` event
    /// the first execution wrote.
    async fn first_start(
        &self,
        user_id: Uuid,
        ack: &CommandAck,
    ) -> Result<(Uuid, Option<u32>), Status> {
        let reused = || {
            Status::failed_precondition(
                "command_id was already used by another command than StartFocus",
            )
        };
        if ack.aggregate_id != user_id.to_string() {
            return Err(reused());
        }
        first_acked_event(&self.timers, ack)
            .await?
            .and_then(|event| match event {
                aggregates::focus::FocusEvent::FocusStarted {
                    session_id,
                    planned_minutes,
                    ..
                } => Some((session_id, planned_minutes)),
                _ => None,
            })
            .ok_or_else(reused)
    }
}

/// The domain kind of a wire kind; UNSPECIFIED or unknown values are an invalid `kind`.
pub fn kind_from_wire(kind: i32) -> Result<FocusKind, Status> {
    match WireKind::try_from(kind) {
        Ok(WireKind::Pomodoro) => Ok(FocusKind::Pomodoro),
        Ok(WireKind::ShortBreak) => Ok(FocusKind::ShortBreak),
        Ok(WireKind::LongBreak) => Ok(FocusKind::LongBreak),
        Ok(WireKind::Flowtime) => Ok(FocusKind::Flowtime),
        Ok(WireKind::Countdown) => Ok(FocusKind::Countdown),
        Ok(WireKind::Unspecified) => Err(invalid_argument(
            "kind",
            "is required: pomodoro, short_break, long_break, flowtime or countdown",
        )),
        Err(_) => Err(invalid_argument(
            "kind",
            format!("{kind} is not a known focus kind"),
        )),
    }
}

fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, Status> {
    (!value.is_empty())
        .then(|| parse_uuid_field(field, value))
        .transpose()
}

#[tonic::async_trait]
impl FocusCommands for FocusCommandService {
    async fn start_focus(
        &self,
        request: Request<StartFocusRequest>,
    ) -> Result<Response<StartFocusResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let session_id = optional_uuid("session_id", &r.session_id)?.unwrap_or_else(Uuid::now_v7);
        let kind = kind_from_wire(r.kind)?;
        let task_id = optional_uuid("task_id", &r.task_id)?;
        let planned_minutes = self
            .planned_minutes(&context, kind, r.planned_minutes)
            .await?;
        if let Some(task) = task_id
            && !task.is_nil()
        {
            self.check_task(&context, task).await?;
        }
        let user_id = context.caller.user_id;
        let command = FocusCommand::Start(StartFocus {
            session_id,
            kind,
            planned_minutes,
            task_id,
        });
        let ack = self.run(context, command).await?.into_inner();
        let (session_id, planned_minutes) = if ack.duplicate {
            self.first_start(user_id, &ack).await?
        } else {
            (session_id, planned_minutes)
        };
        Ok(Response::new(StartFocusResponse {
            session_id: session_id.to_string(),
            ack: Some(ack),
            planned_minutes,
        }))
    }

    async fn pause_focus(
        &self,
        request: Request<PauseFocusRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let session_id = parse_uuid_field("session_id", &request.get_ref().session_id)?;
        self.run(context, FocusCommand::Pause { session_id }).await
    }

    async fn resume_focus(
        &self,
        request: Request<ResumeFocusRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let session_id = parse_uuid_field("session_id", &request.get_ref().session_id)?;
        self.run(context, FocusCommand::Resume { session_id }).await
    }

    async fn record_interruption(
        &self,
        request: Request<RecordInterruptionRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let session_id = parse_uuid_field("session_id", &r.session_id)?;
        let command = FocusCommand::RecordInterruption {
            session_id,
            reason: r.reason,
        };
        self.run(context, command).await
    }

    async fn complete_focus(
        &self,
        request: Request<CompleteFocusRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let session_id = parse_uuid_field("session_id", &request.get_ref().session_id)?;
        self.run(context, FocusCommand::Complete { session_id })
            .await
    }

    async fn abandon_focus(
        &self,
        request: Request<AbandonFocusRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let session_id = parse_uuid_field("session_id", &r.session_id)?;
        let command = FocusCommand::Abandon {
            session_id,
            reason: r.reason,
        };
        self.run(context, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn wire_kinds_map_and_unknown_ones_name_the_field() {
        assert_eq!(
            kind_from_wire(WireKind::Pomodoro as i32).unwrap(),
            FocusKind::Pomodoro
        );
        assert_eq!(
            kind_from_wire(WireKind::Countdown as i32).unwrap(),
            FocusKind::Countdown
        );
        for bad in [WireKind::Unspecified as i32, 99, -1] {
            let status = kind_from_wire(bad).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().contains("kind"), "{status:?}");
        }
    }
}
