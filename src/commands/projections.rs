//! `lifeos projections list|status|rebuild`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use projections::status::{ProjectionReport, RunState};
use projections::{Projection, ProjectionRunner, ReadModels};
use store::Store;

use super::progress::Progress;

/// Every projection's report.
pub async fn reports(store: &Store) -> anyhow::Result<Vec<ProjectionReport>> {
    let models = ReadModels::new(store.clone());
    let mut out = Vec::new();
    for projection in projections::all() {
        out.push(models.report(projection.as_ref()).await?);
    }
    Ok(out)
}

/// Prints the reports as a table (or JSON).
pub fn print_reports(
    reports: &[ProjectionReport],
    json: bool,
    detailed: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(reports)?);
        return Ok(());
    }
    if detailed {
        println!(
            "{:<16} {:>7} {:<28} {:<11} {:>14} {:>14} {:>10} {:>9} {:>9}",
            "PROJECTION",
            "VERSION",
            "ACTIVE MODEL",
            "STATE",
            "CHECKPOINT",
            "HEAD",
            "LAG",
            "LAG (s)",
            "EVENTS/s"
        );
    } else {
        println!(
            "{:<16} {:>7} {:<28} {:<11}",
            "PROJECTION", "VERSION", "ACTIVE MODEL", "STATE"
        );
    }
    for r in reports {
        let state = match (r.state, r.rebuild_percent) {
            (RunState::Rebuilding, Some(p)) => format!("rebuilding {p:.0}%"),
            (state, _) => serde_json::to_value(state)?
                .as_str()
                .unwrap_or("")
                .to_string(),
        };
        if detailed {
            println!(
                "{:<16} {:>7} {:<28} {:<11} {:>14} {:>14} {:>10} {:>9.1} {:>9.0}",
                r.name,
                r.version,
                r.active_model,
                state,
                r.checkpoint.to_string(),
                r.head.to_string(),
                r.lag_events,
                r.lag_seconds,
                r.events_per_sec
            );
            if let Some(error) = &r.error {
                println!("  stopped on: {error}");
            }
        } else {
            println!(
                "{:<16} {:>7} {:<28} {:<11}",
                r.name, r.version, r.active_model, state
            );
        }
    }
    Ok(())
}

/// Rebuilds `name` blue-green: asks its runner (in a server, if one holds it; else one started
/// here) and follows the progress until queries read the new generation.
pub async fn rebuild(store: &Store, name: &str) -> anyhow::Result<String> {
    let Some(projection) = projections::by_name(name) else {
        let known: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
        bail!("no projection {name:?}; known: {}", known.join(", "));
    };
    let models = ReadModels::new(store.clone());
    let before = models.active_model(projection.as_ref()).await?;
    models.request_rebuild(projection.as_ref()).await?;
    // nobody running it? then this process does the work
    let local = match store.try_lease(&format!("projection:{name}")).await? {
        Some(lease) => {
            lease.release().await;
            eprintln!("no runner is serving {name}: rebuilding in this process");
            Some(ProjectionRunner::new(projection.clone(), models.clone()).spawn())
        }
        None => {
            eprintln!(
                "{name} is served by a running lifeos: it rebuilds there; following its progress"
            );
            None
        }
    };
    let result = follow(&models, projection.as_ref(), &before).await;
    if let Some(runner) = local {
        runner.stop().await.context("local projection runner")?;
    }
    result
}

async fn follow(
    models: &ReadModels,
    projection: &dyn Projection,
    before: &str,
) -> anyhow::Result<String> {
    let label = format!("rebuilding {}", projection.name());
    let mut progress: Option<Progress> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        ticker.tick().await;
        let Some(status) = models.status(projection.name()).await? else {
            continue;
        };
        match status.state {
            RunState::Stopped => bail!(
                "{} stopped: {}",
                projection.name(),
                status.detail.get("error").unwrap_or(&status.detail)
            ),
            RunState::Rebuilding => {
                let applied = status
                    .detail
                    .get("applied")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                let total = status.detail.get("total").and_then(|v| v.as_u64());
                // the bar (with rate and ETA) starts once the runner knows the total
                progress
                    .get_or_insert_with(|| Progress::new(&label, total))
                    .update(applied, total);
            }
            RunState::Live if status.active_model != before && !status.rebuild_requested => {
                let done = format!("done: queries now read {}", status.active_model);
                progress
                    .unwrap_or_else(|| Progress::new(&label, None))
                    .finish(&done);
                return Ok(status.active_model);
            }
            RunState::Live => {}
        }
    }
}

/// The projections a `--pillar` filter keeps (all when empty).
pub fn for_pillars(pillars: &[String]) -> Vec<Arc<dyn Projection>> {
    projections::all()
        .into_iter()
        .filter(|p| {
            pillars.is_empty()
                || p.reads().iter().any(|t| {
                    pillars
                        .iter()
                        .any(|pillar| pillar == aggregates::pillar_of(t))
                })
        })
        .collect()
}
