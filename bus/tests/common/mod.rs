//! The bus test harness: NATS (the shared server, or a server of the test's own), a JetStream
//! stream of the test's own, a command workload on either store, and the exactly-once check.
//!
//! NATS is `LIFEOS_TEST_NATS_URL` (default `nats://127.0.0.1:4222`). When it cannot be reached
//! the tests print a "skipping" line and return, except with `CI=true`, where they fail. Tests
//! that stop NATS start their own `nats-server` (`NATS_SERVER_BIN`, default
//! `/usr/sbin/nats-server`, else `nats-server` on the PATH) on a free port.

#![allow(dead_code)] // each test binary uses part of the harness

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aggregates::Issued;
use aggregates::task::{NewTask, Task, TaskChanges, TaskCommand};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use bus::cloudevent::CONTENT_TYPE;
use bus::{CloudEvent, JetStreamConfig, JetStreamPublisher, RelayHandle, RelayStatus};
use futures::StreamExt;
use store::{AggregateStore, Journal, LoggedEvent, Position, Store, meta};
use tokio::sync::watch;
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(60);

#[allow(unused_imports)] // each test binary uses part of the harness
pub use bus::testing::{NatsServer, free_port, nats_server_binary, unavailable};

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/// The shared NATS server's URL.
pub fn nats_url() -> String {
    std::env::var("LIFEOS_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string())
}

/// A connection to the shared NATS server with JetStream; `None` (after saying so) when it is
/// unreachable outside CI.
pub async fn shared_nats() -> Option<async_nats::Client> {
    let url = nats_url();
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url.as_str());
    let error = match timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(client)) => match jetstream_info(&client).await {
            Ok(()) => return Some(client),
            Err(why) => why,
        },
        Ok(Err(err)) => err.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    unavailable(&format!(
        "NATS JetStream not reachable at {url} ({error}); set LIFEOS_TEST_NATS_URL"
    ));
    None
}

/// Asks the server for its JetStream account info (`$JS.API.INFO`): `Err` when JetStream does
/// not answer or answers with an error.
async fn jetstream_info(client: &async_nats::Client) -> Result<(), String> {
    let request = client.request("$JS.API.INFO", Vec::new().into());
    let reply = match timeout(Duration::from_secs(10), request).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) => return Err(format!("JetStream is not enabled ({err})")),
        Err(_) => return Err("JetStream did not answer within 10 s".into()),
    };
    let info: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("JetStream info: {e}"))?;
    match info.get("error") {
        None => Ok(()),
        Some(error) => Err(format!("JetStream is not available: {error}")),
    }
}

/// A stream (and subject prefix) no other test uses, on `client`'s server.
pub struct TestStream {
    /// The publisher's configuration for this stream.
    pub config: JetStreamConfig,
    /// The JetStream context the test reads with.
    pub js: async_nats::jetstream::Context,
}

impl TestStream {
    /// A unique stream name `T_<uuid>` capturing `t<uuid>.events.>`, read through `client`.
    pub fn new(client: &async_nats::Client) -> Self {
        Self::with_config(client, Self::unique_config())
    }

    /// The stream of `config`, read through `client`.
    pub fn with_config(client: &async_nats::Client, config: JetStreamConfig) -> Self {
        Self {
            config,
            js: async_nats::jetstream::new(client.clone()),
        }
    }

    /// A configuration with a unique stream name `T_<uuid>` capturing `t<uuid>.events.>`.
    pub fn unique_config() -> JetStreamConfig {
        let id = Uuid::now_v7().simple().to_string();
        JetStreamConfig {
            stream: format!("T_{id}"),
            subject_prefix: format!("t{id}.events"),
            max_age: Duration::from_secs(600),
            ..JetStreamConfig::default()
        }
    }

    /// A publisher to this stream on `client`.
    pub fn publisher(&self, client: &async_nats::Client) -> Arc<JetStreamPublisher> {
        Arc::new(JetStreamPublisher::new(client.clone(), self.config.clone()).expect("config"))
    }

    /// How many messages the stream holds.
    pub async fn stored(&self) -> u64 {
        let mut stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .expect("the stream exists");
        stream.info().await.expect("stream info").state.messages
    }

    /// Reads the whole stream from the start with a fresh consumer, expecting exactly
    /// `expected` messages (waits for them, bounded), and checks that no more are stored.
    pub async fn read_all(&self, expected: usize) -> Vec<Received> {
        let stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .expect("the stream exists");
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("create consumer");
        let mut messages = consumer.messages().await.expect("consume");
        let mut received = Vec::with_capacity(expected);
        let collect = async {
            while received.len() < expected {
                let message = messages
                    .next()
                    .await
                    .expect("the consumer stream ended")
                    .expect("message");
                received.push(Received::from(&message));
            }
        };
        if timeout(WAIT, collect).await.is_err() {
            panic!(
                "the consumer received {} of {expected} messages within {WAIT:?}",
                received.len()
            );
        }
        assert_eq!(
            self.stored().await,
            expected as u64,
            "the stream holds more messages than the log has events: a repeat got through"
        );
        received
    }

    /// Deletes the stream.
    pub async fn delete(&self) {
        let _ = self.js.delete_stream(&self.config.stream).await;
    }
}

/// One message as the consumer got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The NATS subject.
    pub subject: String,
    /// The `Nats-Msg-Id` header.
    pub msg_id: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl From<&async_nats::jetstream::Message> for Received {
    fn from(message: &async_nats::jetstream::Message) -> Self {
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
    /// The body as a CloudEvent.
    pub fn event(&self) -> CloudEvent {
        CloudEvent::from_json(&self.body)
            .unwrap_or_else(|e| panic!("not a CloudEvent ({e}): {}", self.text()))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Checks that `received` is the log exactly once: the same event ids, none twice, each message
/// the log event's envelope on its subject with its headers, and every aggregate's events in
/// sequence order without a gap.
pub fn assert_exactly_once(received: &[Received], log: &[LoggedEvent], prefix: &str) {
    let by_id: HashMap<Uuid, &LoggedEvent> = log.iter().map(|e| (e.event_id, e)).collect();
    assert_eq!(by_id.len(), log.len(), "the log repeats an event id");
    let mut seen = HashSet::new();
    let mut last_sequence: HashMap<String, i64> = HashMap::new();
    for message in received {
        let event = message.event();
        assert!(seen.insert(event.id), "event {} arrived twice", event.id);
        let logged = by_id
            .get(&event.id)
            .unwrap_or_else(|| panic!("event {} is not in the log", event.id));
        assert_eq!(
            event,
            CloudEvent::from_logged(logged),
            "the envelope of event {}",
            event.id
        );
        assert_eq!(message.subject, event.nats_subject(prefix));
        assert_eq!(
            message.msg_id.as_deref(),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(message.content_type.as_deref(), Some(CONTENT_TYPE));
        let key = format!("{}/{}", event.data.entity_type, event.data.entity_id);
        let previous = last_sequence
            .insert(key.clone(), event.sequence)
            .unwrap_or(0);
        assert_eq!(
            event.sequence,
            previous + 1,
            "{key}: sequence {} arrived after {previous}",
            event.sequence
        );
    }
    let missing: Vec<Uuid> = by_id
        .keys()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    assert!(missing.is_empty(), "events never arrived: {missing:?}");
    assert_eq!(received.len(), log.len());
}

// ---------------------------------------------------------------------------------------------
// A nats-server of the test's own
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Commands and the log
// ---------------------------------------------------------------------------------------------

/// Task commands as one user, through `AggregateStore::execute`.
#[derive(Clone)]
pub struct Workload {
    /// The store written to.
    pub store: Store,
    tasks: AggregateStore<Task, Store>,
    /// The acting user.
    pub user: Uuid,
}

/// The commands every scripted task goes through, in order (one event each).
pub const SCRIPT_LEN: usize = 6;

impl Workload {
    /// Commands as a new user on `store`.
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            tasks: AggregateStore::new(store.clone()),
            user: Uuid::now_v7(),
        }
    }

    /// Executes `command` on task `task_id`; returns the position of its event.
    pub async fn exec(&self, task_id: Uuid, command: TaskCommand) -> Position {
        let what = format!("{command:?}");
        let metadata = HashMap::from([
            (meta::USER_ID.to_string(), self.user.to_string()),
            (meta::COMMAND_ID.to_string(), Uuid::now_v7().to_string()),
        ]);
        let outcome = self
            .tasks
            .execute(
                &task_id.to_string(),
                Issued::new(self.user, chrono::Utc::now(), command),
                &(),
                metadata,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what} on task {task_id}: {e:?}"));
        outcome
            .receipt
            .position
            .expect("the command wrote an event")
    }

    /// Step `step` (0-based, `< SCRIPT_LEN`) of the script of task `task_id`: create, update,
    /// complete, reopen, complete, delete.
    pub fn script(task_id: Uuid, step: usize) -> TaskCommand {
        match step {
            0 => TaskCommand::Create(NewTask {
                task_id,
                title: format!("task {task_id}"),
                tags: vec!["bus".into()],
                ..NewTask::default()
            }),
            1 => TaskCommand::Update(TaskChanges {
                title: Some("renamed".into()),
                priority: Some(2),
                ..TaskChanges::default()
            }),
            2 | 4 => TaskCommand::Complete,
            3 => TaskCommand::Reopen,
            5 => TaskCommand::Delete,
            _ => panic!("the script has {SCRIPT_LEN} steps"),
        }
    }

    /// Runs the whole script on `tasks` new tasks, interleaved round by round; returns the
    /// position of the last event.
    pub async fn run(&self, tasks: usize) -> Position {
        let ids: Vec<Uuid> = (0..tasks).map(|_| Uuid::now_v7()).collect();
        let mut last = Position::START;
        for step in 0..SCRIPT_LEN {
            for id in &ids {
                last = self.exec(*id, Self::script(*id, step)).await;
            }
        }
        last
    }
}

/// The whole log, once the reader can see `up_to`.
pub async fn log_up_to(store: &Store, up_to: Position) -> Vec<LoggedEvent> {
    store::testing::wait_for_head(store, up_to).await;
    let log = store
        .read_after(Position::START, 100_000)
        .await
        .expect("read the log");
    assert!(log.last().is_some_and(|e| e.position >= up_to));
    log
}

/// Waits (bounded) until a relay's status satisfies `ready`; returns that status.
pub async fn wait_status(
    status: &mut watch::Receiver<RelayStatus>,
    what: &str,
    ready: impl FnMut(&RelayStatus) -> bool,
) -> RelayStatus {
    let outcome = timeout(WAIT, status.wait_for(ready))
        .await
        .map(|r| r.map(|s| s.clone()));
    match outcome {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!(
            "the relay ended while waiting for {what}: {:?}",
            *status.borrow()
        ),
        Err(_) => panic!("waited {WAIT:?} for {what} in vain: {:?}", *status.borrow()),
    }
}

/// Waits (bounded) until `relay` has published and checkpointed everything up to `position`.
pub async fn wait_caught_up(relay: &RelayHandle, position: Position) -> RelayStatus {
    let mut status = relay.status();
    wait_status(&mut status, &format!("checkpoint {position}"), |s| {
        s.checkpoint >= position
    })
    .await
}
