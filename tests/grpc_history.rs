//! `lifeos.v1.History` (ReplayUserEvents), `as_of` on the task queries, and `lifeos.v1.Admin`
//! (ProjectionStatus, RebuildProjection), through the real server and the generated clients.
//! Every case runs on both backends: `sqlite_<case>` and `postgres_<case>` (the latter returns
//! early when PostgreSQL is unreachable outside CI).

#[macro_use]
mod common;

use std::time::Duration;

use api_common::time::to_timestamp;
use chrono::{DateTime, Utc};
use common::{
    Backend, Bearer, Queries, TestServer, assert_invalid_field, create, ids, list, new_task,
};
use proto::v1::admin_client::AdminClient;
use proto::v1::history_client::HistoryClient;
use proto::v1::{
    CommandAck, CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest, GetTaskRequest,
    HistoryEvent, ListTasksRequest, ListTasksResponse, ProjectionInfo, ProjectionStatusRequest,
    RebuildProjectionRequest, ReplayUserEventsRequest, UpdateTaskRequest,
};
use store::Position;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// The longest a test polls the status for a change.
const WAIT: Duration = Duration::from_secs(30);

on_both_backends! {
    sqlite_replay_streams_own_events_in_order, postgres_replay_streams_own_events_in_order
        => replay_streams_own_events_in_order;
    sqlite_other_users_history_needs_analyst, postgres_other_users_history_needs_analyst
        => other_users_history_needs_analyst;
    sqlite_history_filters, postgres_history_filters => history_filters;
    sqlite_as_of_queries_answer_the_past, postgres_as_of_queries_answer_the_past
        => as_of_queries_answer_the_past;
    sqlite_projection_status_needs_admin, postgres_projection_status_needs_admin
        => projection_status_needs_admin;
    sqlite_rebuild_projection_switches_and_keeps_tasks,
        postgres_rebuild_projection_switches_and_keeps_tasks
        => rebuild_projection_switches_and_keeps_tasks;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type History = HistoryClient<InterceptedService<Channel, Bearer>>;
type Admin = AdminClient<InterceptedService<Channel, Bearer>>;

/// A token for `user` with `roles`.
fn token_with(server: &TestServer, user: Uuid, roles: &[&str]) -> String {
    server.auth().issue_with_roles(
        user,
        Duration::from_secs(3600),
        roles.iter().map(|r| r.to_string()).collect(),
    )
}

fn history(server: &TestServer, token: &str) -> History {
    HistoryClient::with_interceptor(server.channel(), Bearer::token(token))
}

fn admin(server: &TestServer, token: &str) -> Admin {
    AdminClient::with_interceptor(server.channel(), Bearer::token(token))
}

/// The whole ReplayUserEvents stream of `request`, or the status it failed with.
async fn replay(
    client: &mut History,
    request: ReplayUserEventsRequest,
) -> Result<Vec<HistoryEvent>, tonic::Status> {
    let mut stream = client.replay_user_events(request).await?.into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await? {
        events.push(event);
    }
    Ok(events)
}

fn event_ids(events: &[HistoryEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_id.as_str()).collect()
}

fn ack_event(ack: &CommandAck) -> &str {
    assert_eq!(ack.event_ids.len(), 1, "{ack:?}");
    ack.event_ids[0].as_str()
}

fn position(text: &str) -> Position {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a position: {e}"))
}

/// Waits (through the read-your-writes wait) until the read model includes `ack`: its events
/// are then readable in the log on either backend.
async fn settle(queries: &mut Queries, ack: &CommandAck) -> ListTasksResponse {
    list(queries, &ack.consistency_token, true).await
}

fn complete(task_id: &str) -> CompleteTaskRequest {
    CompleteTaskRequest {
        command_id: String::new(),
        task_id: task_id.to_string(),
        ..Default::default()
    }
}

fn rename(task_id: &str, title: &str) -> UpdateTaskRequest {
    UpdateTaskRequest {
        task_id: task_id.to_string(),
        title: Some(title.to_string()),
        ..Default::default()
    }
}

fn delete(task_id: &str) -> DeleteTaskRequest {
    DeleteTaskRequest {
        command_id: String::new(),
        task_id: task_id.to_string(),
    }
}

fn get_as_of(task_id: &str, token: &str, as_of: DateTime<Utc>) -> GetTaskRequest {
    GetTaskRequest {
        task_id: task_id.to_string(),
        consistency_token: token.to_string(),
        as_of: Some(to_timestamp(as_of)),
    }
}

fn list_as_of(token: &str, include_completed: bool, as_of: DateTime<Utc>) -> ListTasksRequest {
    ListTasksRequest {
        consistency_token: token.to_string(),
        include_completed,
        as_of: Some(to_timestamp(as_of)),
        ..Default::default()
    }
}

/// task_list's entry of a ProjectionStatus answer.
async fn task_list_status(admin: &mut Admin) -> ProjectionInfo {
    let answer = admin
        .projection_status(ProjectionStatusRequest::default())
        .await
        .expect("ProjectionStatus as admin")
        .into_inner();
    answer
        .projections
        .into_iter()
        .find(|p| p.name == "task_list")
        .expect("task_list is reported")
}

/// Polls ProjectionStatus (bounded) until task_list's entry satisfies `done`.
async fn task_list_status_until(
    admin: &mut Admin,
    what: &str,
    done: impl Fn(&ProjectionInfo) -> bool,
) -> ProjectionInfo {
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    let mut last = None;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            poll.tick().await;
            let info = task_list_status(admin).await;
            if done(&info) {
                return info;
            }
            last = Some(info);
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("task_list not {what} within {WAIT:?}; last {last:?}"))
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// The caller's own events, in log order, with types, payloads and metadata; nobody else's.
async fn replay_streams_own_events_in_order(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut commands = server.commands(alice);
    let a = create(
        &mut commands,
        CreateTaskRequest {
            title: "a".into(),
            tags: vec!["x".into()],
            priority: 2,
            ..Default::default()
        },
    )
    .await;
    let x = create(&mut server.commands(bob), new_task("bob's x")).await;
    let b = create(&mut commands, new_task("b")).await;
    let a_done = commands
        .complete_task(complete(&a.aggregate_id))
        .await
        .expect("CompleteTask")
        .into_inner();
    let b_renamed = commands
        .update_task(rename(&b.aggregate_id, "b2"))
        .await
        .expect("UpdateTask")
        .into_inner();
    settle(&mut server.queries(alice), &b_renamed).await;
    settle(&mut server.queries(bob), &x).await;

    let mut client = history(&server, &server.token(alice));
    let events = replay(&mut client, ReplayUserEventsRequest::default())
        .await
        .expect("ReplayUserEvents of one's own history");
    let acks = [&a, &b, &a_done, &b_renamed];
    assert_eq!(
        event_ids(&events),
        acks.iter().map(|ack| ack_event(ack)).collect::<Vec<_>>(),
        "alice's events, in order, and only hers"
    );
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["TaskCreated", "TaskCreated", "TaskCompleted", "TaskUpdated"]
    );
    let aggregates: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(
        aggregates,
        [
            a.aggregate_id.as_str(),
            b.aggregate_id.as_str(),
            a.aggregate_id.as_str(),
            b.aggregate_id.as_str()
        ]
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 1, 2, 2]);
    for (event, ack) in events.iter().zip(acks) {
        assert_eq!(event.aggregate_type, "task");
        assert_eq!(event.pillar, "tasks");
        assert_eq!(event.event_version, "1");
        assert_eq!(
            position(&event.position),
            position(&ack.consistency_token),
            "the event sits where its ack said"
        );
        let metadata: serde_json::Value =
            serde_json::from_str(&event.metadata_json).expect("metadata is JSON");
        assert_eq!(metadata["user_id"], alice.to_string(), "{metadata}");
        assert!(event.recorded_at.is_some());
    }
    for pair in events.windows(2) {
        assert!(position(&pair[0].position) < position(&pair[1].position));
        let (t0, t1) = (
            pair[0].recorded_at.as_ref().unwrap(),
            pair[1].recorded_at.as_ref().unwrap(),
        );
        assert!((t0.seconds, t0.nanos) <= (t1.seconds, t1.nanos));
    }
    let created: serde_json::Value =
        serde_json::from_str(&events[0].payload_json).expect("payload is JSON");
    let created = &created["TaskCreated"];
    assert_eq!(created["title"], "a", "{created}");
    assert_eq!(created["priority"], 2);
    assert_eq!(created["tags"], serde_json::json!(["x"]));
    assert_eq!(created["task_id"], a.aggregate_id.as_str());
    assert_eq!(created["user_id"], alice.to_string());
    let updated: serde_json::Value = serde_json::from_str(&events[3].payload_json).unwrap();
    assert_eq!(updated["TaskUpdated"]["title"], "b2", "{updated}");
    let completed: serde_json::Value = serde_json::from_str(&events[2].payload_json).unwrap();
    assert!(completed["TaskCompleted"]["completed_at"].is_string());

    // naming oneself explicitly is the same
    let explicit = replay(
        &mut client,
        ReplayUserEventsRequest {
            user_id: alice.to_string(),
            ..Default::default()
        },
    )
    .await
    .expect("own history by id");
    assert_eq!(explicit, events);

    // and bob sees only his one event
    let bobs = replay(
        &mut history(&server, &server.token(bob)),
        ReplayUserEventsRequest::default(),
    )
    .await
    .expect("bob's history");
    assert_eq!(event_ids(&bobs), [ack_event(&x)]);
    server.stop().await;
}

/// Another user's history: PERMISSION_DENIED for a normal (or admin-only) token, allowed with
/// the analyst role.
async fn other_users_history_needs_analyst(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut bob_commands = server.commands(bob);
    let x = create(&mut bob_commands, new_task("bob's x")).await;
    let x_done = bob_commands
        .complete_task(complete(&x.aggregate_id))
        .await
        .expect("CompleteTask")
        .into_inner();
    let own = create(&mut server.commands(alice), new_task("alice's")).await;
    settle(&mut server.queries(bob), &x_done).await;
    settle(&mut server.queries(alice), &own).await;
    let bobs = ReplayUserEventsRequest {
        user_id: bob.to_string(),
        ..Default::default()
    };

    for (who, token) in [
        ("a normal token", server.token(alice)),
        ("an admin token", token_with(&server, alice, &["admin"])),
    ] {
        let denied = replay(&mut history(&server, &token), bobs.clone())
            .await
            .expect_err("another user's history is not for a normal user");
        assert_eq!(denied.code(), Code::PermissionDenied, "{who}: {denied:?}");
    }
    let anonymous = HistoryClient::with_interceptor(server.channel(), Bearer::none())
        .replay_user_events(bobs.clone())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let analyst = token_with(&server, alice, &["analyst"]);
    let mut client = history(&server, &analyst);
    let events = replay(&mut client, bobs.clone())
        .await
        .expect("an analyst reads anyone's history");
    assert_eq!(
        event_ids(&events),
        [ack_event(&x), ack_event(&x_done)],
        "bob's events, and only his"
    );
    assert!(events.iter().all(|e| e.aggregate_id == x.aggregate_id));
    // the analyst's own history is still the default
    let mine = replay(&mut client, ReplayUserEventsRequest::default())
        .await
        .expect("own history");
    assert_eq!(event_ids(&mine), [ack_event(&own)]);

    let bad = replay(
        &mut client,
        ReplayUserEventsRequest {
            user_id: "not-a-uuid".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("a bad user id");
    assert_invalid_field(&bad, "user_id");
    server.stop().await;
}

/// `since`, `until`, `pillars` and `after_position` narrow the stream.
async fn history_filters(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = Uuid::now_v7();
    let mut commands = server.commands(alice);
    let e1 = create(&mut commands, new_task("a")).await;
    let e2 = create(&mut commands, new_task("b")).await;
    let t1 = Utc::now();
    let e3 = commands
        .complete_task(complete(&e1.aggregate_id))
        .await
        .expect("complete")
        .into_inner();
    let e4 = commands
        .update_task(rename(&e1.aggregate_id, "a2"))
        .await
        .expect("update")
        .into_inner();
    let t2 = Utc::now();
    let e5 = commands
        .delete_task(delete(&e2.aggregate_id))
        .await
        .expect("delete")
        .into_inner();
    settle(&mut server.queries(alice), &e5).await;
    let all: Vec<&str> = [&e1, &e2, &e3, &e4, &e5]
        .iter()
        .map(|ack| ack_event(ack))
        .collect();

    let mut client = history(&server, &server.token(alice));
    let cases: Vec<(&str, ReplayUserEventsRequest, Vec<&str>)> = vec![
        ("no filter", ReplayUserEventsRequest::default(), all.clone()),
        (
            "since t1",
            ReplayUserEventsRequest {
                since: Some(to_timestamp(t1)),
                ..Default::default()
            },
            all[2..].to_vec(),
        ),
        (
            "until t1",
            ReplayUserEventsRequest {
                until: Some(to_timestamp(t1)),
                ..Default::default()
            },
            all[..2].to_vec(),
        ),
        (
            "since t1 until t2",
            ReplayUserEventsRequest {
                since: Some(to_timestamp(t1)),
                until: Some(to_timestamp(t2)),
                ..Default::default()
            },
            all[2..4].to_vec(),
        ),
        (
            "pillar tasks",
            ReplayUserEventsRequest {
                pillars: vec!["tasks".into()],
                ..Default::default()
            },
            all.clone(),
        ),
        (
            "pillar focus",
            ReplayUserEventsRequest {
                pillars: vec!["focus".into()],
                ..Default::default()
            },
            vec![],
        ),
        (
            "pillars focus and tasks",
            ReplayUserEventsRequest {
                pillars: vec!["focus".into(), "tasks".into()],
                ..Default::default()
            },
            all.clone(),
        ),
        (
            "after e2",
            ReplayUserEventsRequest {
                after_position: e2.consistency_token.clone(),
                ..Default::default()
            },
            all[2..].to_vec(),
        ),
        (
            "after e2 until t2",
            ReplayUserEventsRequest {
                after_position: e2.consistency_token.clone(),
                until: Some(to_timestamp(t2)),
                ..Default::default()
            },
            all[2..4].to_vec(),
        ),
        (
            "after the last",
            ReplayUserEventsRequest {
                after_position: e5.consistency_token.clone(),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (name, request, expected) in cases {
        let events = replay(&mut client, request)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(event_ids(&events), expected, "{name}");
    }
    let bad = replay(
        &mut client,
        ReplayUserEventsRequest {
            after_position: "yesterday".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("a bad position");
    assert_invalid_field(&bad, "after_position");
    server.stop().await;
}

/// GetTask and ListTasks with `as_of` answer the caller's state at that time; the live model
/// answers the present.
async fn as_of_queries_answer_the_past(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut commands = server.commands(alice);
    let mut queries = server.queries(alice);
    let a = create(
        &mut commands,
        CreateTaskRequest {
            title: "a".into(),
            priority: 1,
            ..Default::default()
        },
    )
    .await;
    let b = create(&mut commands, new_task("b")).await;
    commands
        .complete_task(complete(&b.aggregate_id))
        .await
        .expect("complete b");
    let t = Utc::now();
    commands
        .complete_task(complete(&a.aggregate_id))
        .await
        .expect("complete a");
    commands
        .update_task(rename(&a.aggregate_id, "a later"))
        .await
        .expect("rename a");
    let c = create(&mut commands, new_task("c")).await;
    let last = commands
        .delete_task(delete(&b.aggregate_id))
        .await
        .expect("delete b")
        .into_inner();
    let token = last.consistency_token.as_str();

    // now
    let live = list(&mut queries, token, true).await;
    assert_eq!(
        ids(&live),
        [a.aggregate_id.as_str(), c.aggregate_id.as_str()]
    );
    assert_eq!((live.open_count, live.completed_count), (1, 1));

    // as of t
    let past = queries
        .list_tasks(list_as_of(token, true, t))
        .await
        .expect("ListTasks as of t")
        .into_inner();
    assert_eq!(
        ids(&past),
        [a.aggregate_id.as_str(), b.aggregate_id.as_str()],
        "a (priority 1) before b; c did not exist"
    );
    assert_eq!((past.open_count, past.completed_count), (1, 1));
    assert_eq!(past.tasks[0].title, "a");
    assert!(!past.tasks[0].completed, "a was completed after t");
    assert!(past.tasks[1].completed, "b was completed before t");
    let open_then = queries
        .list_tasks(list_as_of(token, false, t))
        .await
        .expect("open tasks as of t")
        .into_inner();
    assert_eq!(ids(&open_then), [a.aggregate_id.as_str()]);

    // pages of one, as of t
    let first = queries
        .list_tasks(ListTasksRequest {
            page_size: 1,
            ..list_as_of(token, true, t)
        })
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(ids(&first), [a.aggregate_id.as_str()]);
    assert!(!first.next_page_token.is_empty());
    let second = queries
        .list_tasks(ListTasksRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..list_as_of(token, true, t)
        })
        .await
        .expect("second page")
        .into_inner();
    assert_eq!(ids(&second), [b.aggregate_id.as_str()]);
    assert!(second.next_page_token.is_empty());

    let a_then = queries
        .get_task(get_as_of(&a.aggregate_id, token, t))
        .await
        .expect("a as of t")
        .into_inner();
    assert_eq!(a_then.title, "a");
    assert!(!a_then.completed);
    let b_then = queries
        .get_task(get_as_of(&b.aggregate_id, token, t))
        .await
        .expect("b existed at t")
        .into_inner();
    assert!(b_then.completed);
    let c_then = queries
        .get_task(get_as_of(&c.aggregate_id, token, t))
        .await
        .expect_err("c did not exist at t");
    assert_eq!(c_then.code(), Code::NotFound);
    let b_now = queries
        .get_task(GetTaskRequest {
            task_id: b.aggregate_id.clone(),
            consistency_token: token.to_string(),
            as_of: None,
        })
        .await
        .expect_err("b is deleted now");
    assert_eq!(b_now.code(), Code::NotFound);
    let a_now = queries
        .get_task(get_as_of(&a.aggregate_id, token, Utc::now()))
        .await
        .expect("a as of now")
        .into_inner();
    assert_eq!(a_now.title, "a later");
    assert!(a_now.completed);

    // before anything happened: nothing
    let before = Utc::now() - chrono::Duration::days(1);
    let empty = queries
        .list_tasks(list_as_of(token, true, before))
        .await
        .expect("as of yesterday")
        .into_inner();
    assert!(empty.tasks.is_empty(), "{empty:?}");
    assert_eq!((empty.open_count, empty.completed_count), (0, 0));

    // the as-of replay is the caller's: bob sees none of alice's tasks
    let mut bob_queries = server.queries(bob);
    let bobs = bob_queries
        .list_tasks(list_as_of("", true, Utc::now()))
        .await
        .expect("bob as of now")
        .into_inner();
    assert!(bobs.tasks.is_empty(), "{bobs:?}");
    let foreign = bob_queries
        .get_task(get_as_of(&a.aggregate_id, "", Utc::now()))
        .await
        .expect_err("not bob's");
    assert_eq!(foreign.code(), Code::NotFound);

    // and the live model is as it was
    assert_eq!(list(&mut queries, token, true).await, live);
    server.stop().await;
}

/// ProjectionStatus needs the admin role and reports task_list caught up.
async fn projection_status_needs_admin(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = Uuid::now_v7();
    let mut commands = server.commands(alice);
    create(&mut commands, new_task("a")).await;
    let last = create(&mut commands, new_task("b")).await;
    settle(&mut server.queries(alice), &last).await;

    for (who, token) in [
        ("a normal token", server.token(alice)),
        ("an analyst token", token_with(&server, alice, &["analyst"])),
    ] {
        let denied = admin(&server, &token)
            .projection_status(ProjectionStatusRequest::default())
            .await
            .expect_err("status needs the admin role");
        assert_eq!(denied.code(), Code::PermissionDenied, "{who}: {denied:?}");
    }
    let anonymous = AdminClient::with_interceptor(server.channel(), Bearer::none())
        .projection_status(ProjectionStatusRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let mut admin = admin(&server, &token_with(&server, alice, &["admin"]));
    let info = task_list_status(&mut admin).await;
    assert_eq!(info.version, 1);
    assert_eq!(info.active_model, "task_list@1");
    assert_eq!(info.state, "live");
    assert_eq!(info.lag_events, 0, "{info:?}");
    assert_eq!(info.lag_seconds, 0.0, "{info:?}");
    assert_eq!(
        position(&info.checkpoint),
        position(&last.consistency_token)
    );
    assert_eq!(info.head, info.checkpoint);
    assert!(info.error_json.is_empty(), "{info:?}");
    assert!(info.updated_at.is_some(), "a runner has reported");

    let one = admin
        .projection_status(ProjectionStatusRequest {
            name: "task_list".into(),
        })
        .await
        .expect("one projection")
        .into_inner();
    assert_eq!(one.projections.len(), 1);
    assert_eq!(one.projections[0].name, "task_list");
    let unknown = admin
        .projection_status(ProjectionStatusRequest {
            name: "nosuch".into(),
        })
        .await
        .expect_err("unknown projection");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    server.stop().await;
}

/// RebuildProjection: the status eventually shows a new active model, and the tasks answered
/// are the same; an unknown name is NOT_FOUND; a non-admin is refused.
async fn rebuild_projection_switches_and_keeps_tasks(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = Uuid::now_v7();
    let mut commands = server.commands(alice);
    let mut queries = server.queries(alice);
    let mut last = None;
    for i in 0..12 {
        let ack = create(&mut commands, new_task(&format!("task {i}"))).await;
        if i % 3 == 0 {
            commands
                .complete_task(complete(&ack.aggregate_id))
                .await
                .expect("complete");
        }
        last = Some(ack);
    }
    let before = settle(&mut queries, &last.unwrap()).await;
    assert_eq!(before.tasks.len(), 12);
    assert_eq!((before.open_count, before.completed_count), (8, 4));

    let denied = self::admin(&server, &server.token(alice))
        .rebuild_projection(RebuildProjectionRequest {
            name: "task_list".into(),
        })
        .await
        .expect_err("rebuild needs the admin role");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut admin = self::admin(&server, &token_with(&server, alice, &["admin"]));
    let unknown = admin
        .rebuild_projection(RebuildProjectionRequest {
            name: "nosuch".into(),
        })
        .await
        .expect_err("unknown projection");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(
        unknown.message().contains("task_list"),
        "names the known ones"
    );
    assert_eq!(
        task_list_status(&mut admin).await.active_model,
        "task_list@1"
    );

    let answer = admin
        .rebuild_projection(RebuildProjectionRequest {
            name: "task_list".into(),
        })
        .await
        .expect("RebuildProjection as admin")
        .into_inner();
    assert_eq!(
        answer.active_model, "task_list@1",
        "the model live when asked"
    );
    let switched = task_list_status_until(&mut admin, "switched", |i| {
        i.active_model != "task_list@1" && i.state == "live"
    })
    .await;
    assert!(
        switched.active_model.starts_with("task_list@1#"),
        "{switched:?}"
    );
    assert_eq!(list(&mut queries, "", true).await, before, "the same tasks");
    let caught_up = task_list_status_until(&mut admin, "caught up", |i| i.lag_events == 0).await;
    assert_eq!(caught_up.active_model, switched.active_model);

    // the new generation keeps following the log
    let more = create(&mut commands, new_task("after the rebuild")).await;
    let after = settle(&mut queries, &more).await;
    assert_eq!(after.tasks.len(), 13);
    assert!(ids(&after).contains(&more.aggregate_id.as_str()));
    assert_eq!(
        task_list_status(&mut admin).await.active_model,
        switched.active_model
    );
    server.stop().await;
}
