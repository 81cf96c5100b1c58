//! The envelope is CloudEvents 1.0: the message bodies the relay puts on NATS validate against
//! the CloudEvents 1.0 JSON schema (`tests/data/cloudevents-1.0.schema.json`, formats checked),
//! and the official Rust SDK (`cloudevents-sdk`) parses them into the same attributes.
//!
//! The schema and the SDK are also shown to refuse broken envelopes, so a pass means something.

mod common;

use std::time::Duration;

use bus::{CloudEvent, Relay};
use chrono::{TimeZone, Utc};
use cloudevents::event::{ExtensionValue, SpecVersion};
use cloudevents::{AttributesReader, Data};
use common::{TestStream, Workload, assert_exactly_once, log_up_to, shared_nats, wait_caught_up};
use serde_json::{Value, json};
use store::{LoggedEvent, Position, Store};
use uuid::Uuid;

store::on_both_stores! {
    relayed_messages_are_cloudevents => sqlite_relayed_messages_are_cloudevents, postgres_relayed_messages_are_cloudevents;
}

/// The CloudEvents 1.0 JSON schema, with format validation on.
fn schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!("data/cloudevents-1.0.schema.json"))
        .expect("schema JSON");
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid draft-07 schema")
}

/// The schema's complaints about `instance` (empty when valid).
fn violations(schema: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    schema
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

async fn relayed_messages_are_cloudevents(store: Store) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let stream = TestStream::new(&client);
    let relay = Relay::new(store.clone(), stream.publisher(&client))
        .idle_poll(Duration::from_millis(50))
        .spawn();
    let work = Workload::new(&store);
    let last = work.run(2).await;
    wait_caught_up(&relay, last).await;
    let log = log_up_to(&store, last).await;
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);

    let schema = schema();
    for (message, logged) in received.iter().zip(&log) {
        let body = message.json();
        let errors = violations(&schema, &body);
        assert!(
            errors.is_empty(),
            "{body}\nviolates the schema: {errors:#?}"
        );

        let sdk: cloudevents::Event =
            serde_json::from_slice(&message.body).expect("the CloudEvents SDK parses the body");
        let ours = CloudEvent::from_logged(logged);
        assert_eq!(sdk.specversion(), SpecVersion::V10);
        assert_eq!(sdk.id(), logged.event_id.to_string());
        assert_eq!(sdk.source(), &ours.source);
        assert!(sdk.source().starts_with("lifeos/"));
        assert_eq!(sdk.ty(), ours.event_type);
        assert_eq!(sdk.subject(), Some(work.user.to_string().as_str()));
        assert_eq!(sdk.time(), Some(&logged.recorded_at));
        assert_eq!(sdk.datacontenttype(), Some("application/json"));
        assert_eq!(
            sdk.extension("sequence"),
            Some(&ExtensionValue::Integer(logged.sequence))
        );
        assert_eq!(
            sdk.extension("position"),
            Some(&ExtensionValue::String(logged.position.to_string()))
        );
        let Some(Data::Json(data)) = sdk.data() else {
            panic!("JSON data expected, got {:?}", sdk.data());
        };
        assert_eq!(data, &serde_json::to_value(&ours.data).unwrap());
        assert_eq!(data["entityId"], json!(logged.aggregate_id));
        assert_eq!(data["entityType"], json!("task"));
        // The payload is the event's own fields, without the enum tag.
        let tag = logged.event_type.as_str();
        assert_eq!(data["payload"], logged.payload[tag], "{tag}");
    }

    relay.stop().await.expect("stop");
    stream.delete().await;
}

/// A valid envelope of a synthetic event, as JSON.
fn valid_envelope() -> Value {
    let logged = LoggedEvent {
        position: Position { tx: 7, pos: 42 },
        event_id: Uuid::now_v7(),
        user_id: Some(Uuid::now_v7()),
        recorded_at: Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456),
        aggregate_type: "task".into(),
        aggregate_id: Uuid::now_v7().to_string(),
        sequence: 2,
        event_type: "TaskCompleted".into(),
        event_version: "1".into(),
        payload: json!({"TaskCompleted": {"completed_at": "2025-06-01T12:00:00Z"}}),
        metadata: json!({"user_id": "x"}),
    };
    serde_json::to_value(CloudEvent::from_logged(&logged)).unwrap()
}

#[test]
fn the_schema_refuses_broken_envelopes() {
    let schema = schema();
    let valid = valid_envelope();
    assert_eq!(violations(&schema, &valid), Vec::<String>::new(), "{valid}");
    assert!(
        valid["time"].as_str().unwrap().ends_with(".123456Z"),
        "sub-second RFC 3339: {valid}"
    );

    type Breaks = Box<dyn Fn(&mut Value)>;
    fn without(key: &'static str) -> Breaks {
        Box::new(move |v| {
            v.as_object_mut().unwrap().remove(key);
        })
    }
    let broken: Vec<(&str, Breaks)> = vec![
        ("no id", without("id")),
        ("no source", without("source")),
        ("no type", without("type")),
        ("no specversion", without("specversion")),
        ("empty id", Box::new(|v| v["id"] = json!(""))),
        ("numeric id", Box::new(|v| v["id"] = json!(7))),
        (
            "old specversion",
            Box::new(|v| v["specversion"] = json!("0.3")),
        ),
        ("empty type", Box::new(|v| v["type"] = json!(""))),
        ("empty subject", Box::new(|v| v["subject"] = json!(""))),
        (
            "source not a URI-reference",
            Box::new(|v| v["source"] = json!("lifeos tasks")),
        ),
        (
            "time not RFC 3339",
            Box::new(|v| v["time"] = json!("2025-06-01 12:00")),
        ),
        (
            "time without zone",
            Box::new(|v| v["time"] = json!("2025-06-01T12:00:00")),
        ),
        (
            "numeric datacontenttype",
            Box::new(|v| v["datacontenttype"] = json!(1)),
        ),
        (
            "upper-case extension",
            Box::new(|v| v["Sequence"] = json!(1)),
        ),
        (
            "extension with _",
            Box::new(|v| v["entity_id"] = json!("x")),
        ),
        (
            "extension name over 20",
            Box::new(|v| v["abcdefghijklmnopqrstu"] = json!("x")),
        ),
        (
            "object extension",
            Box::new(|v| v["position"] = json!({"tx": 1})),
        ),
        (
            "data and data_base64",
            Box::new(|v| v["data_base64"] = json!("AA==")),
        ),
    ];
    for (what, breaks) in broken {
        let mut envelope = valid.clone();
        breaks(&mut envelope);
        assert!(
            !violations(&schema, &envelope).is_empty(),
            "the schema accepts an envelope with {what}: {envelope}"
        );
    }
}

#[test]
fn the_sdk_refuses_broken_envelopes() {
    let valid = valid_envelope();
    serde_json::from_value::<cloudevents::Event>(valid.clone()).expect("the valid one parses");
    for (what, key, value) in [
        ("no id", "id", None),
        ("no type", "type", None),
        ("an unknown specversion", "specversion", Some(json!("9.9"))),
        ("a bad time", "time", Some(json!("yesterday"))),
        ("an object extension", "position", Some(json!({"tx": 1}))),
    ] {
        let mut envelope = valid.clone();
        match value {
            Some(v) => envelope[key] = v,
            None => {
                envelope.as_object_mut().unwrap().remove(key);
            }
        }
        assert!(
            serde_json::from_value::<cloudevents::Event>(envelope.clone()).is_err(),
            "the SDK accepts an envelope with {what}: {envelope}"
        );
    }
}

#[test]
fn the_routing_matches_the_guide() {
    let event = valid_envelope();
    assert_eq!(event["type"], "tasks.completed");
    assert_eq!(event["source"], "lifeos/tasks");
    assert_eq!(event["data"]["action"], "completed");
    assert_eq!(event["sequence"], 2);
    assert_eq!(event["position"], "7.42");
    let parsed: CloudEvent = serde_json::from_value(event).unwrap();
    assert_eq!(
        parsed.nats_subject("lifeos.events"),
        "lifeos.events.tasks.completed"
    );
}
