//! The harness the projection suites share: a store with the task command path, the read models,
//! and a clock that gives every command its own instant.

#![allow(dead_code)] // each suite uses its own part

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aggregates::Issued;
use aggregates::preferences::{PreferencesCommand, PreferencesPatch, UserPreferences};
use aggregates::task::{NewTask, Task, TaskCommand};
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::persist::SerializedEvent;
use projections::task_list::{TaskList, TaskStats, TaskView};
use projections::{ProjectionRunner, ReadModels};
use store::{AggregateStore, AppendBatch, Journal, Position, Store, meta};
use uuid::Uuid;

/// A store with the task command path and the read models on it.
pub struct Env {
    pub store: Store,
    pub tasks: AggregateStore<Task, Store>,
    pub models: ReadModels,
    /// Minutes after [`base`] of the next command (each command gets its own instant).
    pub clock: AtomicI64,
}

/// An instant of a UTC wall-clock minute.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// The metadata of `user`'s commands.
pub fn user_metadata(user: Uuid) -> HashMap<String, String> {
    HashMap::from([(meta::USER_ID.to_string(), user.to_string())])
}

/// Sets `user`'s preferences (`patch`) at `at` through the preferences aggregate; returns the
/// position of its event.
pub async fn set_preferences(
    preferences: &AggregateStore<UserPreferences, Store>,
    user: Uuid,
    at: DateTime<Utc>,
    patch: PreferencesPatch,
) -> Position {
    let outcome = preferences
        .execute(
            &user.to_string(),
            Issued::new(user, at, PreferencesCommand::Set(patch)),
            &(),
            user_metadata(user),
            None,
        )
        .await
        .expect("preferences set");
    outcome.receipt.position.expect("preferences changed")
}

/// Sets `user`'s clock (time zone and day start) at the start of 2026 (see [`set_preferences`]).
pub async fn set_clock(
    preferences: &AggregateStore<UserPreferences, Store>,
    user: Uuid,
    timezone: &str,
    day_start_hour: u32,
) -> Position {
    let patch = PreferencesPatch {
        timezone: Some(timezone.to_string()),
        day_start_hour: Some(day_start_hour),
        ..PreferencesPatch::default()
    };
    set_preferences(preferences, user, utc(2026, 1, 1, 0, 0), patch).await
}

pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

pub fn new_task(title: &str, due: Option<DateTime<Utc>>, priority: u32) -> NewTask {
    NewTask {
        task_id: Uuid::now_v7(),
        title: title.to_string(),
        due,
        priority,
        ..NewTask::default()
    }
}

pub fn stats(open: u64, completed: u64, created_total: u64, completions_total: u64) -> TaskStats {
    TaskStats {
        open,
        completed,
        created_total,
        completions_total,
    }
}

pub fn ids(views: &[TaskView]) -> Vec<Uuid> {
    views.iter().map(|v| v.task_id).collect()
}

impl Env {
    pub fn new(store: Store) -> Self {
        Self {
            tasks: AggregateStore::new(store.clone()),
            models: ReadModels::new(store.clone()),
            store,
            clock: AtomicI64::new(0),
        }
    }

    /// The instant the next command is issued at.
    pub fn tick(&self) -> DateTime<Utc> {
        base() + chrono::Duration::minutes(self.clock.fetch_add(1, Ordering::SeqCst))
    }

    /// Executes `command` on task `task_id` as `user`; returns the position of its (one) event.
    pub async fn exec(&self, user: Uuid, task_id: Uuid, command: TaskCommand) -> Position {
        let what = format!("{command:?}");
        let metadata = HashMap::from([(meta::USER_ID.to_string(), user.to_string())]);
        let outcome = self
            .tasks
            .execute(
                task_id.to_string().as_str(),
                Issued::new(user, self.tick(), command),
                &(),
                metadata,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what} on task {task_id}: {e:?}"));
        assert!(!outcome.duplicate);
        assert_eq!(
            outcome.receipt.event_ids.len(),
            1,
            "{what} writes one event"
        );
        outcome
            .receipt
            .position
            .expect("a command that wrote an event has a position")
    }

    pub async fn create(&self, user: Uuid, new: NewTask) -> (Uuid, Position) {
        let id = new.task_id;
        (id, self.exec(user, id, TaskCommand::Create(new)).await)
    }

    /// Appends a raw event (bypassing the aggregate) as the first of a new stream.
    pub async fn append_raw(
        &self,
        user: Option<Uuid>,
        aggregate_type: &str,
        event_type: &str,
        payload: serde_json::Value,
    ) -> (String, Position) {
        let aggregate_id = Uuid::now_v7().to_string();
        let metadata = match user {
            Some(u) => serde_json::json!({ meta::USER_ID: u.to_string() }),
            None => serde_json::json!({}),
        };
        let outcome = self
            .store
            .append(AppendBatch {
                aggregate_type: aggregate_type.to_string(),
                aggregate_id: aggregate_id.clone(),
                expected_version: 0,
                events: vec![SerializedEvent {
                    aggregate_id: aggregate_id.clone(),
                    sequence: 1,
                    aggregate_type: aggregate_type.to_string(),
                    event_type: event_type.to_string(),
                    event_version: "1".to_string(),
                    payload,
                    metadata,
                }],
                snapshot: None,
                command: None,
            })
            .await
            .expect("raw append");
        let position = outcome.receipt().position.expect("raw event position");
        (aggregate_id, position)
    }

    pub fn runner(&self) -> ProjectionRunner {
        ProjectionRunner::new(Arc::new(TaskList), self.models.clone())
    }

    pub async fn stats(&self, user: Uuid) -> TaskStats {
        TaskList::stats(&self.models, user).await.expect("stats")
    }
}
