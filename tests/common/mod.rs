//! Harness of the black-box tests: the real `lifeos` server started in process on
//! `127.0.0.1:0`, over SQLite in a temp dir or over a fresh PostgreSQL database, with clients
//! that send `authorization: Bearer <token>` for any user.

#![allow(dead_code)] // each test binary uses its own part of the harness

/// Runs each `async fn case(Backend)` as two `#[tokio::test]`s, `$sqlite` and `$postgres`
/// (named explicitly: `macro_rules` cannot paste identifiers). Use with `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($sqlite:ident, $postgres:ident => $case:ident;)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                $case($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                $case($crate::common::Backend::Postgres).await;
            }
        )+
    };
}

/// Defines, for one pillar's generated clients, `type Commands` and `type Queries` (with the
/// caller's header) and `fn commands(&TestServer, Uuid)` / `fn queries(&TestServer, Uuid)`
/// (as that user) and `start_with_clients(Backend)` (a server, a new user and both clients),
/// e.g. `pillar_clients!(HabitCommandsClient, HabitQueriesClient);`.
#[allow(unused_macros)]
macro_rules! pillar_clients {
    ($commands:ident, $queries:ident) => {
        /// The pillar's command client with its caller's header.
        type Commands = $commands<$crate::common::Authorized>;
        /// The pillar's query client with its caller's header.
        type Queries = $queries<$crate::common::Authorized>;

        /// The pillar's commands as `user`.
        fn commands(server: &$crate::common::TestServer, user: ::uuid::Uuid) -> Commands {
            server.client(user, $commands::with_interceptor)
        }

        /// The pillar's queries as `user`.
        fn queries(server: &$crate::common::TestServer, user: ::uuid::Uuid) -> Queries {
            server.client(user, $queries::with_interceptor)
        }

        /// A server on `backend` (see `TestServer::start`), a new user, and the pillar's
        /// commands and queries as that user.
        async fn start_with_clients(
            backend: $crate::common::Backend,
        ) -> Option<($crate::common::TestServer, ::uuid::Uuid, Commands, Queries)> {
            let server = $crate::common::TestServer::start(backend).await?;
            let user = ::uuid::Uuid::now_v7();
            let (c, q) = (commands(&server, user), queries(&server, user));
            Some((server, user, c, q))
        }
    };
}

use std::net::SocketAddr;
use std::time::Duration;

use api_common::Auth;
use chrono::{DateTime, TimeZone, Utc};
use lifeos::{RunningServer, ServerConfig, StoreConfig};
use proto::v1::preferences_client::PreferencesClient;
use proto::v1::task_commands_client::TaskCommandsClient;
use proto::v1::task_queries_client::TaskQueriesClient;
use proto::v1::{
    CommandAck, CreateTaskRequest, ListTasksRequest, ListTasksResponse, SetPreferencesRequest,
};
use tempfile::TempDir;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

/// The JWT secret of PostgreSQL test servers (which must be given one explicitly).
pub const PG_SECRET: &str = "lifeos integration tests: a secret of 32+ bytes";

/// How long the harness waits for a server to start or stop before failing the test.
const START_STOP_LIMIT: Duration = Duration::from_secs(30);

/// Which store a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Puts one `authorization` header (or none) on every request of a client.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// `authorization: Bearer <token>`.
    pub fn token(token: &str) -> Self {
        Self::header(&format!("Bearer {token}"))
    }

    /// `authorization: <value>` verbatim.
    pub fn header(value: &str) -> Self {
        Self(Some(value.parse().expect("header value is ASCII")))
    }

    /// No `authorization` header at all.
    pub fn none() -> Self {
        Self(None)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel of a generated client that sends its caller's header.
pub type Authorized = InterceptedService<Channel, Bearer>;
/// A TaskCommands client with its caller's header.
pub type Commands = TaskCommandsClient<Authorized>;
/// A TaskQueries client with its caller's header.
pub type Queries = TaskQueriesClient<Authorized>;

/// A `lifeos` server running in this process, and what is needed to talk to it and restart it.
pub struct TestServer {
    backend: Backend,
    config: ServerConfig,
    secret: String,
    server: Option<RunningServer>,
    channel: Channel,
    // the SQLite store (and its jwt-secret) lives here; kept until the test ends
    dir: TempDir,
    // whether `stop` drops the PostgreSQL database (false for a sibling sharing it)
    owns_database: bool,
}

impl TestServer {
    /// Starts a server with the default configuration; `None` when the backend is PostgreSQL
    /// and no server is reachable outside CI (the test should return early).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {}).await
    }

    /// Like [`TestServer::start`], after `tweak` has adjusted the configuration.
    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(store::testing::fresh_postgres_url().await?),
        };
        let mut config = ServerConfig::new(StoreConfig {
            data_dir: dir.path().to_path_buf(),
            database_url,
        });
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        if backend == Backend::Postgres {
            config.jwt_secret = Some(PG_SECRET.to_string());
        }
        tweak(&mut config);
        // SQLite: generates <dir>/jwt-secret now; the server then reads the same file
        let secret = config
            .store
            .jwt_secret(config.jwt_secret.as_deref())
            .expect("JWT secret of the test server");
        let (server, channel) = launch(&config).await;
        Some(TestServer {
            backend,
            config,
            secret,
            server: Some(server),
            channel,
            dir,
            owns_database: true,
        })
    }

    /// Another server on the same store and secret (another process sharing a PostgreSQL
    /// database), after `tweak` has adjusted a copy of this one's configuration (e.g. its
    /// roles). Stop it before this one: only this one drops the database.
    pub async fn start_sibling(&self, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut config = self.config.clone();
        tweak(&mut config);
        let (server, channel) = launch(&config).await;
        TestServer {
            backend: self.backend,
            config,
            secret: self.secret.clone(),
            server: Some(server),
            channel,
            dir: tempfile::tempdir().expect("temp dir"),
            owns_database: false,
        }
    }

    /// The running server itself (its in-process bus, relay status, health).
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Shuts the server down (asserting a clean stop) without starting it again: the store
    /// stays, for [`TestServer::relaunch`].
    pub async fn shut_down(&mut self) {
        let server = self.server.take().expect("server running");
        stop(server).await;
    }

    /// Starts the server again after [`TestServer::shut_down`], on the same store and secret.
    pub async fn relaunch(&mut self) {
        assert!(self.server.is_none(), "the server is still running");
        let (server, channel) = launch(&self.config).await;
        self.server = Some(server);
        self.channel = channel;
    }

    /// The backend it runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The address it listens on now (a restart picks a new port).
    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("server running").local_addr()
    }

    /// The JWT secret it verifies tokens with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Issues and verifies tokens with the server's secret.
    pub fn auth(&self) -> Auth {
        Auth::new(self.secret.as_bytes())
    }

    /// A token for `user`, valid for an hour.
    pub fn token(&self, user: Uuid) -> String {
        self.auth().issue(user, Duration::from_secs(3600))
    }

    /// A connected channel without any header.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Any generated client as `user`, from its `with_interceptor` constructor:
    /// `server.client(user, PreferencesClient::with_interceptor)`.
    pub fn client<C>(&self, user: Uuid, with_interceptor: impl FnOnce(Channel, Bearer) -> C) -> C {
        with_interceptor(self.channel(), Bearer::token(&self.token(user)))
    }

    /// Sets `user`'s preferences through the Preferences service, asserting success.
    pub async fn set_preferences(&self, user: Uuid, request: SetPreferencesRequest) -> CommandAck {
        self.client(user, PreferencesClient::with_interceptor)
            .set_preferences(request)
            .await
            .expect("SetPreferences")
            .into_inner()
    }

    /// Sets `user`'s time zone and day start hour; returns the consistency token.
    pub async fn set_clock(&self, user: Uuid, timezone: &str, day_start_hour: u32) -> String {
        let request = SetPreferencesRequest {
            timezone: Some(timezone.into()),
            day_start_hour: Some(day_start_hour),
            ..Default::default()
        };
        self.set_preferences(user, request).await.consistency_token
    }

    /// TaskCommands as `user`.
    pub fn commands(&self, user: Uuid) -> Commands {
        self.commands_with(Bearer::token(&self.token(user)))
    }

    /// TaskQueries as `user`.
    pub fn queries(&self, user: Uuid) -> Queries {
        self.queries_with(Bearer::token(&self.token(user)))
    }

    /// TaskCommands sending `bearer`.
    pub fn commands_with(&self, bearer: Bearer) -> Commands {
        TaskCommandsClient::with_interceptor(self.channel(), bearer)
    }

    /// TaskQueries sending `bearer`.
    pub fn queries_with(&self, bearer: Bearer) -> Queries {
        TaskQueriesClient::with_interceptor(self.channel(), bearer)
    }

    /// Shuts the server down (asserting a clean stop) and starts it again on the same store
    /// and secret. Clients made before must be made again: the port changes.
    pub async fn restart(&mut self) {
        let server = self.server.take().expect("server running");
        stop(server).await;
        let (server, channel) = launch(&self.config).await;
        self.server = Some(server);
        self.channel = channel;
    }

    /// Shuts the server down (asserting a clean stop) and drops its PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            stop(server).await;
        }
        if let Some(url) = &self.config.store.database_url
            && self.owns_database
        {
            let store = store::Store::open(Some(url), self.dir.path())
                .await
                .expect("reopen the test database to drop it");
            store::testing::drop_postgres_store(store).await;
        }
    }
}

async fn launch(config: &ServerConfig) -> (RunningServer, Channel) {
    let server = tokio::time::timeout(START_STOP_LIMIT, lifeos::start(config.clone()))
        .await
        .expect("server started in time")
        .expect("server starts");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback(), "listens on {addr}");
    assert_ne!(addr.port(), 0, "an ephemeral port was assigned");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("endpoint URI")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to the test server");
    (server, channel)
}

async fn stop(server: RunningServer) {
    tokio::time::timeout(START_STOP_LIMIT, server.shutdown())
        .await
        .expect("server stopped in time")
        .expect("server stopped cleanly");
}

/// A CreateTask request with just a title.
pub fn new_task(title: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        title: title.to_string(),
        ..Default::default()
    }
}

/// Creates a task, asserting success.
pub async fn create(commands: &mut Commands, request: CreateTaskRequest) -> CommandAck {
    commands
        .create_task(request)
        .await
        .expect("CreateTask succeeds")
        .into_inner()
}

/// ListTasks, asserting success.
pub async fn list(
    queries: &mut Queries,
    consistency_token: &str,
    include_completed: bool,
) -> ListTasksResponse {
    queries
        .list_tasks(ListTasksRequest {
            consistency_token: consistency_token.to_string(),
            include_completed,
            ..Default::default()
        })
        .await
        .expect("ListTasks succeeds")
        .into_inner()
}

/// The task ids of a list page, in order.
pub fn ids(page: &ListTasksResponse) -> Vec<&str> {
    page.tasks.iter().map(|t| t.task_id.as_str()).collect()
}

/// [`ids`], owned.
pub fn owned_ids(page: &ListTasksResponse) -> Vec<String> {
    page.tasks.iter().map(|t| t.task_id.clone()).collect()
}

/// `at` as a wire timestamp.
pub fn ts(at: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

/// A wire timestamp (which must be set) as an instant.
pub fn time(ts: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let ts = ts.as_ref().expect("a timestamp");
    DateTime::from_timestamp(ts.seconds, ts.nanos as u32).expect("valid timestamp")
}

/// An instant of a UTC wall-clock minute.
pub fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .unwrap()
}

/// Asserts `status` is INVALID_ARGUMENT whose `google.rpc.BadRequest` names exactly `field`.
pub fn assert_invalid_field(status: &Status, field: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "expected INVALID_ARGUMENT for {field}, got {status:?}"
    );
    let details = status.get_error_details();
    let bad_request = details
        .bad_request()
        .unwrap_or_else(|| panic!("no google.rpc.BadRequest in {status:?}"));
    let fields: Vec<&str> = bad_request
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, [field], "field violations of {status:?}");
    assert!(
        !bad_request.field_violations[0].description.is_empty(),
        "a violation says what is wrong"
    );
}

/// The NATS server of the request/reply tests: `LIFEOS_TEST_NATS_URL`, default
/// `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("LIFEOS_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string())
}

/// A NATS connection; `None` (after saying so) when unreachable outside CI.
pub async fn nats() -> Option<bus::async_nats::Client> {
    let url = nats_url();
    let connect = bus::async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&url);
    let error = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(client)) => return Some(client),
        Ok(Err(err)) => err.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("NATS required in CI: {url} ({error})");
    }
    eprintln!("skipping: NATS not reachable at {url} ({error}); set LIFEOS_TEST_NATS_URL");
    None
}

/// A server serving NATS request/reply under a prefix of its own (`t<uuid>`) on the test NATS
/// ([`nats_url`]), and a client of that NATS to send requests with.
pub struct OnNats {
    /// A connection to the NATS the server serves.
    pub client: bus::async_nats::Client,
    /// The server.
    pub server: TestServer,
    prefix: String,
}

impl OnNats {
    /// Starts a server on `backend` serving NATS; `None` when NATS or PostgreSQL is unreachable
    /// outside CI (the test should return early).
    pub async fn start(backend: Backend) -> Option<OnNats> {
        let client = nats().await?;
        let prefix = format!("t{}", Uuid::now_v7().simple());
        let on_nats = {
            let prefix = prefix.clone();
            move |config: &mut ServerConfig| {
                config.nats_url = Some(nats_url());
                config.nats_prefix = prefix;
            }
        };
        let server = TestServer::start_with(backend, on_nats).await?;
        Some(OnNats {
            client,
            server,
            prefix,
        })
    }

    /// The full subject of `relative` (e.g. `commands.habits.create`) under the server's prefix.
    pub fn subject(&self, relative: &str) -> String {
        format!("{}.{relative}", self.prefix)
    }

    /// [`nats_call`] on [`OnNats::subject`]`(relative)`.
    pub async fn call(
        &self,
        relative: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (Option<String>, serde_json::Value) {
        nats_call(&self.client, &self.subject(relative), token, body).await
    }

    /// Stops the server (see [`TestServer::stop`]).
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// Sends a JSON request with the caller's token; returns the error code header (if any) and
/// the JSON body.
pub async fn nats_call(
    client: &bus::async_nats::Client,
    subject: &str,
    token: &str,
    body: serde_json::Value,
) -> (Option<String>, serde_json::Value) {
    let mut headers = bus::async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {token}"));
    let request = client.request_with_headers(
        subject.to_string(),
        headers,
        serde_json::to_vec(&body).expect("JSON").into(),
    );
    let reply = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .unwrap_or_else(|_| panic!("no reply on {subject}"))
        .unwrap_or_else(|e| panic!("request on {subject}: {e}"));
    let code = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
        .map(|v| v.to_string());
    let body = serde_json::from_slice(&reply.payload).expect("a JSON reply");
    (code, body)
}
