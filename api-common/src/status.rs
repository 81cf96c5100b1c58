//! Errors as gRPC statuses (GUIDE §6): validation → INVALID_ARGUMENT with field violations,
//! missing or foreign → NOT_FOUND, conflict → ABORTED, store down → UNAVAILABLE.

use aggregates::DomainError;
use cqrs_es::AggregateError;
use store::{Position, StoreError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

/// INVALID_ARGUMENT naming `field`, with a `google.rpc.BadRequest` field violation.
pub fn invalid_argument(field: &str, reason: impl Into<String>) -> Status {
    let reason = reason.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid {field}: {reason}"),
        ErrorDetails::with_bad_request_violation(field, reason),
    )
}

/// The status for a refused or failed command.
pub fn command_status(err: AggregateError<DomainError>) -> Status {
    match err {
        AggregateError::UserError(domain) => domain_status(domain),
        AggregateError::AggregateConflict => Status::aborted(
            "the aggregate was changed concurrently too many times; retry the command",
        ),
        AggregateError::DatabaseConnectionError(e) => {
            tracing::warn!(error = %e, "event store unavailable");
            Status::unavailable("event store unavailable; retry with the same command_id")
        }
        AggregateError::DeserializationError(e) | AggregateError::UnexpectedError(e) => {
            tracing::error!(error = %e, "command failed");
            Status::internal("internal error")
        }
    }
}

/// The status for a domain rule.
pub fn domain_status(err: DomainError) -> Status {
    match err {
        DomainError::Invalid { field, reason } => invalid_argument(field, reason),
        DomainError::NotFound { .. } => Status::not_found(err.to_string()),
        DomainError::AlreadyExists { .. } => Status::already_exists(err.to_string()),
        DomainError::Rejected(reason) => Status::failed_precondition(reason),
    }
}

/// The status for a store failure outside the command path (queries).
pub fn store_status(err: &StoreError) -> Status {
    match err {
        StoreError::Unavailable(_) => Status::unavailable("event store unavailable"),
        StoreError::Conflict => Status::aborted("concurrent write; retry"),
        other => {
            tracing::error!(error = %other, "store error");
            Status::internal("internal error")
        }
    }
}

/// A required UUID field (`field` names it in the error).
pub fn parse_uuid_field(field: &str, value: &str) -> Result<Uuid, Status> {
    if value.is_empty() {
        return Err(invalid_argument(field, "is required"));
    }
    Uuid::parse_str(value).map_err(|_| invalid_argument(field, "must be a UUID"))
}

/// A consistency token from a query (`None` when empty).
pub fn parse_consistency_token(value: &str) -> Result<Option<Position>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<Position>()
        .map(Some)
        .map_err(|_| invalid_argument("consistency_token", "is not a token returned by a command"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_the_field() {
        let status = invalid_argument("title", "must not be empty");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details
            .bad_request()
            .expect("bad request details")
            .field_violations;
        assert_eq!(violations[0].field, "title");
        assert_eq!(violations[0].description, "must not be empty");
    }

    #[test]
    fn foreign_and_missing_are_not_found() {
        let s = domain_status(DomainError::NotFound {
            entity: "task",
            id: "x".into(),
        });
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(
            domain_status(DomainError::Rejected("no".into())).code(),
            Code::FailedPrecondition
        );
    }
}
