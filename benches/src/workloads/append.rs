//! Workload 1, append: N gRPC clients issuing CreateTask then CompleteTask on fresh tasks,
//! against (a) raw single-row INSERT transactions into an identical events table and (b)
//! cqrs-es + postgres-es used as documented, at the same concurrency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::Issued;
use aggregates::task::{NewTask, Task, TaskCommand};
use chrono::Utc;
use serde_json::json;
use store::Store;
use uuid::Uuid;

use crate::child::{ChildOptions, ServerChild};
use crate::client::run_writers;
use crate::env::{Backend, Env};
use crate::opts::Sizes;
use crate::table::Row;

/// Runs the engine and its baselines at every `sizes.clients`.
pub async fn run(mut env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let options = ChildOptions {
        roles: sizes.server_roles.clone(),
        aggregate_cache: sizes.aggregate_cache,
        ..ChildOptions::default()
    };
    let server = ServerChild::start(&env, &options).await?;
    let mut engine = Vec::new();
    for &clients in &sizes.clients {
        let w = run_writers(server.addr(), clients, sizes.duration, None).await?;
        engine.push(
            Row::new("append", env.backend, "engine (gRPC)", clients).timed(
                w.latencies.len() as u64,
                "cmd",
                w.elapsed,
                &w.latencies,
            ),
        );
    }
    let rss = server.stop().await?;
    let ceiling = raw_inserts(&mut env, sizes).await?;
    let cqrs = match env.backend {
        Backend::Postgres => cqrs_es(&mut env, sizes).await?,
        Backend::Sqlite => Vec::new(),
    };
    for row in &mut engine {
        row.server_rss_mib = rss;
        let concurrency = row.concurrency;
        let same = |rows: &[Row]| rows.iter().find(|r| r.concurrency == concurrency).cloned();
        if let Some(base) = same(&ceiling) {
            row.ratio_to("raw INSERT", &base);
        }
        if let Some(base) = same(&cqrs) {
            row.ratio_to("cqrs-es", &base);
        }
    }
    env.cleanup().await;
    let mut rows: Vec<Row> = engine.into_iter().chain(ceiling).chain(cqrs).collect();
    rows.sort_by_key(|r| r.concurrency);
    Ok(rows)
}

/// `clients` loops running `op` until `duration` is over; every op timed.
async fn closed_loop<F, Fut>(
    clients: usize,
    duration: Duration,
    op: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    op(client * 1_000_000_000 + n).await?;
                    latencies.push(t.elapsed());
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok((latencies, started.elapsed()))
}

/// The ceiling: one event per transaction (`BEGIN; INSERT … RETURNING global_position;
/// COMMIT`), with the engine's own columns, into a freshly migrated store of the same kind (the
/// same table, indexes and pragmas; SQLite through its one writing connection, PostgreSQL through
/// a pool as large as the engine's).
async fn raw_inserts(env: &mut Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let store = match env.backend {
        Backend::Postgres => {
            let url = env.extra_database().await?;
            Store::open(Some(&url), env.dir.path()).await?
        }
        Backend::Sqlite => Store::open(None, &env.dir.path().join("ceiling")).await?,
    };
    store::migrate(&store).await?;
    let mut rows = Vec::new();
    for &clients in &sizes.clients {
        let s = store.clone();
        let (latencies, elapsed) =
            closed_loop(clients, sizes.duration, move |_| insert_one(s.clone())).await?;
        rows.push(
            Row::new("append", env.backend, "raw INSERT (sqlx)", clients).timed(
                latencies.len() as u64,
                "insert",
                elapsed,
                &latencies,
            ),
        );
    }
    store.close().await;
    Ok(rows)
}

/// One TaskCreated-sized event in its own transaction.
async fn insert_one(store: Store) -> anyhow::Result<()> {
    let user = Uuid::now_v7();
    let task = Uuid::now_v7();
    let event_id = Uuid::now_v7();
    let now = Utc::now();
    let payload = json!({"TaskCreated": {
        "task_id": task, "user_id": user, "title": "benchmark task", "description": "",
        "due": null, "priority": 0, "tags": [], "parent_task_id": null, "created_at": now,
    }});
    let command = Uuid::now_v7().to_string();
    let metadata = json!({
        "user_id": user, "command_id": command, "correlation_id": command,
        "causation_id": command, "event_id": event_id, "recorded_at": now.to_rfc3339(),
    });
    match &store {
        Store::Postgres(pg) => {
            let mut tx = pg.pool().begin().await?;
            let _: i64 = sqlx::query_scalar(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                    event_version, payload, metadata, event_id, user_id, recorded_at) \
                 VALUES ('task', $1, 1, 'TaskCreated', '1', $2, $3, $4, $5, $6) \
                 RETURNING global_position",
            )
            .bind(task.to_string())
            .bind(&payload)
            .bind(&metadata)
            .bind(event_id)
            .bind(user)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Store::Sqlite(lite) => {
            let mut tx = lite.writer().begin().await?;
            let _: i64 = sqlx::query_scalar(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                    event_version, payload, metadata, global_position, event_id, user_id, \
                    recorded_at) \
                 VALUES ('task', $1, 1, 'TaskCreated', '1', $2, $3, \
                    (SELECT COALESCE(MAX(global_position), 0) + 1 FROM events), $4, $5, $6) \
                 RETURNING global_position",
            )
            .bind(task.to_string())
            .bind(payload.to_string())
            .bind(metadata.to_string())
            .bind(event_id.to_string())
            .bind(user.to_string())
            .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// postgres-es's documented tables (`db/init.sql` of postgres-es 0.5.0).
const POSTGRES_ES_SCHEMA: &str = "
CREATE TABLE events (
    aggregate_type text NOT NULL, aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
    event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence));
CREATE TABLE snapshots (
    aggregate_type text NOT NULL, aggregate_id text NOT NULL,
    last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));";

/// cqrs-es as its documentation shows it: `default_postgress_pool`, `postgres_cqrs`,
/// `execute`, the same two commands on the same aggregate, in-process (no gRPC, no receipts).
async fn cqrs_es(env: &mut Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let url = env.extra_database().await?;
    let pool = postgres_es::default_postgress_pool(&url).await;
    sqlx::raw_sql(POSTGRES_ES_SCHEMA).execute(&pool).await?;
    let cqrs = Arc::new(postgres_es::postgres_cqrs::<Task>(pool.clone(), vec![], ()));
    let mut rows = Vec::new();
    for &clients in &sizes.clients {
        let cqrs = cqrs.clone();
        // each op is one command: even ops create a task, odd ops complete it
        let user = Uuid::now_v7();
        let (latencies, elapsed) = closed_loop(clients, sizes.duration, move |n| {
            let cqrs = cqrs.clone();
            async move {
                let task = Uuid::from_u64_pair(user.as_u64_pair().0, (n / 2) as u64);
                let command = if n % 2 == 0 {
                    TaskCommand::Create(NewTask {
                        task_id: task,
                        title: "benchmark task".into(),
                        ..NewTask::default()
                    })
                } else {
                    TaskCommand::Complete
                };
                cqrs.execute(&task.to_string(), Issued::new(user, Utc::now(), command))
                    .await
                    .map_err(|e| anyhow::anyhow!("cqrs-es execute: {e}"))
            }
        })
        .await?;
        rows.push(
            Row::new("append", env.backend, "cqrs-es + postgres-es", clients).timed(
                latencies.len() as u64,
                "cmd",
                elapsed,
                &latencies,
            ),
        );
    }
    pool.close().await;
    Ok(rows)
}
