//! The shared edge of the LifeOS gRPC APIs: who is calling (bearer JWT), how errors look
//! (gRPC status with `google.rpc.BadRequest` field violations), and consistency tokens.

pub mod auth;
pub mod status;

pub use auth::{Auth, Caller};
pub use status::{invalid_argument, parse_consistency_token, parse_uuid_field};
pub mod metrics;
pub mod time;
