//! Errors: why the API could not start ([`Error`]), and how a refused request is answered
//! ([`ErrorBody`] + the `Nats-Service-Error*` headers).

use async_nats::HeaderMap;
use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Why the NATS API could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `proto::FILE_DESCRIPTOR_SET` does not decode.
    #[error("the lifeos.v1 descriptor set does not decode: {0}")]
    Descriptors(#[source] prost_reflect::DescriptorError),
    /// A route names a gRPC method the descriptor set does not have.
    #[error("no gRPC method {0} in the lifeos.v1 descriptor set")]
    UnknownMethod(String),
    /// Two routes (or a route and a system endpoint) share a subject.
    #[error("subject {0} is routed twice")]
    DuplicateSubject(String),
    /// A configuration value is unusable (prefix, names, version).
    #[error("invalid NATS API configuration: {0}")]
    Config(String),
    /// NATS refused to start the service or an endpoint.
    #[error("NATS: {0}")]
    Nats(#[source] async_nats::Error),
}

/// One `google.rpc.BadRequest` field violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// The request field (protobuf field name, e.g. `title`).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// The JSON body of an error reply:
/// `{"code": "INVALID_ARGUMENT", "message": "...", "field_violations": [{"field": "title", "description": "..."}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The gRPC code's name (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAUTHENTICATED`, ...).
    pub code: String,
    /// The status message.
    pub message: String,
    /// The field violations of the status's `google.rpc.BadRequest` details (may be empty).
    #[serde(default)]
    pub field_violations: Vec<FieldViolation>,
}

impl ErrorBody {
    /// The body for `status`.
    pub fn from_status(status: &Status) -> Self {
        let field_violations = status
            .get_error_details()
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| FieldViolation {
                        field: v.field.clone(),
                        description: v.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            code: code_name(status.code()).to_string(),
            message: status.message().to_string(),
            field_violations,
        }
    }
}

/// The canonical name of a gRPC code (`Code::InvalidArgument` → `"INVALID_ARGUMENT"`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The longest `Nats-Service-Error` header value sent (the body has the whole message).
const MAX_HEADER_MESSAGE: usize = 512;

/// The headers and JSON body answering a request refused with `status`.
pub(crate) fn error_reply(status: &Status) -> (HeaderMap, Vec<u8>) {
    let body = ErrorBody::from_status(status);
    // a header value is one line of printable text
    let mut message: String = body
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if message.len() > MAX_HEADER_MESSAGE {
        let mut end = MAX_HEADER_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    let mut headers = HeaderMap::new();
    headers.insert(NATS_SERVICE_ERROR, message.as_str());
    headers.insert(
        NATS_SERVICE_ERROR_CODE,
        (status.code() as i32).to_string().as_str(),
    );
    let json = serde_json::to_vec(&body).expect("an error body always serializes");
    (headers, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_and_headers_come_from_the_status() {
        let status = api_common::invalid_argument("title", "must not be empty");
        let (headers, body) = error_reply(&status);
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.code, "INVALID_ARGUMENT");
        assert_eq!(
            body.field_violations,
            [FieldViolation {
                field: "title".into(),
                description: "must not be empty".into()
            }]
        );
        assert_eq!(headers.get(NATS_SERVICE_ERROR_CODE).unwrap().as_str(), "3");
        assert_eq!(
            headers.get(NATS_SERVICE_ERROR).unwrap().as_str(),
            status.message()
        );
    }

    #[test]
    fn header_message_is_one_bounded_line() {
        let status = Status::internal(format!("a\r\nb{}", "é".repeat(600)));
        let (headers, body) = error_reply(&status);
        let header = headers.get(NATS_SERVICE_ERROR).unwrap().as_str();
        assert!(header.starts_with("a  b"));
        assert!(header.len() <= MAX_HEADER_MESSAGE);
        let body: ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(body.message, status.message());
        assert!(body.field_violations.is_empty());
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
    }
}
