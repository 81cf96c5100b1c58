//! `lifeos serve`: migrations, then the roles of this process (API, projection runners) behind
//! one gRPC listener.

use std::net::SocketAddr;
use std::sync::Arc;

use bus::{
    CloudEvent, InProcessBus, JetStreamConfig, JetStreamPublisher, Publisher, Relay, RelayHandle,
    RelayStatus,
};

use anyhow::Context;
use api_common::Auth;
use projections::{Freshness, ProjectionRunner, ReadModels};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::ServerConfig;
use crate::api::ApiServices;
use crate::status::EngineStatus;

/// A server started by [`start`].
pub struct RunningServer {
    addr: SocketAddr,
    backend: &'static str,
    events: Option<InProcessBus>,
    relay: Option<watch::Receiver<RelayStatus>>,
    status: Arc<EngineStatus>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The in-process event bus (without NATS): every committed event as a CloudEvent, the
    /// same envelope NATS subscribers get. Subscribe before the events you want are relayed.
    pub fn events(&self) -> Option<tokio::sync::broadcast::Receiver<Arc<CloudEvent>>> {
        self.events.as_ref().map(InProcessBus::subscribe)
    }

    /// The status of this process's event relay (`None` without the relay role), updated on
    /// every state change and batch.
    pub fn relay_status(&self) -> Option<watch::Receiver<RelayStatus>> {
        self.relay.clone()
    }

    /// The health report `<prefix>.system.health` answers (store, projections, relay, NATS),
    /// read in process: also available without NATS, or while NATS is unreachable.
    pub async fn health(&self) -> serde_json::Value {
        nats_api::SystemStatus::health(self.status.as_ref()).await
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

/// Opens and migrates the store, starts what `config.roles` asks for (projection runners, the
/// API) and serves gRPC on `config.listen` (health and reflection always) until
/// [`RunningServer::shutdown`].
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let secret = config.store.jwt_secret(config.jwt_secret.as_deref())?;
    let auth = Auth::new(secret.as_bytes());
    let store = config.store.open_migrated().await?;
    let backend = store.backend_name();
    let models = ReadModels::new(store.clone());

    // projector: one runner per projection (standby when another process holds it)
    let runners: Vec<_> = if config.roles.projector {
        projections::all()
            .into_iter()
            .map(|p| (p.clone(), ProjectionRunner::new(p, models.clone()).spawn()))
            .collect()
    } else {
        Vec::new()
    };
    let freshness_of = |name: &str| {
        let projection = projections::by_name(name).expect("a known projection");
        let local = runners
            .iter()
            .find(|(p, _)| p.name() == name)
            .map(|(_, runner)| runner.progress.clone());
        Freshness::new(models.clone(), projection, local)
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;
    // the bus: NATS JetStream when configured, else in process
    let nats = match &config.nats_url {
        Some(url) => Some(connect_nats(url).await?),
        None => None,
    };
    let in_process = nats.is_none().then(InProcessBus::default);
    let relay = if config.roles.relay {
        let publisher: Arc<dyn Publisher> = match (&nats, &in_process) {
            (Some(client), _) => {
                let jetstream = Arc::new(JetStreamPublisher::new(
                    client.clone(),
                    JetStreamConfig {
                        stream: format!(
                            "{}_EVENTS",
                            config.nats_prefix.to_uppercase().replace(['.', '-'], "_")
                        ),
                        subject_prefix: format!("{}.events", config.nats_prefix),
                        max_age: config.events_max_age,
                        ..JetStreamConfig::default()
                    },
                )?);
                // create the stream at start (subscribers may bind before the first event);
                // while NATS is down the relay ensures it before its first publish
                let ensure = jetstream.clone();
                tokio::spawn(async move {
                    if let Err(err) = ensure.ensure_stream().await {
                        tracing::warn!(error = %err, "event stream not created yet; the relay retries");
                    }
                });
                jetstream
            }
            (None, Some(bus)) => Arc::new(bus.clone()),
            (None, None) => unreachable!("an in-process bus exists without NATS"),
        };
        Some(
            Relay::new(store.clone(), publisher)
                .feed(models.feed().clone())
                .spawn(),
        )
    } else {
        None
    };

    let relay_status = relay.as_ref().map(RelayHandle::status);
    let status = EngineStatus::new(store.clone(), relay_status.clone(), nats.clone());

    let mut router = Server::builder()
        .add_service(health)
        .add_service(reflection);
    let mut nats_api = None;
    if config.roles.api {
        let api = ApiServices::new(
            &store,
            &config.snapshots,
            config.aggregate_cache,
            config.consistency_wait,
            freshness_of,
        );
        if let Some(client) = &nats {
            let routes =
                nats_api::tasks::routes(api.task_commands.clone(), api.task_queries.clone());
            nats_api = Some(
                nats_api::NatsApi::builder(client.clone(), auth.clone(), status.clone())
                    .prefix(config.nats_prefix.clone())
                    .routes(routes)
                    .routes(nats_api::preferences::routes(api.preferences.clone()))
                    .routes(nats_api::focus::routes(
                        api.focus_commands.clone(),
                        api.focus_queries.clone(),
                    ))
                    .routes(nats_api::calendar::routes(
                        api.calendar_commands.clone(),
                        api.calendar_queries.clone(),
                    ))
                    .routes(nats_api::habits::routes(
                        api.habit_commands.clone(),
                        api.habit_queries.clone(),
                    ))
                    .routes(nats_api::journal::routes(
                        api.journal_commands.clone(),
                        api.journal_queries.clone(),
                    ))
                    .routes(nats_api::finance::routes(
                        api.finance_commands.clone(),
                        api.finance_queries.clone(),
                    ))
                    .routes(nats_api::health::routes(
                        api.health_commands.clone(),
                        api.health_queries.clone(),
                    ))
                    .start()
                    .await
                    .context("NATS request/reply API")?,
            );
        }
        router = api.mount(router, &auth, &health_reporter).await;
    }

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend, roles = ?config.roles, "lifeos listening on {addr}");

    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = router
            // TCP_NODELAY: without it (tonic ignores its own setting for a given listener)
            // Nagle holds small responses back for the client's delayed ACK
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async {
                    let _ = signal.await;
                },
            )
            .await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        if let Some(api) = nats_api
            && let Err(err) = api.stop().await
        {
            tracing::warn!(error = %err, "NATS API did not stop cleanly");
        }
        let mut stopped = Ok(());
        for (projection, runner) in runners {
            if let Err(err) = runner.stop().await {
                tracing::error!(projection = projection.name(), error = %err, "projection runner had stopped");
                stopped = Err(err);
            }
        }
        if let Some(relay) = relay
            && let Err(err) = relay.stop().await
        {
            tracing::warn!(error = %err, "event relay did not stop cleanly");
        }
        // the last publishes out, unless NATS is unreachable: a flush would wait for it to
        // come back, and the shutdown with it (the log keeps what was not acknowledged)
        if let Some(client) = nats
            && client.connection_state() == bus::async_nats::connection::State::Connected
            && tokio::time::timeout(std::time::Duration::from_secs(5), client.flush())
                .await
                .is_err()
        {
            tracing::warn!("NATS flush did not complete within 5s");
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
        events: in_process,
        relay: relay_status,
        status,
        shutdown,
        task,
    })
}

/// Connects to NATS at `url`: at once when it answers, so that the NATS API has subscribed
/// before the server says it listens; else in the background (reconnecting for ever), so that a
/// server whose NATS is down still starts and takes commands (the log is the truth; the relay
/// catches up once NATS is back).
async fn connect_nats(url: &str) -> anyhow::Result<bus::async_nats::Client> {
    let options = || bus::async_nats::ConnectOptions::new().name("lifeos");
    match options().connect(url).await {
        Ok(client) => Ok(client),
        Err(err) => {
            tracing::warn!(
                url,
                error = %err,
                "NATS is unreachable; connecting in the background (commands keep working)"
            );
            options()
                .retry_on_initial_connect()
                .connect(url)
                .await
                .with_context(|| format!("NATS at {url}"))
        }
    }
}
