//! Workload 4, query under load: ListTasks of a user with 50 open tasks at a fixed request
//! rate, first on an idle server (the baseline), then while `writers` clients append.

use std::time::{Duration, Instant};

use proto::v1::ListTasksRequest;
use tokio::time::MissedTickBehavior;

use crate::child::{ChildOptions, ServerChild};
use crate::client::{UserClient, run_writers};
use crate::env::Env;
use crate::opts::Sizes;
use crate::table::Row;

/// The reader's open tasks (one ListTasks page).
const OPEN_TASKS: usize = 50;

/// Idle, then loaded.
pub async fn run(env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let server = ServerChild::start(&env, &ChildOptions::default()).await?;
    let mut reader = UserClient::connect(server.addr()).await?;
    let mut token = String::new();
    for i in 0..OPEN_TASKS {
        token = reader
            .create_task(&format!("open task {i}"))
            .await?
            .consistency_token;
    }
    // read our writes once: the model holds the 50 tasks before anything is timed
    let page = reader
        .queries
        .list_tasks(ListTasksRequest {
            consistency_token: token,
            ..ListTasksRequest::default()
        })
        .await?
        .into_inner();
    anyhow::ensure!(page.tasks.len() == OPEN_TASKS, "{} tasks", page.tasks.len());

    let (idle, idle_elapsed) = list_at_rate(&reader, sizes.rate, sizes.duration).await?;
    let mut idle_row = Row::new("query", env.backend, "ListTasks, idle server", 0).timed(
        idle.len() as u64,
        "req",
        idle_elapsed,
        &idle,
    );
    let writers = tokio::spawn(run_writers(
        server.addr(),
        sizes.writers,
        sizes.duration,
        None,
    ));
    let (loaded, loaded_elapsed) = list_at_rate(&reader, sizes.rate, sizes.duration).await?;
    let written = writers.await??;
    let mut loaded_row = Row::new(
        "query",
        env.backend,
        format!("ListTasks, {} writers", sizes.writers),
        sizes.writers,
    )
    .timed(loaded.len() as u64, "req", loaded_elapsed, &loaded);
    if let (Some(l), Some(i)) = (&loaded_row.latency, &idle_row.latency) {
        loaded_row.ratio("p99 vs idle", l.p99 / i.p99);
    }
    let mut writers_row = Row::new(
        "query",
        env.backend,
        "writers during the reads",
        sizes.writers,
    )
    .timed(
        written.latencies.len() as u64,
        "cmd",
        written.elapsed,
        &written.latencies,
    );
    let rss = server.stop().await?;
    for row in [&mut idle_row, &mut loaded_row, &mut writers_row] {
        row.server_rss_mib = rss;
    }
    env.cleanup().await;
    Ok(vec![idle_row, loaded_row, writers_row])
}

/// ListTasks `rate` times a second for `duration` (open loop: a slow answer does not delay the
/// next request); every answer must hold the 50 tasks.
async fn list_at_rate(
    reader: &UserClient,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = Vec::new();
    while started.elapsed() < duration {
        ticks.tick().await;
        let mut queries = reader.queries.clone();
        requests.push(tokio::spawn(async move {
            let t = Instant::now();
            let page = queries
                .list_tasks(ListTasksRequest::default())
                .await?
                .into_inner();
            let elapsed = t.elapsed();
            anyhow::ensure!(page.tasks.len() == OPEN_TASKS, "{} tasks", page.tasks.len());
            anyhow::Ok(elapsed)
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await??);
    }
    Ok((latencies, started.elapsed()))
}
