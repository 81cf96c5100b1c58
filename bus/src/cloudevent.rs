//! The envelope on the bus: CloudEvents 1.0, JSON structured mode, built from a logged event.
//!
//! ```json
//! {
//!   "specversion": "1.0",
//!   "id": "0197…",                       // the event id (UUID v7)
//!   "source": "lifeos/tasks",
//!   "type": "tasks.created",
//!   "subject": "<user id>",
//!   "time": "2025-06-01T12:00:00.123456Z", // recorded_at
//!   "datacontenttype": "application/json",
//!   "sequence": 1,                        // extension: the aggregate's sequence
//!   "position": "812.40",                 // extension: the global log position "tx.pos"
//!   "data": { "entityId": "…", "entityType": "task", "action": "created",
//!             "payload": { …the event's fields… }, "metadata": { … } }
//! }
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{LoggedEvent, Position};
use uuid::Uuid;

use crate::BusError;
use crate::routing::Route;

/// The CloudEvents version every event carries.
pub const SPEC_VERSION: &str = "1.0";
/// The media type of `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The media type of a whole message body (structured mode), sent as the NATS `Content-Type`
/// header.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// One event on the bus, as CloudEvents 1.0 structured-mode JSON.
///
/// The same value travels on NATS (as the message body) and on the [`InProcessBus`].
///
/// [`InProcessBus`]: crate::InProcessBus
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// The event id (UUID v7): unique, and the JetStream deduplication key (`Nats-Msg-Id`).
    pub id: Uuid,
    /// `lifeos/<pillar>`.
    pub source: String,
    /// `<pillar>.<action>`, e.g. `tasks.completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The user whose data this is (absent for events written without a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the store accepted the event (RFC 3339).
    pub time: DateTime<Utc>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Extension attribute: the event's 1-based sequence within its aggregate.
    pub sequence: i64,
    /// Extension attribute: the event's global log position, as the string `"<tx>.<pos>"`.
    #[serde(with = "position_string")]
    pub position: Position,
    /// The event itself.
    pub data: EventData,
}

/// The `data` of a [`CloudEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// The aggregate id (e.g. the task id).
    pub entity_id: String,
    /// The aggregate type (e.g. `task`).
    pub entity_type: String,
    /// The action, as in `type` (e.g. `completed`).
    pub action: String,
    /// The event's fields: the pillar event enum's inner object, without its variant tag.
    pub payload: Value,
    /// The event's metadata (user, command, correlation, causation, client…).
    pub metadata: Value,
}

impl CloudEvent {
    /// The envelope of a logged event.
    pub fn from_logged(event: &LoggedEvent) -> Self {
        let route = Route::of(&event.aggregate_type, &event.event_type);
        Self {
            specversion: SPEC_VERSION.to_string(),
            id: event.event_id,
            source: route.source(),
            event_type: route.event_type(),
            subject: event.user_id.map(|u| u.to_string()),
            time: event.recorded_at,
            datacontenttype: DATA_CONTENT_TYPE.to_string(),
            sequence: event.sequence,
            position: event.position,
            data: EventData {
                entity_id: event.aggregate_id.clone(),
                entity_type: event.aggregate_type.clone(),
                action: route.action().to_string(),
                payload: inner_payload(&event.payload, &event.event_type),
                metadata: event.metadata.clone(),
            },
        }
    }

    /// The NATS subject under `prefix`: `<prefix>.<type>` = `<prefix>.<pillar>.<action>`.
    pub fn nats_subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.event_type)
    }

    /// The structured-mode JSON body.
    pub fn to_json(&self) -> Result<Vec<u8>, BusError> {
        serde_json::to_vec(self).map_err(|source| BusError::Encode {
            event_id: self.id,
            source,
        })
    }

    /// Parses a structured-mode JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

impl From<&LoggedEvent> for CloudEvent {
    fn from(event: &LoggedEvent) -> Self {
        Self::from_logged(event)
    }
}

/// The payload without the serde variant tag: `{"TaskCreated": {…}}` → `{…}`, a unit variant
/// `"TaskArchived"` → `null`; any other shape is kept as it is.
fn inner_payload(payload: &Value, event_type: &str) -> Value {
    match payload {
        Value::Object(map) if map.len() == 1 => match map.get(event_type) {
            Some(inner) => inner.clone(),
            None => payload.clone(),
        },
        Value::String(tag) if tag == event_type => Value::Null,
        _ => payload.clone(),
    }
}

/// [`Position`] as its string form `"<tx>.<pos>"`.
pub(crate) mod position_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use store::Position;

    pub fn serialize<S: Serializer>(position: &Position, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(position)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn logged(payload: Value, user: Option<Uuid>) -> LoggedEvent {
        LoggedEvent {
            position: Position { tx: 812, pos: 40 },
            event_id: Uuid::now_v7(),
            user_id: user,
            recorded_at: Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap(),
            aggregate_type: "task".into(),
            aggregate_id: "t-1".into(),
            sequence: 3,
            event_type: "TaskCompleted".into(),
            event_version: "1".into(),
            payload,
            metadata: json!({"user_id": "u", "command_id": "c"}),
        }
    }

    #[test]
    fn envelope_of_a_task_event() {
        let user = Uuid::now_v7();
        let event = logged(
            json!({"TaskCompleted": {"completed_at": "2025-06-01T12:00:00Z"}}),
            Some(user),
        );
        let ce = CloudEvent::from_logged(&event);
        let body: Value = serde_json::from_slice(&ce.to_json().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "specversion": "1.0",
                "id": event.event_id.to_string(),
                "source": "lifeos/tasks",
                "type": "tasks.completed",
                "subject": user.to_string(),
                "time": "2025-06-01T12:00:00Z",
                "datacontenttype": "application/json",
                "sequence": 3,
                "position": "812.40",
                "data": {
                    "entityId": "t-1",
                    "entityType": "task",
                    "action": "completed",
                    "payload": {"completed_at": "2025-06-01T12:00:00Z"},
                    "metadata": {"user_id": "u", "command_id": "c"},
                }
            })
        );
        assert_eq!(
            ce.nats_subject("lifeos.events"),
            "lifeos.events.tasks.completed"
        );
        assert_eq!(CloudEvent::from_json(&ce.to_json().unwrap()).unwrap(), ce);
    }

    #[test]
    fn no_user_means_no_subject() {
        let ce = CloudEvent::from_logged(&logged(json!({"TaskCompleted": {}}), None));
        let body: Value = serde_json::from_slice(&ce.to_json().unwrap()).unwrap();
        assert!(body.get("subject").is_none(), "{body}");
    }

    #[test]
    fn payload_tags_are_unwrapped_only_when_they_match() {
        assert_eq!(inner_payload(&json!({"A": {"x": 1}}), "A"), json!({"x": 1}));
        assert_eq!(inner_payload(&json!("A"), "A"), Value::Null);
        assert_eq!(
            inner_payload(&json!({"B": {"x": 1}}), "A"),
            json!({"B": {"x": 1}})
        );
        assert_eq!(
            inner_payload(&json!({"A": 1, "b": 2}), "A"),
            json!({"A": 1, "b": 2})
        );
        assert_eq!(inner_payload(&json!([1]), "A"), json!([1]));
    }
}
