//! The contract of a read model.

use serde::de::DeserializeOwned;
use store::LoggedEvent;

use crate::{ProjectionError, RowKey, RowSet};

/// A read model folded from the log.
///
/// The runner calls [`keys`](Projection::keys) for each event of a batch, loads those rows,
/// then calls [`apply`](Projection::apply) for each event in log order.
pub trait Projection: Send + Sync + 'static {
    /// Stable name, e.g. `task_list`.
    fn name(&self) -> &'static str;

    /// Version of the fold; a new version is a new model built from the start of the log.
    fn version(&self) -> u32;

    /// The aggregate types whose events this projection reads (e.g. `["task"]`).
    fn reads(&self) -> &'static [&'static str];

    /// `<name>@<version>`: the model the rows and the checkpoint are stored under.
    fn model(&self) -> String {
        format!("{}@{}", self.name(), self.version())
    }

    /// The rows `event` reads or writes; empty when the projection ignores it.
    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey>;

    /// Folds `event` into `rows` (which hold every row [`keys`](Projection::keys) named).
    /// An error stops the projection on this event (poison event), it is never skipped.
    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError>;
}

/// The event's payload as the pillar's event type, deserialized from a borrow (copying the
/// payload first cost every projection a copy of every event).
pub fn decode_payload<T: DeserializeOwned>(event: &LoggedEvent) -> Result<T, serde_json::Error> {
    T::deserialize(&event.payload)
}

/// Field `field` of an event payload's single variant (`{"Variant": {"field": …}}`), if it is
/// there and reads as `T`: what a projection's [`keys`](Projection::keys) needs (an id, an
/// instant) without decoding the whole event.
pub fn payload_field<T: DeserializeOwned>(payload: &serde_json::Value, field: &str) -> Option<T> {
    let (_, fields) = payload.as_object()?.iter().next()?;
    T::deserialize(fields.get(field)?).ok()
}
