//! Our own store contract beside cqrs-es's: appends that answer with a receipt, idempotent
//! commands, and the global log reader.

use std::future::Future;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, SerializedEvent, SerializedSnapshot,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{LoggedEvent, Position, StoreError};

/// A client's idempotency key: the same `(user, command_id)` is executed at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandKey {
    /// The authenticated user.
    pub user_id: Uuid,
    /// The client-chosen command id.
    pub command_id: String,
}

/// Everything one command writes, committed in one transaction or not at all.
#[derive(Debug, Clone)]
pub struct AppendBatch {
    /// The aggregate type (`Aggregate::TYPE`).
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// The aggregate's version the command was decided on (0 = new).
    pub expected_version: u64,
    /// The new events, sequences `expected_version + 1 ..`.
    pub events: Vec<SerializedEvent>,
    /// A new snapshot `(last sequence, state)` to replace the stored one.
    pub snapshot: Option<(u64, Value)>,
    /// The idempotency key to record with the receipt.
    pub command: Option<CommandKey>,
}

impl AppendBatch {
    /// The events of one aggregate after `expected_version`, without snapshot or receipt.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        expected_version: u64,
        events: Vec<SerializedEvent>,
    ) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            expected_version,
            events,
            snapshot: None,
            command: None,
        }
    }

    /// The receipt this batch answers with once committed, still without its log position.
    pub fn receipt(&self) -> Receipt {
        Receipt {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            version: self.expected_version + self.events.len() as u64,
            event_ids: Vec::with_capacity(self.events.len()),
            position: None,
        }
    }
}

/// What a committed command produced: the answer a client gets, and gets again on a repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// The aggregate's version after the command.
    pub version: u64,
    /// The ids of the events written, in order.
    pub event_ids: Vec<Uuid>,
    /// The log position of the last event written (none when the command wrote no event).
    pub position: Option<Position>,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The batch was committed now.
    Committed(Receipt),
    /// The command id was seen before: nothing was written; this is the first receipt.
    Duplicate(Receipt),
}

impl AppendOutcome {
    /// The receipt, whether new or repeated.
    pub fn receipt(&self) -> &Receipt {
        match self {
            AppendOutcome::Committed(r) | AppendOutcome::Duplicate(r) => r,
        }
    }
}

/// An aggregate's stream as loading it needs it: the latest snapshot and the events after it.
#[derive(Debug, Default)]
pub struct StreamLoad {
    /// The latest snapshot, if one was asked for and exists.
    pub snapshot: Option<SerializedSnapshot>,
    /// The events after the snapshot (all of them without one), in sequence order.
    pub events: Vec<SerializedEvent>,
}

/// The store operations LifeOS needs beyond cqrs-es's repository.
pub trait Journal: PersistedEventRepository + Clone + Send + Sync + 'static {
    /// Appends one command's events (and snapshot and receipt) atomically.
    /// A sequence already taken fails with [`StoreError::Conflict`] and writes nothing.
    fn append(
        &self,
        batch: AppendBatch,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> + Send;

    /// What loading aggregate `aggregate_id` of type `A` needs: its snapshot (only looked for
    /// when `with_snapshot`) and the events after it (all of them without one), in sequence
    /// order. One read where the backend can (PostgreSQL); two by default.
    fn load_stream<A: Aggregate>(
        &self,
        aggregate_id: &str,
        with_snapshot: bool,
    ) -> impl Future<Output = Result<StreamLoad, PersistenceError>> + Send {
        async move {
            let snapshot = if with_snapshot {
                self.get_snapshot::<A>(aggregate_id).await?
            } else {
                None
            };
            let events = match &snapshot {
                Some(s) => {
                    self.get_last_events::<A>(aggregate_id, s.current_sequence)
                        .await?
                }
                None => self.get_events::<A>(aggregate_id).await?,
            };
            Ok(StreamLoad { snapshot, events })
        }
    }

    /// The receipt stored for a command id, if that command was executed.
    fn receipt(
        &self,
        key: &CommandKey,
    ) -> impl Future<Output = Result<Option<Receipt>, StoreError>> + Send;

    /// Up to `limit` committed events after `after`, in global order. Never skips: an event that
    /// is not returned now (its transaction still open) comes after every event returned now.
    fn read_after(
        &self,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LoggedEvent>, StoreError>> + Send;

    /// Like [`read_after`](Journal::read_after), only the events of `user_id` recorded at or
    /// before `until` (when given): one user's history, for replay and as-of queries.
    fn read_user_after(
        &self,
        user_id: Uuid,
        after: Position,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LoggedEvent>, StoreError>> + Send;

    /// The position of the last readable event (`Position::START` for an empty log).
    fn head(&self) -> impl Future<Output = Result<Position, StoreError>> + Send;

    /// A signal bumped after appends (this process's, and on PostgreSQL other processes' via
    /// LISTEN/NOTIFY): wait on it instead of polling tightly.
    fn wakeups(&self) -> watch::Receiver<u64>;
}
