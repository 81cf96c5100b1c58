//! Workload 6, replay: one user's whole generated history (every pillar) folded into
//! every read model in memory (`projections::replay::replay_user`, what `lifeos replay`, `as_of`
//! queries and History use), against reading the same events without folding them.

use std::time::Instant;

use store::{Journal, Position};
use uuid::Uuid;

use crate::env::Env;
use crate::generator::{self, LogSpec};
use crate::opts::Sizes;
use crate::table::Row;

/// Events per read (the replay's own batch).
const READ_BATCH: usize = 1_000;

/// Generates the history, then times scans and replays.
pub async fn run(env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let store = env.open().await?;
    let spec = LogSpec {
        users: 1,
        events: sizes.history,
        seed: sizes.seed,
    };
    let user = generator::load(&store, spec, "generating one user's history").await?[0];
    let projections = projections::all();

    let mut scans = Vec::with_capacity(sizes.replays);
    let started = Instant::now();
    for _ in 0..sizes.replays {
        let t = Instant::now();
        let n = scan_user(&store, user).await?;
        scans.push(t.elapsed());
        anyhow::ensure!(n == sizes.history, "scanned {n} events");
    }
    let scan = Row::new(
        "replay",
        env.backend,
        format!("read only ({} events)", sizes.history),
        1,
    )
    .timed(scans.len() as u64, "replay", started.elapsed(), &scans);

    let mut replays = Vec::with_capacity(sizes.replays);
    let started = Instant::now();
    for _ in 0..sizes.replays {
        let t = Instant::now();
        let replay =
            projections::replay::replay_user(&store, &projections, user, None, |_| {}).await?;
        replays.push(t.elapsed());
        anyhow::ensure!(replay.events == sizes.history, "{} events", replay.events);
    }
    let mut fold = Row::new(
        "replay",
        env.backend,
        format!(
            "fold into {} read models ({} events)",
            projections.len(),
            sizes.history
        ),
        1,
    )
    .timed(replays.len() as u64, "replay", started.elapsed(), &replays);
    fold.ratio_to("read only", &scan);
    store.close().await;
    env.cleanup().await;
    Ok(vec![scan, fold])
}

/// Reads every event of `user` in batches; returns how many.
async fn scan_user(store: &store::Store, user: Uuid) -> anyhow::Result<u64> {
    let (mut after, mut n) = (Position::START, 0u64);
    loop {
        let batch = store.read_user_after(user, after, None, READ_BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(n);
        };
        after = last.position;
        n += batch.len() as u64;
    }
}
