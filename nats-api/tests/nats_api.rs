//! The NATS request/reply API against the real NATS server (127.0.0.1:4222) and the real Tasks
//! services, on SQLite and on PostgreSQL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api_common::Auth;
use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use common::{Backend, Harness, bearer, test_health, test_metrics};
use futures::StreamExt;
use serde_json::{Value, json};
use store::{Journal, Position};
use uuid::Uuid;

/// Runs each scenario (an `async fn(Backend)`) as one test per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_backends!(
    tasks_round_trip_over_nats,
    missing_and_bad_tokens_are_unauthenticated,
    invalid_input_is_refused_and_nothing_is_written,
    another_users_task_is_not_found,
    recurring_task_skipped_over_nats,
);

/// `commands.tasks.skip` (SkipOccurrence) moves a recurring task created over NATS (recurrence
/// in the protobuf JSON mapping) to its next occurrence; a bad RRULE names `recurrence`.
async fn recurring_task_skipped_over_nats(backend: Backend) {
    let Some(h) = Harness::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let create = json!({
        "title": "Stretch",
        "due": "2030-01-07T09:00:00Z",
        "recurrence": {"every": {"interval": 2, "unit": "TASK_INTERVAL_UNIT_DAYS"}},
    });
    let created = h.call("commands.tasks.create", user, &create).await;
    let task_id = created.ok()["aggregateId"].as_str().unwrap().to_string();
    let skipped = h
        .call("commands.tasks.skip", user, &json!({"taskId": task_id}))
        .await;
    assert_eq!(skipped.ok()["version"], "2");
    let got = h
        .call(
            "queries.tasks.get",
            user,
            &json!({"taskId": task_id, "consistencyToken": skipped.ok()["consistencyToken"]}),
        )
        .await;
    let task = got.ok();
    assert_eq!(task["due"], "2030-01-09T09:00:00Z", "{task}");
    assert_eq!(task["skippedOccurrences"], 1, "{task}");
    assert_eq!(task["recurrence"]["every"]["interval"], 2, "{task}");

    let bad = json!({"title": "x", "due": "2030-01-07T09:00:00Z",
        "recurrence": {"rrule": "FREQ=SOMETIMES"}});
    let refused = h.call("commands.tasks.create", user, &bad).await;
    let body = refused.error("INVALID_ARGUMENT", 3);
    assert_eq!(body.field_violations[0].field, "recurrence", "{body:?}");
    h.stop().await;
}

/// The position in a command ack.
fn position(ack: &Value) -> Position {
    ack["consistencyToken"]
        .as_str()
        .expect("consistencyToken")
        .parse()
        .expect("a consistency token is a position")
}

/// The events of `user` in the log, once the log shows everything up to `upto`.
async fn events_of(h: &Harness, user: Uuid, upto: Position) -> Vec<store::LoggedEvent> {
    store::testing::wait_for_head(&h.store, upto).await;
    h.store
        .read_user_after(user, Position::START, None, 1000)
        .await
        .expect("read the user's events")
}

fn task_ids(page: &Value) -> Vec<&str> {
    page["tasks"]
        .as_array()
        .expect("tasks array")
        .iter()
        .map(|t| t["taskId"].as_str().expect("taskId"))
        .collect()
}

async fn tasks_round_trip_over_nats(backend: Backend) {
    let Some(h) = Harness::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();

    // lowerCamelCase names, well-known types, client headers
    let mut headers = bearer(&h.token(user));
    headers.insert("x-correlation-id", "corr-nats-1");
    headers.insert("x-client-platform", "nats-test");
    let create = json!({"title": "Buy milk", "priority": 2, "tags": ["home"],
        "due": "2030-01-02T03:04:05Z", "commandId": "cmd-1"});
    let first = h
        .call_with("commands.tasks.create", headers, &create.to_string())
        .await
        .ok()
        .clone();
    let first_id = first["aggregateId"]
        .as_str()
        .expect("aggregateId")
        .to_string();
    Uuid::parse_str(&first_id).expect("the server chose a UUID");
    assert_eq!(first["version"], "1", "uint64 is a JSON string: {first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["eventIds"].as_array().unwrap().len(), 1);

    // original (snake_case) names
    let second = h
        .call(
            "commands.tasks.create",
            user,
            &json!({"title": "Walk", "command_id": "cmd-2", "parent_task_id": first_id}),
        )
        .await
        .ok()
        .clone();
    let second_id = second["aggregateId"].as_str().unwrap().to_string();

    // read your writes: the list waits for the token of the last command
    let page = h
        .list(user, second["consistencyToken"].as_str().unwrap())
        .await;
    let mut ids = task_ids(&page);
    ids.sort();
    let mut expected = vec![first_id.as_str(), second_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected, "{page}");
    assert_eq!(page["openCount"], "2");
    assert_eq!(page["completedCount"], "0");
    let milk = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == first_id.as_str())
        .unwrap();
    assert_eq!(milk["title"], "Buy milk");
    assert_eq!(milk["priority"], 2);
    assert_eq!(milk["tags"], json!(["home"]));
    assert_eq!(milk["due"], "2030-01-02T03:04:05Z");

    let got = h
        .call(
            "queries.tasks.get",
            user,
            &json!({"task_id": second_id, "consistency_token": second["consistencyToken"]}),
        )
        .await;
    assert_eq!(got.ok()["parentTaskId"], first_id.as_str());

    // the same command id again: the first ack, nothing new
    let again = h
        .call("commands.tasks.create", user, &create)
        .await
        .ok()
        .clone();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["aggregateId"], first_id.as_str());

    // every other command route
    let update = h
        .call(
            "commands.tasks.update",
            user,
            &json!({"taskId": first_id, "title": "Buy oat milk", "tags": {"values": []}}),
        )
        .await;
    assert_eq!(update.ok()["version"], "2");
    // `first` has an open subtask (`second`): completing it needs `force`
    let refused = h
        .call(
            "commands.tasks.complete",
            user,
            &json!({"taskId": first_id}),
        )
        .await;
    refused.error("FAILED_PRECONDITION", 9);
    let complete = h
        .call(
            "commands.tasks.complete",
            user,
            &json!({"taskId": first_id, "force": true}),
        )
        .await;
    let page = h
        .call(
            "queries.tasks.list",
            user,
            &json!({"consistencyToken": complete.ok()["consistencyToken"],
                "includeCompleted": true}),
        )
        .await;
    let done = page.ok()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["taskId"] == first_id.as_str())
        .cloned()
        .expect("completed task listed");
    assert_eq!(done["completed"], true);
    assert_eq!(done["title"], "Buy oat milk");
    assert_eq!(done["tags"], json!([]));
    h.call("commands.tasks.reopen", user, &json!({"taskId": first_id}))
        .await
        .ok();
    let deleted = h
        .call("commands.tasks.delete", user, &json!({"taskId": second_id}))
        .await
        .ok()
        .clone();
    let page = h
        .list(user, deleted["consistencyToken"].as_str().unwrap())
        .await;
    assert_eq!(task_ids(&page), [first_id.as_str()], "{page}");

    // the client headers went into the events' metadata, as over gRPC
    let events = events_of(&h, user, position(&deleted)).await;
    let created = events
        .iter()
        .find(|e| e.aggregate_id == first_id && e.sequence == 1)
        .expect("creation event");
    assert_eq!(created.metadata["correlation_id"], "corr-nats-1");
    assert_eq!(created.metadata["platform"], "nats-test");
    assert_eq!(created.metadata["command_id"], "cmd-1");
    assert_eq!(created.metadata["user_id"], user.to_string());
    h.stop().await;
}

async fn missing_and_bad_tokens_are_unauthenticated(backend: Backend) {
    let Some(h) = Harness::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let foreign =
        Auth::new(b"some other service's secret, 32+ bytes").issue(user, Duration::from_secs(60));
    let expired = {
        // a token that expired long before the 5 s leeway
        h.auth.issue(user, Duration::ZERO)
    };
    let mut cases: Vec<(&str, HeaderMap)> = vec![
        ("no header", HeaderMap::new()),
        ("garbage token", bearer("not-a-jwt")),
        ("foreign secret", bearer(&foreign)),
    ];
    let mut basic = HeaderMap::new();
    basic.insert("Authorization", "Basic dXNlcjpwYXNz");
    cases.push(("basic auth", basic));
    let body = json!({"title": "never written"}).to_string();
    for (case, headers) in cases {
        for relative in ["commands.tasks.create", "queries.tasks.list"] {
            let reply = h.call_with(relative, headers.clone(), &body).await;
            let error = reply.error("UNAUTHENTICATED", 16);
            assert!(error.field_violations.is_empty(), "{case}: {error:?}");
        }
    }
    // an expired token is refused too (once past the verifier's leeway)
    tokio::time::sleep(Duration::from_secs(6)).await;
    h.call_with("commands.tasks.create", bearer(&expired), &body)
        .await
        .error("UNAUTHENTICATED", 16);

    assert_eq!(
        h.store.head().await.unwrap(),
        Position::START,
        "nothing was written"
    );
    h.stop().await;
}

async fn invalid_input_is_refused_and_nothing_is_written(backend: Backend) {
    let Some(h) = Harness::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();

    let reply = h
        .call("commands.tasks.create", user, &json!({"title": "   "}))
        .await;
    let error = reply.error("INVALID_ARGUMENT", 3);
    let fields: Vec<&str> = error
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["title"], "{error:?}");
    assert!(!error.field_violations[0].description.is_empty());

    let reply = h
        .call(
            "commands.tasks.complete",
            user,
            &json!({"taskId": "not-a-uuid"}),
        )
        .await;
    assert_eq!(
        reply.error("INVALID_ARGUMENT", 3).field_violations[0].field,
        "task_id"
    );

    // malformed JSON, unknown fields, wrong types: INVALID_ARGUMENT naming the JSON problem
    for body in [
        "{\"title\": ",
        "not json",
        "[\"title\"]",
        "{\"titel\": \"typo\"}",
        "{\"title\": \"x\", \"priority\": \"high\"}",
        "{\"title\": \"x\", \"due\": \"tomorrow\"}",
        "{\"title\": \"x\"} trailing",
    ] {
        let reply = h
            .call_with("commands.tasks.create", bearer(&h.token(user)), body)
            .await;
        let error = reply.error("INVALID_ARGUMENT", 3);
        assert!(
            error.message.contains("JSON lifeos.v1.CreateTaskRequest"),
            "{body}: {error:?}"
        );
    }

    // only the valid command that follows is in the log
    let ack = h.create(user, "valid").await;
    let events = events_of(&h, user, position(&ack)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].aggregate_id, ack["aggregateId"].as_str().unwrap());
    h.stop().await;
}

async fn another_users_task_is_not_found(backend: Backend) {
    let Some(h) = Harness::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let ack = h.create(alice, "Alice's").await;
    let task_id = ack["aggregateId"].as_str().unwrap();
    let token = ack["consistencyToken"].as_str().unwrap();

    let get = h
        .call(
            "queries.tasks.get",
            bob,
            &json!({"taskId": task_id, "consistencyToken": token}),
        )
        .await;
    get.error("NOT_FOUND", 5);
    for action in ["complete", "delete"] {
        h.call(
            &format!("commands.tasks.{action}"),
            bob,
            &json!({"taskId": task_id}),
        )
        .await
        .error("NOT_FOUND", 5);
    }
    assert_eq!(task_ids(&h.list(bob, token).await), Vec::<&str>::new());
    let alices = h.list(alice, token).await;
    assert_eq!(task_ids(&alices), [task_id]);
    assert_eq!(alices["tasks"][0]["completed"], false);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_discovery_answers() {
    let Some(mut h) = Harness::start(Backend::Sqlite).await else {
        return;
    };
    let name = &h.config.service_name;
    let id = h.api().id().to_string();

    let ping = request_json(&h, &format!("$SRV.PING.{name}")).await;
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
    assert_eq!(ping["name"], name.as_str());
    assert_eq!(ping["id"], id.as_str());
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));

    let info = request_json(&h, &format!("$SRV.INFO.{name}.{id}")).await;
    assert_eq!(info["type"], "io.nats.micro.v1.info_response");
    let endpoints = info["endpoints"].as_array().expect("endpoints");
    let subjects: BTreeSet<&str> = endpoints
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = [
        "commands.tasks.create",
        "commands.tasks.update",
        "commands.tasks.complete",
        "commands.tasks.reopen",
        "commands.tasks.delete",
        "commands.tasks.skip",
        "queries.tasks.get",
        "queries.tasks.list",
        "queries.tasks.daily",
        "system.health",
        "system.metrics",
    ]
    .iter()
    .map(|s| h.subject(s))
    .collect();
    assert_eq!(
        subjects,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        h.api().subjects().iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    let create = endpoints
        .iter()
        .find(|e| e["name"] == "commands-tasks-create")
        .expect("create endpoint");
    assert_eq!(create["queue_group"], "lifeos");
    assert_eq!(
        create["metadata"]["method"],
        "lifeos.v1.TaskCommands/CreateTask"
    );
    assert_eq!(create["metadata"]["request"], "lifeos.v1.CreateTaskRequest");
    assert_eq!(create["metadata"]["response"], "lifeos.v1.CommandAck");

    // each route's Rust types are the messages its gRPC method names in the descriptors
    for route in h.routes() {
        let endpoint = endpoints
            .iter()
            .find(|e| e["subject"] == h.subject(route.subject()))
            .expect("route served");
        assert_eq!(endpoint["metadata"]["method"], route.method());
        let (request, response) = route.rust_types();
        for (rust, proto) in [(request, "request"), (response, "response")] {
            let proto = endpoint["metadata"][proto].as_str().unwrap();
            assert_eq!(
                rust.rsplit("::").next(),
                proto.rsplit('.').next(),
                "{} maps {rust} to {proto}",
                route.subject()
            );
        }
    }

    // STATS carries our per-endpoint counters (error replies included)
    let user = Uuid::now_v7();
    h.create(user, "counted").await;
    h.call("commands.tasks.create", user, &json!({"title": ""}))
        .await
        .error("INVALID_ARGUMENT", 3);
    let stats = request_json(&h, &format!("$SRV.STATS.{name}.{id}")).await;
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    let create = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "commands-tasks-create")
        .expect("create stats");
    assert_eq!(create["num_requests"], 2);
    assert_eq!(create["data"], json!({"requests": 2, "errors": 1}));

    // stopped: out of discovery, and nobody answers its subjects
    let api = h.api.take().expect("API running");
    api.stop().await.expect("stops cleanly");
    let err = h
        .client
        .request(h.subject("system.health"), "".into())
        .await
        .expect_err("nobody answers a stopped API");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders);
    let err = h
        .client
        .request(format!("$SRV.PING.{name}.{id}"), "".into())
        .await
        .expect_err("a stopped API leaves discovery");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders);
    h.stop().await;
}

async fn request_json(h: &Harness, subject: &str) -> Value {
    let reply = h
        .client
        .request(subject.to_string(), "".into())
        .await
        .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&reply.payload).expect("JSON reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_health_and_metrics() {
    let Some(h) = Harness::start(Backend::Sqlite).await else {
        return;
    };
    // no token needed
    let health = h.call_with("system.health", HeaderMap::new(), "").await;
    assert_eq!(health.ok(), &test_health());

    let metrics = h.call_with("system.metrics", HeaderMap::new(), "").await;
    let before = metrics.ok().clone();
    for (key, value) in test_metrics().as_object().unwrap() {
        assert_eq!(&before[key], value, "provider's {key} in {before}");
    }
    let counters = &before["nats_api"];
    assert_eq!(counters["endpoints"]["system.health"]["requests"], 1);
    assert_eq!(
        counters["endpoints"]["commands.tasks.create"]["requests"],
        0
    );
    assert_eq!(counters["requests"], 1, "{counters}");

    let user = Uuid::now_v7();
    h.create(user, "one").await;
    h.create(user, "two").await;
    h.call_with("commands.tasks.create", HeaderMap::new(), "{}")
        .await
        .error("UNAUTHENTICATED", 16);
    h.call_with("queries.tasks.list", bearer(&h.token(user)), "{")
        .await
        .error("INVALID_ARGUMENT", 3);

    let after = h.call_with("system.metrics", HeaderMap::new(), "").await;
    let counters = &after.ok()["nats_api"];
    assert_eq!(
        counters["endpoints"]["commands.tasks.create"],
        json!({"requests": 3, "errors": 1})
    );
    assert_eq!(
        counters["endpoints"]["queries.tasks.list"],
        json!({"requests": 1, "errors": 1})
    );
    assert_eq!(counters["endpoints"]["system.metrics"]["requests"], 1);
    assert_eq!(counters["requests"], 6, "{counters}");
    assert_eq!(counters["errors"], 2, "{counters}");
    assert_eq!(
        h.api().counters()["requests"],
        7,
        "this metrics call counted"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_in_one_queue_group_share_requests() {
    let Some(mut h) = Harness::start(Backend::Sqlite).await else {
        return;
    };
    let second = h.start_instance().await;
    let user = Uuid::now_v7();
    let ack = h.create(user, "shared").await;
    let token = ack["consistencyToken"].as_str().unwrap().to_string();

    // every request to its own inbox subject: count the replies each one gets
    const N: usize = 40;
    let inbox = h.client.new_inbox();
    let mut replies = h
        .client
        .subscribe(format!("{inbox}.>"))
        .await
        .expect("subscribe to the inbox");
    let body = json!({"consistencyToken": token}).to_string();
    for i in 0..N {
        h.client
            .publish_with_reply_and_headers(
                h.subject("queries.tasks.list"),
                format!("{inbox}.{i}"),
                bearer(&h.token(user)),
                body.clone().into(),
            )
            .await
            .expect("publish a request");
    }
    let mut answered: BTreeMap<usize, usize> = BTreeMap::new();
    let mut record = |message: async_nats::Message| {
        let i: usize = message.subject.rsplit('.').next().unwrap().parse().unwrap();
        let page: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(page["openCount"], "1", "{page}");
        *answered.entry(i).or_default() += 1;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for _ in 0..N {
        let message = tokio::time::timeout_at(deadline, replies.next())
            .await
            .expect("every request answered within 20 s")
            .expect("inbox subscription open");
        record(message);
    }
    // a moment more, to catch any duplicate answer
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), replies.next()).await
    {
        record(message);
    }
    assert_eq!(answered.len(), N, "every request answered: {answered:?}");
    assert!(
        answered.values().all(|&n| n == 1),
        "each request answered exactly once: {answered:?}"
    );

    let served = |counters: Value| {
        counters["endpoints"]["queries.tasks.list"]["requests"]
            .as_u64()
            .unwrap()
    };
    let (a, b) = (served(h.api().counters()), served(second.counters()));
    assert_eq!(a + b, N as u64, "the instances answered {a} + {b}");
    assert!(a > 0 && b > 0, "both instances took a share: {a} + {b}");

    // one instance stopped: the other answers everything
    let first = h.api.take().unwrap();
    first.stop().await.expect("first instance stops");
    for _ in 0..5 {
        assert_eq!(h.list(user, &token).await["openCount"], "1");
    }
    assert_eq!(served(second.counters()), b + 5);
    h.api = Some(second);
    h.stop().await;
}

#[test]
fn default_configuration_is_lifeos() {
    let config = nats_api::Config::default();
    assert_eq!(config.prefix, nats_api::DEFAULT_PREFIX);
    assert_eq!(config.prefix, "lifeos");
    assert_eq!(config.service_name, "lifeos");
    assert_eq!(config.queue_group, "lifeos");
}
