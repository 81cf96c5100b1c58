//! The Tasks pillar aggregate: a user's to-do items, their commands, events and rules.
//!
//! Every rule lives in [`Task::handle`](cqrs_es::Aggregate::handle): fields are validated first,
//! then ownership and lifecycle are checked against the current [`TaskState`]. Timestamps come
//! from the [`Issued`] envelope, so handling is deterministic.
//!
//! ## Recurring tasks
//!
//! A task with a [`Recurrence`] (it needs a due time: its first occurrence) stays open across
//! its occurrences. Completing it records [`TaskEvent::TaskOccurrenceCompleted`] (a completion,
//! counted like any other) and moves the due time to the next occurrence;
//! [`TaskCommand::SkipOccurrence`] records [`TaskEvent::TaskOccurrenceSkipped`] and moves on
//! without a completion. When the rule has no next occurrence (COUNT or UNTIL exhausted),
//! completing records a plain [`TaskEvent::TaskCompleted`]: the task is done for good; skipping
//! the last occurrence records `TaskOccurrenceSkipped { next_due: None }`, which closes the task
//! (completed, without a completion counted). See [`recurrence`] for how occurrences are
//! expanded.
//!
//! ## Subtasks
//!
//! A subtask names its parent (`parent_task_id`). Whether a parent has open subtasks is read
//! from the task list read model by the API and handed in with
//! [`TaskCommand::CompleteWithSubtasks`]: completing a parent with open subtasks is refused
//! unless `force` is set (which completes the parent only; the subtasks stay open).
//!
//! ## Event versions
//!
//! `TaskCreated` and `TaskUpdated` are version 2 when they carry a field version 1 did not
//! have (project, recurrence); a payload without those fields is written as version 1, byte for
//! byte the old format, so older readers keep reading it. Version 1 payloads read as version 2
//! through serde defaults (no project, no recurrence). Every other event is version 1.

pub mod recurrence;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};
pub use recurrence::{IntervalUnit, Recurrence, RecurrenceRule, RepeatFrom, Series};

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
/// The most characters (not bytes) a project name may have, after trimming.
pub const PROJECT_MAX_CHARS: usize = 100;

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
    /// When the task is due, if ever (for a recurring task: its current occurrence).
    pub due: Option<DateTime<Utc>>,
    /// Priority in `0..=MAX_PRIORITY`.
    pub priority: u8,
    /// Trimmed, distinct tags in the order first given.
    pub tags: Vec<String>,
    /// The task this one is a sub-task of, if any.
    pub parent_task_id: Option<Uuid>,
    /// The project the task belongs to (trimmed, 1 to [`PROJECT_MAX_CHARS`] characters).
    #[serde(default)]
    pub project: Option<String>,
    /// The series of a recurring task.
    #[serde(default)]
    pub series: Option<Series>,
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
    /// Mark the task (a recurring task: its current occurrence) done, without a subtask check:
    /// the same as `CompleteWithSubtasks { open_subtasks: 0, force: false }`.
    Complete,
    /// Mark the task (a recurring task: its current occurrence) done, knowing how many of its
    /// subtasks are open (read by the caller from the task list read model).
    CompleteWithSubtasks {
        /// Open subtasks of the task.
        open_subtasks: u32,
        /// Complete the task even though subtasks are open (they stay open).
        force: bool,
    },
    /// Move a recurring task to its next occurrence without completing the current one.
    SkipOccurrence,
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
    /// Optional due time (required with a recurrence: the first occurrence).
    pub due: Option<DateTime<Utc>>,
    /// Priority in `0..=MAX_PRIORITY`.
    pub priority: u32,
    /// Tags; each trimmed and non-empty, duplicates dropped, at most [`MAX_TAGS`] remain.
    pub tags: Vec<String>,
    /// Optional parent task; must not be nil nor the task itself.
    pub parent_task_id: Option<Uuid>,
    /// Optional project; trimmed, 1 to [`PROJECT_MAX_CHARS`] characters.
    pub project: Option<String>,
    /// Makes the task recurring.
    pub recurrence: Option<Recurrence>,
}

/// A partial update of a task: `None` leaves a field as is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskChanges {
    /// New title (validated like [`NewTask::title`]).
    pub title: Option<String>,
    /// New description (validated like [`NewTask::description`]).
    pub description: Option<String>,
    /// New due time; `Some(None)` clears it. On a recurring task a new due time restarts the
    /// series there (its COUNT keeps counting).
    pub due: Option<Option<DateTime<Utc>>>,
    /// New priority (validated like [`NewTask::priority`]).
    pub priority: Option<u32>,
    /// New tag set, replacing the old one (validated like [`NewTask::tags`]).
    pub tags: Option<Vec<String>>,
    /// New project; `Some(None)` removes it.
    pub project: Option<Option<String>>,
    /// New recurrence (a new series from the task's due time); `Some(None)` stops repeating.
    pub recurrence: Option<Option<Recurrence>>,
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
        /// Project, if any (version 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        /// Recurrence, if any (version 2); the series starts at `due`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recurrence: Option<Recurrence>,
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
        /// New project (version 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        /// The project was removed (version 2).
        #[serde(default, skip_serializing_if = "is_false")]
        clear_project: bool,
        /// New recurrence: a new series starting at the task's due time after this event
        /// (version 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recurrence: Option<Recurrence>,
        /// The task stopped repeating (version 2).
        #[serde(default, skip_serializing_if = "is_false")]
        clear_recurrence: bool,
    },
    /// The task was marked done (a recurring task: its last occurrence).
    TaskCompleted {
        /// When.
        completed_at: DateTime<Utc>,
    },
    /// An occurrence of a recurring task was completed; the task stays open, due at the next
    /// occurrence.
    TaskOccurrenceCompleted {
        /// When.
        completed_at: DateTime<Utc>,
        /// The due time of the occurrence completed.
        due: DateTime<Utc>,
        /// The due time of the next occurrence (the task's new due time).
        next_due: DateTime<Utc>,
    },
    /// An occurrence of a recurring task was skipped (no completion recorded).
    TaskOccurrenceSkipped {
        /// When.
        skipped_at: DateTime<Utc>,
        /// The due time of the occurrence skipped.
        due: DateTime<Utc>,
        /// The due time of the next occurrence; `None` when the series is over, which closes
        /// the task (completed at `skipped_at`, no completion counted).
        next_due: Option<DateTime<Utc>>,
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

fn is_false(b: &bool) -> bool {
    !b
}

impl DomainEvent for TaskEvent {
    /// The variant name, e.g. `TaskCreated`.
    fn event_type(&self) -> String {
        match self {
            Self::TaskCreated { .. } => "TaskCreated",
            Self::TaskUpdated { .. } => "TaskUpdated",
            Self::TaskCompleted { .. } => "TaskCompleted",
            Self::TaskOccurrenceCompleted { .. } => "TaskOccurrenceCompleted",
            Self::TaskOccurrenceSkipped { .. } => "TaskOccurrenceSkipped",
            Self::TaskReopened { .. } => "TaskReopened",
            Self::TaskDeleted { .. } => "TaskDeleted",
        }
        .to_string()
    }

    /// `2` for a `TaskCreated` / `TaskUpdated` carrying a version-2 field (project,
    /// recurrence); `1` otherwise.
    fn event_version(&self) -> String {
        let v2 = match self {
            Self::TaskCreated {
                project,
                recurrence,
                ..
            } => project.is_some() || recurrence.is_some(),
            Self::TaskUpdated {
                project,
                clear_project,
                recurrence,
                clear_recurrence,
                ..
            } => project.is_some() || *clear_project || recurrence.is_some() || *clear_recurrence,
            _ => false,
        };
        if v2 { "2" } else { "1" }.to_string()
    }
}

crate::pillar_aggregate!(Task, "task", TaskCommand, TaskEvent);

impl Task {
    /// Folds `event` into the state; events that make no sense for the current state are ignored.
    fn evolve(&mut self, event: TaskEvent) {
        if let TaskEvent::TaskCreated {
            task_id,
            user_id,
            title,
            description,
            due,
            priority,
            tags,
            parent_task_id,
            created_at,
            project,
            recurrence,
        } = event
        {
            if self.state.is_none() {
                let series = match (recurrence, due) {
                    (Some(recurrence), Some(due)) => Some(Series::new(recurrence, due)),
                    _ => None,
                };
                self.state = Some(TaskState {
                    task_id,
                    owner: user_id,
                    title,
                    description,
                    due,
                    priority,
                    tags,
                    parent_task_id,
                    project,
                    series,
                    completed_at: None,
                    deleted_at: None,
                    created_at,
                    updated_at: created_at,
                });
            }
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            TaskEvent::TaskCreated { .. } => {}
            TaskEvent::TaskUpdated {
                title,
                description,
                due,
                clear_due,
                priority,
                tags,
                updated_at,
                project,
                clear_project,
                recurrence,
                clear_recurrence,
            } => {
                if let Some(title) = title {
                    state.title = title;
                }
                if let Some(description) = description {
                    state.description = description;
                }
                if clear_due {
                    state.due = None;
                }
                if let Some(due) = due {
                    state.due = Some(due);
                    // a due time set by hand restarts the series there
                    if let Some(series) = state.series.as_mut() {
                        series.anchor = due;
                    }
                }
                if let Some(priority) = priority {
                    state.priority = priority;
                }
                if let Some(tags) = tags {
                    state.tags = tags;
                }
                if clear_project {
                    state.project = None;
                }
                if project.is_some() {
                    state.project = project;
                }
                if clear_recurrence {
                    state.series = None;
                }
                if let Some(recurrence) = recurrence {
                    state.series = state.due.map(|due| Series::new(recurrence, due));
                }
                state.updated_at = updated_at;
            }
            TaskEvent::TaskCompleted { completed_at } => {
                state.completed_at = Some(completed_at);
                state.updated_at = completed_at;
            }
            TaskEvent::TaskOccurrenceCompleted {
                completed_at,
                next_due,
                ..
            } => {
                state.due = Some(next_due);
                if let Some(series) = state.series.as_mut() {
                    series.occurrence += 1;
                }
                state.updated_at = completed_at;
            }
            TaskEvent::TaskOccurrenceSkipped {
                skipped_at,
                next_due,
                ..
            } => {
                match next_due {
                    Some(next) => {
                        state.due = Some(next);
                        if let Some(series) = state.series.as_mut() {
                            series.occurrence += 1;
                        }
                    }
                    None => state.completed_at = Some(skipped_at),
                }
                state.updated_at = skipped_at;
            }
            TaskEvent::TaskReopened { reopened_at } => {
                state.completed_at = None;
                state.updated_at = reopened_at;
            }
            TaskEvent::TaskDeleted { deleted_at } => {
                state.deleted_at = Some(deleted_at);
                state.updated_at = deleted_at;
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
            TaskCommand::Complete => self.complete(actor, at, 0, false),
            TaskCommand::CompleteWithSubtasks {
                open_subtasks,
                force,
            } => self.complete(actor, at, open_subtasks, force),
            TaskCommand::SkipOccurrence => {
                let state = self.live(actor)?;
                if state.completed_at.is_some() {
                    return Err(rejected(state, "is completed"));
                }
                let (Some(series), Some(due)) = (&state.series, state.due) else {
                    return Err(rejected(
                        state,
                        "does not repeat: only an occurrence of a recurring task can be skipped",
                    ));
                };
                Ok(vec![TaskEvent::TaskOccurrenceSkipped {
                    skipped_at: at,
                    due,
                    next_due: series.next_due(due, at),
                }])
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

    fn complete(
        &self,
        actor: Uuid,
        at: DateTime<Utc>,
        open_subtasks: u32,
        force: bool,
    ) -> Result<Vec<TaskEvent>, DomainError> {
        let state = self.live(actor)?;
        if state.completed_at.is_some() {
            return Err(rejected(state, "is already completed"));
        }
        if open_subtasks > 0 && !force {
            let noun = if open_subtasks == 1 {
                "subtask"
            } else {
                "subtasks"
            };
            return Err(rejected(
                state,
                &format!(
                    "has {open_subtasks} open {noun}: complete them first, or set force to \
                     complete the task anyway"
                ),
            ));
        }
        let next = match (&state.series, state.due) {
            (Some(series), Some(due)) => series.next_due(due, at).map(|next| (due, next)),
            _ => None,
        };
        Ok(vec![match next {
            Some((due, next_due)) => TaskEvent::TaskOccurrenceCompleted {
                completed_at: at,
                due,
                next_due,
            },
            None => TaskEvent::TaskCompleted { completed_at: at },
        }])
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
        let project = new.project.as_deref().map(validate_project).transpose()?;
        let recurrence = match (new.recurrence, new.due) {
            (Some(recurrence), Some(due)) => Some(recurrence.validated(due)?),
            (Some(_), None) => return Err(needs_due()),
            (None, _) => None,
        };
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
            project,
            recurrence,
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
        let project = match &changes.project {
            Some(Some(p)) => Some(Some(validate_project(p)?)),
            Some(None) => Some(None),
            None => None,
        };
        // the rule's syntax is checked before the state; against its start (the due time
        // after this update) once the state is known
        let recurrence = match changes.recurrence {
            Some(Some(r)) => Some(Some(r.syntax_checked()?)),
            Some(None) => Some(None),
            None => None,
        };

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
        let (project, clear_project) = match project {
            Some(Some(p)) if state.project.as_ref() != Some(&p) => (Some(p), false),
            Some(None) if state.project.is_some() => (None, true),
            _ => (None, false),
        };
        let current = state.series.as_ref().map(|s| &s.recurrence);
        let (recurrence, clear_recurrence) = match recurrence {
            Some(Some(r)) if current != Some(&r) => (Some(r), false),
            Some(None) if current.is_some() => (None, true),
            _ => (None, false),
        };
        let repeats = recurrence.is_some() || (current.is_some() && !clear_recurrence);
        let due_after = if clear_due { None } else { due.or(state.due) };
        if repeats && due_after.is_none() {
            return Err(needs_due());
        }
        if let (Some(r), Some(due)) = (&recurrence, due_after) {
            // now against the series' real start (e.g. UNTIL before it)
            r.clone().validated(due)?;
        }

        if title.is_none()
            && description.is_none()
            && due.is_none()
            && !clear_due
            && priority.is_none()
            && tags.is_none()
            && project.is_none()
            && !clear_project
            && recurrence.is_none()
            && !clear_recurrence
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
            project,
            clear_project,
            recurrence,
            clear_recurrence,
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

fn needs_due() -> DomainError {
    DomainError::invalid(
        "due",
        "a recurring task needs a due time (its first occurrence)",
    )
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

/// Trims `project` and checks it has 1 to [`PROJECT_MAX_CHARS`] characters.
fn validate_project(project: &str) -> Result<String, DomainError> {
    let project = project.trim();
    if project.is_empty() {
        return Err(DomainError::invalid("project", "must not be empty"));
    }
    let len = project.chars().count();
    if len > PROJECT_MAX_CHARS {
        return Err(DomainError::invalid(
            "project",
            format!("must be at most {PROJECT_MAX_CHARS} characters, got {len}"),
        ));
    }
    Ok(project.to_string())
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
    use cqrs_es::Aggregate as _;
    use cqrs_es::event_sink::EventSink;
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
            project: None,
            recurrence: None,
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
            project: None,
            recurrence: None,
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
                ..Default::default()
            }))
            .then_expect_events(vec![TaskEvent::TaskUpdated {
                title: Some("Buy oat milk".into()),
                description: None,
                due: Some(t(45)),
                clear_due: false,
                priority: None,
                tags: Some(vec!["errand".into(), "home".into()]),
                updated_at: t(5),
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
                ..Default::default()
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
            project: None,
            clear_project: false,
            recurrence: None,
            clear_recurrence: false,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
            project: None,
            series: None,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
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
                project: None,
                recurrence: None,
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
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: false,
            }
        );
        let round: TaskEvent =
            serde_json::from_str(&serde_json::to_string(&created()).unwrap()).unwrap();
        assert_eq!(round, created());
    }

    // -----------------------------------------------------------------------------------------
    // Recurring tasks
    // -----------------------------------------------------------------------------------------

    /// `event` changed by `f` (enum variants have no struct update syntax).
    fn edit(mut event: TaskEvent, f: impl FnOnce(&mut TaskEvent)) -> TaskEvent {
        f(&mut event);
        event
    }

    fn at(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, month, day, hour, minute, 0)
            .unwrap()
    }

    fn every(interval: u32, unit: IntervalUnit, repeat_from: RepeatFrom) -> Recurrence {
        Recurrence {
            rule: RecurrenceRule::Every { interval, unit },
            repeat_from,
            time_zone: None,
        }
    }

    fn rrule(text: &str, repeat_from: RepeatFrom) -> Recurrence {
        Recurrence {
            rule: RecurrenceRule::Rrule(text.into()),
            repeat_from,
            time_zone: None,
        }
    }

    /// A plain task (no parent, tags or project) due at `due`, repeating by `recurrence`.
    fn recurring(due: DateTime<Utc>, recurrence: Recurrence) -> TaskEvent {
        TaskEvent::TaskCreated {
            task_id: TASK,
            user_id: ALICE,
            title: "Water the plants".into(),
            description: String::new(),
            due: Some(due),
            priority: 0,
            tags: vec![],
            parent_task_id: None,
            created_at: t(0),
            project: None,
            recurrence: Some(recurrence),
        }
    }

    fn complete_at(when: DateTime<Utc>) -> Issued<TaskCommand> {
        Issued::new(ALICE, when, TaskCommand::Complete)
    }

    fn skip_at(when: DateTime<Utc>) -> Issued<TaskCommand> {
        Issued::new(ALICE, when, TaskCommand::SkipOccurrence)
    }

    fn occurrence_done(
        completed_at: DateTime<Utc>,
        due: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> TaskEvent {
        TaskEvent::TaskOccurrenceCompleted {
            completed_at,
            due,
            next_due,
        }
    }

    #[test]
    fn create_recurring_records_the_normalized_rule() {
        let new = NewTask {
            recurrence: Some(rrule(
                " rrule:freq=weekly;byday=mo,th ",
                RepeatFrom::DueDate,
            )),
            ..new_task()
        };
        let events = fw()
            .given_no_previous_events()
            .when(create(new))
            .inspect_result()
            .unwrap();
        let [TaskEvent::TaskCreated { recurrence, .. }] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!(
            recurrence.as_ref().map(|r| &r.rule),
            Some(&RecurrenceRule::Rrule("FREQ=WEEKLY;BYDAY=MO,TH".into()))
        );
        assert_eq!(
            events[0].event_version(),
            "2",
            "a recurrence is a version-2 field"
        );
    }

    #[test]
    fn every_n_days_from_due() {
        let due = at(6, 2, 9, 0);
        // completed late (on the 5th): the next occurrence still follows the due date
        fw().given(vec![recurring(
            due,
            every(2, IntervalUnit::Days, RepeatFrom::DueDate),
        )])
        .when(complete_at(at(6, 5, 15, 0)))
        .then_expect_events(vec![occurrence_done(at(6, 5, 15, 0), due, at(6, 4, 9, 0))]);
    }

    #[test]
    fn every_n_days_from_completion() {
        let due = at(6, 2, 9, 0);
        let rule = every(3, IntervalUnit::Days, RepeatFrom::CompletionDate);
        // completed on the 5th at 15:00: three days after the completion day, at the due time
        fw().given(vec![recurring(due, rule.clone())])
            .when(complete_at(at(6, 5, 15, 0)))
            .then_expect_events(vec![occurrence_done(at(6, 5, 15, 0), due, at(6, 8, 9, 0))]);
        // completed early (on the 1st, before the due): still counted from the completion day
        fw().given(vec![recurring(due, rule)])
            .when(complete_at(at(6, 1, 8, 0)))
            .then_expect_events(vec![occurrence_done(at(6, 1, 8, 0), due, at(6, 4, 9, 0))]);
    }

    #[test]
    fn every_n_weeks() {
        let due = at(6, 2, 9, 0); // a Monday
        fw().given(vec![recurring(
            due,
            every(2, IntervalUnit::Weeks, RepeatFrom::DueDate),
        )])
        .when(complete_at(at(6, 2, 10, 0)))
        .then_expect_events(vec![occurrence_done(at(6, 2, 10, 0), due, at(6, 16, 9, 0))]);
    }

    #[test]
    fn every_month_clamps_to_the_last_day_without_drift() {
        let jan31 = at(1, 31, 9, 0);
        let rule = every(1, IntervalUnit::Months, RepeatFrom::DueDate);
        fw().given(vec![recurring(jan31, rule.clone())])
            .when(complete_at(at(1, 31, 10, 0)))
            .then_expect_events(vec![occurrence_done(
                at(1, 31, 10, 0),
                jan31,
                at(2, 28, 9, 0),
            )]);
        // from February's clamped 28th, March is back on the 31st (the series keeps its day)
        fw().given(vec![
            recurring(jan31, rule.clone()),
            occurrence_done(at(1, 31, 10, 0), jan31, at(2, 28, 9, 0)),
        ])
        .when(complete_at(at(2, 28, 10, 0)))
        .then_expect_events(vec![occurrence_done(
            at(2, 28, 10, 0),
            at(2, 28, 9, 0),
            at(3, 31, 9, 0),
        )]);
        // every 2 months from the 15th
        let rule = every(2, IntervalUnit::Months, RepeatFrom::DueDate);
        fw().given(vec![recurring(at(1, 15, 9, 0), rule)])
            .when(complete_at(at(1, 15, 10, 0)))
            .then_expect_events(vec![occurrence_done(
                at(1, 15, 10, 0),
                at(1, 15, 9, 0),
                at(3, 15, 9, 0),
            )]);
    }

    #[test]
    fn rrule_with_byday() {
        let monday = at(6, 2, 9, 0);
        let rule = rrule("FREQ=WEEKLY;BYDAY=MO,TH", RepeatFrom::DueDate);
        let thursday = at(6, 5, 9, 0);
        let next_monday = at(6, 9, 9, 0);
        fw().given(vec![recurring(monday, rule.clone())])
            .when(complete_at(at(6, 2, 18, 0)))
            .then_expect_events(vec![occurrence_done(at(6, 2, 18, 0), monday, thursday)]);
        fw().given(vec![
            recurring(monday, rule),
            occurrence_done(at(6, 2, 18, 0), monday, thursday),
        ])
        .when(complete_at(at(6, 5, 18, 0)))
        .then_expect_events(vec![occurrence_done(
            at(6, 5, 18, 0),
            thursday,
            next_monday,
        )]);
    }

    #[test]
    fn rrule_from_completion_restarts_on_the_completion_day() {
        // every Monday, repeating from completion: done on Wednesday the 11th (late), the next
        // is the Monday after that day, not the 9th
        let rule = rrule("FREQ=WEEKLY;BYDAY=MO", RepeatFrom::CompletionDate);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(complete_at(at(6, 11, 12, 0)))
            .then_expect_events(vec![occurrence_done(
                at(6, 11, 12, 0),
                at(6, 2, 9, 0),
                at(6, 16, 9, 0),
            )]);
        // and repeating from the due date the same completion gives the 9th
        let rule = rrule("FREQ=WEEKLY;BYDAY=MO", RepeatFrom::DueDate);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule)])
            .when(complete_at(at(6, 11, 12, 0)))
            .then_expect_events(vec![occurrence_done(
                at(6, 11, 12, 0),
                at(6, 2, 9, 0),
                at(6, 9, 9, 0),
            )]);
    }

    #[test]
    fn count_exhausted_completes_for_good() {
        let rule = rrule("FREQ=DAILY;COUNT=3", RepeatFrom::DueDate);
        let history = vec![
            recurring(at(6, 2, 9, 0), rule),
            occurrence_done(at(6, 2, 10, 0), at(6, 2, 9, 0), at(6, 3, 9, 0)),
            occurrence_done(at(6, 3, 10, 0), at(6, 3, 9, 0), at(6, 4, 9, 0)),
        ];
        // the third occurrence is the last: a plain completion
        fw().given(history.clone())
            .when(complete_at(at(6, 4, 10, 0)))
            .then_expect_events(vec![TaskEvent::TaskCompleted {
                completed_at: at(6, 4, 10, 0),
            }]);
        let mut done = history;
        done.push(TaskEvent::TaskCompleted {
            completed_at: at(6, 4, 10, 0),
        });
        fw().given(done.clone())
            .when(complete_at(at(6, 5, 10, 0)))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} is already completed"
            )));
        let task = replay(done);
        let state = task.state().unwrap();
        assert_eq!(state.completed_at, Some(at(6, 4, 10, 0)));
        assert_eq!(state.due, Some(at(6, 4, 9, 0)), "the last occurrence's due");
    }

    #[test]
    fn count_counts_skips_and_holds_when_repeating_from_completion() {
        let rule = rrule("FREQ=DAILY;COUNT=2", RepeatFrom::CompletionDate);
        let history = vec![
            recurring(at(6, 2, 9, 0), rule),
            TaskEvent::TaskOccurrenceSkipped {
                skipped_at: at(6, 5, 10, 0),
                due: at(6, 2, 9, 0),
                next_due: Some(at(6, 6, 9, 0)),
            },
        ];
        fw().given(history[..1].to_vec())
            .when(skip_at(at(6, 5, 10, 0)))
            .then_expect_events(vec![history[1].clone()]);
        fw().given(history)
            .when(complete_at(at(6, 9, 10, 0)))
            .then_expect_events(vec![TaskEvent::TaskCompleted {
                completed_at: at(6, 9, 10, 0),
            }]);
    }

    #[test]
    fn until_exhausted_completes_for_good() {
        let rule = rrule("FREQ=WEEKLY;UNTIL=20250609T000000Z", RepeatFrom::DueDate);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(complete_at(at(6, 2, 10, 0)))
            .then_expect_events(vec![TaskEvent::TaskCompleted {
                completed_at: at(6, 2, 10, 0),
            }]);
        let later = rrule("FREQ=WEEKLY;UNTIL=20250609T000000Z", RepeatFrom::DueDate);
        fw().given(vec![recurring(at(5, 30, 9, 0), later)])
            .when(complete_at(at(5, 30, 10, 0)))
            .then_expect_events(vec![occurrence_done(
                at(5, 30, 10, 0),
                at(5, 30, 9, 0),
                at(6, 6, 9, 0),
            )]);
    }

    #[test]
    fn skip_moves_to_the_next_occurrence_without_a_completion() {
        let rule = every(1, IntervalUnit::Weeks, RepeatFrom::DueDate);
        let skipped = TaskEvent::TaskOccurrenceSkipped {
            skipped_at: at(6, 3, 8, 0),
            due: at(6, 2, 9, 0),
            next_due: Some(at(6, 9, 9, 0)),
        };
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(skip_at(at(6, 3, 8, 0)))
            .then_expect_events(vec![skipped.clone()]);
        let task = replay([recurring(at(6, 2, 9, 0), rule), skipped]);
        let state = task.state().unwrap();
        assert_eq!(state.due, Some(at(6, 9, 9, 0)));
        assert_eq!(state.completed_at, None, "still open");
        assert_eq!(state.series.as_ref().map(|s| s.occurrence), Some(2));
    }

    #[test]
    fn skipping_the_last_occurrence_closes_the_task() {
        let rule = rrule("FREQ=DAILY;COUNT=1", RepeatFrom::DueDate);
        let closed = TaskEvent::TaskOccurrenceSkipped {
            skipped_at: at(6, 2, 10, 0),
            due: at(6, 2, 9, 0),
            next_due: None,
        };
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(skip_at(at(6, 2, 10, 0)))
            .then_expect_events(vec![closed.clone()]);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule), closed])
            .when(skip_at(at(6, 3, 10, 0)))
            .then_expect_error(DomainError::Rejected(format!("task {TASK} is completed")));
    }

    #[test]
    fn skip_needs_a_recurring_live_task() {
        fw().given(vec![created()])
            .when(issue(ALICE, 7, TaskCommand::SkipOccurrence))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} does not repeat: only an occurrence of a recurring task can be skipped"
            )));
        let rule = every(1, IntervalUnit::Days, RepeatFrom::DueDate);
        fw().given(vec![
            recurring(at(6, 2, 9, 0), rule.clone()),
            TaskEvent::TaskDeleted { deleted_at: t(9) },
        ])
        .when(skip_at(at(6, 3, 10, 0)))
        .then_expect_error(DomainError::Rejected(format!("task {TASK} is deleted")));
        fw().given(vec![recurring(at(6, 2, 9, 0), rule)])
            .when(Issued::new(
                BOB,
                at(6, 3, 10, 0),
                TaskCommand::SkipOccurrence,
            ))
            .then_expect_error(DomainError::NotFound {
                entity: "task",
                id: TASK.to_string(),
            });
    }

    fn recurrence_error(recurrence: Recurrence) -> DomainError {
        fw().given_no_previous_events()
            .when(create(NewTask {
                due: Some(at(6, 2, 9, 0)),
                recurrence: Some(recurrence),
                ..new_task()
            }))
            .inspect_result()
            .expect_err("a bad recurrence is refused")
    }

    #[test]
    fn bad_rrule_is_invalid_recurrence_with_the_parsers_reason() {
        let cases = [
            ("FREQ=FORTNIGHTLY", "FORTNIGHTLY"),
            ("FREQ=DAILY;BYDAY=XX", "XX"),
            ("BYDAY=MO", "FREQ"),
            ("", "must not be empty"),
            ("FREQ=DAILY;UNTIL=20250606", "UNTIL"),
            (
                "FREQ=DAILY;COUNT=2;UNTIL=20250606T000000Z",
                "COUNT and UNTIL",
            ),
            ("FREQ=HOURLY", "not supported"),
            ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ];
        for (text, reason) in cases {
            match recurrence_error(rrule(text, RepeatFrom::DueDate)) {
                DomainError::Invalid {
                    field: "recurrence",
                    reason: r,
                } => assert!(r.contains(reason), "{text}: {r}"),
                other => panic!("{text}: expected Invalid(recurrence), got {other:?}"),
            }
        }
        let long = format!("FREQ=DAILY;{}", "X".repeat(recurrence::RRULE_MAX_CHARS));
        assert!(matches!(
            recurrence_error(rrule(&long, RepeatFrom::DueDate)),
            DomainError::Invalid {
                field: "recurrence",
                ..
            }
        ));
        for interval in [0, recurrence::MAX_INTERVAL + 1] {
            assert!(matches!(
                recurrence_error(every(interval, IntervalUnit::Days, RepeatFrom::DueDate)),
                DomainError::Invalid {
                    field: "recurrence",
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_recurring_task_needs_a_due_time() {
        fw().given_no_previous_events()
            .when(create(NewTask {
                due: None,
                recurrence: Some(every(1, IntervalUnit::Days, RepeatFrom::DueDate)),
                ..new_task()
            }))
            .then_expect_error(needs_due());
        // clearing the due time of a recurring task is refused, unless it stops repeating too
        let rule = every(1, IntervalUnit::Days, RepeatFrom::DueDate);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(update(TaskChanges {
                due: Some(None),
                ..Default::default()
            }))
            .then_expect_error(needs_due());
        fw().given(vec![recurring(at(6, 2, 9, 0), rule)])
            .when(update(TaskChanges {
                due: Some(None),
                recurrence: Some(None),
                ..Default::default()
            }))
            .then_expect_events(vec![TaskEvent::TaskUpdated {
                title: None,
                description: None,
                due: None,
                clear_due: true,
                priority: None,
                tags: None,
                updated_at: t(5),
                project: None,
                clear_project: false,
                recurrence: None,
                clear_recurrence: true,
            }]);
        // setting a recurrence on a task without a due time
        let undated = edit(created(), |e| {
            if let TaskEvent::TaskCreated { due, .. } = e {
                *due = None;
            }
        });
        fw().given(vec![undated])
            .when(update(TaskChanges {
                recurrence: Some(Some(every(1, IntervalUnit::Days, RepeatFrom::DueDate))),
                ..Default::default()
            }))
            .then_expect_error(needs_due());
    }

    #[test]
    fn update_sets_and_restarts_a_series() {
        let weekly = every(1, IntervalUnit::Weeks, RepeatFrom::DueDate);
        let set = TaskEvent::TaskUpdated {
            title: None,
            description: None,
            due: None,
            clear_due: false,
            priority: None,
            tags: None,
            updated_at: t(5),
            project: None,
            clear_project: false,
            recurrence: Some(weekly.clone()),
            clear_recurrence: false,
        };
        // created() is due at t(30): the series starts there
        fw().given(vec![created()])
            .when(update(TaskChanges {
                recurrence: Some(Some(weekly.clone())),
                ..Default::default()
            }))
            .then_expect_events(vec![set.clone()]);
        assert_eq!(set.event_version(), "2");
        // the same recurrence again changes nothing
        fw().given(vec![created(), set.clone()])
            .when(update(TaskChanges {
                recurrence: Some(Some(weekly)),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
        // completing: next week; moving the due by hand restarts the series there
        fw().given(vec![created(), set.clone()])
            .when(complete_at(t(40)))
            .then_expect_events(vec![occurrence_done(
                t(40),
                t(30),
                t(30) + chrono::Duration::weeks(1),
            )]);
        let moved = edit(set.clone(), |e| {
            if let TaskEvent::TaskUpdated {
                due, recurrence, ..
            } = e
            {
                *due = Some(at(6, 4, 8, 0));
                *recurrence = None;
            }
        });
        fw().given(vec![created(), set, moved])
            .when(complete_at(at(6, 4, 9, 0)))
            .then_expect_events(vec![occurrence_done(
                at(6, 4, 9, 0),
                at(6, 4, 8, 0),
                at(6, 11, 8, 0),
            )]);
    }

    #[test]
    fn an_update_checks_until_against_the_due_time_not_the_clock() {
        let until = |text: &str| TaskChanges {
            recurrence: Some(Some(rrule(text, RepeatFrom::DueDate))),
            ..Default::default()
        };
        // created() is due at 12:30; the update is issued at 12:05
        match fw()
            .given(vec![created()])
            .when(update(until("FREQ=DAILY;UNTIL=20250601T120000Z")))
            .inspect_result()
        {
            Err(DomainError::Invalid {
                field: "recurrence",
                reason,
            }) => assert!(reason.contains("UNTIL"), "{reason}"),
            other => panic!("UNTIL before the due time: {other:?}"),
        }
        // due at 12:01, UNTIL 12:03: before the update's clock (12:05) but after the start
        let early = edit(created(), |e| {
            if let TaskEvent::TaskCreated { due, .. } = e {
                *due = Some(t(1));
            }
        });
        let events = fw()
            .given(vec![early])
            .when(update(until("FREQ=DAILY;UNTIL=20250601T120300Z")))
            .inspect_result()
            .expect("UNTIL after the series' start");
        assert!(
            matches!(
                &events[..],
                [TaskEvent::TaskUpdated {
                    recurrence: Some(_),
                    ..
                }]
            ),
            "{events:?}"
        );
        // a malformed rule is refused before the task is even looked at
        fw().given_no_previous_events()
            .when(update(until("FREQ=NEVER")))
            .then_expect_error(invalid(
                "recurrence",
                "RRule parsing error: `NEVER` is not a valid frequency.",
            ));
    }

    #[test]
    fn stopping_the_recurrence_makes_completion_final() {
        let rule = every(1, IntervalUnit::Days, RepeatFrom::DueDate);
        let stop = TaskEvent::TaskUpdated {
            title: None,
            description: None,
            due: None,
            clear_due: false,
            priority: None,
            tags: None,
            updated_at: t(5),
            project: None,
            clear_project: false,
            recurrence: None,
            clear_recurrence: true,
        };
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(update(TaskChanges {
                recurrence: Some(None),
                ..Default::default()
            }))
            .then_expect_events(vec![stop.clone()]);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule), stop])
            .when(complete_at(t(7)))
            .then_expect_events(vec![TaskEvent::TaskCompleted { completed_at: t(7) }]);
    }

    #[test]
    fn reopening_a_finished_series_keeps_it_finished() {
        let rule = rrule("FREQ=DAILY;COUNT=1", RepeatFrom::DueDate);
        let done = TaskEvent::TaskCompleted {
            completed_at: at(6, 2, 10, 0),
        };
        let reopened = TaskEvent::TaskReopened {
            reopened_at: at(6, 2, 11, 0),
        };
        fw().given(vec![recurring(at(6, 2, 9, 0), rule), done, reopened])
            .when(complete_at(at(6, 2, 12, 0)))
            .then_expect_events(vec![TaskEvent::TaskCompleted {
                completed_at: at(6, 2, 12, 0),
            }]);
    }

    // -----------------------------------------------------------------------------------------
    // Projects
    // -----------------------------------------------------------------------------------------

    #[test]
    fn project_is_trimmed_and_bounded() {
        let events = fw()
            .given_no_previous_events()
            .when(create(NewTask {
                project: Some("  Garden ".into()),
                ..new_task()
            }))
            .inspect_result()
            .unwrap();
        assert!(
            matches!(&events[..], [TaskEvent::TaskCreated { project: Some(p), .. }] if p == "Garden"),
            "{events:?}"
        );
        assert_eq!(events[0].event_version(), "2");
        for bad in ["", "   ", &"p".repeat(PROJECT_MAX_CHARS + 1)] {
            expect_invalid(
                NewTask {
                    project: Some(bad.to_string()),
                    ..new_task()
                },
                "project",
            );
        }
        // 100 multi-byte characters are fine
        fw().given_no_previous_events()
            .when(create(NewTask {
                project: Some("é".repeat(PROJECT_MAX_CHARS)),
                ..new_task()
            }))
            .inspect_result()
            .unwrap();
    }

    #[test]
    fn update_changes_and_clears_the_project() {
        let in_garden = edit(created(), |e| {
            if let TaskEvent::TaskCreated { project, .. } = e {
                *project = Some("Garden".into());
            }
        });
        let base = TaskEvent::TaskUpdated {
            title: None,
            description: None,
            due: None,
            clear_due: false,
            priority: None,
            tags: None,
            updated_at: t(5),
            project: None,
            clear_project: false,
            recurrence: None,
            clear_recurrence: false,
        };
        fw().given(vec![in_garden.clone()])
            .when(update(TaskChanges {
                project: Some(Some(" House".into())),
                ..Default::default()
            }))
            .then_expect_events(vec![edit(base.clone(), |e| {
                if let TaskEvent::TaskUpdated { project, .. } = e {
                    *project = Some("House".into());
                }
            })]);
        fw().given(vec![in_garden.clone()])
            .when(update(TaskChanges {
                project: Some(Some("Garden ".into())),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
        let cleared = edit(base, |e| {
            if let TaskEvent::TaskUpdated { clear_project, .. } = e {
                *clear_project = true;
            }
        });
        fw().given(vec![in_garden.clone()])
            .when(update(TaskChanges {
                project: Some(None),
                ..Default::default()
            }))
            .then_expect_events(vec![cleared.clone()]);
        fw().given(vec![created()])
            .when(update(TaskChanges {
                project: Some(None),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
        fw().given(vec![in_garden.clone()])
            .when(update(TaskChanges {
                project: Some(Some(" ".into())),
                ..Default::default()
            }))
            .then_expect_error(invalid("project", "must not be empty"));
        assert_eq!(
            replay([in_garden.clone()])
                .state()
                .unwrap()
                .project
                .as_deref(),
            Some("Garden")
        );
        assert_eq!(replay([in_garden, cleared]).state().unwrap().project, None);
    }

    // -----------------------------------------------------------------------------------------
    // Subtasks
    // -----------------------------------------------------------------------------------------

    #[test]
    fn completing_a_parent_with_open_subtasks_needs_force() {
        let with = |open_subtasks, force| {
            issue(
                ALICE,
                7,
                TaskCommand::CompleteWithSubtasks {
                    open_subtasks,
                    force,
                },
            )
        };
        fw().given(vec![created()])
            .when(with(2, false))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} has 2 open subtasks: complete them first, or set force to complete \
                 the task anyway"
            )));
        fw().given(vec![created()])
            .when(with(1, false))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} has 1 open subtask: complete them first, or set force to complete \
                 the task anyway"
            )));
        fw().given(vec![created()])
            .when(with(2, true))
            .then_expect_events(vec![TaskEvent::TaskCompleted { completed_at: t(7) }]);
        fw().given(vec![created()])
            .when(with(0, false))
            .then_expect_events(vec![TaskEvent::TaskCompleted { completed_at: t(7) }]);
        // the lifecycle comes first: a completed parent is "already completed", whatever is open
        fw().given(vec![
            created(),
            TaskEvent::TaskCompleted { completed_at: t(6) },
        ])
        .when(with(3, false))
        .then_expect_error(DomainError::Rejected(format!(
            "task {TASK} is already completed"
        )));
        // a recurring parent: its occurrence, under the same rule
        let rule = every(1, IntervalUnit::Days, RepeatFrom::DueDate);
        fw().given(vec![recurring(at(6, 2, 9, 0), rule.clone())])
            .when(with(1, false))
            .then_expect_error(DomainError::Rejected(format!(
                "task {TASK} has 1 open subtask: complete them first, or set force to complete \
                 the task anyway"
            )));
        fw().given(vec![recurring(at(6, 2, 9, 0), rule)])
            .when(with(1, true))
            .then_expect_events(vec![occurrence_done(t(7), at(6, 2, 9, 0), at(6, 3, 9, 0))]);
    }

    // -----------------------------------------------------------------------------------------
    // Event versions and old payloads
    // -----------------------------------------------------------------------------------------

    #[test]
    fn version_1_payloads_stay_version_1_and_read_as_version_2() {
        assert_eq!(created().event_version(), "1");
        let json = serde_json::to_value(created()).unwrap();
        assert!(
            json["TaskCreated"].get("project").is_none()
                && json["TaskCreated"].get("recurrence").is_none(),
            "a payload without version-2 fields is the version-1 format: {json}"
        );
        let update_v1 = TaskEvent::TaskUpdated {
            title: Some("x".into()),
            description: None,
            due: None,
            clear_due: false,
            priority: None,
            tags: None,
            updated_at: t(5),
            project: None,
            clear_project: false,
            recurrence: None,
            clear_recurrence: false,
        };
        assert_eq!(update_v1.event_version(), "1");
        let json = serde_json::to_value(&update_v1).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"TaskUpdated": {
                "title": "x", "description": null, "due": null, "clear_due": false,
                "priority": null, "tags": null, "updated_at": "2025-06-01T12:05:00Z"
            }})
        );
        // a stored version-1 TaskCreated (as written before projects and recurrences existed)
        let old: TaskEvent = serde_json::from_value(serde_json::json!({"TaskCreated": {
            "task_id": TASK, "user_id": ALICE, "title": "Buy milk", "description": "2 litres",
            "due": "2025-06-01T12:30:00Z", "priority": 2, "tags": ["home", "errand"],
            "parent_task_id": PARENT, "created_at": "2025-06-01T12:00:00Z"
        }}))
        .unwrap();
        assert_eq!(old, created());

        let v2 = recurring(
            at(6, 2, 9, 0),
            every(3, IntervalUnit::Days, RepeatFrom::CompletionDate),
        );
        assert_eq!(v2.event_version(), "2");
        let json = serde_json::to_value(&v2).unwrap();
        assert_eq!(
            json["TaskCreated"]["recurrence"],
            serde_json::json!({"rule": {"every": {"interval": 3, "unit": "days"}},
                               "repeat_from": "completion_date"})
        );
        let back: TaskEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, v2);
        let occurrence = occurrence_done(t(7), t(8), t(9));
        assert_eq!(occurrence.event_type(), "TaskOccurrenceCompleted");
        assert_eq!(occurrence.event_version(), "1");
        assert_eq!(
            serde_json::from_value::<TaskEvent>(serde_json::to_value(&occurrence).unwrap())
                .unwrap(),
            occurrence
        );
    }

    #[test]
    fn snapshots_written_before_recurrences_still_load() {
        // a TaskState snapshot without `project` and `series`
        let old: Task = serde_json::from_value(serde_json::json!({"state": {
            "task_id": TASK, "owner": ALICE, "title": "Buy milk", "description": "",
            "due": null, "priority": 0, "tags": [], "parent_task_id": null,
            "completed_at": null, "deleted_at": null,
            "created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:00:00Z"
        }}))
        .unwrap();
        let state = old.state().unwrap();
        assert_eq!(
            (state.project.as_ref(), state.series.as_ref()),
            (None, None)
        );
    }
}
