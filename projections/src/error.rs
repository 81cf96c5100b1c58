//! What can stop a projection.

use store::{LoggedEvent, Position, StoreError};

/// An error of a projection or of the read-model store.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event store or read-model tables could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event the projection cannot apply (a poison event): the projection stops on it.
    #[error(transparent)]
    Poison(Box<PoisonEvent>),
    /// A stored read-model row could not be decoded.
    #[error("corrupt read-model row: {0}")]
    Corrupt(String),
}

/// The event a projection stopped on, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error(
    "projection {projection} cannot apply event {event_type} at {position} (aggregate {aggregate_type}/{aggregate_id}): {reason}"
)]
pub struct PoisonEvent {
    /// The projection that stopped.
    pub projection: String,
    /// The event's log position.
    pub position: Position,
    /// Its type.
    pub event_type: String,
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its aggregate id.
    pub aggregate_id: String,
    /// Why it could not be applied.
    pub reason: String,
}

impl ProjectionError {
    /// A poison-event error for `event` in `projection`.
    pub fn poison(projection: &str, event: &LoggedEvent, reason: impl ToString) -> Self {
        ProjectionError::Poison(Box::new(PoisonEvent {
            projection: projection.to_string(),
            position: event.position,
            event_type: event.event_type.clone(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            reason: reason.to_string(),
        }))
    }
}

impl From<sqlx::Error> for ProjectionError {
    fn from(err: sqlx::Error) -> Self {
        ProjectionError::Store(StoreError::from(err))
    }
}

impl From<serde_json::Error> for ProjectionError {
    fn from(err: serde_json::Error) -> Self {
        ProjectionError::Corrupt(err.to_string())
    }
}
