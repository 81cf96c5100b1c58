//! JSON (protobuf JSON mapping) ⇄ protobuf bytes, generically, through `prost-reflect`
//! descriptors of `proto::FILE_DESCRIPTOR_SET`.

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use tonic::Status;

use crate::Error;

/// The request and response descriptors of one gRPC method.
#[derive(Debug, Clone)]
pub(crate) struct MethodCodec {
    request: MessageDescriptor,
    response: MessageDescriptor,
}

/// The lifeos.v1 descriptors, decoded once.
pub(crate) fn pool() -> Result<DescriptorPool, Error> {
    DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).map_err(Error::Descriptors)
}

impl MethodCodec {
    /// The codec of `method` (`package.Service/Method`).
    pub(crate) fn for_method(pool: &DescriptorPool, method: &str) -> Result<Self, Error> {
        let unknown = || Error::UnknownMethod(method.to_string());
        let (service, name) = method.split_once('/').ok_or_else(unknown)?;
        let method = pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == name))
            .ok_or_else(unknown)?;
        Ok(Self {
            request: method.input(),
            response: method.output(),
        })
    }

    /// The full name of the request message.
    pub(crate) fn request_name(&self) -> &str {
        self.request.full_name()
    }

    /// The full name of the response message.
    pub(crate) fn response_name(&self) -> &str {
        self.response.full_name()
    }

    /// A JSON request body as the protobuf encoding of the request message. An empty (or blank)
    /// body is the empty message. Unknown fields and malformed JSON are INVALID_ARGUMENT.
    pub(crate) fn request_from_json(&self, json: &[u8]) -> Result<Vec<u8>, Status> {
        let json: &[u8] = if json.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            json
        };
        let bad = |e: serde_json::Error| {
            Status::invalid_argument(format!(
                "request body is not a JSON {}: {e}",
                self.request.full_name()
            ))
        };
        let mut de = serde_json::Deserializer::from_slice(json);
        let message = DynamicMessage::deserialize_with_options(
            self.request.clone(),
            &mut de,
            &DeserializeOptions::new(),
        )
        .map_err(bad)?;
        de.end().map_err(bad)?;
        Ok(message.encode_to_vec())
    }

    /// The protobuf encoding of a response as JSON (every field without presence included,
    /// lowerCamelCase names, 64-bit integers as strings).
    pub(crate) fn response_to_json(&self, bytes: &[u8]) -> Result<Vec<u8>, Status> {
        let internal = |what: String| {
            tracing::error!(message = self.response.full_name(), "{what}");
            Status::internal("cannot encode the response")
        };
        let message = DynamicMessage::decode(self.response.clone(), bytes)
            .map_err(|e| internal(format!("response does not match its descriptor: {e}")))?;
        let mut out = serde_json::Serializer::new(Vec::new());
        message
            .serialize_with_options(
                &mut out,
                &SerializeOptions::new().skip_default_fields(false),
            )
            .map_err(|e| internal(format!("response is not JSON-encodable: {e}")))?;
        Ok(out.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::v1::{CommandAck, CreateTaskRequest, ListTasksResponse};
    use tonic::Code;

    fn codec(method: &str) -> MethodCodec {
        MethodCodec::for_method(&pool().unwrap(), method).unwrap()
    }

    #[test]
    fn both_field_name_styles_and_well_known_types_are_accepted() {
        let c = codec("lifeos.v1.TaskCommands/CreateTask");
        for body in [
            r#"{"title":"a","commandId":"c1","parentTaskId":"","due":"2030-01-02T03:04:05Z"}"#,
            r#"{"title":"a","command_id":"c1","parent_task_id":"","due":"2030-01-02T03:04:05Z"}"#,
        ] {
            let bytes = c.request_from_json(body.as_bytes()).unwrap();
            let r = CreateTaskRequest::decode(bytes.as_slice()).unwrap();
            assert_eq!(r.title, "a");
            assert_eq!(r.command_id, "c1");
            assert_eq!(r.due.unwrap().seconds, 1_893_553_445);
        }
        let empty = c.request_from_json(b"").unwrap();
        assert_eq!(
            CreateTaskRequest::decode(empty.as_slice()).unwrap(),
            CreateTaskRequest::default()
        );
    }

    #[test]
    fn malformed_json_and_unknown_fields_are_invalid_argument() {
        let c = codec("lifeos.v1.TaskCommands/CreateTask");
        for body in [
            "{\"title\":",
            "[1]",
            "{\"titel\":\"x\"}",
            "{\"priority\":\"high\"}",
            "{} {}",
        ] {
            let err = c.request_from_json(body.as_bytes()).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{body}: {err:?}");
            assert!(
                err.message().contains("lifeos.v1.CreateTaskRequest"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn responses_keep_default_scalars_and_stringify_u64() {
        let c = codec("lifeos.v1.TaskCommands/CreateTask");
        let ack = CommandAck {
            aggregate_id: "x".into(),
            version: 1,
            ..Default::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&c.response_to_json(&ack.encode_to_vec()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"aggregateId": "x", "version": "1", "consistencyToken": "",
                "eventIds": [], "duplicate": false})
        );
        let l = codec("lifeos.v1.TaskQueries/ListTasks");
        let json: serde_json::Value = serde_json::from_slice(
            &l.response_to_json(&ListTasksResponse::default().encode_to_vec())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["tasks"], serde_json::json!([]));
        assert_eq!(json["openCount"], "0");
    }

    #[test]
    fn unknown_methods_are_refused() {
        let pool = pool().unwrap();
        for m in [
            "lifeos.v1.TaskCommands/Nope",
            "lifeos.v1.Nope/CreateTask",
            "CreateTask",
        ] {
            assert!(matches!(
                MethodCodec::for_method(&pool, m),
                Err(Error::UnknownMethod(_))
            ));
        }
    }
}
