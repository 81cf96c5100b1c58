//! The pure domain of every LifeOS pillar: cqrs-es aggregates, their commands, events and rules.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: ids and timestamps arrive inside
//! the command ([`Issued`]), so every rule is a given/when/then test.

pub mod error;
pub mod issued;
pub mod task;

pub use error::DomainError;
pub use issued::Issued;
