//! The Tasks pillar aggregate: a user's to-do items, their commands, events and rules.
//!
//! Every rule lives in [`Task::handle`](cqrs_es::Aggregate::handle): fields are validated first,
//! then ownership and lifecycle are checked against the current [`TaskState`]. Timestamps come
//! from the [`Issued`] envelope, so handling is deterministic.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};

/// The most characters (not bytes) a task title may have, after trimming.
pub const TITLE_MAX_CHARS: usize = 500;
/// The most characters (not bytes) a task description may have.
pub const DESCRIPTION_MAX_CHARS: usize = 10_000;
/// The most distinct tags a task may carry.
pub const MAX_TAGS: usize = 32;
/// The most characters (not bytes) a single tag may have, after trimming.
pub const TAG_MAX_CHARS: usize = 64;
/// The highest allowed priority (priorities range over `0..=MAX_PRIORITY`).
pub const MAX_PRIORITY: u32 = 4;

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "task";

/// A task aggregate; the default value is a task that has not been created yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    state: Option<TaskState>,
}

impl Task {
    /// The task's current state, or `None` if it has not been created.
    pub fn state(&self) -> Option<&TaskState> {
        self.state.as_ref()
    }
}

/// Everything known about an existing task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's id (also the aggregate id).
    pub task_id: Uuid,
    /// The user who created and owns the task.
    pub owner: Uuid,
    /// Trimmed, non-empty title.
    pub title: String,
    /// Free-form description.
    pub description: String,
    /// When the task is due, if ever.
    pub due: Option<DateTime<Utc>>,
    /// Priority in `0..=MAX_PRIORITY`.
    pub priority: u8,
    /// Trimmed, distinct tags in the order first given.
    pub tags: Vec<String>,
    /// The task this one is a sub-task of, if any.
    pub parent_task_id: Option<Uuid>,
    /// When the task was completed; `None` while open.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the task was deleted; `None` while live.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When the task last changed (any event).
    pub updated_at: DateTime<Utc>,
}

/// What a user can ask of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    /// Create the task.
    Create(NewTask),
    /// Change some of the task's fields.
    Update(TaskChanges),
    /// Mark the task done.
    Complete,
    /// Mark a completed task open again.
    Reopen,
    /// Delete the task (soft delete; the stream remains).
    Delete,
}

/// The fields of a task to create.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewTask {
    /// Client-chosen id of the new task; must not be nil.
    pub task_id: Uuid,
    /// Title; trimmed, must be non-empty and at most [`TITLE_MAX_CHARS`] characters.
    pub title: String,
    /// Description; at most [`DESCRIPTION_MAX_CHARS`] characters.
    pub description: String,
    /// Optional due time.
    pub due: Option<DateTime<Utc>>,
    /// Priority in `0..=MAX_PRIORITY`.
    pub priority: u32,
    /// Tags; each trimmed and non-empty, duplicates dropped, at most [`MAX_TAGS`] remain.
    pub tags: Vec<String>,
    /// Optional parent task; must not be nil nor the task itself.
    pub parent_task_id: Option<Uuid>,
}

/// A partial update of a task: `None` leaves a field as is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskChanges {
    /// New title (validated like [`NewTask::title`]).
    pub title: Option<String>,
    /// New description (validated like [`NewTask::description`]).
    pub description: Option<String>,
    /// New due time; `Some(None)` clears it.
    pub due: Option<Option<DateTime<Utc>>>,
    /// New priority (validated like [`NewTask::priority`]).
    pub priority: Option<u32>,
    /// New tag set, replacing the old one (validated like [`NewTask::tags`]).
    pub tags: Option<Vec<String>>,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskEvent {
    /// The task was created by `user_id`.
    TaskCreated {
        /// The new task's id.
        task_id: Uuid,
        /// The creating user, who owns the task.
        user_id: Uuid,
        /// Trimmed title.
        title: String,
        /// Description.
        description: String,
        /// Due time, if any.
        due: Option<DateTime<Utc>>,
        /// Priority in `0..=MAX_PRIORITY`.
        priority: u8,
        /// Trimmed, distinct tags.
        tags: Vec<String>,
        /// Parent task, if any.
        parent_task_id: Option<Uuid>,
        /// When it was created.
        created_at: DateTime<Utc>,
    },
    /// Some fields changed; only the changed ones are `Some`.
    TaskUpdated {
        /// New title.
        #[serde(default)]
        title: Option<String>,
        /// New description.
        #[serde(default)]
        description: Option<String>,
        /// New due time.
        #[serde(default)]
        due: Option<DateTime<Utc>>,
        /// The due time was removed.
        #[serde(default)]
        clear_due: bool,
        /// New priority.
        #[serde(default)]
        priority: Option<u8>,
        /// New tag set.
        #[serde(default)]
        tags: Option<Vec<String>>,
        /// When the change happened.
        updated_at: DateTime<Utc>,
    },
    /// The task was marked done.
    TaskCompleted {
        /// When.
        completed_at: DateTime<Utc>,
    },
    /// A completed task was marked open again.
    TaskReopened {
        /// When.
        reopened_at: DateTime<Utc>,
    },
    /// The task was deleted.
    TaskDeleted {
        /// When.
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for TaskEvent {
    /// The variant name, e.g. `TaskCreated`.
    fn event_type(&self) -> String {
        match self {
            Self::TaskCreated { .. } => "TaskCreated",
            Self::TaskUpdated { .. } => "TaskUpdated",
            Self::TaskCompleted { .. } => "TaskCompleted",
            Self::TaskReopened { .. } => "TaskReopened",
            Self::TaskDeleted { .. } => "TaskDeleted",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for Task {
    const TYPE: &'static str = "task";
    type Command = Issued<TaskCommand>;
    type Event = TaskEvent;
    type Error = DomainError;
    type Services = ();

    /// Validates `command`, checks it against the current state and records the resulting events.
    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    /// Folds `event` into the state; events that make no sense for the current state are ignored.
    fn apply(&mut self, event: Self::Event) {
        match event {
            TaskEvent::TaskCreated {
                task_id,
                user_id,
                title,
                description,
                due,
                priority,
                tags,
                parent_task_id,
                created_at,
            } => {
                if self.state.is_none() {
                    self.state = Some(TaskState {
                        task_id,
                        owner: user_id,
                        title,
                        description,
                        due,
                        priority,
                        tags,
                        parent_task_id,
                        completed_at: None,
                        deleted_at: None,
                        created_at,
                        updated_at: created_at,
                    });
                }
            }
            TaskEvent::TaskUpdated {
                title,
                description,
                due,
                clear_due,
                priority,
                tags,
                updated_at,
            } => {
                if let Some(state) = self.state.as_mut() {
                    if let Some(title) = title {
                        state.title = title;
                    }
                    if let Some(description) = description {
                        state.description = description;
                    }
                    if clear_due {
                        state.due = None;
                    }
                    if due.is_some() {
                        state.due = due;
                    }
                    if let Some(priority) = priority {
                        state.priority = priority;
                    }
                    if let Some(tags) = tags {
                        state.tags = tags;
                    }
                    state.updated_at = updated_at;
                }
            }
            TaskEvent::TaskCompleted { completed_at } => {
                if let Some(state) = self.state.as_mut() {
                    state.completed_at = Some(completed_at);
                    state.updated_at = completed_at;
                }
            }
            TaskEvent::TaskReopened { reopened_at } => {
                if let Some(state) = self.state.as_mut() {
                    state.completed_at = None;
                    state.updated_at = reopened_at;
                }
            }
            TaskEvent::TaskDeleted { deleted_at } => {
                if let Some(state) = self.state.as_mut() {
                    state.deleted_at = Some(deleted_at);
                    state.updated_at = deleted_at;
                }
            }
        }
    }
}

impl Task {
    /// The pure decision: the events `command` produces against the current state.
    fn decide(&self, command: Issued<TaskCommand>) -> Result<Vec<TaskEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        match command {
            TaskCommand::Create(new) => self.create(actor, at, new),
            TaskCommand::Update(changes) => self.update(actor, at, changes),
            TaskCommand::Complete => {
                let state = self.live(actor)?;
                if state.completed_at.is_some() {
                    return Err(rejected(state, "is already completed"));
                }
                Ok(vec![TaskEvent::TaskCompleted { completed_at: at }])
            }
            TaskCommand::Reopen => {
                let state = self.live(actor)?;
                if state.completed_at.is_none() {
                    return Err(rejected(state, "is not completed"));
                }
                Ok(vec![TaskEvent::TaskReopened { reopened_at: at }])
            }
            TaskCommand::Delete => {
                let state = self.owned(actor)?;
                if state.deleted_at.is_some() {
                    return Err(rejected(state, "is already deleted"));
                }
                Ok(vec![TaskEvent::TaskDeleted { deleted_at: at }])
            }
        }
    }

    fn create(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        new: NewTask,
    ) -> Result<Vec<TaskEvent>, DomainError> {
        if new.task_id.is_nil() {
            return Err(DomainError::invalid("task_id", "must not be the nil UUID"));
        }
        let title = validate_title(&new.title)?;
        validate_description(&new.description)?;
        let priority = validate_priority(new.priority)?;
        let tags = validate_tags(&new.tags)?;
        if let Some(parent) = new.parent_task_id {
            if parent.is_nil() {
                return Err(DomainError::invalid(
                    "parent_task_id",
                    "must not be the nil UUID",
                ));
            }
            if parent == new.task_id {
                return Err(DomainError::invalid(
                    "parent_task_id",
                    "a task cannot be its own parent",
                ));
            }
        }
        if self.state.is_some() {
            return Err(DomainError::AlreadyExists {
                entity: ENTITY,
                id: new.task_id.to_string(),
            });
        }
        Ok(vec![TaskEvent::TaskCreated {
            task_id: new.task_id,
            user_id: actor,
            title,
            description: new.description,
            due: new.due,
            priority,
            tags,
            parent_task_id: new.parent_task_id,
            created_at: at,
        }])
    }

    fn update(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        changes: TaskChanges,
    ) -> Result<Vec<TaskEvent>, DomainError> {
        let title = changes.title.as_deref().map(validate_title).transpose()?;
        if let Some(description) = &changes.description {
            validate_description(description)?;
        }
        let priority = changes.priority.map(validate_priority).transpose()?;
        let tags = changes.tags.as_deref().map(validate_tags).transpose()?;

        let state = self.live(actor)?;
        let title = title.filter(|t| *t != state.title);
        let description = changes.description.filter(|d| *d != state.description);
        let priority = priority.filter(|p| *p != state.priority);
        let tags = tags.filter(|t| *t != state.tags);
        let (due, clear_due) = match changes.due {
            Some(Some(due)) if state.due != Some(due) => (Some(due), false),
            Some(None) if state.due.is_some() => (None, true),
            _ => (None, false),
        };

        if title.is_none()
            && description.is_none()
            && due.is_none()
            && !clear_due
            && priority.is_none()
            && tags.is_none()
        {
            return Ok(vec![]);
        }
        Ok(vec![TaskEvent::TaskUpdated {
            title,
            description,
            due,
            clear_due,
            priority,
            tags,
            updated_at: at,
        }])
    }

    /// The state if the task exists and belongs to `actor`; otherwise `NotFound`.
    fn owned(&self, actor: Uuid) -> Result<&TaskState, DomainError> {
        match &self.state {
            Some(state) if state.owner == actor => Ok(state),
            Some(state) => Err(DomainError::NotFound {
                entity: ENTITY,
                id: state.task_id.to_string(),
            }),
            None => Err(DomainError::NotFound {
                entity: ENTITY,
                id: String::new(),
            }),
        }
    }

    /// Like [`Task::owned`], but also rejects a deleted task.
    fn live(&self, actor: Uuid) -> Result<&TaskState, DomainError> {
        let state = self.owned(actor)?;
        if state.deleted_at.is_some() {
            return Err(rejected(state, "is deleted"));
        }
        Ok(state)
    }
}

fn rejected(state: &TaskState, what: &str) -> DomainError {
    DomainError::Rejected(format!("{ENTITY} {} {what}", state.task_id))
}

/// Trims `title` and checks it is non-empty and within [`TITLE_MAX_CHARS`].
fn validate_title(title: &str) -> Result<String, DomainError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(DomainError::invalid("title", "must not be empty"));
    }
    let len = title.chars().count();
    if len > TITLE_MAX_CHARS {
        return Err(DomainError::invalid(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters, got {len}"),
        ));
    }
    Ok(title.to_string())
}

fn validate_description(description: &str) -> Result<(), DomainError> {
    let len = description.chars().count();
    if len > DESCRIPTION_MAX_CHARS {
        return Err(DomainError::invalid(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters, got {len}"),
        ));
    }
    Ok(())
}

fn validate_priority(priority: u32) -> Result<u8, DomainError> {
    match u8::try_from(priority) {
        Ok(p) if priority <= MAX_PRIORITY => Ok(p),
        _ => Err(DomainError::invalid(
            "priority",
            format!("must be between 0 and {MAX_PRIORITY}, got {priority}"),
        )),
    }
}

/// Trims each tag, rejects empty or overlong ones, drops duplicates (first occurrence wins) and
/// checks at most [`MAX_TAGS`] remain.
fn validate_tags(tags: &[String]) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len().min(MAX_TAGS));
    for (i, tag) in tags.iter().enumerate() {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(DomainError::invalid(
                "tags",
                format!("tag {i} must not be empty"),
            ));
        }
        let len = tag.chars().count();
        if len > TAG_MAX_CHARS {
            return Err(DomainError::invalid(
                "tags",
                format!("tag {i} must be at most {TAG_MAX_CHARS} characters, got {len}"),
            ));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(DomainError::invalid(
            "tags",
            format!(
                "at most {MAX_TAGS} distinct tags allowed, got {}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    type Fw = TestFramework<Task>;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const TASK: Uuid = Uuid::from_u128(0x7a5c);
    const PARENT: Uuid = Uuid::from_u128(0x9a7e);

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, minute, 0).unwrap()
    }

    fn fw() -> Fw {
        TestFramework::<Task>::with(())
    }

    fn issue(actor: Uuid, minute: u32, command: TaskCommand) -> Issued<TaskCommand> {
        Issued::new(actor, t(minute), command)
    }

    fn new_task() -> NewTask {
        NewTask {
            task_id: TASK,
            title: "Buy milk".into(),
            description: "2 litres".into(),
            due: Some(t(30)),
            priority: 2,
            tags: vec!["home".into(), "errand".into()],
            parent_task_id: Some(PARENT),
        }
    }

    fn created() -> TaskEvent {
        TaskEvent::TaskCreated {
            task_id: TASK,
            user_id: ALICE,
            title: "Buy milk".into(),
            description: "2 litres".into(),
            due: Some(t(30)),
            priority: 2,
            tags: vec!["home".into(), "errand".into()],
            parent_task_id: Some(PARENT),
            created_at: t(0),
        }
    }

    fn create(new: NewTask) -> Issued<TaskCommand> {
        issue(ALICE, 0, TaskCommand::Create(new))
    }

    fn update(changes: TaskChanges) -> Issued<TaskCommand> {
        issue(ALICE, 5, TaskCommand::Update(changes))
    }

    fn invalid(field: &'static str, reason: &str) -> DomainError {
        DomainError::invalid(field, reason)
    }

    fn expect_invalid(new: NewTask, field: &'static str) -> DomainError {
        let err = fw()
            .given_no_previous_events()
            .when(create(new))
            .inspect_result()
            .expect_err("command should be rejected");
        match &err {
            DomainError::Invalid { field: f, .. } => assert_eq!(*f, field, "{err:?}"),
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
        err
    }

    #[test]
    fn create_trims_title_and_dedupes_tags() {
        let new = NewTask {
            title: "  Buy milk \n".into(),
            tags: vec![
                " home".into(),
                "errand ".into(),
                "home".into(),
                "errand".into(),
            ],
            ..new_task()
        };
        fw().given_no_previous_events()
            .when(create(new))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn create_rejects_nil_task_id() {
        expect_invalid(
            NewTask {
                task_id: Uuid::nil(),
                ..new_task()
            },
            "task_id",
        );
    }

    #[test]
    fn create_rejects_empty_title() {
        fw().given_no_previous_events()
            .when(create(NewTask {
                title: "   ".into(),
                ..new_task()
            }))
            .then_expect_error(invalid("title", "must not be empty"));
    }

    #[test]
    fn create_title_length_is_counted_in_chars() {
        // 500 multi-byte characters: more than 500 bytes, but within the limit.
        let title: String = "é".repeat(TITLE_MAX_CHARS);
        let result = fw()
            .given_no_previous_events()
            .when(create(NewTask {
                title: title.clone(),
                ..new_task()
            }))
            .inspect_result()
            .unwrap();
        assert!(matches!(&result[..], [TaskEvent::TaskCreated { title: t, .. }] if *t == title));

        fw().given_no_previous_events()
            .when(create(NewTask {
                title: "x".repeat(501),
                ..new_task()
            }))
            .then_expect_error(invalid("title", "must be at most 500 characters, got 501"));
    }

    #[test]
    fn create_rejects_10k_char_title() {
        let err = expect_invalid(
            NewTask {
                title: "x".repeat(10_000),
                ..new_task()
            },
            "title",
        );
        let msg = err.to_string();
        assert!(msg.contains("500") && msg.contains("10000"), "{msg}");
    }

    #[test]
    fn create_rejects_long_description() {
        expect_invalid(
            NewTask {
                description: "d".repeat(DESCRIPTION_MAX_CHARS + 1),
                ..new_task()
            },
            "description",
        );
        fw().given_no_previous_events()
            .when(create(NewTask {
                description: "d".repeat(DESCRIPTION_MAX_CHARS),
                ..new_task()
            }))
            .inspect_result()
            .unwrap();
    }

    #[test]
    fn create_rejects_priority_5() {
        fw().given_no_previous_events()
            .when(create(NewTask {
                priority: 5,
                ..new_task()
            }))
            .then_expect_error(invalid("priority", "must be between 0 and 4, got 5"));
        expect_invalid(
            NewTask {
                priority: 256 + 2,
                ..new_task()
            },
            "priority",
        );
    }

    #[test]
    fn create_rejects_too_many_tags() {
        let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("tag{i}")).collect();
        expect_invalid(NewTask { tags, ..new_task() }, "tags");
    }

    #[test]
    fn create_counts_tags_after_dedup() {
        let tags: Vec<String> = (0..MAX_TAGS * 2)
            .map(|i| format!("tag{}", i % MAX_TAGS))
            .collect();
        fw().given_no_previous_events()
            .when(create(NewTask { tags, ..new_task() }))
            .inspect_result()
            .unwrap();
    }

    #[test]
    fn create_rejects_bad_tags() {
        expect_invalid(
            NewTask {
                tags: vec!["ok".into(), "  ".into()],
                ..new_task()
            },
            "tags",
        );
        expect_invalid(
            NewTask {
                tags: vec!["t".repeat(TAG_MAX_CHARS + 1)],
                ..new_task()
            },
            "tags",
        );
    }

    #[test]
    fn create_rejects_self_parent() {
        expect_invalid(
            NewTask {
                parent_task_id: Some(TASK),
                ..new_task()
            },
            "parent_task_id",
        );
        expect_invalid(
            NewTask {
                parent_task_id: Some(Uuid::nil()),
                ..new_task()
            },
            "parent_task_id",
        );
    }

    #[test]
    fn create_twice_already_exists() {
        fw().given(vec![created()])
            .when(create(new_task()))
            .then_expect_error(DomainError::AlreadyExists {
                entity: "task",
                id: TASK.to_string(),
            });
    }

    #[test]
    fn validation_comes_before_state_checks() {
        fw().given(vec![created()])
            .when(create(NewTask {
                title: String::new(),
                ..new_task()
            }))
            .then_expect_error(invalid("title", "must not be empty"));
        fw().given_no_previous_events()
            .when(update(TaskChanges {
                priority: Some(9),
                ..Default::default()
            }))
            .then_expect_error(invalid("priority", "must be between 0 and 4, got 9"));
    }

    #[test]
    fn complete() {
        fw().given(vec![created()])
            .when(issue(ALICE, 7, TaskCommand::Complete))
            .then_expect_events(vec![TaskEvent::TaskCompleted { completed_at: t(7) }]);
    }

    #[test]
    fn complete_twice_rejected() {
        fw().given(vec![
            created(),
            TaskEvent::TaskCompleted { completed_at: t(7) },
        ])
        .when(issue(ALICE, 8, TaskCommand::Complete))
        .then_expect_error(DomainError::Rejected(format!(
            "task {TASK} is already completed"
        )));
    }

    #[test]
    fn commands_on_deleted_task_rejected() {
        let deleted = || vec![created(), TaskEvent::TaskDeleted { deleted_at: t(9) }];
        let commands = [
            TaskCommand::Complete,
            TaskCommand::Reopen,
            TaskCommand::Update(TaskChanges {
                title: Some("New".into()),
                ..Default::default()
            }),
        ];
        for command in commands {
            fw().given(deleted())
                .when(issue(ALICE, 10, command))
                .then_expect_error(DomainError::Rejected(format!("task {TASK} is deleted")));
        }
    }

    #[test]
    fn reopen() {
        fw().given(vec![
            created(),
            TaskEvent::TaskCompleted { completed_at: t(7) },
        ])
        .when(issue(ALICE, 8, TaskCommand::Reopen))
        .then_expect_events(vec![TaskEvent::TaskReopened { reopened_at: t(8) }]);
    }

    #[test]
    fn reopen_open_task_rejected() {
        fw().given(vec![created()])
            .when(issue(ALICE, 8, TaskCommand::Reopen))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} is not completed"
            )));
    }

    #[test]
    fn delete() {
        fw().given(vec![
            created(),
            TaskEvent::TaskCompleted { completed_at: t(7) },
        ])
        .when(issue(ALICE, 9, TaskCommand::Delete))
        .then_expect_events(vec![TaskEvent::TaskDeleted { deleted_at: t(9) }]);
    }

    #[test]
    fn delete_twice_rejected() {
        fw().given(vec![created(), TaskEvent::TaskDeleted { deleted_at: t(9) }])
            .when(issue(ALICE, 10, TaskCommand::Delete))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} is already deleted"
            )));
    }

    fn non_create_commands() -> Vec<TaskCommand> {
        vec![
            TaskCommand::Update(TaskChanges {
                title: Some("Mine now".into()),
                ..Default::default()
            }),
            TaskCommand::Update(TaskChanges::default()),
            TaskCommand::Complete,
            TaskCommand::Reopen,
            TaskCommand::Delete,
        ]
    }

    #[test]
    fn other_users_task_is_not_found() {
        let histories = [
            vec![created()],
            vec![created(), TaskEvent::TaskCompleted { completed_at: t(7) }],
            vec![created(), TaskEvent::TaskDeleted { deleted_at: t(9) }],
        ];
        for history in histories {
            for command in non_create_commands() {
                fw().given(history.clone())
                    .when(issue(BOB, 10, command))
                    .then_expect_error(DomainError::NotFound {
                        entity: "task",
                        id: TASK.to_string(),
                    });
            }
        }
    }

    #[test]
    fn never_created_task_is_not_found() {
        for command in non_create_commands() {
            fw().given_no_previous_events()
                .when(issue(ALICE, 10, command))
                .then_expect_error(DomainError::NotFound {
                    entity: "task",
                    id: String::new(),
                });
        }
    }

    #[test]
    fn update_emits_only_changed_fields() {
        fw().given(vec![created()])
            .when(update(TaskChanges {
                title: Some("  Buy oat milk ".into()),
                description: Some("2 litres".into()),
                due: Some(Some(t(45))),
                priority: Some(2),
                tags: Some(vec!["errand".into(), "home".into(), "errand".into()]),
            }))
            .then_expect_events(vec![TaskEvent::TaskUpdated {
                title: Some("Buy oat milk".into()),
                description: None,
                due: Some(t(45)),
                clear_due: false,
                priority: None,
                tags: Some(vec!["errand".into(), "home".into()]),
                updated_at: t(5),
            }]);
    }

    #[test]
    fn update_without_change_emits_nothing() {
        fw().given(vec![created()])
            .when(update(TaskChanges {
                title: Some(" Buy milk ".into()),
                description: Some("2 litres".into()),
                due: Some(Some(t(30))),
                priority: Some(2),
                tags: Some(vec!["home".into(), " errand".into(), "home".into()]),
            }))
            .then_expect_events(vec![]);
        fw().given(vec![created()])
            .when(update(TaskChanges::default()))
            .then_expect_events(vec![]);
    }

    #[test]
    fn update_validates_fields() {
        fw().given(vec![created()])
            .when(update(TaskChanges {
                title: Some(" ".into()),
                ..Default::default()
            }))
            .then_expect_error(invalid("title", "must not be empty"));
        let tags = Some((0..=MAX_TAGS).map(|i| i.to_string()).collect());
        let err = fw()
            .given(vec![created()])
            .when(update(TaskChanges {
                tags,
                ..Default::default()
            }))
            .inspect_result()
            .unwrap_err();
        assert!(
            matches!(err, DomainError::Invalid { field: "tags", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn update_allowed_on_completed_task() {
        fw().given(vec![
            created(),
            TaskEvent::TaskCompleted { completed_at: t(7) },
        ])
        .when(update(TaskChanges {
            priority: Some(0),
            ..Default::default()
        }))
        .then_expect_events(vec![TaskEvent::TaskUpdated {
            title: None,
            description: None,
            due: None,
            clear_due: false,
            priority: Some(0),
            tags: None,
            updated_at: t(5),
        }]);
    }

    #[test]
    fn clear_due() {
        let clear = || {
            update(TaskChanges {
                due: Some(None),
                ..Default::default()
            })
        };
        fw().given(vec![created()])
            .when(clear())
            .then_expect_events(vec![TaskEvent::TaskUpdated {
                title: None,
                description: None,
                due: None,
                clear_due: true,
                priority: None,
                tags: None,
                updated_at: t(5),
            }]);
        fw().given(vec![created()])
            .and(vec![TaskEvent::TaskUpdated {
                title: None,
                description: None,
                due: None,
                clear_due: true,
                priority: None,
                tags: None,
                updated_at: t(5),
            }])
            .when(clear())
            .then_expect_events(vec![]);
    }

    fn replay(events: impl IntoIterator<Item = TaskEvent>) -> Task {
        let mut task = Task::default();
        for event in events {
            task.apply(event);
        }
        task
    }

    #[test]
    fn apply_round_trip() {
        let task = replay([
            created(),
            TaskEvent::TaskUpdated {
                title: Some("Buy oat milk".into()),
                description: None,
                due: None,
                clear_due: true,
                priority: Some(4),
                tags: Some(vec!["shop".into()]),
                updated_at: t(5),
            },
            TaskEvent::TaskCompleted { completed_at: t(7) },
            TaskEvent::TaskReopened { reopened_at: t(8) },
            TaskEvent::TaskUpdated {
                title: None,
                description: Some("1 litre".into()),
                due: Some(t(50)),
                clear_due: false,
                priority: None,
                tags: None,
                updated_at: t(9),
            },
            TaskEvent::TaskCompleted {
                completed_at: t(10),
            },
            TaskEvent::TaskDeleted { deleted_at: t(11) },
        ]);
        let expected = TaskState {
            task_id: TASK,
            owner: ALICE,
            title: "Buy oat milk".into(),
            description: "1 litre".into(),
            due: Some(t(50)),
            priority: 4,
            tags: vec!["shop".into()],
            parent_task_id: Some(PARENT),
            completed_at: Some(t(10)),
            deleted_at: Some(t(11)),
            created_at: t(0),
            updated_at: t(11),
        };
        assert_eq!(task.state(), Some(&expected));

        let fresh = replay([created()]);
        assert_eq!(
            fresh.state().map(|s| (s.created_at, s.updated_at)),
            Some((t(0), t(0)))
        );
        assert_eq!(fresh.state().and_then(|s| s.completed_at), None);
    }

    #[test]
    fn apply_ignores_nonsense() {
        let task = replay([
            TaskEvent::TaskUpdated {
                title: Some("ghost".into()),
                description: None,
                due: None,
                clear_due: false,
                priority: None,
                tags: None,
                updated_at: t(1),
            },
            TaskEvent::TaskCompleted { completed_at: t(2) },
            TaskEvent::TaskReopened { reopened_at: t(3) },
            TaskEvent::TaskDeleted { deleted_at: t(4) },
        ]);
        assert_eq!(task, Task::default());

        let once = replay([created()]);
        let twice = replay([
            created(),
            TaskEvent::TaskCreated {
                task_id: Uuid::from_u128(1),
                user_id: BOB,
                title: "other".into(),
                description: String::new(),
                due: None,
                priority: 0,
                tags: vec![],
                parent_task_id: None,
                created_at: t(3),
            },
        ]);
        assert_eq!(once, twice);
    }

    #[tokio::test]
    async fn handle_applies_what_it_records() {
        let mut task = Task::default();
        let commands = [
            create(new_task()),
            update(TaskChanges {
                due: Some(None),
                tags: Some(vec![]),
                ..Default::default()
            }),
            issue(ALICE, 7, TaskCommand::Complete),
            issue(ALICE, 9, TaskCommand::Delete),
        ];
        let mut history = Vec::new();
        for command in commands {
            let sink = EventSink::default();
            task.handle(command, &(), &sink).await.unwrap();
            history.extend(sink.collect().await);
        }
        assert_eq!(history.len(), 4);
        assert_eq!(replay(history), task);
        let state = task.state().unwrap();
        assert_eq!((state.due, state.tags.len()), (None, 0));
        assert_eq!(
            (state.completed_at, state.deleted_at, state.updated_at),
            (Some(t(7)), Some(t(9)), t(9))
        );
    }

    #[test]
    fn events_serialize_externally_tagged() {
        let event = TaskEvent::TaskCompleted { completed_at: t(7) };
        assert_eq!(event.event_type(), "TaskCompleted");
        assert_eq!(event.event_version(), "1");
        assert_eq!(created().event_type(), "TaskCreated");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"TaskCompleted": {"completed_at": "2025-06-01T12:07:00Z"}})
        );

        let old: TaskEvent = serde_json::from_value(serde_json::json!({
            "TaskUpdated": {"title": "x", "updated_at": "2025-06-01T12:05:00Z"}
        }))
        .unwrap();
        assert_eq!(
            old,
            TaskEvent::TaskUpdated {
                title: Some("x".into()),
                description: None,
                due: None,
                clear_due: false,
                priority: None,
                tags: None,
                updated_at: t(5),
            }
        );
        let round: TaskEvent =
            serde_json::from_str(&serde_json::to_string(&created()).unwrap()).unwrap();
        assert_eq!(round, created());
    }
}
