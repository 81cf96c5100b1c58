//! Replay: fold one user's history, up to a moment, into every read model in memory. The live
//! read models are not touched.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use store::{Journal, Position, Store};
use uuid::Uuid;

use crate::{MemoryRows, Projection, ProjectionError, RowSet};

/// Events read per round trip while replaying.
const REPLAY_BATCH: usize = 1_000;

/// One user's read models as of a moment.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Whose history.
    pub user_id: Uuid,
    /// Events recorded after this were left out (None: the whole history).
    pub until: Option<DateTime<Utc>>,
    /// Events folded.
    pub events: u64,
    /// Position of the last event folded.
    pub last_position: Position,
    /// Each projection's rows, by projection name.
    pub models: BTreeMap<&'static str, MemoryRows>,
}

/// Folds `user_id`'s events recorded at or before `until` into `projections`, in log order.
/// `progress` is called after every batch with the number of events folded so far.
pub async fn replay_user(
    store: &Store,
    projections: &[Arc<dyn Projection>],
    user_id: Uuid,
    until: Option<DateTime<Utc>>,
    mut progress: impl FnMut(u64),
) -> Result<Replay, ProjectionError> {
    let mut sets: Vec<RowSet> = projections.iter().map(|_| RowSet::default()).collect();
    let mut after = Position::START;
    let mut events = 0u64;
    loop {
        let batch = store
            .read_user_after(user_id, after, until, REPLAY_BATCH)
            .await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        for event in &batch {
            for (projection, rows) in projections.iter().zip(sets.iter_mut()) {
                projection.apply(event, rows)?;
            }
        }
        events += batch.len() as u64;
        after = last;
        progress(events);
    }
    Ok(Replay {
        user_id,
        until,
        events,
        last_position: after,
        models: projections
            .iter()
            .map(|p| p.name())
            .zip(sets.into_iter().map(MemoryRows::from_set))
            .collect(),
    })
}
