//! Long-running CLI commands (rebuild, replay): progress on a terminal, plain lines elsewhere.

pub mod progress;
pub mod projections;
pub mod replay;
