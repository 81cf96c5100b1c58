//! An event as the log holds it: the cqrs-es serialized event plus its place and identity.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::Position;
use crate::error::StoreError;

/// Metadata keys every stored event carries (values are strings, as cqrs-es metadata is).
pub mod meta {
    /// The event's own id (UUID v7): CloudEvents `id`, deduplication key on the bus.
    pub const EVENT_ID: &str = "event_id";
    /// When the store accepted the event (RFC 3339).
    pub const RECORDED_AT: &str = "recorded_at";
    /// The user whose data this is (the command's authenticated caller).
    pub const USER_ID: &str = "user_id";
    /// The client's idempotency key for the command that produced the event.
    pub const COMMAND_ID: &str = "command_id";
    /// Groups every event caused, directly or not, by one user action.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// The id of the message (command or event) that caused this one.
    pub const CAUSATION_ID: &str = "causation_id";
    /// The client application's version, when it sent one.
    pub const CLIENT_VERSION: &str = "client_version";
    /// The client platform (ios, android, web, cli…), when it sent one.
    pub const PLATFORM: &str = "platform";
}

/// One committed event read back from the log, in global order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Where it sits in the global order.
    pub position: Position,
    /// Its unique id (UUID v7).
    pub event_id: Uuid,
    /// Whose data it is (absent only for events written without a user).
    pub user_id: Option<Uuid>,
    /// When the store accepted it.
    pub recorded_at: DateTime<Utc>,
    /// The aggregate type, e.g. `task`.
    pub aggregate_type: String,
    /// The aggregate instance.
    pub aggregate_id: String,
    /// 1-based sequence within the aggregate.
    pub sequence: i64,
    /// The event type, e.g. `TaskCreated`.
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: String,
    /// The event payload (the pillar's event enum as JSON).
    pub payload: Value,
    /// String metadata: user, command, correlation, causation, client.
    pub metadata: Value,
}

impl LoggedEvent {
    /// The cqrs-es form of this event.
    pub fn to_serialized(&self) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: self.aggregate_id.clone(),
            sequence: self.sequence as usize,
            aggregate_type: self.aggregate_type.clone(),
            event_type: self.event_type.clone(),
            event_version: self.event_version.clone(),
            payload: self.payload.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// A metadata value by key (see [`meta`]).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
}

/// The identity columns of one event about to be written, taken from (or added to) its metadata.
pub(crate) struct Stamp {
    pub event_id: Uuid,
    pub user_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

/// Makes sure `event` carries an event id and a record time in its metadata (plain cqrs-es callers
/// do not set them) and returns the columns to write.
pub(crate) fn stamp(event: &mut SerializedEvent) -> Result<Stamp, StoreError> {
    if !event.metadata.is_object() {
        event.metadata = Value::Object(Default::default());
    }
    let map = event
        .metadata
        .as_object_mut()
        .expect("made an object above");
    let event_id = match map.get(meta::EVENT_ID).and_then(Value::as_str) {
        Some(s) => Uuid::parse_str(s)
            .map_err(|e| StoreError::Corrupt(format!("metadata {}: {e}", meta::EVENT_ID)))?,
        None => {
            let id = Uuid::now_v7();
            map.insert(meta::EVENT_ID.into(), id.to_string().into());
            id
        }
    };
    let recorded_at = match map.get(meta::RECORDED_AT).and_then(Value::as_str) {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map_err(|e| StoreError::Corrupt(format!("metadata {}: {e}", meta::RECORDED_AT)))?
            .with_timezone(&Utc),
        None => {
            let now = Utc::now();
            map.insert(meta::RECORDED_AT.into(), now.to_rfc3339().into());
            now
        }
    };
    let user_id = match map.get(meta::USER_ID).and_then(Value::as_str) {
        Some(s) => Some(
            Uuid::parse_str(s)
                .map_err(|e| StoreError::Corrupt(format!("metadata {}: {e}", meta::USER_ID)))?,
        ),
        None => None,
    };
    Ok(Stamp {
        event_id,
        user_id,
        recorded_at,
    })
}
