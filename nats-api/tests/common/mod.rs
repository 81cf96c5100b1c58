//! Harness of the NATS API tests: the real Tasks services on a fresh store (SQLite in a temp dir,
//! or a fresh PostgreSQL database), the NATS API on the real NATS at 127.0.0.1:4222 under a
//! random subject prefix and service name (so parallel tests never answer each other), and a
//! client that sends requests with or without a bearer token.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::sync::Arc;
use std::time::Duration;

use aggregates::task::Task;
use api_common::Auth;
use async_nats::HeaderMap;
use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};
use command_api::TaskCommandService;
use futures::future::BoxFuture;
use nats_api::{Config, ErrorBody, NatsApi, SystemStatus};
use projections::task_list::TaskList;
use projections::{Freshness, ProjectionRunner, ReadModels, RunnerHandle};
use query_api::{ReadYourWrites, TaskQueryService};
use serde_json::{Value, json};
use store::{AggregateStore, Store};
use tempfile::TempDir;
use uuid::Uuid;

/// The variable naming the NATS server of the tests.
pub const NATS_URL_ENV: &str = "LIFEOS_TEST_NATS_URL";
/// The NATS server used when [`NATS_URL_ENV`] is not set.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// The JWT secret of the test services.
pub const SECRET: &[u8] = b"nats-api integration tests: a secret of 32+ bytes";

/// Which store the services run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A client of the test NATS server; `None` (after a "skipping" line) when it is unreachable
/// outside CI. Panics in CI: CI must not pass by skipping.
pub async fn nats() -> Option<async_nats::Client> {
    let url = std::env::var(NATS_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NATS_URL.to_string());
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(15)))
        .connect(url.as_str());
    let error = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(client)) => return Some(client),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    if in_ci() {
        panic!("NATS required in CI: cannot connect to {url} ({error}); set {NATS_URL_ENV}");
    }
    eprintln!("skipping: NATS not reachable at {url} ({error}); set {NATS_URL_ENV}");
    None
}

/// A [`SystemStatus`] answering fixed JSON.
pub struct FixedStatus {
    /// Answered on `system.health`.
    pub health: Value,
    /// Answered (with the counters) on `system.metrics`.
    pub metrics: Value,
}

impl SystemStatus for FixedStatus {
    fn health(&self) -> BoxFuture<'_, Value> {
        Box::pin(async move { self.health.clone() })
    }

    fn metrics(&self) -> BoxFuture<'_, Value> {
        Box::pin(async move { self.metrics.clone() })
    }
}

/// The health JSON of the test provider.
pub fn test_health() -> Value {
    json!({"status": "ok", "store": {"backend": "test", "up": true}, "relay": {"lag": 0}})
}

/// The metrics JSON of the test provider.
pub fn test_metrics() -> Value {
    json!({"commands": 7, "events": 11, "projection_lag": {"task_list": 0}})
}

/// One reply: headers and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub headers: Option<HeaderMap>,
    pub body: Value,
}

impl Reply {
    /// The `Nats-Service-Error-Code` header, if any.
    pub fn error_code(&self) -> Option<String> {
        self.header(NATS_SERVICE_ERROR_CODE)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .as_ref()?
            .get(name)
            .map(|v| v.as_str().to_string())
    }

    /// The body of a successful reply (panics on an error reply).
    pub fn ok(&self) -> &Value {
        assert!(
            self.error_code().is_none(),
            "expected success, got error headers {:?} and body {}",
            self.headers,
            self.body
        );
        &self.body
    }

    /// The error body, asserting both headers agree with it and the code is `code`
    /// (`numeric` = the gRPC code number).
    pub fn error(&self, code: &str, numeric: i32) -> ErrorBody {
        let body: ErrorBody = serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("not an error body ({e}): {}", self.body));
        assert_eq!(body.code, code, "error body {}", self.body);
        assert_eq!(
            self.error_code().as_deref(),
            Some(numeric.to_string().as_str()),
            "Nats-Service-Error-Code of {}",
            self.body
        );
        let message = self
            .header(NATS_SERVICE_ERROR)
            .expect("Nats-Service-Error header");
        assert!(!message.is_empty(), "Nats-Service-Error says what is wrong");
        assert!(
            body.message.starts_with(message.trim_end()),
            "header {message:?} vs body {:?}",
            body.message
        );
        body
    }
}

/// The Tasks services on a fresh store, the projection runner, and a NATS API in front of them.
pub struct Harness {
    pub backend: Backend,
    pub client: async_nats::Client,
    pub auth: Auth,
    pub store: Store,
    pub config: Config,
    pub status: Arc<FixedStatus>,
    pub api: Option<NatsApi>,
    commands: TaskCommandService,
    queries: TaskQueryService,
    runner: Option<RunnerHandle>,
    _dir: TempDir,
}

impl Harness {
    /// Starts everything on `backend`; `None` when NATS (or PostgreSQL) is unreachable outside
    /// CI: the test should return early.
    pub async fn start(backend: Backend) -> Option<Harness> {
        let client = nats().await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = match backend {
            Backend::Sqlite => store::testing::sqlite_store(dir.path()).await,
            Backend::Postgres => store::testing::fresh_postgres_store().await?,
        };
        let models = ReadModels::new(store.clone());
        let task_list: Arc<dyn projections::Projection> = Arc::new(TaskList);
        let runner = ProjectionRunner::new(task_list.clone(), models.clone()).spawn();
        let freshness = Freshness::new(models.clone(), task_list, Some(runner.progress.clone()));
        let commands = TaskCommandService::new(AggregateStore::<Task, _>::new(store.clone()));
        let queries = TaskQueryService::new(
            models,
            ReadYourWrites::new(freshness, Duration::from_secs(5)),
        );
        let unique = Uuid::now_v7().simple().to_string();
        let config = Config {
            prefix: format!("lifeos-test-{unique}"),
            service_name: format!("lifeos-test-{unique}"),
            ..Config::default()
        };
        let status = Arc::new(FixedStatus {
            health: test_health(),
            metrics: test_metrics(),
        });
        let mut harness = Harness {
            backend,
            client,
            auth: Auth::new(SECRET),
            store,
            config,
            status,
            api: None,
            commands,
            queries,
            runner: Some(runner),
            _dir: dir,
        };
        harness.api = Some(harness.start_instance().await);
        Some(harness)
    }

    /// Another NATS API instance on the same services, prefix, name and queue group (as another
    /// server process would be).
    pub async fn start_instance(&self) -> NatsApi {
        NatsApi::builder(self.client.clone(), self.auth.clone(), self.status.clone())
            .config(self.config.clone())
            .routes(nats_api::tasks::routes(
                self.commands.clone(),
                self.queries.clone(),
            ))
            .start()
            .await
            .expect("NATS API starts")
    }

    /// The Tasks routes over this harness's services.
    pub fn routes(&self) -> Vec<nats_api::Route> {
        nats_api::tasks::routes(self.commands.clone(), self.queries.clone())
    }

    /// The running API instance.
    pub fn api(&self) -> &NatsApi {
        self.api.as_ref().expect("API running")
    }

    /// The full subject of `relative` (e.g. `commands.tasks.create`).
    pub fn subject(&self, relative: &str) -> String {
        format!("{}.{relative}", self.config.prefix)
    }

    /// A token for `user`, valid for an hour.
    pub fn token(&self, user: Uuid) -> String {
        self.auth.issue(user, Duration::from_secs(3600))
    }

    /// Sends `body` to `relative` with `headers` and waits for the reply.
    pub async fn call_with(&self, relative: &str, headers: HeaderMap, body: &str) -> Reply {
        let message = self
            .client
            .request_with_headers(self.subject(relative), headers, body.to_string().into())
            .await
            .unwrap_or_else(|e| panic!("request to {relative}: {e}"));
        let body = serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
            panic!(
                "reply of {relative} is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&message.payload)
            )
        });
        Reply {
            headers: message.headers,
            body,
        }
    }

    /// Sends `body` as `user` (header `Authorization: Bearer <token>`).
    pub async fn call(&self, relative: &str, user: Uuid, body: &Value) -> Reply {
        self.call_with(relative, bearer(&self.token(user)), &body.to_string())
            .await
    }

    /// Creates a task titled `title` as `user`, returning the ack.
    pub async fn create(&self, user: Uuid, title: &str) -> Value {
        self.call("commands.tasks.create", user, &json!({"title": title}))
            .await
            .ok()
            .clone()
    }

    /// Lists `user`'s open tasks, waiting for `token`.
    pub async fn list(&self, user: Uuid, token: &str) -> Value {
        self.call(
            "queries.tasks.list",
            user,
            &json!({"consistencyToken": token}),
        )
        .await
        .ok()
        .clone()
    }

    /// Stops the API, the runner and the store (dropping a PostgreSQL test database).
    pub async fn stop(mut self) {
        if let Some(api) = self.api.take() {
            tokio::time::timeout(Duration::from_secs(30), api.stop())
                .await
                .expect("API stopped in time")
                .expect("API stopped cleanly");
        }
        if let Some(runner) = self.runner.take() {
            runner
                .stop()
                .await
                .expect("projection runner stopped cleanly");
        }
        store::testing::drop_postgres_store(self.store.clone()).await;
    }
}

/// Headers with `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {token}").as_str());
    headers
}
