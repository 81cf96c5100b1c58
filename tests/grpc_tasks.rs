//! Black-box tests of the Tasks API through the generated gRPC clients, against the real server
//! started in process. Every case runs on both backends: `sqlite_<case>` and `postgres_<case>`
//! (the latter returns early when PostgreSQL is unreachable outside CI).

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Backend, Bearer, TestServer, assert_invalid_field, create, ids, list, new_task};
use proto::v1::{
    CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest, GetTaskRequest, ListTasksRequest,
    UpdateTaskRequest,
};
use tonic::Code;
use uuid::Uuid;

on_both_backends! {
    sqlite_create_complete_list_and_restart, postgres_create_complete_list_and_restart
        => create_complete_list_and_restart;
    sqlite_bad_tokens_are_unauthenticated, postgres_bad_tokens_are_unauthenticated
        => bad_tokens_are_unauthenticated;
    sqlite_other_users_task_is_not_found, postgres_other_users_task_is_not_found
        => other_users_task_is_not_found;
    sqlite_invalid_requests_name_the_field, postgres_invalid_requests_name_the_field
        => invalid_requests_name_the_field;
    sqlite_repeated_command_id_returns_first_ack, postgres_repeated_command_id_returns_first_ack
        => repeated_command_id_returns_first_ack;
    sqlite_lifecycle_rules_are_failed_precondition,
        postgres_lifecycle_rules_are_failed_precondition
        => lifecycle_rules_are_failed_precondition;
    sqlite_pages_cover_every_task_once_in_order, postgres_pages_cover_every_task_once_in_order
        => pages_cover_every_task_once_in_order;
    sqlite_unreachable_consistency_token_is_unavailable,
        postgres_unreachable_consistency_token_is_unavailable
        => unreachable_consistency_token_is_unavailable;
    sqlite_concurrent_retries_of_one_command_get_one_ack,
        postgres_concurrent_retries_of_one_command_get_one_ack
        => concurrent_retries_of_one_command_get_one_ack;
    sqlite_health_reports_serving, postgres_health_reports_serving => health_reports_serving;
    sqlite_reflection_lists_services, postgres_reflection_lists_services
        => reflection_lists_services;
}

fn complete(task_id: &str, command_id: &str) -> CompleteTaskRequest {
    CompleteTaskRequest {
        command_id: command_id.to_string(),
        task_id: task_id.to_string(),
        ..Default::default()
    }
}

fn get(task_id: &str, consistency_token: &str) -> GetTaskRequest {
    GetTaskRequest {
        task_id: task_id.to_string(),
        consistency_token: consistency_token.to_string(),
        ..Default::default()
    }
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

async fn create_complete_list_and_restart(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);

    let created = create(
        &mut commands,
        CreateTaskRequest {
            title: "  Buy milk  ".into(),
            description: "two litres".into(),
            due: Some(timestamp(1_900_000_000)),
            priority: 3,
            tags: vec!["home".into(), "shopping".into(), "home".into()],
            ..Default::default()
        },
    )
    .await;
    let task_id = created.aggregate_id.clone();
    Uuid::parse_str(&task_id).expect("the server assigns a UUID");
    assert_eq!(created.version, 1);
    assert_eq!(created.event_ids.len(), 1);
    assert!(!created.duplicate);
    assert!(!created.consistency_token.is_empty());

    // read-your-writes: the task is listed at once with the ack's token
    let open = list(&mut queries, &created.consistency_token, false).await;
    assert_eq!(ids(&open), [task_id.as_str()]);
    let task = &open.tasks[0];
    assert_eq!(task.title, "Buy milk", "the title is trimmed");
    assert_eq!(task.description, "two litres");
    assert_eq!(task.priority, 3);
    assert_eq!(
        task.tags,
        ["home", "shopping"],
        "duplicate tags are dropped"
    );
    assert_eq!(task.due, Some(timestamp(1_900_000_000)));
    assert!(!task.completed);
    assert!(task.completed_at.is_none());
    assert_eq!((open.open_count, open.completed_count), (1, 0));

    let completed = commands
        .complete_task(complete(&task_id, ""))
        .await
        .expect("CompleteTask")
        .into_inner();
    assert_eq!(completed.aggregate_id, task_id);
    assert_eq!(completed.version, 2);
    assert_eq!(completed.event_ids.len(), 1);
    assert_ne!(completed.event_ids, created.event_ids);

    let all = list(&mut queries, &completed.consistency_token, true).await;
    assert_eq!(ids(&all), [task_id.as_str()]);
    assert!(all.tasks[0].completed);
    assert!(all.tasks[0].completed_at.is_some());
    assert_eq!((all.open_count, all.completed_count), (0, 1));
    let open = list(&mut queries, &completed.consistency_token, false).await;
    assert!(
        open.tasks.is_empty(),
        "completed tasks are hidden: {open:?}"
    );
    assert_eq!((open.open_count, open.completed_count), (0, 1));

    server.restart().await;
    let mut queries = server.queries(user);
    // a token from before the restart is still honoured
    let task = queries
        .get_task(get(&task_id, &completed.consistency_token))
        .await
        .expect("GetTask after restart")
        .into_inner();
    assert_eq!(task.task_id, task_id);
    assert_eq!(task.title, "Buy milk");
    assert!(task.completed);
    let all = list(&mut queries, "", true).await;
    assert_eq!(ids(&all), [task_id.as_str()]);
    assert_eq!((all.open_count, all.completed_count), (0, 1));

    // and the restarted server still writes: the stream continues at version 3
    let reopened = server
        .commands(user)
        .reopen_task(proto::v1::ReopenTaskRequest {
            command_id: String::new(),
            task_id: task_id.clone(),
        })
        .await
        .expect("ReopenTask after restart")
        .into_inner();
    assert_eq!(reopened.version, 3);
    let open = list(&mut queries, &reopened.consistency_token, false).await;
    assert_eq!(ids(&open), [task_id.as_str()]);
    assert_eq!((open.open_count, open.completed_count), (1, 0));
    server.stop().await;
}

async fn bad_tokens_are_unauthenticated(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let now = chrono::Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": user.to_string(), "iat": now - 7200, "exp": now - 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(server.secret().as_bytes()),
    )
    .expect("sign the expired token");
    let foreign = api_common::Auth::new(b"some other secret, also 32 bytes long!")
        .issue(user, Duration::from_secs(3600));

    let cases = [
        ("no header", Bearer::none(), None),
        ("garbage token", Bearer::token("garbage"), None),
        (
            "not a bearer header",
            Bearer::header("Basic dXNlcjpwYXNz"),
            None,
        ),
        ("expired token", Bearer::token(&expired), Some("expired")),
        ("token of another secret", Bearer::token(&foreign), None),
    ];
    for (what, bearer, message) in cases {
        let err = server
            .commands_with(bearer.clone())
            .create_task(new_task("should not be written"))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        if let Some(m) = message {
            assert!(err.message().contains(m), "{what}: {err:?}");
        }
        let err = server
            .queries_with(bearer)
            .list_tasks(ListTasksRequest::default())
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        if let Some(m) = message {
            assert!(err.message().contains(m), "{what}: {err:?}");
        }
    }

    // the same user with a valid token: works, and nothing was written by the refused calls
    let mut commands = server.commands(user);
    let ack = create(&mut commands, new_task("the only task")).await;
    let page = list(&mut server.queries(user), &ack.consistency_token, true).await;
    assert_eq!(ids(&page), [ack.aggregate_id.as_str()]);
    server.stop().await;
}

async fn other_users_task_is_not_found(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut alice_commands = server.commands(alice);
    let mut alice_queries = server.queries(alice);
    let ack = create(
        &mut alice_commands,
        CreateTaskRequest {
            title: "Alice's task".into(),
            priority: 1,
            ..Default::default()
        },
    )
    .await;
    let task_id = ack.aggregate_id.clone();
    let before = alice_queries
        .get_task(get(&task_id, &ack.consistency_token))
        .await
        .expect("Alice sees her task")
        .into_inner();

    let mut bob_commands = server.commands(bob);
    let mut bob_queries = server.queries(bob);
    let err = bob_queries
        .get_task(get(&task_id, &ack.consistency_token))
        .await
        .expect_err("GetTask of another user's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = bob_commands
        .complete_task(complete(&task_id, "bob-complete"))
        .await
        .expect_err("CompleteTask of another user's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = bob_commands
        .update_task(UpdateTaskRequest {
            task_id: task_id.clone(),
            title: Some("hijacked".into()),
            priority: Some(4),
            ..Default::default()
        })
        .await
        .expect_err("UpdateTask of another user's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = bob_commands
        .delete_task(DeleteTaskRequest {
            command_id: String::new(),
            task_id: task_id.clone(),
        })
        .await
        .expect_err("DeleteTask of another user's task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let bobs = list(&mut bob_queries, &ack.consistency_token, true).await;
    assert!(bobs.tasks.is_empty(), "Bob lists {bobs:?}");
    assert_eq!((bobs.open_count, bobs.completed_count), (0, 0));

    // Alice's task is unchanged, and Bob's attempts appended nothing to its stream
    let after = alice_queries
        .get_task(get(&task_id, &ack.consistency_token))
        .await
        .expect("Alice still sees her task")
        .into_inner();
    assert_eq!(after, before);
    assert_eq!(after.title, "Alice's task");
    assert!(!after.completed);
    let completed = alice_commands
        .complete_task(complete(&task_id, "bob-complete"))
        .await
        .expect("Alice completes her task (command ids are per user)")
        .into_inner();
    assert!(!completed.duplicate);
    assert_eq!(completed.version, 2, "no event was written for Bob");
    let alices = list(&mut alice_queries, &completed.consistency_token, true).await;
    assert_eq!(ids(&alices), [task_id.as_str()]);
    assert_eq!((alices.open_count, alices.completed_count), (0, 1));
    server.stop().await;
}

async fn invalid_requests_name_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);

    let rejected_commands = [
        ("title", new_task("")),
        ("title", new_task("   ")),
        ("title", new_task(&"x".repeat(10_000))),
        (
            "priority",
            CreateTaskRequest {
                priority: 9,
                ..new_task("priority nine")
            },
        ),
        (
            "task_id",
            CreateTaskRequest {
                task_id: "not-a-uuid".into(),
                ..new_task("bad id")
            },
        ),
    ];
    for (field, request) in rejected_commands {
        let err = commands
            .create_task(request)
            .await
            .expect_err("an invalid CreateTask");
        assert_invalid_field(&err, field);
        let page = list(&mut queries, "", true).await;
        assert!(page.tasks.is_empty(), "nothing written after a bad {field}");
        assert_eq!((page.open_count, page.completed_count), (0, 0));
    }
    let err = commands
        .complete_task(complete("not-a-uuid", ""))
        .await
        .expect_err("CompleteTask with a bad id");
    assert_invalid_field(&err, "task_id");
    let err = commands
        .update_task(UpdateTaskRequest {
            task_id: "not-a-uuid".into(),
            title: Some("x".into()),
            ..Default::default()
        })
        .await
        .expect_err("UpdateTask with a bad id");
    assert_invalid_field(&err, "task_id");
    let err = queries
        .get_task(get("not-a-uuid", ""))
        .await
        .expect_err("GetTask with a bad id");
    assert_invalid_field(&err, "task_id");
    let err = queries
        .list_tasks(ListTasksRequest {
            consistency_token: "yesterday".into(),
            ..Default::default()
        })
        .await
        .expect_err("a malformed consistency token");
    assert_invalid_field(&err, "consistency_token");
    let err = queries
        .list_tasks(ListTasksRequest {
            page_token: "definitely not a cursor".into(),
            ..Default::default()
        })
        .await
        .expect_err("a malformed page token");
    assert_invalid_field(&err, "page_token");

    // a valid command now: reading at its token shows it alone, so none of the refused ones
    // reached the log before it
    let ack = create(&mut commands, new_task("valid")).await;
    let page = list(&mut queries, &ack.consistency_token, true).await;
    assert_eq!(ids(&page), [ack.aggregate_id.as_str()]);
    // an invalid update of an existing task writes nothing either
    let err = commands
        .update_task(UpdateTaskRequest {
            task_id: ack.aggregate_id.clone(),
            title: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect_err("an empty new title");
    assert_invalid_field(&err, "title");
    let done = commands
        .complete_task(complete(&ack.aggregate_id, ""))
        .await
        .expect("CompleteTask")
        .into_inner();
    assert_eq!(done.version, 2, "the refused update wrote no event");
    server.stop().await;
}

async fn repeated_command_id_returns_first_ack(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let request = CreateTaskRequest {
        command_id: "create-once".into(),
        ..new_task("only once")
    };
    let first = create(&mut commands, request.clone()).await;
    let second = create(&mut commands, request).await;
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.aggregate_id, first.aggregate_id);
    assert_eq!(second.version, first.version);
    assert_eq!(second.event_ids, first.event_ids);
    assert_eq!(second.consistency_token, first.consistency_token);
    assert!(!first.event_ids.is_empty());
    let page = list(&mut queries, &second.consistency_token, true).await;
    assert_eq!(ids(&page), [first.aggregate_id.as_str()]);
    assert_eq!(page.open_count, 1);

    let first_done = commands
        .complete_task(complete(&first.aggregate_id, "complete-once"))
        .await
        .expect("CompleteTask")
        .into_inner();
    let second_done = commands
        .complete_task(complete(&first.aggregate_id, "complete-once"))
        .await
        .expect("a repeated CompleteTask is answered, not refused")
        .into_inner();
    assert!(!first_done.duplicate);
    assert!(second_done.duplicate);
    assert_eq!(
        (
            &second_done.aggregate_id,
            second_done.version,
            &second_done.event_ids,
            &second_done.consistency_token
        ),
        (
            &first_done.aggregate_id,
            first_done.version,
            &first_done.event_ids,
            &first_done.consistency_token
        )
    );
    assert_eq!(first_done.version, 2);
    let page = list(&mut queries, &second_done.consistency_token, true).await;
    assert_eq!(ids(&page), [first.aggregate_id.as_str()]);
    assert_eq!((page.open_count, page.completed_count), (0, 1));

    // command ids are per user: another user's "create-once" is a command of its own
    let other = Uuid::now_v7();
    let theirs = create(
        &mut server.commands(other),
        CreateTaskRequest {
            command_id: "create-once".into(),
            ..new_task("someone else's")
        },
    )
    .await;
    assert!(!theirs.duplicate);
    assert_ne!(theirs.aggregate_id, first.aggregate_id);
    let page = list(&mut server.queries(other), &theirs.consistency_token, true).await;
    assert_eq!(ids(&page), [theirs.aggregate_id.as_str()]);
    let page = list(&mut queries, &theirs.consistency_token, true).await;
    assert_eq!(
        ids(&page),
        [first.aggregate_id.as_str()],
        "still exactly one task"
    );
    server.stop().await;
}

/// A client retrying a command (same command_id) while the first attempt is still in flight must
/// get the first ack, not the error the state left by the first attempt would cause
/// (ALREADY_EXISTS / "already completed").
async fn concurrent_retries_of_one_command_get_one_ack(backend: Backend) {
    const RETRIES: usize = 12;
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let task_id = Uuid::now_v7().to_string();
    let create_request = CreateTaskRequest {
        command_id: "create-race".into(),
        task_id: task_id.clone(),
        ..new_task("raced")
    };
    let creates = (0..RETRIES).map(|_| {
        let mut commands = server.commands(user);
        let request = create_request.clone();
        tokio::spawn(async move { commands.create_task(request).await })
    });
    let creates: Vec<_> = futures::future::join_all(creates).await;
    let creates: Vec<_> = creates
        .into_iter()
        .map(|r| r.expect("task").map(|a| a.into_inner()))
        .collect();
    assert_one_ack(&creates, "CreateTask");

    let completes = (0..RETRIES).map(|_| {
        let mut commands = server.commands(user);
        let request = complete(&task_id, "complete-race");
        tokio::spawn(async move { commands.complete_task(request).await })
    });
    let completes: Vec<_> = futures::future::join_all(completes).await;
    let completes: Vec<_> = completes
        .into_iter()
        .map(|r| r.expect("task").map(|a| a.into_inner()))
        .collect();
    let done = assert_one_ack(&completes, "CompleteTask");
    assert_eq!(done.version, 2);

    let page = list(&mut server.queries(user), &done.consistency_token, true).await;
    assert_eq!(ids(&page), [task_id.as_str()]);
    assert_eq!((page.open_count, page.completed_count), (0, 1));
    server.stop().await;
}

/// Every answer is the same ack, exactly one of them not marked duplicate.
fn assert_one_ack(
    answers: &[Result<proto::v1::CommandAck, tonic::Status>],
    what: &str,
) -> proto::v1::CommandAck {
    let acks: Vec<_> = answers
        .iter()
        .map(|a| {
            a.as_ref()
                .unwrap_or_else(|e| panic!("a retried {what} failed: {e:?}; all: {answers:?}"))
        })
        .collect();
    let first = acks
        .iter()
        .find(|a| !a.duplicate)
        .unwrap_or_else(|| panic!("no first {what}: {acks:?}"));
    assert_eq!(
        acks.iter().filter(|a| !a.duplicate).count(),
        1,
        "{what} executed once: {acks:?}"
    );
    for ack in &acks {
        assert_eq!(
            (
                &ack.aggregate_id,
                ack.version,
                &ack.event_ids,
                &ack.consistency_token
            ),
            (
                &first.aggregate_id,
                first.version,
                &first.event_ids,
                &first.consistency_token
            ),
            "{what}"
        );
    }
    (*first).clone()
}

async fn lifecycle_rules_are_failed_precondition(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);

    let task = create(&mut commands, new_task("complete me twice")).await;
    commands
        .complete_task(complete(&task.aggregate_id, "first"))
        .await
        .expect("first completion");
    let err = commands
        .complete_task(complete(&task.aggregate_id, "second"))
        .await
        .expect_err("completing a completed task");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("already completed"), "{err:?}");

    // the aggregate's `live` check: a deleted task refuses completion (FAILED_PRECONDITION),
    // while it disappears from queries (NOT_FOUND)
    let doomed = create(&mut commands, new_task("delete me")).await;
    let deleted = commands
        .delete_task(DeleteTaskRequest {
            command_id: String::new(),
            task_id: doomed.aggregate_id.clone(),
        })
        .await
        .expect("DeleteTask")
        .into_inner();
    assert_eq!(deleted.version, 2);
    let err = commands
        .complete_task(complete(&doomed.aggregate_id, ""))
        .await
        .expect_err("completing a deleted task");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("deleted"), "{err:?}");
    let err = commands
        .delete_task(DeleteTaskRequest {
            command_id: String::new(),
            task_id: doomed.aggregate_id.clone(),
        })
        .await
        .expect_err("deleting a deleted task");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = queries
        .get_task(get(&doomed.aggregate_id, &deleted.consistency_token))
        .await
        .expect_err("GetTask of a deleted task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // a task that never existed
    let err = commands
        .complete_task(complete(&Uuid::now_v7().to_string(), ""))
        .await
        .expect_err("completing an unknown task");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // creating an existing id
    let err = commands
        .create_task(CreateTaskRequest {
            task_id: task.aggregate_id.clone(),
            ..new_task("again")
        })
        .await
        .expect_err("creating an existing task");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

    let page = list(&mut queries, &deleted.consistency_token, true).await;
    assert_eq!(ids(&page), [task.aggregate_id.as_str()]);
    assert_eq!((page.open_count, page.completed_count), (0, 1));
    server.stop().await;
}

async fn pages_cover_every_task_once_in_order(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);
    let mut queries = server.queries(user);
    let day = 1_900_000_000;
    // (title, due, priority), created in an order unlike the expected one
    let specs = [
        ("no due, low", None, 1),
        ("day 2", Some(day + 86_400), 2),
        ("day 1, none", Some(day), 0),
        ("no due, high", None, 3),
        ("day 1, urgent", Some(day), 4),
    ];
    let mut token = String::new();
    let mut id_of = std::collections::HashMap::new();
    for (title, due, priority) in specs {
        let ack = create(
            &mut commands,
            CreateTaskRequest {
                due: due.map(timestamp),
                priority,
                ..new_task(title)
            },
        )
        .await;
        id_of.insert(ack.aggregate_id.clone(), title);
        token = ack.consistency_token;
    }

    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = queries
            .list_tasks(ListTasksRequest {
                consistency_token: token.clone(),
                page_size: 2,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListTasks page")
            .into_inner();
        assert_eq!(page.open_count, 5);
        page_token = page.next_page_token.clone();
        pages.push(common::owned_ids(&page));
        if page_token.is_empty() || pages.len() > 5 {
            break;
        }
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1], "pages: {pages:?}");
    let all: Vec<String> = pages.concat();
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        5,
        "every task exactly once: {all:?}"
    );
    let titles: Vec<&str> = all.iter().map(|id| id_of[id]).collect();
    assert_eq!(
        titles,
        [
            "day 1, urgent",
            "day 1, none",
            "day 2",
            "no due, high",
            "no due, low"
        ]
    );
    server.stop().await;
}

async fn unreachable_consistency_token_is_unavailable(backend: Backend) {
    let wait = Duration::from_millis(300);
    let Some(server) = TestServer::start_with(backend, |c| c.consistency_wait = wait).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut queries = server.queries(user);
    // (real tokens are reached: the read-your-writes cases, with the default wait; 300 ms is
    // too short a bound for that on a PostgreSQL cluster whose other databases are busy, since
    // the log reader waits for every older transaction of the cluster)
    let ack = create(&mut server.commands(user), new_task("here")).await;

    // a position beyond anything written: SQLite positions have tx 0, PostgreSQL ones an xid8
    let beyond = match backend {
        Backend::Sqlite => "0.999999999".to_string(),
        Backend::Postgres => format!("{}.1", i64::MAX),
    };
    let started = Instant::now();
    let err = queries
        .list_tasks(ListTasksRequest {
            consistency_token: beyond.clone(),
            ..Default::default()
        })
        .await
        .expect_err("a token the read model never reaches");
    let waited = started.elapsed();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(waited >= wait, "answered after {waited:?}, before the wait");
    assert!(
        err.message().contains("within 300 ms"),
        "the configured wait (not the default 5 s) is the one applied: {}",
        err.message()
    );
    let err = queries
        .get_task(get(&ack.aggregate_id, &beyond))
        .await
        .expect_err("GetTask with a token the read model never reaches");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    server.stop().await;
}

async fn health_reports_serving(backend: Backend) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let mut health = HealthClient::new(server.channel());
    for service in ["", "lifeos.v1.TaskCommands", "lifeos.v1.TaskQueries"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .unwrap_or_else(|e| panic!("Health/Check {service:?}: {e:?}"))
            .into_inner();
        assert_eq!(
            answer.status(),
            ServingStatus::Serving,
            "status of {service:?}"
        );
    }
    let err = health
        .check(HealthCheckRequest {
            service: "lifeos.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    server.stop().await;
}

async fn reflection_lists_services(backend: Backend) {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let mut reflection = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("ServerReflectionInfo")
        .into_inner();
    let answer: ServerReflectionResponse = answers
        .message()
        .await
        .expect("a reflection answer")
        .expect("one answer per request");
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a list of services: {answer:?}");
    };
    let names: HashSet<String> = listed.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "lifeos.v1.TaskCommands",
        "lifeos.v1.TaskQueries",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    server.stop().await;
}
