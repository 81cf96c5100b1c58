//! Workload 3, rebuild: a generated log (users × about a year of every pillar), then
//! (a) a plain ordered scan through the log reader, doing nothing with the events (the
//! baseline), (b) a server starting on it (its runners catch every read model up, live
//! batches), (c) a blue-green rebuild of every read model requested through `projection_status`
//! (the path `lifeos projections rebuild` takes), timed until every model has switched. The
//! server runs the api and projector roles: the relay would be publishing the whole generated
//! log meanwhile (it never went through a server), which is not what this workload measures.

use std::time::{Duration, Instant};

use projections::ReadModels;
use projections::status::RunState;
use store::{Journal, Position};

use super::wait_until;
use crate::child::{ChildOptions, ServerChild};
use crate::env::Env;
use crate::generator::{self, LogSpec};
use crate::opts::Sizes;
use crate::table::Row;

/// Events per read of the scan (the runner's rebuild batch).
const SCAN_BATCH: usize = 5_000;
/// How long the server may take to catch up or rebuild.
const LIMIT: Duration = Duration::from_secs(3_600);

/// Generates the log, scans it, catches up and rebuilds.
pub async fn run(env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let store = env.open().await?;
    let spec = LogSpec {
        users: sizes.users,
        events: sizes.events,
        seed: sizes.seed,
    };
    generator::load(&store, spec, &format!("generating the {} log", env.backend)).await?;
    let head = store.head().await?;

    let started = Instant::now();
    let (mut after, mut scanned) = (Position::START, 0u64);
    loop {
        let batch = store.read_after(after, SCAN_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        scanned += batch.len() as u64;
    }
    anyhow::ensure!(scanned == sizes.events, "scanned {scanned} events");
    let scan = Row::new(
        "rebuild",
        env.backend,
        "plain scan (Journal::read_after)",
        1,
    )
    .timed(scanned, "events", started.elapsed(), &[]);

    let models = ReadModels::new(store.clone());
    let all = projections::all();
    let started = Instant::now();
    // no relay: see the module doc
    let options = ChildOptions {
        roles: Some("api,projector".into()),
        ..ChildOptions::default()
    };
    let server = ServerChild::start(&env, &options).await?;
    wait_until(LIMIT, "catch-up", || async {
        for p in &all {
            if models.active_checkpoint(p.as_ref()).await?.1 < head {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let mut catch_up = Row::new(
        "rebuild",
        env.backend,
        format!(
            "server start + catch-up ({} read models, no relay)",
            all.len()
        ),
        all.len(),
    )
    .timed(scanned, "events", started.elapsed(), &[]);

    let mut before = Vec::new();
    for p in &all {
        before.push(models.active_model(p.as_ref()).await?);
    }
    let started = Instant::now();
    for p in &all {
        models.request_rebuild(p.as_ref()).await?;
    }
    wait_until(LIMIT, "rebuild", || async {
        for (p, old) in all.iter().zip(&before) {
            let Some(status) = models.status(p.name()).await? else {
                return Ok(false);
            };
            anyhow::ensure!(status.state != RunState::Stopped, "{} stopped", p.name());
            if status.active_model == *old || status.rebuild_requested {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let mut rebuild = Row::new(
        "rebuild",
        env.backend,
        format!("blue-green rebuild ({} read models, no relay)", all.len()),
        all.len(),
    )
    .timed(scanned, "events", started.elapsed(), &[]);
    let rss = server.stop().await?;
    for row in [&mut catch_up, &mut rebuild] {
        row.server_rss_mib = rss;
        row.ratio_to("plain scan", &scan);
    }
    store.close().await;
    env.cleanup().await;
    Ok(vec![scan, catch_up, rebuild])
}
