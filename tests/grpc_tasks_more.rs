//! Black-box tests of recurring tasks, projects and tags, and subtasks through the generated
//! gRPC clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Reads wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use common::{Backend, Commands, Queries, TestServer, assert_invalid_field, create, new_task};
use proto::v1::task_recurrence::Rule;
use proto::v1::{
    CommandAck, CompleteTaskRequest, CreateTaskRequest, GetTaskRequest, ListTasksRequest,
    ListTasksResponse, SkipOccurrenceRequest, Task, TaskEvery, TaskIntervalUnit, TaskRecurrence,
    TaskRepeatFrom, UpdateTaskRequest,
};
use tonic::Code;
use uuid::Uuid;

on_both_backends! {
    sqlite_recurring_task_completed_three_times, postgres_recurring_task_completed_three_times
        => recurring_task_completed_three_times;
    sqlite_rrule_byday_and_repeat_from_completion, postgres_rrule_byday_and_repeat_from_completion
        => rrule_byday_and_repeat_from_completion;
    sqlite_skip_occurrence_moves_without_a_completion,
        postgres_skip_occurrence_moves_without_a_completion
        => skip_occurrence_moves_without_a_completion;
    sqlite_count_exhausted_completes_for_good, postgres_count_exhausted_completes_for_good
        => count_exhausted_completes_for_good;
    sqlite_bad_recurrence_and_project_name_the_field,
        postgres_bad_recurrence_and_project_name_the_field
        => bad_recurrence_and_project_name_the_field;
    sqlite_filters_by_project_and_tag_page_exactly,
        postgres_filters_by_project_and_tag_page_exactly
        => filters_by_project_and_tag_page_exactly;
    sqlite_get_task_lists_subtasks, postgres_get_task_lists_subtasks => get_task_lists_subtasks;
    sqlite_open_subtasks_block_completion_without_force,
        postgres_open_subtasks_block_completion_without_force
        => open_subtasks_block_completion_without_force;
    sqlite_recurrence_keeps_local_time_of_the_users_zone,
        postgres_recurrence_keeps_local_time_of_the_users_zone
        => recurrence_keeps_local_time_of_the_users_zone;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn from_ts(t: &prost_types::Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(t.seconds, t.nanos as u32).unwrap()
}

/// 2030-01-`day` at `hour`:00 UTC (2030-01-07 is a Monday).
fn jan_2030(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, day, hour, 0, 0).unwrap()
}

fn every(interval: u32, unit: TaskIntervalUnit, from: TaskRepeatFrom) -> TaskRecurrence {
    TaskRecurrence {
        rule: Some(Rule::Every(TaskEvery {
            interval,
            unit: unit.into(),
        })),
        repeat_from: from.into(),
        // what the server fills in from the user's preferences (the default zone)
        time_zone: "UTC".into(),
    }
}

fn rrule(text: &str, from: TaskRepeatFrom) -> TaskRecurrence {
    TaskRecurrence {
        rule: Some(Rule::Rrule(text.to_string())),
        repeat_from: from.into(),
        // what the server fills in from the user's preferences (the default zone)
        time_zone: "UTC".into(),
    }
}

fn recurring(title: &str, due: DateTime<Utc>, recurrence: TaskRecurrence) -> CreateTaskRequest {
    CreateTaskRequest {
        due: Some(ts(due)),
        recurrence: Some(recurrence),
        ..new_task(title)
    }
}

async fn complete(commands: &mut Commands, task_id: &str) -> CommandAck {
    commands
        .complete_task(CompleteTaskRequest {
            task_id: task_id.to_string(),
            ..Default::default()
        })
        .await
        .expect("CompleteTask")
        .into_inner()
}

async fn skip(commands: &mut Commands, task_id: &str, command_id: &str) -> CommandAck {
    commands
        .skip_occurrence(SkipOccurrenceRequest {
            command_id: command_id.to_string(),
            task_id: task_id.to_string(),
        })
        .await
        .expect("SkipOccurrence")
        .into_inner()
}

async fn get(queries: &mut Queries, task_id: &str, token: &str) -> Task {
    queries
        .get_task(GetTaskRequest {
            task_id: task_id.to_string(),
            consistency_token: token.to_string(),
            ..Default::default()
        })
        .await
        .expect("GetTask")
        .into_inner()
}

async fn list_all(queries: &mut Queries, token: &str) -> ListTasksResponse {
    common::list(queries, token, true).await
}

fn due_of(task: &Task) -> DateTime<Utc> {
    from_ts(task.due.as_ref().expect("a due time"))
}

// ---------------------------------------------------------------------------------------------
// Recurring tasks
// ---------------------------------------------------------------------------------------------

/// Every week from the due date, completed three times: three completions in the stats, still
/// one open task, due three weeks later.
async fn recurring_task_completed_three_times(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let weekly = every(1, TaskIntervalUnit::Weeks, TaskRepeatFrom::DueDate);
    let ack = create(
        &mut commands,
        recurring("Take out the bins", jan_2030(7, 9), weekly.clone()),
    )
    .await;
    let id = ack.aggregate_id.clone();
    let task = get(&mut queries, &id, &ack.consistency_token).await;
    assert_eq!(task.recurrence, Some(weekly.clone()));
    assert_eq!(due_of(&task), jan_2030(7, 9));

    let mut token = String::new();
    for (round, next) in [
        (1, jan_2030(14, 9)),
        (2, jan_2030(21, 9)),
        (3, jan_2030(28, 9)),
    ] {
        let done = complete(&mut commands, &id).await;
        assert_eq!(done.version, round + 1);
        let task = get(&mut queries, &id, &done.consistency_token).await;
        assert_eq!(due_of(&task), next, "due after {round} completions");
        assert!(!task.completed, "a recurring task stays open");
        assert!(task.completed_at.is_none());
        assert_eq!(task.completed_occurrences, round as u32);
        assert!(task.last_completed_at.is_some());
        token = done.consistency_token;
    }
    let page = list_all(&mut queries, &token).await;
    assert_eq!(common::ids(&page), [id.as_str()]);
    assert_eq!(
        (
            page.open_count,
            page.completed_count,
            page.completions_total
        ),
        (1, 0, 3),
        "three completions, one open task"
    );
    assert_eq!(page.created_total, 1);
    assert_eq!(page.tasks[0].recurrence, Some(weekly));
    server.stop().await;
}

/// An RRULE with BYDAY alternates its weekdays; "every 3 days from completion" counts from the
/// day of the completion (the server's clock), at the due time of day.
async fn rrule_byday_and_repeat_from_completion(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);

    let ack = create(
        &mut commands,
        recurring(
            "Gym",
            jan_2030(7, 18),
            rrule(" rrule:freq=weekly;byday=mo,we ", TaskRepeatFrom::DueDate),
        ),
    )
    .await;
    let id = ack.aggregate_id.clone();
    let task = get(&mut queries, &id, &ack.consistency_token).await;
    assert_eq!(
        task.recurrence,
        Some(rrule("FREQ=WEEKLY;BYDAY=MO,WE", TaskRepeatFrom::DueDate)),
        "stored as the parser prints it"
    );
    for next in [jan_2030(9, 18), jan_2030(14, 18), jan_2030(16, 18)] {
        let done = complete(&mut commands, &id).await;
        let task = get(&mut queries, &id, &done.consistency_token).await;
        assert_eq!(due_of(&task), next);
    }

    // from completion: the due date is in 2030, the completion now
    let ack = create(
        &mut commands,
        recurring(
            "Water the cactus",
            jan_2030(7, 6),
            every(3, TaskIntervalUnit::Days, TaskRepeatFrom::CompletionDate),
        ),
    )
    .await;
    let done = complete(&mut commands, &ack.aggregate_id).await;
    let task = get(&mut queries, &ack.aggregate_id, &done.consistency_token).await;
    let completed = from_ts(task.last_completed_at.as_ref().expect("completion time"));
    let expected = completed
        .date_naive()
        .and_time(NaiveTime::from_hms_opt(6, 0, 0).unwrap())
        .and_utc()
        + chrono::Duration::days(3);
    assert_eq!(
        due_of(&task),
        expected,
        "3 days after the completion day, at 06:00"
    );
    assert!(
        due_of(&task) < jan_2030(7, 6),
        "not counted from the 2030 due date"
    );
    server.stop().await;
}

/// SkipOccurrence moves to the next occurrence without a completion; it is idempotent under a
/// command id; a task that does not repeat refuses it.
async fn skip_occurrence_moves_without_a_completion(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let ack = create(
        &mut commands,
        recurring(
            "Standup",
            jan_2030(7, 9),
            every(2, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate),
        ),
    )
    .await;
    let id = ack.aggregate_id.clone();
    let first = skip(&mut commands, &id, "skip-1").await;
    let again = skip(&mut commands, &id, "skip-1").await;
    assert!(!first.duplicate);
    assert!(
        again.duplicate,
        "a repeated command id is answered with the first ack"
    );
    assert_eq!(again.event_ids, first.event_ids);
    assert_eq!(first.version, 2);
    let task = get(&mut queries, &id, &again.consistency_token).await;
    assert_eq!(due_of(&task), jan_2030(9, 9), "skipped once, not twice");
    assert_eq!(
        (task.completed_occurrences, task.skipped_occurrences),
        (0, 1)
    );
    assert!(!task.completed);
    let page = list_all(&mut queries, &again.consistency_token).await;
    assert_eq!(
        (page.open_count, page.completions_total),
        (1, 0),
        "no completion"
    );

    let done = complete(&mut commands, &id).await;
    let task = get(&mut queries, &id, &done.consistency_token).await;
    assert_eq!(due_of(&task), jan_2030(11, 9));
    assert_eq!(
        (task.completed_occurrences, task.skipped_occurrences),
        (1, 1)
    );

    // a plain task has no occurrence to skip
    let plain = create(&mut commands, new_task("once")).await;
    let err = commands
        .skip_occurrence(SkipOccurrenceRequest {
            command_id: String::new(),
            task_id: plain.aggregate_id.clone(),
        })
        .await
        .expect_err("skipping a task that does not repeat");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("does not repeat"), "{err:?}");
    let err = commands
        .skip_occurrence(SkipOccurrenceRequest {
            command_id: String::new(),
            task_id: Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("an unknown task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = commands
        .skip_occurrence(SkipOccurrenceRequest {
            command_id: String::new(),
            task_id: "nope".into(),
        })
        .await
        .expect_err("a malformed id");
    assert_invalid_field(&err, "task_id");
    // another user's recurring task is not found
    let err = server
        .commands(Uuid::now_v7())
        .skip_occurrence(SkipOccurrenceRequest {
            command_id: String::new(),
            task_id: id.clone(),
        })
        .await
        .expect_err("someone else's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    server.stop().await;
}

/// A COUNT rule: the last occurrence completes the task for good; completing again is refused.
async fn count_exhausted_completes_for_good(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let ack = create(
        &mut commands,
        recurring(
            "Antibiotics",
            jan_2030(7, 8),
            rrule("FREQ=DAILY;COUNT=2", TaskRepeatFrom::DueDate),
        ),
    )
    .await;
    let id = ack.aggregate_id.clone();
    let first = complete(&mut commands, &id).await;
    let task = get(&mut queries, &id, &first.consistency_token).await;
    assert!(!task.completed);
    assert_eq!(due_of(&task), jan_2030(8, 8));
    let last = complete(&mut commands, &id).await;
    let task = get(&mut queries, &id, &last.consistency_token).await;
    assert!(task.completed, "COUNT=2 exhausted");
    assert!(task.completed_at.is_some());
    assert_eq!(task.completed_occurrences, 2);
    let err = commands
        .complete_task(CompleteTaskRequest {
            task_id: id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("completing a finished series");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let page = list_all(&mut queries, &last.consistency_token).await;
    assert_eq!(
        (
            page.open_count,
            page.completed_count,
            page.completions_total
        ),
        (0, 1, 2)
    );
    let open = common::list(&mut queries, &last.consistency_token, false).await;
    assert!(open.tasks.is_empty());
    server.stop().await;
}

/// Bad recurrences name `recurrence` (with the RRULE parser's reason), a recurrence without a
/// due time names `due`, bad projects name `project`; nothing is written.
async fn bad_recurrence_and_project_name_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let due = jan_2030(7, 9);
    let cases = [
        (
            "recurrence",
            recurring("r", due, rrule("FREQ=FORTNIGHTLY", TaskRepeatFrom::DueDate)),
            Some("FORTNIGHTLY"),
        ),
        (
            "recurrence",
            recurring(
                "r",
                due,
                rrule("FREQ=WEEKLY;BYDAY=XX", TaskRepeatFrom::DueDate),
            ),
            Some("XX"),
        ),
        (
            "recurrence",
            recurring(
                "r",
                due,
                rrule("FREQ=DAILY;UNTIL=20300110", TaskRepeatFrom::DueDate),
            ),
            Some("UNTIL"),
        ),
        (
            "recurrence",
            recurring(
                "r",
                due,
                every(0, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate),
            ),
            None,
        ),
        (
            "recurrence",
            recurring(
                "r",
                due,
                every(1, TaskIntervalUnit::Unspecified, TaskRepeatFrom::DueDate),
            ),
            None,
        ),
        (
            "recurrence",
            recurring(
                "r",
                due,
                TaskRecurrence {
                    rule: None,
                    ..Default::default()
                },
            ),
            None,
        ),
        (
            "due",
            CreateTaskRequest {
                recurrence: Some(every(1, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate)),
                ..new_task("no due")
            },
            None,
        ),
        (
            "project",
            CreateTaskRequest {
                project: Some("  ".into()),
                ..new_task("blank project")
            },
            None,
        ),
        (
            "project",
            CreateTaskRequest {
                project: Some("p".repeat(101)),
                ..new_task("long project")
            },
            Some("100"),
        ),
    ];
    for (field, request, reason) in cases {
        let err = commands
            .create_task(request)
            .await
            .expect_err("an invalid CreateTask");
        assert_invalid_field(&err, field);
        if let Some(reason) = reason {
            assert!(err.message().contains(reason), "{field}: {err:?}");
        }
    }
    let ack = create(
        &mut commands,
        CreateTaskRequest {
            project: Some("p".repeat(100)),
            ..new_task("the only task")
        },
    )
    .await;
    let page = list_all(&mut queries, &ack.consistency_token).await;
    assert_eq!(
        common::ids(&page),
        [ack.aggregate_id.as_str()],
        "nothing else written"
    );
    assert_eq!(page.tasks[0].project, "p".repeat(100));

    // the same through UpdateTask: nothing is written (the next event is version 2)
    let err = commands
        .update_task(UpdateTaskRequest {
            task_id: ack.aggregate_id.clone(),
            due: Some(ts(due)),
            recurrence: Some(rrule("FREQ=DAILY;BYMONTH=13", TaskRepeatFrom::DueDate)),
            ..Default::default()
        })
        .await
        .expect_err("an invalid recurrence in UpdateTask");
    assert_invalid_field(&err, "recurrence");
    let err = commands
        .update_task(UpdateTaskRequest {
            task_id: ack.aggregate_id.clone(),
            recurrence: Some(every(1, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate)),
            ..Default::default()
        })
        .await
        .expect_err("a recurrence on a task without a due time");
    assert_invalid_field(&err, "due");
    let set = commands
        .update_task(UpdateTaskRequest {
            task_id: ack.aggregate_id.clone(),
            due: Some(ts(due)),
            recurrence: Some(every(1, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate)),
            ..Default::default()
        })
        .await
        .expect("a valid recurrence")
        .into_inner();
    assert_eq!(set.version, 2, "the refused updates wrote nothing");
    let err = commands
        .update_task(UpdateTaskRequest {
            task_id: ack.aggregate_id.clone(),
            clear_due: true,
            ..Default::default()
        })
        .await
        .expect_err("clearing the due time of a recurring task");
    assert_invalid_field(&err, "due");
    let task = get(&mut queries, &ack.aggregate_id, &set.consistency_token).await;
    assert_eq!(
        task.recurrence,
        Some(every(1, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate))
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Projects and tags
// ---------------------------------------------------------------------------------------------

/// ListTasks filtered by project and/or tag, one task per page, walks exactly the matching
/// tasks in list order; the counts stay the user's totals.
async fn filters_by_project_and_tag_page_exactly(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    // (title, day of January 2030, project, tags), created out of list order
    let specs: [(&str, u32, Option<&str>, &[&str]); 7] = [
        ("w3", 13, Some("Work"), &["urgent"]),
        ("h1", 8, Some("Home"), &["urgent"]),
        ("w1", 7, Some("Work"), &[]),
        ("n1", 9, None, &["urgent"]),
        ("w2", 10, Some("Work"), &["urgent", "call"]),
        ("h2", 11, Some("Home"), &[]),
        ("work lower", 12, Some("work"), &["Urgent"]),
    ];
    let mut id_of = std::collections::HashMap::new();
    let mut token = String::new();
    for (title, day, project, tags) in specs {
        let ack = create(
            &mut commands,
            CreateTaskRequest {
                due: Some(ts(jan_2030(day, 9))),
                project: project.map(str::to_string),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..new_task(title)
            },
        )
        .await;
        id_of.insert(ack.aggregate_id.clone(), title);
        token = ack.consistency_token;
    }
    let walk = |project: &str, tag: &str| {
        let mut queries = queries.clone();
        let (project, tag, token) = (project.to_string(), tag.to_string(), token.clone());
        let id_of = id_of.clone();
        async move {
            let mut titles = Vec::new();
            let mut page_token = String::new();
            for _ in 0..20 {
                let page = queries
                    .list_tasks(ListTasksRequest {
                        consistency_token: token.clone(),
                        page_size: 1,
                        page_token: page_token.clone(),
                        project: project.clone(),
                        tag: tag.clone(),
                        ..Default::default()
                    })
                    .await
                    .expect("ListTasks page")
                    .into_inner();
                assert_eq!((page.open_count, page.created_total), (7, 7), "totals");
                assert!(page.tasks.len() <= 1);
                titles.extend(page.tasks.iter().map(|t| id_of[&t.task_id]));
                if page.next_page_token.is_empty() {
                    return titles;
                }
                assert_eq!(page.tasks.len(), 1, "only the last page may be short");
                page_token = page.next_page_token;
            }
            panic!("pagination did not end: {titles:?}");
        }
    };
    assert_eq!(walk("Work", "").await, ["w1", "w2", "w3"]);
    assert_eq!(walk("", "urgent").await, ["h1", "n1", "w2", "w3"]);
    assert_eq!(walk("Work", "urgent").await, ["w2", "w3"]);
    assert_eq!(walk("Home", "call").await, Vec::<&str>::new());
    assert_eq!(
        walk("work", "Urgent").await,
        ["work lower"],
        "exact matches"
    );
    assert_eq!(
        walk("", "").await,
        ["w1", "h1", "n1", "w2", "h2", "work lower", "w3"]
    );
    let page = list_all(&mut queries, &token).await;
    let w2 = page.tasks.iter().find(|t| t.title == "w2").expect("w2");
    assert_eq!(w2.project, "Work");
    assert_eq!(w2.tags, ["urgent", "call"]);
    let n1 = page.tasks.iter().find(|t| t.title == "n1").expect("n1");
    assert_eq!(n1.project, "", "no project");

    // a task moved to another project leaves the old filter and joins the new one
    let w1 = page.tasks.iter().find(|t| t.title == "w1").expect("w1");
    let moved = commands
        .update_task(UpdateTaskRequest {
            task_id: w1.task_id.clone(),
            project: Some("Home".into()),
            ..Default::default()
        })
        .await
        .expect("UpdateTask project")
        .into_inner();
    let cleared = commands
        .update_task(UpdateTaskRequest {
            task_id: w2.task_id.clone(),
            clear_project: true,
            ..Default::default()
        })
        .await
        .expect("UpdateTask clear_project")
        .into_inner();
    assert!(moved.version == 2 && cleared.version == 2);
    let page = queries
        .list_tasks(ListTasksRequest {
            consistency_token: cleared.consistency_token.clone(),
            project: "Home".into(),
            ..Default::default()
        })
        .await
        .expect("ListTasks Home")
        .into_inner();
    let titles: Vec<&str> = page.tasks.iter().map(|t| id_of[&t.task_id]).collect();
    assert_eq!(titles, ["w1", "h1", "h2"]);
    let page = queries
        .list_tasks(ListTasksRequest {
            consistency_token: cleared.consistency_token,
            project: "Work".into(),
            ..Default::default()
        })
        .await
        .expect("ListTasks Work")
        .into_inner();
    let titles: Vec<&str> = page.tasks.iter().map(|t| id_of[&t.task_id]).collect();
    assert_eq!(titles, ["w3"]);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Subtasks
// ---------------------------------------------------------------------------------------------

/// GetTask answers with the task's subtasks (open and completed, in list order); a subtask has
/// none of its own; lists do not fill them.
async fn get_task_lists_subtasks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let parent = create(&mut commands, new_task("Move house")).await;
    let other = create(&mut commands, new_task("Unrelated")).await;
    let sub = |title: &str, day: u32| CreateTaskRequest {
        parent_task_id: parent.aggregate_id.clone(),
        due: Some(ts(jan_2030(day, 9))),
        ..new_task(title)
    };
    let boxes = create(&mut commands, sub("Buy boxes", 8)).await;
    let van = create(&mut commands, sub("Book a van", 7)).await;
    let keys = create(&mut commands, sub("Hand over keys", 20)).await;
    create(
        &mut commands,
        CreateTaskRequest {
            parent_task_id: other.aggregate_id.clone(),
            ..new_task("not a subtask of the move")
        },
    )
    .await;
    let done = complete(&mut commands, &boxes.aggregate_id).await;

    let task = get(&mut queries, &parent.aggregate_id, &done.consistency_token).await;
    let subtasks: Vec<(&str, bool)> = task
        .subtasks
        .iter()
        .map(|t| (t.title.as_str(), t.completed))
        .collect();
    assert_eq!(
        subtasks,
        [
            ("Book a van", false),
            ("Buy boxes", true),
            ("Hand over keys", false)
        ]
    );
    assert_eq!(task.subtasks[0].task_id, van.aggregate_id);
    assert_eq!(task.subtasks[2].task_id, keys.aggregate_id);
    assert!(
        task.subtasks
            .iter()
            .all(|s| s.parent_task_id == parent.aggregate_id)
    );
    let leaf = get(&mut queries, &van.aggregate_id, "").await;
    assert!(leaf.subtasks.is_empty());
    assert_eq!(leaf.parent_task_id, parent.aggregate_id);
    let page = list_all(&mut queries, &done.consistency_token).await;
    assert_eq!(page.tasks.len(), 6);
    assert!(page.tasks.iter().all(|t| t.subtasks.is_empty()));
    // another user sees nothing of it
    let err = server
        .queries(Uuid::now_v7())
        .get_task(GetTaskRequest {
            task_id: parent.aggregate_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("someone else's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    server.stop().await;
}

/// Completing a parent with open subtasks is FAILED_PRECONDITION naming how many are open (even
/// right after the subtasks were created: the check waits for the read model), and succeeds
/// with `force`, which leaves the subtasks open. Without open subtasks no flag is needed.
async fn open_subtasks_block_completion_without_force(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let parent = create(&mut commands, new_task("Tax return")).await;
    let sub = |title: &str| CreateTaskRequest {
        parent_task_id: parent.aggregate_id.clone(),
        ..new_task(title)
    };
    let a = create(&mut commands, sub("Collect receipts")).await;
    let b = create(&mut commands, sub("Fill in the form")).await;

    // no consistency token: the check itself waits for the model to see both subtasks
    let err = commands
        .complete_task(CompleteTaskRequest {
            task_id: parent.aggregate_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("a parent with open subtasks");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("2 open subtasks"), "{err:?}");
    assert!(err.message().contains("force"), "{err:?}");

    complete(&mut commands, &a.aggregate_id).await;
    let err = commands
        .complete_task(CompleteTaskRequest {
            task_id: parent.aggregate_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("one subtask still open");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("1 open subtask"), "{err:?}");

    let forced = commands
        .complete_task(CompleteTaskRequest {
            task_id: parent.aggregate_id.clone(),
            force: true,
            ..Default::default()
        })
        .await
        .expect("force completes the parent")
        .into_inner();
    assert_eq!(forced.version, 2, "the refusals wrote nothing");
    let task = get(
        &mut queries,
        &parent.aggregate_id,
        &forced.consistency_token,
    )
    .await;
    assert!(task.completed);
    let still_open = get(&mut queries, &b.aggregate_id, &forced.consistency_token).await;
    assert!(
        !still_open.completed,
        "force leaves the subtasks as they are"
    );

    // all subtasks done: no flag needed; a malformed token is refused before anything
    let tidy = create(&mut commands, new_task("Tidy up")).await;
    let only = create(
        &mut commands,
        CreateTaskRequest {
            parent_task_id: tidy.aggregate_id.clone(),
            ..new_task("Desk")
        },
    )
    .await;
    let only_done = complete(&mut commands, &only.aggregate_id).await;
    let err = commands
        .complete_task(CompleteTaskRequest {
            task_id: tidy.aggregate_id.clone(),
            consistency_token: "soon".into(),
            ..Default::default()
        })
        .await
        .expect_err("a malformed consistency token");
    assert_invalid_field(&err, "consistency_token");
    let done = commands
        .complete_task(CompleteTaskRequest {
            task_id: tidy.aggregate_id.clone(),
            consistency_token: only_done.consistency_token,
            ..Default::default()
        })
        .await
        .expect("no open subtasks")
        .into_inner();
    let page = list_all(&mut queries, &done.consistency_token).await;
    assert_eq!((page.open_count, page.completed_count), (1, 4));
    server.stop().await;
}

/// Without a zone of its own, a recurrence takes the user's preferences zone and keeps its local
/// wall-clock time across a DST change (09:00 in Paris is 08:00 UTC, then 07:00 UTC).
async fn recurrence_keeps_local_time_of_the_users_zone(backend: Backend) {
    use proto::v1::SetPreferencesRequest;
    use proto::v1::preferences_client::PreferencesClient;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    PreferencesClient::with_interceptor(
        server.channel(),
        common::Bearer::token(&server.token(user)),
    )
    .set_preferences(SetPreferencesRequest {
        timezone: Some("Europe/Paris".into()),
        ..Default::default()
    })
    .await
    .expect("set the time zone");
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let daily = TaskRecurrence {
        time_zone: String::new(), // the user's
        ..every(1, TaskIntervalUnit::Days, TaskRepeatFrom::DueDate)
    };
    let first = Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).unwrap(); // 09:00 CET
    let ack = create(&mut commands, recurring("Water the plants", first, daily)).await;
    let task = get(&mut queries, &ack.aggregate_id, &ack.consistency_token).await;
    assert_eq!(
        task.recurrence.as_ref().map(|r| r.time_zone.as_str()),
        Some("Europe/Paris"),
        "the preferences zone is recorded with the rule"
    );
    let done = complete(&mut commands, &ack.aggregate_id).await;
    let task = get(&mut queries, &ack.aggregate_id, &done.consistency_token).await;
    assert_eq!(
        due_of(&task),
        Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap(),
        "09:00 CEST the next day"
    );
    server.stop().await;
}
