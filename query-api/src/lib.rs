//! gRPC query services over the read models, with optional read-your-writes: a query carrying a
//! command's consistency token waits (bounded) until the read model has applied that command.

mod consistency;
mod tasks;

pub use consistency::ReadYourWrites;
pub use tasks::TaskQueryService;
