//! Workload 2, hot aggregate: a task repeating every day (a habit checked daily for years),
//! completed again and again through gRPC; time per command at stream lengths 1 … 10 000,
//! without snapshots, with snapshots, and with snapshots and the server's aggregate cache (the
//! first two with the cache off, so every command loads its aggregate from the store).
//!
//! Each length gets a fresh task, whose stream is first grown to that length through the engine
//! itself (`AggregateStore::commit_command` of the events the real aggregate decides, in chunks:
//! the same rows, and the same snapshots, the server would have written), then `commands`
//! completions are timed one after the other.

use std::collections::HashMap;
use std::time::Instant;

use aggregates::Issued;
use aggregates::task::{Task, TaskCommand};
use chrono::{TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, EventStore};
use proto::v1::task_recurrence::Rule;
use proto::v1::{CreateTaskRequest, TaskEvery, TaskIntervalUnit, TaskRecurrence};
use store::{AggregateStore, SnapshotPolicy, Store, meta};
use uuid::Uuid;

use crate::child::{ChildOptions, ServerChild};
use crate::client::UserClient;
use crate::env::Env;
use crate::opts::Sizes;
use crate::table::Row;

/// Events committed per transaction while growing a stream.
const GROW_CHUNK: usize = 1_000;
/// The snapshot frequency of the snapshot variant.
const SNAPSHOT_EVERY: u64 = 100;

/// Runs both variants at every `sizes.stream_sizes`.
pub async fn run(env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (snapshots, cache) in [
        (None, false),
        (Some(SNAPSHOT_EVERY), false),
        (Some(SNAPSHOT_EVERY), true),
    ] {
        let server = ServerChild::start(
            &env,
            &ChildOptions {
                task_snapshots: snapshots,
                aggregate_cache: (!cache).then_some(0),
                ..ChildOptions::default()
            },
        )
        .await?;
        let store = env.open().await?;
        let engine = AggregateStore::<Task, Store>::new(store.clone())
            .with_snapshots(SnapshotPolicy::every(snapshots.unwrap_or(0)));
        let variant = match (snapshots, cache) {
            (None, _) => "no snapshots".to_string(),
            (Some(n), false) => format!("snapshot every {n}"),
            (Some(n), true) => format!("snapshot every {n} + aggregate cache"),
        };
        let mut client = UserClient::connect(server.addr()).await?;
        let mut variant_rows: Vec<Row> = Vec::new();
        for &length in &sizes.stream_sizes {
            let task = create_habit(&mut client).await?;
            grow(&engine, &task, client.user, length.saturating_sub(1)).await?;
            let mut latencies = Vec::with_capacity(sizes.commands);
            let started = Instant::now();
            for _ in 0..sizes.commands {
                let t = Instant::now();
                let ack = client.complete_task(&task).await?;
                latencies.push(t.elapsed());
                anyhow::ensure!(ack.event_ids.len() == 1, "one completion per command");
            }
            let mut row = Row::new("hot", env.backend, format!("{variant}, stream {length}"), 1)
                .timed(latencies.len() as u64, "cmd", started.elapsed(), &latencies);
            // flat means: within 2× of the time at 10 events (the smallest length ≥ 10)
            if let Some(base) = variant_rows
                .iter()
                .find(|r| r.variant.ends_with("stream 10"))
                && let (Some(this), Some(base)) = (&row.latency, &base.latency)
            {
                row.ratio("p50 vs stream 10", this.p50 / base.p50);
            }
            variant_rows.push(row);
        }
        let rss = server.stop().await?;
        for row in &mut variant_rows {
            row.server_rss_mib = rss;
        }
        rows.extend(variant_rows);
        store.close().await;
    }
    env.cleanup().await;
    Ok(rows)
}

/// Creates the habit: a task due 2020-01-01 07:00 UTC, repeating every day. Returns its id.
async fn create_habit(client: &mut UserClient) -> anyhow::Result<String> {
    let due = Utc
        .with_ymd_and_hms(2020, 1, 1, 7, 0, 0)
        .single()
        .expect("a date");
    let request = CreateTaskRequest {
        command_id: Uuid::now_v7().to_string(),
        task_id: Uuid::now_v7().to_string(),
        title: "stretch".into(),
        due: Some(prost_types::Timestamp {
            seconds: due.timestamp(),
            nanos: 0,
        }),
        recurrence: Some(TaskRecurrence {
            rule: Some(Rule::Every(TaskEvery {
                interval: 1,
                unit: TaskIntervalUnit::Days as i32,
            })),
            time_zone: "UTC".into(),
            ..TaskRecurrence::default()
        }),
        ..CreateTaskRequest::default()
    };
    Ok(client
        .commands
        .create_task(request)
        .await?
        .into_inner()
        .aggregate_id)
}

/// Appends `n` completions of `task` through the engine's own commit path, in chunks.
async fn grow(
    engine: &AggregateStore<Task, Store>,
    task: &str,
    user: Uuid,
    n: u64,
) -> anyhow::Result<()> {
    let mut context = engine.load_aggregate(task).await?;
    let metadata = HashMap::from([(meta::USER_ID.to_string(), user.to_string())]);
    let mut left = n as usize;
    while left > 0 {
        let chunk = left.min(GROW_CHUNK);
        let base = context.current_sequence;
        let mut events = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let sink = EventSink::default();
            let command = TaskCommand::CompleteWithSubtasks {
                open_subtasks: 0,
                force: true,
            };
            context
                .aggregate
                .handle(Issued::new(user, Utc::now(), command), &(), &sink)
                .await?;
            events.extend(sink.collect().await);
        }
        let aggregate = context.aggregate.clone();
        let committed = EventStoreAggregateContext {
            aggregate_id: task.to_string(),
            aggregate: aggregate.clone(),
            current_sequence: base,
            current_snapshot: None,
        };
        engine
            .commit_command(events, committed, metadata.clone(), None)
            .await?;
        context = EventStoreAggregateContext {
            aggregate_id: task.to_string(),
            aggregate,
            current_sequence: base + chunk,
            current_snapshot: None,
        };
        left -= chunk;
    }
    Ok(())
}
