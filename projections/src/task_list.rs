//! `task_list`: each user's tasks, open and completed, ordered by due time then priority,
//! plus per-user counters.
//!
//! A recurring task is one row that stays open across its occurrences: an occurrence completed
//! or skipped moves its due time (and so its place in the list) to the next occurrence, and a
//! completed occurrence counts in the completions. Rows can be filtered by project, tag or
//! parent task ([`TaskFilter`]) inside the listing query, so pages stay exact.
//!
//! Fields added after version 1 of the fold (project, recurrence, occurrence counters) default
//! when absent: rows written before them read as they would be written now (no task had those
//! fields then), so no rebuild is needed.

use aggregates::task::{Recurrence, Task, TaskEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::{DocFilter, Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet};

/// Row group of open tasks.
pub const OPEN: &str = "open";
/// Row group of completed tasks.
pub const COMPLETED: &str = "completed";
/// Row group of the per-user counters row.
const STATS: &str = "stats";
/// Row id of the per-user counters row.
const STATS_ROW: &str = "stats";
/// The most subtasks [`TaskList::subtasks`] returns.
pub const MAX_SUBTASKS: usize = 500;

/// One task as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task's id.
    pub task_id: Uuid,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// When it is due.
    pub due: Option<DateTime<Utc>>,
    /// 0 (none) to 4 (urgent).
    pub priority: u8,
    /// Tags, in the order given.
    pub tags: Vec<String>,
    /// The parent task of a subtask.
    pub parent_task_id: Option<Uuid>,
    /// Whether it is completed.
    pub completed: bool,
    /// When it was completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The project it belongs to.
    #[serde(default)]
    pub project: Option<String>,
    /// How it repeats (its `due` is the current occurrence).
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// Occurrences completed (a recurring task; its final completion included).
    #[serde(default)]
    pub completed_occurrences: u32,
    /// Occurrences skipped.
    #[serde(default)]
    pub skipped_occurrences: u32,
    /// When an occurrence (or the task) was last completed.
    #[serde(default)]
    pub last_completed_at: Option<DateTime<Utc>>,
}

/// Which tasks a listing keeps (every given condition must hold; exact matches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Tasks of this project.
    pub project: Option<String>,
    /// Tasks carrying this tag.
    pub tag: Option<String>,
    /// Subtasks of this task.
    pub parent_task_id: Option<Uuid>,
}

impl TaskFilter {
    /// The document filters of the read model.
    fn doc_filters(&self) -> Vec<DocFilter> {
        let mut filters = Vec::new();
        if let Some(project) = &self.project {
            filters.push(DocFilter::eq("project", project.clone()));
        }
        if let Some(tag) = &self.tag {
            filters.push(DocFilter::contains("tags", tag.clone()));
        }
        if let Some(parent) = self.parent_task_id {
            filters.push(DocFilter::eq("parent_task_id", parent.to_string()));
        }
        filters
    }
}

/// Per-user counters kept beside the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    /// Tasks open now.
    pub open: u64,
    /// Tasks completed now (reopening takes one back).
    pub completed: u64,
    /// Tasks ever created.
    pub created_total: u64,
    /// Completions ever recorded (reopen then complete counts twice; each completed occurrence
    /// of a recurring task counts once).
    pub completions_total: u64,
}

/// The `task_list` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskList;

impl TaskList {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        TaskList.model()
    }

    /// One task of `user_id` (None when absent, deleted, or someone else's).
    pub async fn get(
        rows: &impl RowReader,
        user_id: Uuid,
        task_id: Uuid,
    ) -> Result<Option<TaskView>, ProjectionError> {
        let row = rows
            .get_row(&TaskList, &RowKey::new(user_id, task_id.to_string()))
            .await?;
        row.filter(|r| r.grp != STATS)
            .map(|r| r.decode())
            .transpose()
    }

    /// A page of `user_id`'s tasks after `cursor`, open first by due then priority; completed
    /// ones too when `include_completed`. Returns the page and the cursor of the next one.
    pub async fn list(
        rows: &impl RowReader,
        user_id: Uuid,
        include_completed: bool,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<TaskView>, Option<RowCursor>), ProjectionError> {
        Self::list_where(
            rows,
            user_id,
            include_completed,
            &TaskFilter::default(),
            cursor,
            page_size,
        )
        .await
    }

    /// Like [`TaskList::list`], only the tasks `filter` keeps (filtered by the store before the
    /// page is cut, so every page but the last is full and the cursor walks exactly the
    /// matching tasks).
    pub async fn list_where(
        rows: &impl RowReader,
        user_id: Uuid,
        include_completed: bool,
        filter: &TaskFilter,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<TaskView>, Option<RowCursor>), ProjectionError> {
        let groups: &[&str] = if include_completed {
            &[OPEN, COMPLETED]
        } else {
            &[OPEN]
        };
        let filters = filter.doc_filters();
        let page = rows
            .list_rows_filtered(&TaskList, user_id, groups, &filters, cursor, page_size + 1)
            .await?;
        RowCursor::page(page, page_size)
    }

    /// The subtasks of `parent` (open and completed, in list order, at most [`MAX_SUBTASKS`]).
    pub async fn subtasks(
        rows: &impl RowReader,
        user_id: Uuid,
        parent: Uuid,
    ) -> Result<Vec<TaskView>, ProjectionError> {
        let filter = TaskFilter {
            parent_task_id: Some(parent),
            ..TaskFilter::default()
        };
        let (tasks, _) = Self::list_where(rows, user_id, true, &filter, None, MAX_SUBTASKS).await?;
        Ok(tasks)
    }

    /// How many subtasks of `parent` are open (counting stops at `limit`).
    pub async fn open_subtasks(
        rows: &impl RowReader,
        user_id: Uuid,
        parent: Uuid,
        limit: usize,
    ) -> Result<usize, ProjectionError> {
        let filters = TaskFilter {
            parent_task_id: Some(parent),
            ..TaskFilter::default()
        }
        .doc_filters();
        let open = rows
            .list_rows_filtered(&TaskList, user_id, &[OPEN], &filters, None, limit)
            .await?;
        Ok(open.len())
    }

    /// The counters of `user_id`.
    pub async fn stats(rows: &impl RowReader, user_id: Uuid) -> Result<TaskStats, ProjectionError> {
        let row = rows
            .get_row(&TaskList, &RowKey::new(user_id, STATS_ROW))
            .await?;
        Ok(row.map(|r| r.decode()).transpose()?.unwrap_or_default())
    }
}

/// Orders by due time (no due time last), then priority (urgent first).
fn sort_key(view: &TaskView) -> String {
    let due = match view.due {
        // shift to unsigned so the decimal text sorts like the number, pre-1970 included
        Some(d) => format!(
            "{:020}",
            (d.timestamp_millis() as i128 - i64::MIN as i128) as u128
        ),
        None => "~".to_string(),
    };
    format!("{due}|{}", 4u8.saturating_sub(view.priority))
}

fn group(view: &TaskView) -> &'static str {
    if view.completed { COMPLETED } else { OPEN }
}

impl Projection for TaskList {
    fn name(&self) -> &'static str {
        "task_list"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[Task::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        match (event.aggregate_type.as_str(), event.user_id) {
            (Task::TYPE, Some(user)) => vec![
                RowKey::new(user, event.aggregate_id.clone()),
                RowKey::new(user, STATS_ROW),
            ],
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        if event.aggregate_type != Task::TYPE {
            return Ok(()); // the runner applies every event; other pillars' are not ours
        }
        let [task_key, stats_key] = <[RowKey; 2]>::try_from(self.keys(event)).map_err(|_| {
            ProjectionError::poison(&self.model(), event, "task event without a user id")
        })?;
        let payload: TaskEvent = crate::decode_payload(event)
            .map_err(|e| ProjectionError::poison(&self.model(), event, e))?;
        let mut stats: TaskStats = match rows.get(&stats_key) {
            Some(row) => row.decode()?,
            None => TaskStats::default(),
        };
        let current: Option<TaskView> = rows.get(&task_key).map(Row::decode).transpose()?;
        let before = current.as_ref().map(|v| v.completed);
        let next = match (payload, current) {
            (
                TaskEvent::TaskCreated {
                    task_id,
                    title,
                    description,
                    due,
                    priority,
                    tags,
                    parent_task_id,
                    created_at,
                    project,
                    recurrence,
                    ..
                },
                None,
            ) => {
                stats.created_total += 1;
                Some(TaskView {
                    task_id,
                    title,
                    description,
                    due,
                    priority,
                    tags,
                    parent_task_id,
                    completed: false,
                    completed_at: None,
                    created_at,
                    updated_at: created_at,
                    project,
                    recurrence,
                    completed_occurrences: 0,
                    skipped_occurrences: 0,
                    last_completed_at: None,
                })
            }
            (
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
                },
                Some(mut v),
            ) => {
                if clear_due {
                    v.due = None;
                }
                if clear_project {
                    v.project = None;
                }
                v.project = project.or(v.project);
                if clear_recurrence {
                    v.recurrence = None;
                }
                v.recurrence = recurrence.or(v.recurrence);
                v.due = due.or(v.due);
                v.title = title.unwrap_or(v.title);
                v.description = description.unwrap_or(v.description);
                v.priority = priority.unwrap_or(v.priority);
                v.tags = tags.unwrap_or(v.tags);
                v.updated_at = updated_at;
                Some(v)
            }
            (TaskEvent::TaskCompleted { completed_at }, Some(mut v)) => {
                stats.completions_total += 1;
                v.completed = true;
                v.completed_at = Some(completed_at);
                v.updated_at = completed_at;
                if v.recurrence.is_some() {
                    v.completed_occurrences += 1;
                }
                v.last_completed_at = Some(completed_at);
                Some(v)
            }
            (
                TaskEvent::TaskOccurrenceCompleted {
                    completed_at,
                    next_due,
                    ..
                },
                Some(mut v),
            ) => {
                stats.completions_total += 1;
                v.due = Some(next_due);
                v.completed_occurrences += 1;
                v.last_completed_at = Some(completed_at);
                v.updated_at = completed_at;
                Some(v)
            }
            (
                TaskEvent::TaskOccurrenceSkipped {
                    skipped_at,
                    next_due,
                    ..
                },
                Some(mut v),
            ) => {
                v.skipped_occurrences += 1;
                match next_due {
                    Some(next) => v.due = Some(next),
                    None => {
                        // the series is over: the task is closed, no completion counted
                        v.completed = true;
                        v.completed_at = Some(skipped_at);
                    }
                }
                v.updated_at = skipped_at;
                Some(v)
            }
            (TaskEvent::TaskReopened { reopened_at }, Some(mut v)) => {
                v.completed = false;
                v.completed_at = None;
                v.updated_at = reopened_at;
                Some(v)
            }
            (TaskEvent::TaskDeleted { .. }, Some(_)) => None,
            (_, current) => {
                return Err(ProjectionError::poison(
                    &self.model(),
                    event,
                    format!(
                        "{} does not follow the task's state (task row {})",
                        event.event_type,
                        if current.is_some() {
                            "present"
                        } else {
                            "absent"
                        }
                    ),
                ));
            }
        };
        // counters follow the row's group before and after
        match before {
            Some(true) => stats.completed = stats.completed.saturating_sub(1),
            Some(false) => stats.open = stats.open.saturating_sub(1),
            None => {}
        }
        match &next {
            Some(v) if v.completed => stats.completed += 1,
            Some(_) => stats.open += 1,
            None => {}
        }
        match next {
            Some(view) => rows.put(Row::new(task_key, group(&view), sort_key(&view), &view)?),
            None => rows.delete(&task_key),
        }
        rows.put(Row::new(stats_key, STATS, "", &stats)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Position;

    fn event(
        aggregate_type: &str,
        user_id: Option<Uuid>,
        payload: serde_json::Value,
    ) -> LoggedEvent {
        LoggedEvent {
            position: Position { tx: 0, pos: 1 },
            event_id: Uuid::now_v7(),
            user_id,
            recorded_at: Utc::now(),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: Uuid::now_v7().to_string(),
            sequence: 1,
            event_type: "Whatever".to_string(),
            event_version: "1".to_string(),
            payload,
            metadata: serde_json::json!({}),
        }
    }

    #[test]
    fn other_aggregates_are_passed_over() {
        let mut rows = RowSet::default();
        let payload = serde_json::json!({"HabitCreated": {}});
        let habit = event("habit", Some(Uuid::now_v7()), payload);
        assert!(TaskList.keys(&habit).is_empty());
        TaskList
            .apply(&habit, &mut rows)
            .expect("not a task event: ignored");
        assert!(rows.into_changes().is_empty());
    }

    #[test]
    fn a_task_event_without_user_is_poison() {
        let completed = TaskEvent::TaskCompleted {
            completed_at: Utc::now(),
        };
        let orphan = event(Task::TYPE, None, serde_json::to_value(completed).unwrap());
        let err = TaskList.apply(&orphan, &mut RowSet::default()).unwrap_err();
        assert!(matches!(err, ProjectionError::Poison(_)), "{err:?}");
    }

    #[test]
    fn sort_keys_order_due_then_priority() {
        let view = |due: Option<DateTime<Utc>>, priority| TaskView {
            task_id: Uuid::nil(),
            title: String::new(),
            description: String::new(),
            due,
            priority,
            tags: Vec::new(),
            parent_task_id: None,
            completed: false,
            completed_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            project: None,
            recurrence: None,
            completed_occurrences: 0,
            skipped_occurrences: 0,
            last_completed_at: None,
        };
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let ordered = [
            view(at("1900-01-01T00:00:00Z"), 0),
            view(at("1969-12-31T23:59:59Z"), 4),
            view(at("1970-01-01T00:00:00Z"), 4),
            view(at("1970-01-01T00:00:00Z"), 0),
            view(at("2025-06-01T12:00:00Z"), 3),
            view(at("9999-12-31T23:59:59Z"), 0),
            view(None, 4),
            view(None, 0),
        ];
        for pair in ordered.windows(2) {
            assert!(
                sort_key(&pair[0]) < sort_key(&pair[1]),
                "{} !< {}",
                sort_key(&pair[0]),
                sort_key(&pair[1])
            );
        }
    }
}
