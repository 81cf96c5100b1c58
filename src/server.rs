//! `lifeos serve`: migrations, the projection runner and the gRPC API in one process.

use std::net::SocketAddr;

use aggregates::task::Task;
use anyhow::Context;
use api_common::Auth;
use command_api::TaskCommandService;
use cqrs_es::Aggregate;
use projections::Projection as _;
use projections::task_list::TaskList;
use projections::{Freshness, ProjectionRunner, ReadModels};
use proto::v1::admin_server::AdminServer;
use proto::v1::history_server::HistoryServer;
use proto::v1::task_commands_server::TaskCommandsServer;
use proto::v1::task_queries_server::TaskQueriesServer;
use query_api::{AdminService, HistoryService, ReadYourWrites, TaskQueryService};
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
    let runners: Vec<_> = projections::all()
        .into_iter()
        .map(|p| (p.clone(), ProjectionRunner::new(p, models.clone()).spawn()))
        .collect();
    let freshness_of = |name: &str| {
        let (projection, runner) = runners
            .iter()
            .find(|(p, _)| p.name() == name)
            .expect("every projection has a runner");
        Freshness::new(
            models.clone(),
            projection.clone(),
            Some(runner.progress.clone()),
        )
    };
    let freshness = freshness_of(TaskList.name());

    let snapshots =
        |kind: &str| SnapshotPolicy::every(config.snapshots.get(kind).copied().unwrap_or(0));
    let task_commands = TaskCommandService::new(
        AggregateStore::<Task, _>::new(store.clone()).with_snapshots(snapshots(Task::TYPE)),
    );
    let task_queries = TaskQueryService::new(
        models.clone(),
        ReadYourWrites::new(freshness, config.consistency_wait),
    );
    let history = HistoryService::new(store.clone());
    let admin = AdminService::new(models);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<TaskCommandsServer<TaskCommandService>>()
        .await;
    health_reporter
        .set_serving::<TaskQueriesServer<TaskQueryService>>()
        .await;
    health_reporter
        .set_serving::<HistoryServer<HistoryService>>()
        .await;
    health_reporter
        .set_serving::<AdminServer<AdminService>>()
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
            .add_service(TaskQueriesServer::with_interceptor(
                task_queries,
                auth.clone(),
            ))
            .add_service(HistoryServer::with_interceptor(history, auth.clone()))
            .add_service(AdminServer::with_interceptor(admin, auth))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = signal.await;
            })
            .await;
        health_reporter
            .set_not_serving::<TaskCommandsServer<TaskCommandService>>()
            .await;
        let mut stopped = Ok(());
        for (projection, runner) in runners {
            if let Err(err) = runner.stop().await {
                tracing::error!(projection = projection.name(), error = %err, "projection runner had stopped");
                stopped = Err(err);
            }
        }
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
