//! `lifeos replay`: one user's read models as of a moment, folded in memory from the log.

use chrono::{DateTime, Utc};
use projections::replay::{Replay, replay_user};
use serde_json::json;
use store::Store;
use uuid::Uuid;

use super::progress::Progress;
use super::projections::for_pillars;

/// Output format of `lifeos replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document.
    Json,
    /// A table per read model.
    Table,
}

/// Replays `user`'s history up to `until` into the read models of `pillars` (all when empty).
pub async fn replay(
    store: &Store,
    user: Uuid,
    until: Option<DateTime<Utc>>,
    pillars: &[String],
) -> anyhow::Result<Replay> {
    let projections = for_pillars(pillars);
    if projections.is_empty() {
        anyhow::bail!(
            "--pillar {}: no read model reads these pillars",
            pillars.join(",")
        );
    }
    let mut progress = Progress::new(&format!("replaying {user}"), None);
    let replay = replay_user(store, &projections, user, until, |n| {
        progress.update(n, None)
    })
    .await?;
    progress.finish(&format!("{} events folded", replay.events));
    Ok(replay)
}

/// Prints a replay.
pub fn print(replay: &Replay, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let models: serde_json::Map<String, serde_json::Value> = replay
                .models
                .iter()
                .map(|(name, rows)| {
                    let rows: Vec<_> = rows
                        .rows()
                        .into_iter()
                        .map(|r| json!({ "row_id": r.key.row_id, "group": r.grp, "doc": r.doc }))
                        .collect();
                    (name.to_string(), rows.into())
                })
                .collect();
            let doc = json!({
                "user_id": replay.user_id,
                "until": replay.until,
                "events": replay.events,
                "last_position": replay.last_position.to_string(),
                "models": models,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Table => {
            let until = replay
                .until
                .map_or_else(|| "now".to_string(), |t| t.to_rfc3339());
            println!(
                "user {} as of {until}: {} events",
                replay.user_id, replay.events
            );
            for (name, rows) in &replay.models {
                println!("\n{name}");
                println!("  {:<38} {:<10} DOCUMENT", "ROW", "GROUP");
                for row in rows.rows() {
                    println!("  {:<38} {:<10} {}", row.key.row_id, row.grp, row.doc);
                }
            }
        }
    }
    Ok(())
}
