//! `lifeos serve`: migrations, the projection runner and the gRPC API in one process.

use std::net::SocketAddr;
use std::sync::Arc;

use aggregates::task::Task;
use anyhow::Context;
use api_common::Auth;
use command_api::TaskCommandService;
use cqrs_es::Aggregate;
use projections::task_list::TaskList;
use projections::{Freshness, ProjectionRunner, ReadModels};
use proto::v1::task_commands_server::TaskCommandsServer;
use proto::v1::task_queries_server::TaskQueriesServer;
use query_api::{ReadYourWrites, TaskQueryService};
use store::{AggregateStore, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::ServerConfig;

/// A server started by [`start`].
pub struct RunningServer {
    addr: SocketAddr,
    backend: &'static str,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Stops accepting, lets in-flight RPCs finish, stops the projection runner after its batch
    /// (checkpoint saved) and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task panicked")?
    }
}

/// Opens and migrates the store, starts the projection runner and serves gRPC on
/// `config.listen` until [`RunningServer::shutdown`].
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let secret = config.store.jwt_secret(config.jwt_secret.as_deref())?;
    let auth = Auth::new(secret.as_bytes());
    let store = config.store.open_migrated().await?;
    let backend = store.backend_name();

    let models = ReadModels::new(store.clone());
    let task_list: Arc<dyn projections::Projection> = Arc::new(TaskList);
    let runner = ProjectionRunner::new(task_list.clone(), models.clone()).spawn();
    let freshness = Freshness::new(models.clone(), task_list, Some(runner.progress.clone()));

    let snapshots =
        |kind: &str| SnapshotPolicy::every(config.snapshots.get(kind).copied().unwrap_or(0));
    let task_commands = TaskCommandService::new(
        AggregateStore::<Task, _>::new(store.clone()).with_snapshots(snapshots(Task::TYPE)),
    );
    let task_queries = TaskQueryService::new(
        models,
        ReadYourWrites::new(freshness, config.consistency_wait),
    );

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<TaskCommandsServer<TaskCommandService>>()
        .await;
    health_reporter
        .set_serving::<TaskQueriesServer<TaskQueryService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend, "lifeos listening on {addr}");

    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = Server::builder()
            .add_service(health)
            .add_service(reflection)
            .add_service(TaskCommandsServer::with_interceptor(
                task_commands,
                auth.clone(),
            ))
            .add_service(TaskQueriesServer::with_interceptor(task_queries, auth))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = signal.await;
            })
            .await;
        health_reporter
            .set_not_serving::<TaskCommandsServer<TaskCommandService>>()
            .await;
        let stopped = runner.stop().await;
        store.close().await;
        tracing::info!("lifeos stopped");
        served.context("gRPC server failed")?;
        stopped.context("projection runner failed")?;
        Ok(())
    });
    Ok(RunningServer {
        addr,
        backend,
        shutdown,
        task,
    })
}
