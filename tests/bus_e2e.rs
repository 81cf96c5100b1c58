//! The event bus end to end, through the `lifeos` server itself (issue 4): commands over gRPC (and
//! over NATS request/reply), events out on NATS JetStream as CloudEvents exactly once, across a
//! restart, with the roles split over two processes, with NATS down at start; the in-process bus
//! of the embedded default; gRPC `EventStream/Subscribe`; and the `lifeos serve` binary.
//!
//! NATS JetStream is `LIFEOS_TEST_NATS_URL` (default `nats://127.0.0.1:4222`): when unreachable
//! the NATS tests print a "skipping" line and return, except with `CI=true`, where they fail.
//! Every test runs under a NATS prefix of its own (`t<uuid>`: subjects `t<uuid>.events.>`,
//! stream `T<UUID>_EVENTS`), so parallel tests never see each other, and deletes its stream at
//! the end. The test of NATS being down at start runs a `nats-server` of its own
//! (`NATS_SERVER_BIN`, default `/usr/sbin/nats-server`, else the PATH).
//!
//! Waits are on the relay's status, the consumer, or the streams, always bounded.

#[macro_use]
mod common;

use bus::testing::{NatsServer, free_port, nats_server_binary};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::async_nats;
use bus::async_nats::HeaderMap;
use bus::async_nats::jetstream;
use bus::async_nats::jetstream::consumer::{DeliverPolicy, pull};
use bus::cloudevent::CONTENT_TYPE;
use bus::{CloudEvent, RelayState, RelayStatus};
use cloudevents::AttributesReader;
use cloudevents::event::{ExtensionValue, SpecVersion};
use common::{Backend, Bearer, Commands, TestServer, create, list, new_task};
use futures::StreamExt;
use lifeos::ServerConfig;
use proto::v1::event_stream_client::EventStreamClient;
use proto::v1::task_commands_client::TaskCommandsClient;
use proto::v1::{
    CommandAck, CompleteTaskRequest, HistoryEvent, SubscribeRequest, UpdateTaskRequest,
};
use serde_json::{Value, json};
use store::Position;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// The longest any test waits for one thing.
const WAIT: Duration = Duration::from_secs(60);

on_both_backends! {
    sqlite_every_grpc_event_arrives_once_as_a_cloudevent,
        postgres_every_grpc_event_arrives_once_as_a_cloudevent
        => every_grpc_event_arrives_once_as_a_cloudevent;
    sqlite_a_restart_mid_stream_loses_and_repeats_nothing,
        postgres_a_restart_mid_stream_loses_and_repeats_nothing
        => a_restart_mid_stream_loses_and_repeats_nothing;
    sqlite_nats_request_reply_reaches_the_same_handlers,
        postgres_nats_request_reply_reaches_the_same_handlers
        => nats_request_reply_reaches_the_same_handlers;
    sqlite_nats_down_at_start_then_every_event_arrives,
        postgres_nats_down_at_start_then_every_event_arrives
        => nats_down_at_start_then_every_event_arrives;
    sqlite_embedded_bus_carries_the_envelope, postgres_embedded_bus_carries_the_envelope
        => embedded_bus_carries_the_envelope;
    sqlite_event_stream_subscribe_is_live_and_per_user,
        postgres_event_stream_subscribe_is_live_and_per_user
        => event_stream_subscribe_is_live_and_per_user;
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says why a test cannot run: fails in CI, prints a skipping line elsewhere.
fn unavailable(what: &str) {
    if in_ci() {
        panic!("{what} (required in CI)");
    }
    eprintln!("skipping: {what}");
}

/// The shared NATS server's URL.
fn nats_url() -> String {
    std::env::var("LIFEOS_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string())
}

/// A connection to the shared NATS server with JetStream; `None` (after saying so) when it is
/// unreachable outside CI.
async fn shared_nats() -> Option<async_nats::Client> {
    let url = nats_url();
    let error = match connect(&url).await {
        Ok(client) => match jetstream_info(&client).await {
            Ok(()) => return Some(client),
            Err(why) => why,
        },
        Err(why) => why,
    };
    unavailable(&format!(
        "NATS JetStream not reachable at {url} ({error}); set LIFEOS_TEST_NATS_URL"
    ));
    None
}

/// Connects to `url`, bounded.
async fn connect(url: &str) -> Result<async_nats::Client, String> {
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(20)))
        .connect(url);
    match timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer within 10 s".to_string()),
    }
}

/// Asks for the JetStream account info: `Err` when JetStream does not answer or refuses.
async fn jetstream_info(client: &async_nats::Client) -> Result<(), String> {
    let request = client.request("$JS.API.INFO", Vec::new().into());
    let reply = match timeout(Duration::from_secs(10), request).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => return Err(format!("JetStream is not enabled ({err})")),
        Err(_) => return Err("JetStream did not answer within 10 s".into()),
    };
    let info: Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("JetStream info: {e}"))?;
    match info.get("error") {
        None => Ok(()),
        Some(error) => Err(format!("JetStream is not available: {error}")),
    }
}

/// A NATS prefix no other test uses: `t<uuid>`.
fn unique_prefix() -> String {
    format!("t{}", Uuid::now_v7().simple())
}

/// The server configuration of a test on NATS at `url` under `prefix`.
fn on_nats(url: String, prefix: &str) -> impl FnOnce(&mut ServerConfig) {
    let prefix = prefix.to_string();
    move |config: &mut ServerConfig| {
        config.nats_url = Some(url);
        config.nats_prefix = prefix;
        config.events_max_age = Duration::from_secs(600);
    }
}

/// What a test reads of one deployment's events on NATS: the stream `<PREFIX>_EVENTS`.
struct Events {
    js: jetstream::Context,
    prefix: String,
}

impl Events {
    fn new(client: &async_nats::Client, prefix: &str) -> Self {
        Self {
            js: jetstream::new(client.clone()),
            prefix: prefix.to_string(),
        }
    }

    /// `<PREFIX>_EVENTS`, as the server names it.
    fn stream_name(&self) -> String {
        format!("{}_EVENTS", self.prefix.to_uppercase())
    }

    /// The relay's lease and checkpoint name.
    fn relay_name(&self) -> String {
        format!("relay:jetstream:{}", self.stream_name())
    }

    /// The stream (the server creates it at start).
    async fn stream(&self) -> jetstream::stream::Stream {
        timeout(WAIT, self.js.get_stream(self.stream_name()))
            .await
            .expect("JetStream answers")
            .unwrap_or_else(|e| panic!("the stream {} exists: {e}", self.stream_name()))
    }

    /// An ordered consumer of the whole stream, from its first message.
    async fn consumer(&self) -> pull::Ordered {
        let stream = self.stream().await;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("create an ordered consumer");
        consumer.messages().await.expect("consume")
    }

    /// How many messages the stream holds.
    async fn stored(&self) -> u64 {
        let mut stream = self.stream().await;
        stream.info().await.expect("stream info").state.messages
    }

    async fn delete(&self) {
        let _ = self.js.delete_stream(self.stream_name()).await;
    }
}

/// The next `n` messages of `messages`, bounded by [`WAIT`].
async fn take(messages: &mut pull::Ordered, n: usize) -> Vec<Received> {
    let mut received = Vec::with_capacity(n);
    let collect = async {
        while received.len() < n {
            let message = messages
                .next()
                .await
                .expect("the consumer stream ended")
                .expect("a message");
            received.push(Received::from(&*message));
        }
    };
    if timeout(WAIT, collect).await.is_err() {
        panic!(
            "the consumer received {} of {n} messages within {WAIT:?}",
            received.len()
        );
    }
    received
}

/// One message as a subscriber got it.
#[derive(Debug, Clone)]
struct Received {
    subject: String,
    msg_id: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl From<&async_nats::Message> for Received {
    fn from(message: &async_nats::Message) -> Self {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        Self {
            subject: message.subject.to_string(),
            msg_id: header("Nats-Msg-Id"),
            content_type: header("Content-Type"),
            body: message.payload.to_vec(),
        }
    }
}

impl Received {
    fn event(&self) -> CloudEvent {
        CloudEvent::from_json(&self.body).unwrap_or_else(|e| {
            panic!(
                "not a CloudEvent ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// What the commands wrote, and the exactly-once check
// ---------------------------------------------------------------------------------------------

/// One event a command acknowledged, as it must arrive.
#[derive(Debug, Clone)]
struct Expected {
    id: Uuid,
    user: Uuid,
    /// The action: `created`, `updated`, `completed`.
    action: &'static str,
    task_id: String,
    sequence: i64,
    position: Position,
}

impl Expected {
    /// The single event of a task command's acknowledgement.
    fn of(ack: &CommandAck, user: Uuid, action: &'static str) -> Self {
        assert_eq!(
            ack.event_ids.len(),
            1,
            "one event per task command: {ack:?}"
        );
        Self {
            id: ack.event_ids[0].parse().expect("event ids are UUIDs"),
            user,
            action,
            task_id: ack.aggregate_id.clone(),
            sequence: ack.version as i64,
            position: ack.consistency_token.parse().expect("a log position"),
        }
    }
}

/// The last position of `events`.
fn last(events: &[Expected]) -> Position {
    events
        .iter()
        .map(|e| e.position)
        .max()
        .expect("some events")
}

/// Creates `tasks_each` tasks per user, then updates, then completes each, the users'
/// commands interleaved, all over gRPC; the acknowledged events in commit order.
async fn workload(server: &TestServer, users: &[Uuid], tasks_each: usize) -> Vec<Expected> {
    let mut clients: Vec<(Uuid, Commands)> =
        users.iter().map(|u| (*u, server.commands(*u))).collect();
    let mut expected = Vec::new();
    let mut tasks: Vec<(usize, String)> = Vec::new();
    for n in 0..tasks_each {
        for (i, (user, commands)) in clients.iter_mut().enumerate() {
            let ack = create(commands, new_task(&format!("task {n} of {user}"))).await;
            tasks.push((i, ack.aggregate_id.clone()));
            expected.push(Expected::of(&ack, *user, "created"));
        }
    }
    for (i, task_id) in &tasks {
        let (user, commands) = &mut clients[*i];
        let ack = commands
            .update_task(UpdateTaskRequest {
                task_id: task_id.clone(),
                title: Some(format!("renamed {task_id}")),
                priority: Some(2),
                ..Default::default()
            })
            .await
            .expect("UpdateTask succeeds")
            .into_inner();
        expected.push(Expected::of(&ack, *user, "updated"));
    }
    for (i, task_id) in &tasks {
        let (user, commands) = &mut clients[*i];
        let ack = complete(commands, task_id).await;
        expected.push(Expected::of(&ack, *user, "completed"));
    }
    expected
}

async fn complete(commands: &mut Commands, task_id: &str) -> CommandAck {
    commands
        .complete_task(CompleteTaskRequest {
            command_id: String::new(),
            task_id: task_id.to_string(),
            ..Default::default()
        })
        .await
        .expect("CompleteTask succeeds")
        .into_inner()
}

/// The CloudEvents 1.0 JSON schema (the bus crate's copy), formats checked.
fn schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!(
        "../bus/tests/data/cloudevents-1.0.schema.json"
    ))
    .expect("schema JSON");
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid draft-07 schema")
}

/// Checks one CloudEvents body against `expected`: the schema, the independent SDK, and our
/// attributes and data.
fn assert_cloudevent(schema: &jsonschema::Validator, body: &[u8], expected: &Expected) {
    let json: Value = serde_json::from_slice(body).expect("a JSON body");
    let errors: Vec<String> = schema
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{json}\nviolates the schema: {errors:#?}"
    );

    let sdk: cloudevents::Event =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("the SDK refuses {json}: {e}"));
    assert_eq!(sdk.specversion(), SpecVersion::V10);
    assert_eq!(sdk.id(), expected.id.to_string());
    assert_eq!(sdk.ty(), format!("tasks.{}", expected.action));
    assert_eq!(sdk.source().to_string(), "lifeos/tasks");
    assert_eq!(sdk.subject(), Some(expected.user.to_string().as_str()));
    assert_eq!(sdk.datacontenttype(), Some("application/json"));
    assert!(sdk.time().is_some(), "time is set: {json}");
    assert_eq!(
        sdk.extension("sequence"),
        Some(&ExtensionValue::Integer(expected.sequence)),
        "{json}"
    );
    assert_eq!(
        sdk.extension("position"),
        Some(&ExtensionValue::String(expected.position.to_string())),
        "{json}"
    );

    let ours = CloudEvent::from_json(body).expect("our envelope");
    assert_eq!(ours.data.entity_id, expected.task_id, "{json}");
    assert_eq!(ours.data.entity_type, "task");
    assert_eq!(ours.data.action, expected.action);
    assert_eq!(
        ours.data.metadata["user_id"],
        json!(expected.user.to_string()),
        "the metadata travels: {json}"
    );
}

/// `received` is `expected` exactly once: each a valid CloudEvent on its subject with its
/// headers, none twice, none missing, every task's events in sequence order without a gap.
fn assert_exactly_once(received: &[Received], expected: &[Expected], prefix: &str) {
    let schema = schema();
    let by_id: HashMap<Uuid, &Expected> = expected.iter().map(|e| (e.id, e)).collect();
    assert_eq!(
        by_id.len(),
        expected.len(),
        "an event id was acknowledged twice"
    );
    let mut seen = HashSet::new();
    let mut last_sequence: HashMap<String, i64> = HashMap::new();
    for message in received {
        let event = message.event();
        assert!(seen.insert(event.id), "event {} arrived twice", event.id);
        let wanted = by_id
            .get(&event.id)
            .unwrap_or_else(|| panic!("event {} was never acknowledged: {event:?}", event.id));
        assert_cloudevent(&schema, &message.body, wanted);
        assert_eq!(
            message.subject,
            format!("{prefix}.events.tasks.{}", wanted.action)
        );
        assert_eq!(
            message.msg_id.as_deref(),
            Some(event.id.to_string().as_str()),
            "Nats-Msg-Id is the event id"
        );
        assert_eq!(message.content_type.as_deref(), Some(CONTENT_TYPE));
        let previous = last_sequence
            .insert(wanted.task_id.clone(), event.sequence)
            .unwrap_or(0);
        assert_eq!(
            event.sequence,
            previous + 1,
            "task {}: sequence {} arrived after {previous}",
            wanted.task_id,
            event.sequence
        );
    }
    let missing: Vec<Uuid> = expected
        .iter()
        .map(|e| e.id)
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(missing.is_empty(), "events never arrived: {missing:?}");
    assert_eq!(received.len(), expected.len());
}

/// Waits (bounded) until `status` satisfies `ready`; that status.
async fn wait_status(
    status: &mut watch::Receiver<RelayStatus>,
    what: &str,
    ready: impl FnMut(&RelayStatus) -> bool,
) -> RelayStatus {
    let outcome = timeout(WAIT, status.wait_for(ready))
        .await
        .map(|r| r.map(|s| s.clone()));
    match outcome {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("the relay ended while waiting for {what}"),
        Err(_) => panic!("waited {WAIT:?} for {what} in vain: {:?}", *status.borrow()),
    }
}

/// Waits (bounded) until the relay of `server` has published and checkpointed `up_to`.
async fn wait_relayed(server: &TestServer, up_to: Position) -> RelayStatus {
    let mut status = server
        .server()
        .relay_status()
        .expect("this server runs the relay");
    wait_status(&mut status, &format!("the relay past {up_to}"), |s| {
        s.state == RelayState::Live && s.checkpoint >= up_to
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// 1. Every event committed through gRPC arrives once, as a CloudEvent
// ---------------------------------------------------------------------------------------------

async fn every_grpc_event_arrives_once_as_a_cloudevent(backend: Backend) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let prefix = unique_prefix();
    let Some(server) = TestServer::start_with(backend, on_nats(nats_url(), &prefix)).await else {
        return;
    };
    let events = Events::new(&client, &prefix);
    assert!(
        server.server().events().is_none(),
        "with NATS there is no in-process bus"
    );
    // the stream exists from the start, before any event: subscribers can bind to it
    timeout(WAIT, async {
        while events.js.get_stream(events.stream_name()).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stream is created at start");

    let users = [Uuid::now_v7(), Uuid::now_v7()];
    let expected = workload(&server, &users, 3).await;
    assert_eq!(expected.len(), 18);
    let status = wait_relayed(&server, last(&expected)).await;
    assert_eq!(status.name, events.relay_name());
    assert_eq!(status.published, expected.len() as u64);

    // the stream the relay created: file storage, the configured max age, `<prefix>.events.>`
    let mut stream = events.stream().await;
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.subjects, [format!("{prefix}.events.>")]);
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
    assert_eq!(info.config.max_age, Duration::from_secs(600));

    let mut messages = events.consumer().await;
    let received = take(&mut messages, expected.len()).await;
    assert_exactly_once(&received, &expected, &prefix);
    assert_eq!(
        events.stored().await,
        expected.len() as u64,
        "the stream holds more messages than were committed: a repeat got through"
    );
    // one relay, batches in log order: the global order is kept too
    let positions: Vec<Position> = received.iter().map(|m| m.event().position).collect();
    assert!(
        positions.is_sorted(),
        "messages out of log order: {positions:?}"
    );

    server.stop().await;
    events.delete().await;
}

// ---------------------------------------------------------------------------------------------
// 2. A restart (and a crash between PubAck and checkpoint) loses and repeats nothing
// ---------------------------------------------------------------------------------------------

async fn a_restart_mid_stream_loses_and_repeats_nothing(backend: Backend) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let prefix = unique_prefix();
    let Some(mut server) = TestServer::start_with(backend, on_nats(nats_url(), &prefix)).await
    else {
        return;
    };
    let events = Events::new(&client, &prefix);
    let users = [Uuid::now_v7(), Uuid::now_v7()];

    let first = workload(&server, &users, 2).await;
    wait_relayed(&server, last(&first)).await;
    // the subscriber reads from the start and keeps reading across the restart
    let mut messages = events.consumer().await;

    // more commands, and the server shut down at once: the relay is mid-stream
    let second = workload(&server, &users, 2).await;
    server.shut_down().await;

    // A crash between PubAck and checkpoint: the relay's stored checkpoint is set back into the
    // first part (those events were published and acknowledged, the checkpoint says not).
    let store = server
        .config()
        .store
        .open_migrated()
        .await
        .expect("open the store");
    let stopped_at = store
        .checkpoint(&events.relay_name())
        .await
        .expect("the relay's checkpoint");
    assert!(
        stopped_at >= last(&first),
        "a clean stop keeps the checkpoint: {stopped_at} < {}",
        last(&first)
    );
    let rewound = first[first.len() / 2].position;
    store
        .save_checkpoint(&events.relay_name(), rewound)
        .await
        .expect("rewind the checkpoint");
    store.close().await;

    server.relaunch().await;
    let third = workload(&server, &users, 1).await;
    let all: Vec<Expected> = [first, second, third].concat();
    let status = wait_relayed(&server, last(&all)).await;
    let after_rewind = all.iter().filter(|e| e.position > rewound).count();
    assert_eq!(
        status.published, after_rewind as u64,
        "the relaunched relay went on from its stored checkpoint, re-publishing what it said"
    );

    let received = take(&mut messages, all.len()).await;
    assert_exactly_once(&received, &all, &prefix);
    assert_eq!(
        events.stored().await,
        all.len() as u64,
        "JetStream dropped the repeats (Nats-Msg-Id)"
    );

    server.stop().await;
    events.delete().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Roles: an API process and a relay + projector process on one PostgreSQL and one NATS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_api_and_relay_roles_in_two_processes() {
    let Some(client) = shared_nats().await else {
        return;
    };
    let prefix = unique_prefix();
    let on_nats = on_nats(nats_url(), &prefix);
    let Some(api) = TestServer::start_with(Backend::Postgres, |config| {
        on_nats(config);
        config.roles = "api".parse().expect("roles");
    })
    .await
    else {
        return;
    };
    let worker = api
        .start_sibling(|config| config.roles = "relay,projector".parse().expect("roles"))
        .await;
    let events = Events::new(&client, &prefix);

    // the API process has no relay, and says so
    assert!(api.server().relay_status().is_none());
    assert!(api.server().health().await["relay"].is_null());
    let health = call(&client, &format!("{prefix}.system.health"), None, json!({})).await;
    let health = health.ok();
    assert!(health["relay"].is_null(), "{health}");
    assert_eq!(health["store"]["backend"], "postgres", "{health}");
    // the other process serves no API (gRPC health only)
    let refused = TaskCommandsClient::with_interceptor(
        worker.channel(),
        Bearer::token(&worker.token(Uuid::now_v7())),
    )
    .create_task(new_task("nowhere"))
    .await
    .expect_err("no API on the relay + projector process");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    // commands through the API process, published by the other one
    let users = [Uuid::now_v7(), Uuid::now_v7()];
    let expected = workload(&api, &users, 2).await;
    let status = wait_relayed(&worker, last(&expected)).await;
    assert_eq!(status.name, events.relay_name());
    assert_eq!(status.published, expected.len() as u64);
    let mut messages = events.consumer().await;
    let received = take(&mut messages, expected.len()).await;
    assert_exactly_once(&received, &expected, &prefix);
    assert_eq!(events.stored().await, expected.len() as u64);

    // reads with a consistency token on the API process: its freshness comes from the checkpoint
    // the other process's runner stores
    for user in users {
        let token = expected
            .iter()
            .filter(|e| e.user == user)
            .map(|e| e.position)
            .max()
            .expect("events of the user")
            .to_string();
        let page = list(&mut api.queries(user), &token, true).await;
        assert_eq!(page.tasks.len(), 2, "{page:?}");
        assert!(page.tasks.iter().all(|t| t.completed), "{page:?}");
        assert!(
            page.tasks.iter().all(|t| t.title.starts_with("renamed ")),
            "{page:?}"
        );
    }

    worker.stop().await;
    api.stop().await;
    events.delete().await;
}

// ---------------------------------------------------------------------------------------------
// 4. NATS request/reply through the server
// ---------------------------------------------------------------------------------------------

/// One NATS reply: headers and JSON body.
#[derive(Debug)]
struct Reply {
    headers: Option<HeaderMap>,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .as_ref()?
            .get(name)
            .map(|v| v.as_str().to_string())
    }

    /// The body of a successful reply.
    fn ok(&self) -> &Value {
        assert!(
            self.header("Nats-Service-Error-Code").is_none(),
            "expected success, got {:?}: {}",
            self.headers,
            self.body
        );
        &self.body
    }

    /// Asserts an error reply with gRPC code `numeric` (`name` in the body).
    fn assert_error(&self, numeric: u16, name: &str) {
        assert_eq!(
            self.header("Nats-Service-Error-Code").as_deref(),
            Some(numeric.to_string().as_str()),
            "{:?}: {}",
            self.headers,
            self.body
        );
        assert!(
            self.header("Nats-Service-Error")
                .is_some_and(|m| !m.is_empty()),
            "the error says what is wrong: {:?}",
            self.headers
        );
        assert_eq!(self.body["code"], name, "{}", self.body);
    }
}

/// Sends `body` to `subject` (with `Authorization: Bearer <token>` when given) and waits for the
/// reply.
async fn call(
    client: &async_nats::Client,
    subject: &str,
    token: Option<&str>,
    body: Value,
) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert("Authorization", format!("Bearer {token}"));
    }
    let request = client.request_with_headers(
        subject.to_string(),
        headers,
        serde_json::to_vec(&body).expect("JSON").into(),
    );
    let message = timeout(WAIT, request)
        .await
        .unwrap_or_else(|_| panic!("no reply on {subject} within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("request on {subject}: {e}"));
    Reply {
        headers: message.headers.clone(),
        body: serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
            panic!(
                "a JSON reply on {subject} ({e}): {}",
                String::from_utf8_lossy(&message.payload)
            )
        }),
    }
}

/// The `$SRV.PING` answer of the `lifeos` service instance serving `prefix` (every `lifeos`
/// instance on the server answers; ours says its prefix in the metadata).
async fn ping_our_instance(client: &async_nats::Client, prefix: &str) -> Value {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply("$SRV.PING.lifeos", inbox, "".into())
        .await
        .expect("publish the ping");
    let ours = async {
        while let Some(reply) = replies.next().await {
            let pong: Value = serde_json::from_slice(&reply.payload).expect("a JSON pong");
            if pong["metadata"]["prefix"] == prefix {
                return pong;
            }
        }
        panic!("the reply subscription ended");
    };
    timeout(WAIT, ours)
        .await
        .expect("our instance answers $SRV.PING.lifeos")
}

/// `v` as a number (0 when absent).
fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

async fn nats_request_reply_reaches_the_same_handlers(backend: Backend) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let prefix = unique_prefix();
    let Some(server) = TestServer::start_with(backend, on_nats(nats_url(), &prefix)).await else {
        return;
    };
    let events = Events::new(&client, &prefix);
    let subject = |relative: &str| format!("{prefix}.{relative}");
    let user = Uuid::now_v7();
    let token = server.token(user);
    let metrics_before = call(&client, &subject("system.metrics"), None, json!({})).await;
    let metrics_before = metrics_before.ok().clone();

    // create and list over NATS (JSON in the protobuf JSON mapping)
    let ack = call(
        &client,
        &subject("commands.tasks.create"),
        Some(&token),
        json!({"title": "over NATS", "tags": ["bus"], "priority": 3}),
    )
    .await;
    let ack = ack.ok().clone();
    let task_id = ack["aggregateId"]
        .as_str()
        .expect("aggregateId")
        .to_string();
    let event_id = ack["eventIds"][0].as_str().expect("eventIds").to_string();
    let consistency = ack["consistencyToken"]
        .as_str()
        .expect("consistencyToken")
        .to_string();
    let page = call(
        &client,
        &subject("queries.tasks.list"),
        Some(&token),
        json!({"consistencyToken": consistency}),
    )
    .await;
    let page = page.ok().clone();
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["tasks"][0]["taskId"], task_id, "{page}");
    assert_eq!(page["tasks"][0]["title"], "over NATS", "{page}");
    assert_eq!(page["tasks"][0]["tags"], json!(["bus"]), "{page}");
    // the same handlers as gRPC: the task is there too
    let grpc = list(&mut server.queries(user), &consistency, false).await;
    assert_eq!(common::ids(&grpc), [task_id.as_str()]);

    // no token, a foreign token: UNAUTHENTICATED (16), and nothing written
    let refused = call(
        &client,
        &subject("commands.tasks.create"),
        None,
        json!({"title": "no token"}),
    )
    .await;
    refused.assert_error(16, "UNAUTHENTICATED");
    let foreign = api_common::Auth::new(b"another secret, also of 32 bytes or more")
        .issue(user, Duration::from_secs(600));
    let refused = call(
        &client,
        &subject("queries.tasks.list"),
        Some(&foreign),
        json!({}),
    )
    .await;
    refused.assert_error(16, "UNAUTHENTICATED");
    let page = call(
        &client,
        &subject("queries.tasks.list"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(page.ok()["tasks"].as_array().map(Vec::len), Some(1));

    // the command sent over NATS comes back on NATS as its event
    let status = wait_relayed(&server, consistency.parse().expect("a position")).await;
    assert_eq!(status.published, 1);
    let mut messages = events.consumer().await;
    let received = take(&mut messages, 1).await;
    let expected = Expected {
        id: event_id.parse().expect("uuid"),
        user,
        action: "created",
        task_id: task_id.clone(),
        sequence: 1,
        position: consistency.parse().expect("a position"),
    };
    assert_exactly_once(&received, &[expected], &prefix);

    // $SRV discovery
    let pong = ping_our_instance(&client, &prefix).await;
    assert_eq!(pong["type"], "io.nats.micro.v1.ping_response", "{pong}");
    assert_eq!(pong["name"], "lifeos", "{pong}");
    let id = pong["id"].as_str().expect("instance id");
    let direct = call(&client, &format!("$SRV.PING.lifeos.{id}"), None, json!({})).await;
    assert_eq!(direct.body["id"], id);
    let info = call(&client, &format!("$SRV.INFO.lifeos.{id}"), None, json!({})).await;
    let subjects: Vec<&str> = info.body["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    for wanted in [
        "commands.tasks.create",
        "queries.tasks.list",
        "system.health",
        "system.metrics",
    ] {
        assert!(
            subjects.contains(&subject(wanted).as_str()),
            "{wanted} in {subjects:?}"
        );
    }

    // health: the store, the projections, the relay, NATS
    let health = call(&client, &subject("system.health"), None, json!({})).await;
    let health = health.ok();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        health["store"]["backend"],
        server.server().backend(),
        "{health}"
    );
    assert_eq!(health["store"]["ok"], true, "{health}");
    assert!(
        health["projections"]
            .as_array()
            .expect("projections")
            .iter()
            .any(|p| p["name"] == "task_list" && p["state"] == "live"),
        "{health}"
    );
    assert_eq!(health["relay"]["name"], events.relay_name(), "{health}");
    assert_eq!(health["relay"]["state"], "live", "{health}");
    assert_eq!(health["relay"]["lag_events"], 0, "{health}");
    assert_eq!(health["nats"], "connected", "{health}");
    assert_eq!(
        &server.server().health().await["relay"],
        &health["relay"],
        "the in-process route reports the same"
    );

    // metrics: this instance's counters, and the engine's
    let metrics = call(&client, &subject("system.metrics"), None, json!({})).await;
    let metrics = metrics.ok();
    let endpoint = |m: &Value, s: &str, c: &str| count(&m["nats_api"]["endpoints"][s][c]);
    assert_eq!(
        endpoint(metrics, "commands.tasks.create", "requests"),
        endpoint(&metrics_before, "commands.tasks.create", "requests") + 2,
        "{metrics}"
    );
    assert_eq!(
        endpoint(metrics, "commands.tasks.create", "errors"),
        endpoint(&metrics_before, "commands.tasks.create", "errors") + 1,
        "{metrics}"
    );
    assert_eq!(
        endpoint(metrics, "queries.tasks.list", "requests"),
        endpoint(&metrics_before, "queries.tasks.list", "requests") + 3,
        "{metrics}"
    );
    // the engine's counters are process-wide (parallel tests add to them): they moved
    for counter in ["commands", "events_committed"] {
        assert!(
            count(&metrics["counters"][counter]) > count(&metrics_before["counters"][counter]),
            "{counter}: {metrics} after {metrics_before}"
        );
    }
    assert_eq!(metrics["relay"]["published"], 1, "{metrics}");

    server.stop().await;
    events.delete().await;
}

// ---------------------------------------------------------------------------------------------
// 5. NATS down at start
// ---------------------------------------------------------------------------------------------

async fn nats_down_at_start_then_every_event_arrives(backend: Backend) {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let nats_dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix();

    // nothing listens on the port yet: the server starts all the same
    let started = timeout(
        WAIT,
        TestServer::start_with(backend, on_nats(url.clone(), &prefix)),
    )
    .await
    .expect("the server starts while NATS is down");
    let Some(mut server) = started else {
        return;
    };

    // the log is the truth: commands succeed
    let users = [Uuid::now_v7(), Uuid::now_v7()];
    let expected = workload(&server, &users, 2).await;

    // the relay retries, and health says so
    let mut status = server.server().relay_status().expect("the relay runs");
    let retrying = wait_status(&mut status, "the relay retrying", |s| {
        matches!(s.state, RelayState::Retrying { .. })
    })
    .await;
    assert_eq!(retrying.published, 0);
    let health = server.server().health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["relay"]["state"]["retrying_since"].is_string(),
        "{health}"
    );
    assert!(
        health["relay"]["state"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{health}"
    );
    assert_eq!(
        health["relay"]["lag_events"],
        expected.len(),
        "nothing published: {health}"
    );
    assert_ne!(health["nats"], "connected", "{health}");
    assert_eq!(health["store"]["ok"], true, "{health}");

    // a shutdown while NATS is down completes (nothing waits for NATS), and so does a start
    server.restart().await;
    let more = workload(&server, &users, 1).await;
    let expected = [expected, more].concat();
    let mut status = server.server().relay_status().expect("the relay runs");
    wait_status(&mut status, "the relay retrying again", |s| {
        matches!(s.state, RelayState::Retrying { .. })
    })
    .await;

    // NATS comes up: everything arrives, once
    let _nats = NatsServer::start(&binary, port, nats_dir.path()).await;
    let status = wait_relayed(&server, last(&expected)).await;
    assert_eq!(status.published, expected.len() as u64);
    let client = connect(&url)
        .await
        .expect("connect to the test's nats-server");
    let events = Events::new(&client, &prefix);
    let mut messages = events.consumer().await;
    let received = take(&mut messages, expected.len()).await;
    assert_exactly_once(&received, &expected, &prefix);
    assert_eq!(events.stored().await, expected.len() as u64);

    // recovered: health is ok again, in process and over NATS (the API subscribed meanwhile)
    let health = server.server().health().await;
    assert_eq!(health["relay"]["state"], "live", "{health}");
    assert_eq!(health["relay"]["lag_events"], 0, "{health}");
    let over_nats = call(&client, &format!("{prefix}.system.health"), None, json!({})).await;
    let over_nats = over_nats.ok();
    assert_eq!(over_nats["status"], "ok", "{over_nats}");
    assert_eq!(over_nats["nats"], "connected", "{over_nats}");

    server.stop().await;
    events.delete().await;
}

// ---------------------------------------------------------------------------------------------
// 6. The embedded bus
// ---------------------------------------------------------------------------------------------

async fn embedded_bus_carries_the_envelope(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let mut bus = server
        .server()
        .events()
        .expect("without NATS: the in-process bus");
    let user = Uuid::now_v7();
    let mut commands = server.commands(user);

    let mut request = new_task("embedded");
    request.tags = vec!["bus".into()];
    let created = create(&mut commands, request).await;
    let completed = complete(&mut commands, &created.aggregate_id).await;

    let schema = schema();
    for (ack, action) in [(&created, "created"), (&completed, "completed")] {
        let event = timeout(WAIT, bus.recv())
            .await
            .expect("the event arrives on the in-process bus")
            .expect("the bus is open");
        let expected = Expected::of(ack, user, action);
        assert_eq!(event.id, expected.id);
        assert_eq!(event.specversion, "1.0");
        assert_eq!(event.event_type, format!("tasks.{action}"));
        assert_eq!(event.source, "lifeos/tasks");
        assert_eq!(event.subject.as_deref(), Some(user.to_string().as_str()));
        assert_eq!(event.data.entity_id, created.aggregate_id);
        assert_eq!(event.position, expected.position);
        assert_eq!(event.sequence, expected.sequence);
        if action == "created" {
            assert_eq!(event.data.payload["title"], "embedded", "{event:?}");
            assert_eq!(event.data.payload["tags"], json!(["bus"]), "{event:?}");
            assert_eq!(
                event.data.payload["task_id"],
                json!(created.aggregate_id),
                "{event:?}"
            );
        } else {
            assert!(event.data.payload["completed_at"].is_string(), "{event:?}");
        }
        // the very envelope NATS subscribers get
        let body = event.to_json().expect("JSON");
        assert_cloudevent(&schema, &body, &expected);
    }

    assert!(server.server().events().is_some());
    let status = server
        .server()
        .relay_status()
        .expect("the relay feeds the bus")
        .borrow()
        .clone();
    assert_eq!(status.name, "relay:in-process");
    let health = server.server().health().await;
    assert!(health["nats"].is_null(), "{health}");
    assert_eq!(health["relay"]["name"], "relay:in-process", "{health}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. gRPC EventStream/Subscribe
// ---------------------------------------------------------------------------------------------

type Subscription = tonic::Streaming<HistoryEvent>;

async fn subscribe(
    channel: Channel,
    bearer: Bearer,
    from_position: &str,
    pillars: &[&str],
) -> Result<Subscription, tonic::Status> {
    EventStreamClient::with_interceptor(channel, bearer)
        .subscribe(SubscribeRequest {
            from_position: from_position.to_string(),
            pillars: pillars.iter().map(|p| p.to_string()).collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The next `n` events of `stream`, bounded.
async fn next_events(stream: &mut Subscription, n: usize) -> Vec<HistoryEvent> {
    let mut got = Vec::with_capacity(n);
    let collect = async {
        while got.len() < n {
            let event = stream
                .message()
                .await
                .expect("the stream yields")
                .expect("the stream goes on");
            got.push(event);
        }
    };
    if timeout(WAIT, collect).await.is_err() {
        panic!("{} of {n} events within {WAIT:?}: {got:?}", got.len());
    }
    got
}

/// The events of `stream` up to the one with id `last_id`, bounded.
async fn events_until(stream: &mut Subscription, last_id: &str) -> Vec<HistoryEvent> {
    let mut got = Vec::new();
    let collect = async {
        loop {
            let event = stream
                .message()
                .await
                .expect("the stream yields")
                .expect("the stream goes on");
            let done = event.event_id == last_id;
            got.push(event);
            if done {
                return;
            }
        }
    };
    if timeout(WAIT, collect).await.is_err() {
        panic!("no event {last_id} within {WAIT:?}: {got:?}");
    }
    got
}

fn ids_of(events: &[HistoryEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

fn ack_ids(acks: &[&CommandAck]) -> Vec<String> {
    acks.iter().map(|a| a.event_ids[0].clone()).collect()
}

async fn event_stream_subscribe_is_live_and_per_user(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let as_alice = || Bearer::token(&server.token(alice));
    let mut alice_commands = server.commands(alice);
    let mut bob_commands = server.commands(bob);

    // from the current end: an event before the subscription is not streamed
    let before = create(&mut alice_commands, new_task("before")).await;
    let mut live = subscribe(server.channel(), as_alice(), "", &[])
        .await
        .expect("subscribe");
    let mut bob_live = subscribe(server.channel(), Bearer::token(&server.token(bob)), "", &[])
        .await
        .expect("subscribe");

    // both users' commands interleaved: each stream yields its caller's events only, in order
    let a1 = create(&mut alice_commands, new_task("a1")).await;
    let b1 = create(&mut bob_commands, new_task("b1")).await;
    let a2 = complete(&mut alice_commands, &a1.aggregate_id).await;
    let b2 = complete(&mut bob_commands, &b1.aggregate_id).await;
    let a3 = complete(&mut alice_commands, &before.aggregate_id).await;
    // "the current end" is the log's visible head: on PostgreSQL an event committed just
    // before may still be invisible then (an older transaction of the cluster runs), and comes
    // first; nothing is skipped
    let mut got = events_until(&mut live, &a3.event_ids[0]).await;
    if got
        .first()
        .is_some_and(|e| e.event_id == before.event_ids[0])
    {
        assert_eq!(server.backend(), Backend::Postgres, "{got:?}");
        got.remove(0);
    }
    assert_eq!(ids_of(&got), ack_ids(&[&a1, &a2, &a3]), "{got:?}");
    assert_eq!(got[0].event_type, "TaskCreated");
    assert_eq!(got[0].aggregate_id, a1.aggregate_id);
    assert_eq!(got[0].pillar, "tasks");
    assert_eq!(got[0].sequence, 1);
    assert_eq!(got[0].position, a1.consistency_token);
    assert_eq!(got[1].event_type, "TaskCompleted");
    assert_eq!(got[2].aggregate_id, before.aggregate_id);
    assert_eq!(got[2].sequence, 2);
    let got = next_events(&mut bob_live, 2).await;
    assert_eq!(ids_of(&got), ack_ids(&[&b1, &b2]), "{got:?}");

    // from a position: catch-up, then live
    let mut from = subscribe(server.channel(), as_alice(), &a1.consistency_token, &[])
        .await
        .expect("subscribe from a position");
    let got = next_events(&mut from, 2).await;
    assert_eq!(ids_of(&got), ack_ids(&[&a2, &a3]), "catch-up: {got:?}");
    let a4 = create(&mut alice_commands, new_task("a4")).await;
    let got = next_events(&mut from, 1).await;
    assert_eq!(
        ids_of(&got),
        ack_ids(&[&a4]),
        "live after catch-up: {got:?}"
    );
    assert_eq!(ids_of(&next_events(&mut live, 1).await), ack_ids(&[&a4]));

    // pillars: "tasks" streams them all, another pillar none of them
    let start = Position::START.to_string();
    let mut tasks_only = subscribe(server.channel(), as_alice(), &start, &["tasks"])
        .await
        .expect("subscribe to tasks");
    let got = next_events(&mut tasks_only, 5).await;
    assert_eq!(
        ids_of(&got),
        ack_ids(&[&before, &a1, &a2, &a3, &a4]),
        "{got:?}"
    );
    let mut habits_only = subscribe(server.channel(), as_alice(), &start, &["habits"])
        .await
        .expect("subscribe to habits");
    // absence can only be checked for a while: the whole log was read in one batch by then
    let nothing = timeout(Duration::from_millis(500), habits_only.message()).await;
    assert!(
        nothing.is_err(),
        "no habits event exists, yet the stream yielded {nothing:?}"
    );

    // no token: refused; a bad position: invalid argument
    let refused = subscribe(server.channel(), Bearer::none(), "", &[])
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let invalid = subscribe(server.channel(), as_alice(), "not a position", &[])
        .await
        .expect_err("a bad position");
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");

    drop((live, bob_live, from, tasks_only, habits_only));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. The binary: `lifeos serve --nats-url … --nats-prefix …`
// ---------------------------------------------------------------------------------------------

/// A `lifeos serve` child process and its stderr so far; killed when dropped.
struct Serving {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `lifeos <args>` (without any of the caller's `LIFEOS_*` settings) and waits for its
/// "lifeos listening on <addr>" line.
async fn serve(args: &[&str]) -> (Serving, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeos"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LIFEOS_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lifeos");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, mut lines) = mpsc::unbounded_channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            kept.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let serving = Serving {
        child: Some(child),
        log,
    };
    let found = timeout(WAIT, async {
        while let Some(line) = lines.recv().await {
            if let Some(at) = line.find("lifeos listening on ") {
                let addr: String = line[at + "lifeos listening on ".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return Some(addr.parse::<SocketAddr>().expect("an address"));
            }
        }
        None
    })
    .await;
    let log = serving.log.lock().unwrap().clone();
    match found {
        Ok(Some(addr)) => (serving, addr),
        Ok(None) => panic!("lifeos serve ended before listening: {log:?}"),
        Err(_) => panic!("lifeos serve not listening after {WAIT:?}: {log:?}"),
    }
}

/// Sends SIGTERM and waits (bounded) for the exit.
async fn terminate(mut serving: Serving) -> (ExitStatus, Vec<String>) {
    let mut child = serving.child.take().expect("running");
    let pid = child.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM {pid}");
    let waiting = tokio::task::spawn_blocking(move || {
        let status = child.wait();
        (child, status)
    });
    let status = match timeout(WAIT, waiting).await {
        Ok(Ok((_, status))) => status.expect("wait for lifeos"),
        _ => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("lifeos did not exit within {WAIT:?} of SIGTERM")
        }
    };
    let log = serving.log.lock().unwrap().clone();
    (status, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_serve_publishes_to_nats_and_stops_on_sigterm() {
    let Some(client) = shared_nats().await else {
        return;
    };
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().expect("temp dir");
    let events = Events::new(&client, &prefix);
    let mut subscriber = client
        .subscribe(format!("{prefix}.events.>"))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");

    let url = nats_url();
    let data_dir = dir.path().display().to_string();
    let (serving, addr) = serve(&[
        "serve",
        "--nats-url",
        &url,
        "--nats-prefix",
        &prefix,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir,
    ])
    .await;

    let secret = std::fs::read_to_string(dir.path().join("jwt-secret")).expect("jwt-secret");
    let user = Uuid::now_v7();
    let token =
        api_common::Auth::new(secret.trim().as_bytes()).issue(user, Duration::from_secs(600));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("URI")
        .connect()
        .await
        .expect("connect to lifeos serve");
    let mut commands = TaskCommandsClient::with_interceptor(channel, Bearer::token(&token));
    let ack = create(&mut commands, new_task("from the binary")).await;

    let message = timeout(WAIT, subscriber.next())
        .await
        .expect("the event is published within the limit")
        .expect("the subscription is open");
    let received = Received::from(&message);
    assert_exactly_once(&[received], &[Expected::of(&ack, user, "created")], &prefix);
    assert_eq!(events.stored().await, 1);

    let (status, log) = terminate(serving).await;
    assert!(status.success(), "exit status {status}: {log:?}");
    assert!(
        log.iter().any(|l| l.contains("lifeos stopped")),
        "a clean shutdown is logged: {log:?}"
    );
    events.delete().await;
}
