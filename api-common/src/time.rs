//! `google.protobuf.Timestamp` ⇄ `chrono::DateTime<Utc>` at the API boundary.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use tonic::Status;

use crate::invalid_argument;

/// A timestamp field of a request (`field` names it in the error).
pub fn from_timestamp(field: &str, ts: &Timestamp) -> Result<DateTime<Utc>, Status> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(invalid_argument(field, "nanos must be in 0..1e9"));
    }
    DateTime::from_timestamp(ts.seconds, ts.nanos as u32)
        .ok_or_else(|| invalid_argument(field, "is out of range"))
}

/// The wire form of a time.
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}
