//! The `lifeos` binary's `projections list|status|rebuild` and `replay`, on an embedded (SQLite)
//! data dir whose data a server started in process (or the store itself) wrote.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use aggregates::Issued;
use aggregates::task::{NewTask, Task, TaskCommand};
use api_common::Auth;
use chrono::{DateTime, Utc};
use common::{Bearer, Commands, Queries, create, ids, list, new_task};
use lifeos::{RunningServer, ServerConfig, StoreConfig};
use projections::ReadModels;
use projections::task_list::TaskList;
use proto::v1::admin_client::AdminClient;
use proto::v1::task_commands_client::TaskCommandsClient;
use proto::v1::task_queries_client::TaskQueriesClient;
use proto::v1::{CompleteTaskRequest, ListTasksResponse, ProjectionStatusRequest};
use store::{AggregateStore, Journal, Position, Store, meta};
use tonic::transport::Channel;
use uuid::Uuid;

/// The longest the binary, or a server, may take.
const LIMIT: Duration = Duration::from_secs(60);

/// The binary, with none of the caller's `LIFEOS_*` settings and no colours in its logs.
fn lifeos(dir: &Path) -> Command {
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
    command.arg("--data-dir").arg(dir);
    command
}

/// Runs `lifeos --data-dir <dir> <args>` to completion (off the async threads, bounded).
async fn run(dir: &Path, args: &[&str]) -> Output {
    let mut command = lifeos(dir);
    command.args(args);
    let shown = args.join(" ");
    let output = tokio::time::timeout(LIMIT, tokio::task::spawn_blocking(move || command.output()))
        .await
        .unwrap_or_else(|_| panic!("lifeos {shown} did not finish within {LIMIT:?}"));
    output.expect("runner thread").expect("run lifeos")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `lifeos <args>`, asserting success; its stdout and stderr.
async fn run_ok(dir: &Path, args: &[&str]) -> (String, String) {
    let out = run(dir, args).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "lifeos {} failed ({:?}): {stderr}",
        args.join(" "),
        out.status
    );
    (stdout, stderr)
}

/// `lifeos <args>`, asserting failure; its stderr.
async fn run_err(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args).await;
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "lifeos {} must fail; stdout: {}",
        args.join(" "),
        text(&out.stdout)
    );
    assert_ne!(out.status.code(), Some(0));
    stderr
}

/// A `lifeos` server in this process, on the data dir of a test.
struct Server {
    running: RunningServer,
    channel: Channel,
    auth: Auth,
}

impl Server {
    async fn start(dir: &Path) -> Server {
        let mut config = ServerConfig::new(StoreConfig {
            data_dir: dir.to_path_buf(),
            database_url: None,
        });
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let secret = config
            .store
            .jwt_secret(None)
            .expect("the data dir's secret");
        let running = tokio::time::timeout(LIMIT, lifeos::start(config))
            .await
            .expect("server started in time")
            .expect("server starts");
        let channel = Channel::from_shared(format!("http://{}", running.local_addr()))
            .unwrap()
            .connect()
            .await
            .expect("connect to the server");
        Server {
            running,
            channel,
            auth: Auth::new(secret.as_bytes()),
        }
    }

    fn token(&self, user: Uuid, roles: &[&str]) -> String {
        self.auth.issue_with_roles(
            user,
            Duration::from_secs(3600),
            roles.iter().map(|r| r.to_string()).collect(),
        )
    }

    fn commands(&self, user: Uuid) -> Commands {
        TaskCommandsClient::with_interceptor(
            self.channel.clone(),
            Bearer::token(&self.token(user, &[])),
        )
    }

    fn queries(&self, user: Uuid) -> Queries {
        TaskQueriesClient::with_interceptor(
            self.channel.clone(),
            Bearer::token(&self.token(user, &[])),
        )
    }

    /// The active model of task_list, asked over Admin/ProjectionStatus.
    async fn active_model(&self) -> String {
        let token = self.token(Uuid::now_v7(), &["admin"]);
        let answer = AdminClient::with_interceptor(self.channel.clone(), Bearer::token(&token))
            .projection_status(ProjectionStatusRequest {
                name: "task_list".into(),
            })
            .await
            .expect("ProjectionStatus")
            .into_inner();
        answer.projections[0].active_model.clone()
    }

    async fn stop(self) {
        tokio::time::timeout(LIMIT, self.running.shutdown())
            .await
            .expect("server stopped in time")
            .expect("server stopped cleanly");
    }
}

/// Creates `n` tasks of `user` through `server` (every third completed) and waits until the
/// read model has them; returns the list (completed included).
async fn seed(server: &Server, user: Uuid, n: usize) -> ListTasksResponse {
    let mut commands = server.commands(user);
    let mut token = String::new();
    for i in 0..n {
        let ack = create(&mut commands, new_task(&format!("task {i}"))).await;
        token = ack.consistency_token.clone();
        if i % 3 == 0 {
            token = commands
                .complete_task(CompleteTaskRequest {
                    command_id: String::new(),
                    task_id: ack.aggregate_id,
                    ..Default::default()
                })
                .await
                .expect("CompleteTask")
                .into_inner()
                .consistency_token;
        }
    }
    let page = list(&mut server.queries(user), &token, true).await;
    assert_eq!(page.tasks.len(), n);
    page
}

/// The model printed by `lifeos projections rebuild task_list`.
fn rebuilt_model(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("task_list: queries read "))
        .unwrap_or_else(|| panic!("no 'queries read' line in {stdout:?}"));
    let model = line["task_list: queries read ".len()..].trim().to_string();
    assert!(
        model.starts_with("task_list@1#"),
        "a new generation: {model}"
    );
    model
}

/// Tasks of the store's active task_list model (completed included), by id.
async fn tasks_in_store(dir: &Path, user: Uuid) -> (String, Vec<Uuid>) {
    let store = store::testing::sqlite_store(dir).await;
    let models = ReadModels::new(store.clone());
    let active = models.active_model(&TaskList).await.expect("active model");
    let (tasks, _) = TaskList::list(&models, user, true, None, 1000)
        .await
        .expect("list");
    store.close().await;
    (active, tasks.iter().map(|t| t.task_id).collect())
}

fn uuids(page: &ListTasksResponse) -> Vec<Uuid> {
    ids(page)
        .into_iter()
        .map(|id| Uuid::parse_str(id).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// `projections list` and `projections status [--json]` after a server caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_status_report_a_caught_up_projection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    seed(&server, Uuid::now_v7(), 4).await;
    server.stop().await;

    let (stdout, _) = run_ok(dir.path(), &["projections", "list"]).await;
    let row = stdout
        .lines()
        .find(|l| l.starts_with("task_list "))
        .unwrap_or_else(|| panic!("task_list is listed: {stdout}"));
    assert!(row.contains("task_list@1"), "{row}");
    assert!(row.contains("live"), "{row}");

    let (stdout, _) = run_ok(dir.path(), &["projections", "status", "--json"]).await;
    let reports: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("status --json prints JSON ({e}): {stdout}"));
    let reports = reports.as_array().expect("a JSON array");
    let task_list = reports
        .iter()
        .find(|r| r["name"] == "task_list")
        .unwrap_or_else(|| panic!("task_list in {reports:?}"));
    assert_eq!(task_list["version"], 1);
    assert_eq!(task_list["active_model"], "task_list@1");
    assert_eq!(task_list["state"], "live");
    assert_eq!(task_list["lag_events"], 0, "{task_list}");
    assert_eq!(task_list["lag_seconds"], 0.0);
    // 4 creates and 2 completions
    assert_eq!(
        task_list["checkpoint"],
        serde_json::json!({ "tx": 0, "pos": 6 })
    );
    assert_eq!(task_list["head"], task_list["checkpoint"]);
    assert!(task_list["error"].is_null());

    let (table, _) = run_ok(dir.path(), &["projections", "status"]).await;
    let row = table
        .lines()
        .find(|l| l.starts_with("task_list "))
        .unwrap_or_else(|| panic!("task_list in the table: {table}"));
    assert!(row.contains("0.6"), "checkpoint and head: {row}");

    let stderr = run_err(dir.path(), &["projections", "rebuild", "nosuch"]).await;
    assert!(stderr.contains("nosuch"), "{stderr}");
    assert!(
        stderr.contains("task_list"),
        "names the known ones: {stderr}"
    );
}

/// `projections rebuild task_list` with no server: done in the CLI process; same tasks after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_without_a_server_rebuilds_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let user = Uuid::now_v7();
    let server = Server::start(dir.path()).await;
    let before = seed(&server, user, 7).await;
    server.stop().await;

    let (stdout, stderr) = run_ok(dir.path(), &["projections", "rebuild", "task_list"]).await;
    assert!(
        stderr.contains("no runner is serving task_list"),
        "says it rebuilds itself: {stderr}"
    );
    let model = rebuilt_model(&stdout);

    let (active, tasks) = tasks_in_store(dir.path(), user).await;
    assert_eq!(active, model, "queries read the printed model");
    assert_eq!(tasks, uuids(&before), "the same tasks, in the same order");
    let store = store::testing::sqlite_store(dir.path()).await;
    let models = ReadModels::new(store.clone());
    let head = store.head().await.expect("head");
    assert_eq!(models.checkpoint(&model).await.unwrap(), head);
    assert_eq!(
        models.checkpoint("task_list@1").await.unwrap(),
        Position::START,
        "the old generation is gone"
    );
    assert!(
        models
            .list(
                "task_list@1",
                user,
                &["open", "completed", "stats"],
                None,
                100
            )
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;

    // a server started afterwards answers from the rebuilt model
    let server = Server::start(dir.path()).await;
    assert_eq!(server.active_model().await, model);
    let after = list(&mut server.queries(user), "", true).await;
    assert_eq!(after, before);
    server.stop().await;
}

/// With a server running on the data dir, `projections rebuild` asks it and follows its progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_is_done_by_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let user = Uuid::now_v7();
    let server = Server::start(dir.path()).await;
    let before = seed(&server, user, 5).await;
    assert_eq!(server.active_model().await, "task_list@1");

    let (stdout, stderr) = run_ok(dir.path(), &["projections", "rebuild", "task_list"]).await;
    assert!(
        stderr.contains("served by a running lifeos"),
        "says it follows the server: {stderr}"
    );
    assert!(!stderr.contains("no runner is serving"), "{stderr}");
    let model = rebuilt_model(&stdout);
    assert_eq!(server.active_model().await, model, "the server switched");
    let mut queries = server.queries(user);
    assert_eq!(list(&mut queries, "", true).await, before, "the same tasks");

    // and it keeps serving from the new model
    let ack = create(&mut server.commands(user), new_task("after")).await;
    let page = list(&mut queries, &ack.consistency_token, true).await;
    assert_eq!(page.tasks.len(), before.tasks.len() + 1);
    server.stop().await;
}

/// `replay --user U --until T --format json`: exactly the tasks as of T; bad arguments fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_prints_the_tasks_as_of_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let store = store::testing::sqlite_store(dir.path()).await;
    let tasks = AggregateStore::<Task, Store>::new(store.clone());
    let exec = async |who: Uuid, task: Uuid, command: TaskCommand| {
        let metadata = HashMap::from([(meta::USER_ID.to_string(), who.to_string())]);
        tasks
            .execute(
                &task.to_string(),
                Issued::new(who, Utc::now(), command),
                &(),
                metadata,
                None,
            )
            .await
            .expect("command");
    };
    let new = |title: &str| NewTask {
        task_id: Uuid::now_v7(),
        title: title.into(),
        ..NewTask::default()
    };
    let (a, b, c, x) = (new("a"), new("b"), new("c"), new("other's"));
    let (a_id, b_id, c_id, x_id) = (a.task_id, b.task_id, c.task_id, x.task_id);
    exec(user, a_id, TaskCommand::Create(a)).await;
    exec(user, b_id, TaskCommand::Create(b)).await;
    exec(user, b_id, TaskCommand::Complete).await;
    exec(other, x_id, TaskCommand::Create(x)).await;
    let t = Utc::now();
    exec(user, a_id, TaskCommand::Complete).await;
    exec(user, c_id, TaskCommand::Create(c)).await;
    exec(user, b_id, TaskCommand::Delete).await;
    store.close().await;

    let until = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let user_arg = user.to_string();
    let replay_json = async |extra: &[&str]| {
        let mut args = vec!["replay", "--user", &user_arg, "--format", "json"];
        args.extend(extra);
        let (stdout, _) = run_ok(dir.path(), &args).await;
        let doc: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("replay prints JSON ({e}): {stdout}"));
        doc
    };
    // task rows (the stats row left out) by id: (group, title)
    let task_rows = |doc: &serde_json::Value| -> BTreeMap<Uuid, (String, String)> {
        doc["models"]["task_list"]
            .as_array()
            .expect("task_list rows")
            .iter()
            .filter(|r| r["group"] != "stats")
            .map(|r| {
                (
                    Uuid::parse_str(r["row_id"].as_str().unwrap()).unwrap(),
                    (
                        r["group"].as_str().unwrap().to_string(),
                        r["doc"]["title"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect()
    };

    let past = replay_json(&["--until", &until]).await;
    assert_eq!(past["user_id"], user.to_string());
    assert_eq!(past["events"], 3);
    let printed: DateTime<Utc> = serde_json::from_value(past["until"].clone()).expect("until");
    assert_eq!(printed, t);
    assert_eq!(
        task_rows(&past),
        BTreeMap::from([
            (a_id, ("open".to_string(), "a".to_string())),
            (b_id, ("completed".to_string(), "b".to_string())),
        ]),
        "exactly the tasks as of T"
    );
    let stats = past["models"]["task_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "stats")
        .expect("stats row");
    assert_eq!(stats["doc"]["open"], 1);
    assert_eq!(stats["doc"]["completed"], 1);
    assert_eq!(stats["doc"]["created_total"], 2);

    let now = replay_json(&["--pillar", "tasks"]).await;
    assert_eq!(now["events"], 6);
    assert!(now["until"].is_null());
    assert_eq!(
        task_rows(&now),
        BTreeMap::from([
            (a_id, ("completed".to_string(), "a".to_string())),
            (c_id, ("open".to_string(), "c".to_string())),
        ])
    );

    let (table, _) = run_ok(
        dir.path(),
        &["replay", "--user", &user_arg, "--until", &until],
    )
    .await;
    assert!(table.contains(&a_id.to_string()), "{table}");
    assert!(table.contains(&b_id.to_string()), "{table}");
    assert!(
        !table.contains(&c_id.to_string()),
        "c came after T: {table}"
    );
    assert!(
        !table.contains(&x_id.to_string()),
        "not the other user's: {table}"
    );

    let stderr = run_err(
        dir.path(),
        &["replay", "--user", &user_arg, "--until", "yesterday"],
    )
    .await;
    assert!(stderr.contains("--until"), "names --until: {stderr}");
    let stderr = run_err(
        dir.path(),
        &["replay", "--user", &user_arg, "--pillar", "nosuch"],
    )
    .await;
    assert!(stderr.contains("nosuch"), "names the pillar: {stderr}");
}
