//! The `lifeos` binary itself: `token`, `migrate`, and `serve` until SIGTERM, on SQLite and on
//! PostgreSQL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_common::Auth;
use proto::v1::task_commands_client::TaskCommandsClient;
use proto::v1::task_queries_client::TaskQueriesClient;
use proto::v1::{CreateTaskRequest, GetTaskRequest, ListTasksRequest};
use tokio::sync::mpsc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

/// The longest the binary may take to start listening or to exit.
const LIMIT: Duration = Duration::from_secs(30);

const PG_SECRET: &str = "cli test secret of at least 32 bytes!!";

/// The binary, with none of the caller's `LIFEOS_*` settings and no colours in its logs.
fn lifeos() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifeos"));
    for var in [
        "LIFEOS_DATA_DIR",
        "LIFEOS_DATABASE_URL",
        "LIFEOS_JWT_SECRET",
        "LIFEOS_LISTEN",
        "LIFEOS_SNAPSHOTS",
        "LIFEOS_CONSISTENCY_WAIT",
        "LIFEOS_LOG",
    ] {
        command.env_remove(var);
    }
    command.env("NO_COLOR", "1");
    command
}

/// Runs `lifeos <args>` to completion.
fn run(args: &[&str]) -> Output {
    lifeos().args(args).output().expect("run lifeos")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn data_dir_args(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.display().to_string()]
}

/// `lifeos <store args> token --user <user> <extra>`, asserting success; the printed token.
fn token(store_args: &[String], user: &str, extra: &[&str]) -> String {
    let mut args: Vec<&str> = store_args.iter().map(String::as_str).collect();
    args.extend(["token", "--user", user]);
    args.extend(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "lifeos token failed: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let token = stdout.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {stdout:?}");
    token
}

/// The claims of `token`, checked against `secret`.
fn claims(token: &str, secret: &str) -> serde_json::Value {
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("token signed with the secret")
    .claims
}

fn secret_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("jwt-secret"))
        .expect("the data dir holds jwt-secret")
        .trim()
        .to_string()
}

#[test]
fn token_is_signed_with_the_data_dir_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = data_dir_args(dir.path());
    let user = Uuid::now_v7();

    let default_ttl = token(&store, &user.to_string(), &[]);
    let secret = secret_in(dir.path());
    assert!(secret.len() >= 32, "generated secret {secret:?}");
    let auth = Auth::new(secret.as_bytes());
    let caller = auth.verify(&default_ttl).expect("Auth verifies the token");
    assert_eq!(caller.user_id, user);
    assert!(caller.roles.is_empty());
    let now = chrono::Utc::now().timestamp();
    let exp = claims(&default_ttl, &secret)["exp"].as_i64().expect("exp");
    assert!(
        (exp - (now + 24 * 3600)).abs() <= 60,
        "default ttl 24h: exp {exp}, now {now}"
    );

    let hour = token(
        &store,
        &user.to_string(),
        &["--ttl", "1h", "--role", "analyst"],
    );
    assert_eq!(
        secret_in(dir.path()),
        secret,
        "the secret is generated once"
    );
    let caller = auth.verify(&hour).expect("Auth verifies the 1h token");
    assert_eq!(caller.user_id, user);
    assert_eq!(caller.roles, ["analyst"]);
    let now = chrono::Utc::now().timestamp();
    let claims = claims(&hour, &secret);
    let exp = claims["exp"].as_i64().expect("exp");
    assert!(
        (exp - (now + 3600)).abs() <= 60,
        "ttl 1h: exp {exp}, now {now}"
    );
    assert_eq!(claims["sub"], user.to_string());

    // another data dir has another secret
    let other = tempfile::tempdir().unwrap();
    let foreign = token(&data_dir_args(other.path()), &user.to_string(), &[]);
    assert!(auth.verify(&foreign).is_err());
}

#[test]
fn token_refuses_a_user_that_is_not_a_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = data_dir_args(dir.path());
    args.extend(["token".into(), "--user".into(), "not-a-uuid".into()]);
    let out = lifeos().args(&args).output().expect("run lifeos");
    assert!(!out.status.success(), "a bad --user is refused");
    assert!(
        out.stdout.is_empty(),
        "no token printed: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--user"), "error names --user: {stderr}");
}

#[test]
fn migrate_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = data_dir_args(dir.path());
    args.push("migrate".into());
    for round in 1..=2 {
        let out = lifeos().args(&args).output().expect("run lifeos");
        assert!(
            out.status.success(),
            "migrate #{round} failed: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains("migrations applied (sqlite)"), "{stdout}");
    }
    assert!(
        dir.path().join("lifeos.db").exists(),
        "the SQLite store was created"
    );
}

/// A `lifeos serve` child process, its address, and its stderr so far. Killed when dropped.
struct Serving {
    child: Option<Child>,
    /// The thread reading the child's stderr into `log` (ends at the pipe's end).
    reader: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// A spawned `lifeos` with its stderr: every line kept in `log` and sent on `lines`, copied by
/// the `reader` thread (which ends when the pipe does).
struct Spawned {
    child: Child,
    reader: std::thread::JoinHandle<()>,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// Spawns `lifeos <args>` and forwards its stderr lines, read on a thread of their own so the
/// child never blocks on a full pipe.
fn spawn_logged(args: &[String]) -> Spawned {
    let mut child = lifeos()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lifeos");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::unbounded_channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            kept.lock().unwrap().push(line.clone());
            let _ = tx.send(line); // keep draining even when nobody listens any more
        }
    });
    Spawned {
        child,
        reader,
        lines: rx,
        log,
    }
}

/// The address in a "lifeos listening on <addr>" log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("lifeos listening on ")? + "lifeos listening on ".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    Some(
        addr.parse()
            .unwrap_or_else(|e| panic!("address in {line:?}: {e}")),
    )
}

impl Serving {
    /// Starts `lifeos <store args> serve --listen 127.0.0.1:0` and waits for its listening line.
    async fn start(store_args: &[String]) -> Serving {
        let mut args = store_args.to_vec();
        args.extend(["serve".into(), "--listen".into(), "127.0.0.1:0".into()]);
        let Spawned {
            child,
            reader,
            mut lines,
            log,
        } = spawn_logged(&args);
        let mut serving = Serving {
            child: Some(child),
            reader: Some(reader),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
        };
        let found = tokio::time::timeout(LIMIT, async {
            while let Some(line) = lines.recv().await {
                if let Some(addr) = listening_addr(&line) {
                    return Some(addr);
                }
            }
            None // stderr closed: the process ended
        })
        .await;
        match found {
            Ok(Some(addr)) => serving.addr = addr,
            Ok(None) => panic!("lifeos serve ended before listening: {:?}", serving.log()),
            Err(_) => panic!(
                "lifeos serve not listening after {LIMIT:?}: {:?}",
                serving.log()
            ),
        }
        assert!(serving.addr.ip().is_loopback(), "{}", serving.addr);
        assert_ne!(serving.addr.port(), 0);
        serving
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect to lifeos serve")
    }

    /// Sends SIGTERM and returns the exit status (the process must exit within [`LIMIT`]).
    async fn terminate(mut self) -> ExitStatus {
        let child = self.child.take().expect("running");
        let pid = child.id();
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid}");
        let reader = self.reader.take().expect("reading");
        let status = wait_exit(child, reader, &self.log).await;
        assert!(
            self.log().iter().any(|l| l.contains("lifeos stopped")),
            "a clean shutdown is logged: {:?}",
            self.log()
        );
        status
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (bounded by [`LIMIT`]) for `child` to exit; kills it and fails the test otherwise.
async fn wait_exit(
    child: Child,
    reader: std::thread::JoinHandle<()>,
    log: &Mutex<Vec<String>>,
) -> ExitStatus {
    let pid = child.id();
    // the exit status, once every line the child wrote is in `log` (the reader may still be
    // behind when the process is gone)
    let waiting = tokio::task::spawn_blocking(move || {
        let mut child = child;
        let status = child.wait();
        let _ = reader.join();
        status
    });
    match tokio::time::timeout(LIMIT, waiting).await {
        Ok(status) => status.expect("waiter").expect("wait for lifeos"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!(
                "lifeos (pid {pid}) did not exit within {LIMIT:?}: {:?}",
                log.lock().unwrap()
            );
        }
    }
}

fn bearer(token: &str) -> AsciiMetadataValue {
    format!("Bearer {token}").parse().unwrap()
}

/// Creates a task as the bearer of `token` and checks it is listed; returns its id.
async fn create_and_list(channel: Channel, token: &str, title: &str) -> String {
    let auth = bearer(token);
    let with_auth = move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", auth.clone());
        Ok(r)
    };
    let mut commands = TaskCommandsClient::with_interceptor(channel.clone(), with_auth.clone());
    let ack = commands
        .create_task(CreateTaskRequest {
            title: title.into(),
            ..Default::default()
        })
        .await
        .expect("CreateTask")
        .into_inner();
    let mut queries = TaskQueriesClient::with_interceptor(channel, with_auth);
    let page = queries
        .list_tasks(ListTasksRequest {
            consistency_token: ack.consistency_token,
            ..Default::default()
        })
        .await
        .expect("ListTasks")
        .into_inner();
    let ids: Vec<&str> = page.tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert!(ids.contains(&ack.aggregate_id.as_str()), "{ids:?}");
    assert_eq!(page.open_count as usize, page.tasks.len());
    ack.aggregate_id
}

/// The titles of `token`'s tasks, and GetTask of `task_id` must succeed.
async fn titles_and_get(channel: Channel, token: &str, task_id: &str) -> Vec<String> {
    let auth = bearer(token);
    let mut queries =
        TaskQueriesClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", auth.clone());
            Ok(r)
        });
    let task = queries
        .get_task(GetTaskRequest {
            task_id: task_id.into(),
            ..Default::default()
        })
        .await
        .expect("GetTask")
        .into_inner();
    assert_eq!(task.task_id, task_id);
    let page = queries
        .list_tasks(ListTasksRequest::default())
        .await
        .expect("ListTasks")
        .into_inner();
    page.tasks.into_iter().map(|t| t.title).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_stops_on_sigterm_and_keeps_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let store = data_dir_args(dir.path());
    let user = Uuid::now_v7().to_string();

    let serving = Serving::start(&store).await;
    // the token command and the server share the data dir's secret
    let token = token(&store, &user, &[]);
    let task_id = create_and_list(serving.channel().await, &token, "survive a restart").await;
    let status = serving.terminate().await;
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert_eq!(status.code(), Some(0));

    let serving = Serving::start(&store).await;
    let titles = titles_and_get(serving.channel().await, &token, &task_id).await;
    assert_eq!(titles, ["survive a restart"]);
    let status = serving.terminate().await;
    assert_eq!(status.code(), Some(0), "second SIGTERM: {status:?}");

    // SIGTERM right after the listening line, before any request: still a clean stop
    let status = Serving::start(&store).await.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM at once: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_needs_a_shared_secret() {
    let Some(url) = store::testing::fresh_postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut without_secret = data_dir_args(dir.path());
    without_secret.extend(["--database-url".into(), url.clone()]);
    let mut store = without_secret.clone();
    store.extend(["--jwt-secret".into(), PG_SECRET.into()]);

    // without a secret: refused at once, saying which setting is missing
    let mut args = without_secret.clone();
    args.extend(["serve".into(), "--listen".into(), "127.0.0.1:0".into()]);
    let Spawned {
        child, reader, log, ..
    } = spawn_logged(&args);
    let status = wait_exit(child, reader, &log).await;
    assert!(!status.success(), "serve without a secret must fail");
    let stderr = log.lock().unwrap().join("\n");
    assert!(stderr.contains("LIFEOS_JWT_SECRET"), "{stderr}");
    assert!(
        !dir.path().join("jwt-secret").exists(),
        "no secret is generated for PostgreSQL"
    );

    let mut migrate = store.clone();
    migrate.push("migrate".into());
    for _ in 0..2 {
        let out = lifeos().args(&migrate).output().expect("run lifeos");
        assert!(out.status.success(), "migrate: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("migrations applied (postgres)"));
    }

    let user = Uuid::now_v7();
    let serving = Serving::start(&store).await;
    let token = token(&store, &user.to_string(), &[]);
    assert_eq!(
        Auth::new(PG_SECRET.as_bytes())
            .verify(&token)
            .unwrap()
            .user_id,
        user
    );
    let task_id = create_and_list(serving.channel().await, &token, "on postgres").await;
    let status = serving.terminate().await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");

    let serving = Serving::start(&store).await;
    let titles = titles_and_get(serving.channel().await, &token, &task_id).await;
    assert_eq!(titles, ["on postgres"]);
    let status = serving.terminate().await;
    assert_eq!(status.code(), Some(0));

    let db = store::Store::open(Some(&url), dir.path()).await.unwrap();
    store::testing::drop_postgres_store(db).await;
}
