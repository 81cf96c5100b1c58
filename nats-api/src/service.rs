//! The async-nats `service` hosting every endpoint: configuration, start, stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api_common::Auth;
use async_nats::Client;
use async_nats::service::{Service, ServiceExt};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::codec::{MethodCodec, pool};
use crate::handler::{Handler, Health, Metrics, Rpc};
use crate::metrics::Counters;
use crate::serve::Serve;
use crate::{DEFAULT_PREFIX, DEFAULT_SERVICE_NAME, Error, Route, SystemStatus};

/// The health endpoint's subject, relative to the prefix.
const HEALTH: &str = "system.health";
/// The metrics endpoint's subject, relative to the prefix.
const METRICS: &str = "system.metrics";
/// How long [`NatsApi::stop`] lets in-flight requests finish.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// How the NATS API presents itself.
#[derive(Debug, Clone)]
pub struct Config {
    /// The first subject token(s) of every endpoint (`lifeos` → `lifeos.commands.tasks.create`).
    pub prefix: String,
    /// The service name in `$SRV` discovery (`A-Z a-z 0-9 - _`).
    pub service_name: String,
    /// The queue group: processes in the same group share the requests, each answered once.
    pub queue_group: String,
    /// The description in `$SRV.INFO`.
    pub description: String,
    /// Requests handled concurrently per process; more wait in NATS's buffer.
    pub max_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_string(),
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            queue_group: DEFAULT_PREFIX.to_string(),
            description: "LifeOS commands and queries over NATS request/reply (JSON bodies in the \
                          protobuf JSON mapping; header Authorization: Bearer <JWT>)"
                .to_string(),
            max_in_flight: 256,
        }
    }
}

impl Config {
    fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Config(what));
        let token_ok = |t: &str| {
            !t.is_empty()
                && !t
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '>'))
        };
        if !self.prefix.split('.').all(token_ok) {
            return bad(format!("prefix {:?} is not a literal subject", self.prefix));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        };
        if !name_ok(&self.service_name) {
            return bad(format!(
                "service name {:?} must be A-Z a-z 0-9 - _",
                self.service_name
            ));
        }
        if !token_ok(&self.queue_group) || self.queue_group.contains('.') {
            return bad(format!("queue group {:?} is not a token", self.queue_group));
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1".to_string());
        }
        Ok(())
    }
}

/// Assembles a [`NatsApi`]: configuration, and the routes of every pillar.
pub struct Builder {
    client: Client,
    auth: Auth,
    status: Arc<dyn SystemStatus>,
    config: Config,
    routes: Vec<Route>,
}

impl Builder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the subject prefix (default `lifeos`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// Adds a pillar's routes.
    pub fn routes(mut self, routes: impl IntoIterator<Item = Route>) -> Self {
        self.routes.extend(routes);
        self
    }

    /// Registers the service and its endpoints on NATS and starts answering.
    pub async fn start(self) -> Result<NatsApi, Error> {
        let Builder {
            client,
            auth,
            status,
            config,
            routes,
        } = self;
        config.validate()?;
        let pool = pool()?;

        let (endpoints, counters) = endpoints(&pool, &auth, status, routes)?;

        // $SRV.STATS: our counters per endpoint (replies carry errors in the body, so the
        // built-in error count stays 0)
        let names: HashMap<String, String> = endpoints
            .keys()
            .map(|s| (endpoint_name(s), s.clone()))
            .collect();
        let stats_counters = counters.clone();
        let service = client
            .service_builder()
            .description(&config.description)
            .queue_group(&config.queue_group)
            .metadata(HashMap::from([(
                "prefix".to_string(),
                config.prefix.clone(),
            )]))
            .stats_handler(move |name, _| {
                names
                    .get(&name)
                    .and_then(|s| stats_counters.endpoint(s))
                    .map_or(Value::Null, |c| c.snapshot())
            })
            .start(&config.service_name, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(Error::Nats)?;

        let limit = Arc::new(Semaphore::new(config.max_in_flight));
        let (stop, stopped) = watch::channel(false);
        let mut loops = Vec::new();
        let mut subjects = Vec::new();
        for (subject, Spec { handler, metadata }) in endpoints {
            let full = format!("{}.{subject}", config.prefix);
            let endpoint = match service
                .endpoint_builder()
                .name(endpoint_name(&subject))
                .metadata(metadata)
                .add(&full)
                .await
            {
                Ok(e) => e,
                Err(e) => {
                    let _ = service.stop().await;
                    loops.iter().for_each(JoinHandle::abort);
                    return Err(Error::Nats(e));
                }
            };
            let serve = Serve {
                handler,
                counters: counters.clone(),
                subject: subject.clone(),
                limit: limit.clone(),
                stop: stopped.clone(),
            };
            loops.push(tokio::spawn(serve.run(endpoint)));
            subjects.push(full);
        }
        // the server has every subscription before anyone is told the API is up (when NATS is
        // down, the client subscribes on connection: starting must not wait for that)
        if let Err(e) = subscriptions_registered(&client).await {
            let _ = service.stop().await;
            loops.iter().for_each(JoinHandle::abort);
            return Err(Error::Nats(e));
        }
        let id = service.info().await.id;
        tracing::info!(
            service = config.service_name,
            id,
            prefix = config.prefix,
            queue_group = config.queue_group,
            endpoints = subjects.len(),
            "NATS API started"
        );
        Ok(NatsApi {
            client,
            service: Some(service),
            stop,
            loops,
            id,
            config,
            subjects,
            counters,
        })
    }
}

/// How long a flush may take before it is given up (the connection dropped meanwhile).
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Waits until the NATS server has processed everything `client` sent so far, its
/// subscriptions included (`Client::flush` only writes them to the socket: a request from
/// another connection could still find no responder). A message to a fresh inbox comes back
/// once the server got that far. Skipped when the client is not connected (NATS down at start:
/// it subscribes on connection, and starting must not wait for that).
async fn subscriptions_registered(client: &Client) -> Result<(), async_nats::Error> {
    if client.connection_state() != async_nats::connection::State::Connected {
        tracing::warn!(
            state = ?client.connection_state(),
            "NATS is not connected: the API answers once it is"
        );
        return Ok(());
    }
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await?;
    client.publish(inbox, Default::default()).await?;
    client.flush().await?;
    match tokio::time::timeout(FLUSH_LIMIT, echo.next()).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err("the NATS connection closed while subscribing".into()),
        Err(_) => tracing::warn!(
            "NATS did not echo within {FLUSH_LIMIT:?}: the API answers once it has subscribed"
        ),
    }
    Ok(())
}

/// Flushes `client` when it is connected. A client that is not (NATS down at start, or
/// reconnecting) would only answer once it is connected again, which may be never: it sends
/// its subscriptions on (re)connection anyway, and replies for a gone connection are lost
/// either way.
async fn flush_if_connected(client: &Client) -> Result<(), async_nats::client::FlushError> {
    if client.connection_state() != async_nats::connection::State::Connected {
        tracing::warn!(
            state = ?client.connection_state(),
            "NATS is not connected: not waiting for a flush"
        );
        return Ok(());
    }
    match tokio::time::timeout(FLUSH_LIMIT, client.flush()).await {
        Ok(flushed) => flushed,
        Err(_) => {
            tracing::warn!("NATS flush did not complete within {FLUSH_LIMIT:?}; going on");
            Ok(())
        }
    }
}

/// The `$SRV` endpoint name of a relative subject (`commands.tasks.create` →
/// `commands-tasks-create`).
fn endpoint_name(subject: &str) -> String {
    subject.replace('.', "-")
}

/// What one endpoint runs, and what `$SRV.INFO` says about it.
struct Spec {
    handler: Arc<dyn Handler>,
    metadata: HashMap<String, String>,
}

/// Every endpoint (the routes, then `system.health` and `system.metrics`) by relative subject,
/// and their counters.
fn endpoints(
    pool: &prost_reflect::DescriptorPool,
    auth: &Auth,
    status: Arc<dyn SystemStatus>,
    routes: Vec<Route>,
) -> Result<(BTreeMap<String, Spec>, Arc<Counters>), Error> {
    let mut endpoints = BTreeMap::new();
    let mut add = |subject: String, spec: Spec| match endpoints.insert(subject.clone(), spec) {
        Some(_) => Err(Error::DuplicateSubject(subject)),
        None => Ok(()),
    };
    let mut subjects = vec![HEALTH.to_string(), METRICS.to_string()];
    for route in routes {
        let codec = MethodCodec::for_method(pool, &route.method)?;
        let metadata = HashMap::from([
            ("method".to_string(), route.method.clone()),
            ("request".to_string(), codec.request_name().to_string()),
            ("response".to_string(), codec.response_name().to_string()),
            (
                "auth".to_string(),
                "Authorization: Bearer <JWT>".to_string(),
            ),
        ]);
        let handler = Arc::new(Rpc {
            auth: auth.clone(),
            codec,
            invoke: route.invoke,
        });
        subjects.push(route.subject.clone());
        add(route.subject, Spec { handler, metadata })?;
    }
    let counters = Arc::new(Counters::new(subjects.iter().map(String::as_str)));
    let no_auth = || HashMap::from([("auth".to_string(), "none".to_string())]);
    let health = Spec {
        handler: Arc::new(Health(status.clone())),
        metadata: no_auth(),
    };
    add(HEALTH.to_string(), health)?;
    let metrics = Metrics {
        status,
        counters: counters.clone(),
    };
    add(
        METRICS.to_string(),
        Spec {
            handler: Arc::new(metrics),
            metadata: no_auth(),
        },
    )?;
    Ok((endpoints, counters))
}

/// The NATS API, answering until [`NatsApi::stop`].
pub struct NatsApi {
    client: Client,
    service: Option<Service>,
    // tells the request loops to take no more requests (see `Serve::run`)
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    id: String,
    config: Config,
    subjects: Vec<String>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for NatsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsApi")
            .field("id", &self.id)
            .field("config", &self.config)
            .field("subjects", &self.subjects)
            .finish_non_exhaustive()
    }
}

impl NatsApi {
    /// A builder for a NATS API on `client`, verifying tokens with `auth`, answering
    /// `system.*` from `status`; add routes with [`Builder::routes`].
    pub fn builder(client: Client, auth: Auth, status: Arc<dyn SystemStatus>) -> Builder {
        Builder {
            client,
            auth,
            status,
            config: Config::default(),
            routes: Vec::new(),
        }
    }

    /// This instance's id in `$SRV` discovery (`$SRV.PING.<name>.<id>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The full subjects it answers, sorted.
    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }

    /// This instance's counters (as under `nats_api` in `system.metrics`).
    pub fn counters(&self) -> Value {
        self.counters.snapshot()
    }

    /// Leaves `$SRV` discovery, unsubscribes every endpoint, answers the requests already
    /// received (for at most 30 s), and flushes the replies.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(service) = self.service.take() {
            service.stop().await.map_err(Error::Nats)?;
        }
        // the endpoints' streams end only once the connection handler has processed their
        // unsubscription, which waits for NATS when it is unreachable: the loops stop on their
        // own after the requests already received
        let _ = self.stop.send(true);
        let loops = std::mem::take(&mut self.loops);
        let aborts: Vec<_> = loops.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(STOP_LIMIT, futures::future::join_all(loops))
            .await
            .is_err()
        {
            tracing::warn!("NATS API: requests still running after {STOP_LIMIT:?}; abandoned");
            aborts.iter().for_each(|a| a.abort());
        }
        if let Err(e) = flush_if_connected(&self.client).await {
            tracing::warn!(error = %e, "NATS API: cannot flush the last replies");
        }
        tracing::info!(id = self.id, "NATS API stopped");
        Ok(())
    }
}

impl Drop for NatsApi {
    /// Without [`NatsApi::stop`]: leaves discovery and stops answering at once (best effort).
    fn drop(&mut self) {
        self.loops.iter().for_each(JoinHandle::abort);
        if let Some(service) = self.service.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(service.stop());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        assert!(Config::default().validate().is_ok());
        for tweak in [
            |c: &mut Config| c.prefix = "lifeos.>".into(),
            |c: &mut Config| c.prefix = "a..b".into(),
            |c: &mut Config| c.prefix = "a b".into(),
            |c: &mut Config| c.service_name = "life.os".into(),
            |c: &mut Config| c.queue_group = "".into(),
            |c: &mut Config| c.max_in_flight = 0,
        ] {
            let mut c = Config::default();
            tweak(&mut c);
            assert!(matches!(c.validate(), Err(Error::Config(_))), "{c:?}");
        }
        let nested = Config {
            prefix: "test.x1".into(),
            ..Config::default()
        };
        assert!(nested.validate().is_ok());
    }

    #[test]
    fn endpoint_names_are_discovery_safe() {
        assert_eq!(
            endpoint_name("commands.tasks.create"),
            "commands-tasks-create"
        );
    }
}
