//! gRPC clients of the server child, and the writer loop several workloads share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_common::Auth;
use proto::v1::task_commands_client::TaskCommandsClient;
use proto::v1::task_queries_client::TaskQueriesClient;
use proto::v1::{CommandAck, CompleteTaskRequest, CreateTaskRequest};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use uuid::Uuid;

use crate::env::SECRET;

/// Sends `authorization: Bearer <token>` on every request.
#[derive(Clone)]
pub struct Bearer(AsciiMetadataValue);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// TaskCommands as one user.
pub type Commands = TaskCommandsClient<InterceptedService<Channel, Bearer>>;
/// TaskQueries as one user.
pub type Queries = TaskQueriesClient<InterceptedService<Channel, Bearer>>;

/// One user's connection to the server (its own HTTP/2 connection, like a real client).
#[derive(Clone)]
pub struct UserClient {
    /// The user.
    pub user: Uuid,
    /// Its commands.
    pub commands: Commands,
    /// Its queries.
    pub queries: Queries,
}

impl UserClient {
    /// Connects a new user to `addr`.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<UserClient> {
        let user = Uuid::now_v7();
        let token = Auth::new(SECRET.as_bytes()).issue(user, Duration::from_secs(24 * 3600));
        let bearer = Bearer(format!("Bearer {token}").parse()?);
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        Ok(UserClient {
            user,
            commands: TaskCommandsClient::with_interceptor(channel.clone(), bearer.clone()),
            queries: TaskQueriesClient::with_interceptor(channel, bearer),
        })
    }

    /// CreateTask of a fresh task (with a command id: idempotent, as real clients send it).
    pub async fn create_task(&mut self, title: &str) -> anyhow::Result<CommandAck> {
        let request = CreateTaskRequest {
            command_id: Uuid::now_v7().to_string(),
            task_id: Uuid::now_v7().to_string(),
            title: title.to_string(),
            ..Default::default()
        };
        Ok(self.commands.create_task(request).await?.into_inner())
    }

    /// CompleteTask of `task_id`. `force`: a fresh task has no subtasks, so the subtask check
    /// (which waits for the task_list read model) is skipped, as a client that knows may do.
    pub async fn complete_task(&mut self, task_id: &str) -> anyhow::Result<CommandAck> {
        let request = CompleteTaskRequest {
            command_id: Uuid::now_v7().to_string(),
            task_id: task_id.to_string(),
            force: true,
            consistency_token: String::new(),
        };
        Ok(self.commands.complete_task(request).await?.into_inner())
    }
}

/// Called with every acknowledged command and the instant its ack arrived.
pub type OnAck = Arc<dyn Fn(&CommandAck, Instant) + Send + Sync>;

/// What a group of writers did.
pub struct Written {
    /// Every command's latency.
    pub latencies: Vec<Duration>,
    /// Wall time of the phase.
    pub elapsed: Duration,
}

/// `writers` users, each on its own connection, issuing CreateTask then CompleteTask on fresh
/// tasks for `duration`; every command is timed until its ack (sent after commit).
pub async fn run_writers(
    addr: SocketAddr,
    writers: usize,
    duration: Duration,
    on_ack: Option<OnAck>,
) -> anyhow::Result<Written> {
    let mut clients = Vec::with_capacity(writers);
    for _ in 0..writers {
        clients.push(UserClient::connect(addr).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let on_ack = on_ack.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let note = |ack: &CommandAck| {
                    if let Some(f) = &on_ack {
                        f(ack, Instant::now());
                    }
                };
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let created = client.create_task("benchmark task").await?;
                    latencies.push(t.elapsed());
                    note(&created);
                    let t = Instant::now();
                    let completed = client.complete_task(&created.aggregate_id).await?;
                    latencies.push(t.elapsed());
                    note(&completed);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Written {
        latencies,
        elapsed: started.elapsed(),
    })
}
