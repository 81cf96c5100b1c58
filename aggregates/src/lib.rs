//! The pure domain of every LifeOS pillar: cqrs-es aggregates, their commands, events and rules.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: ids and timestamps arrive inside
//! the command ([`Issued`]), so every rule is a given/when/then test.

pub mod calendar;
pub mod calendar_source;
pub mod error;
pub mod finance;
pub mod focus;
pub mod habit;
pub mod health;
pub mod issued;
pub mod journal;
pub mod pillar;
pub mod preferences;
pub mod task;

pub use error::DomainError;
pub use issued::Issued;

/// The pillar an aggregate type belongs to: the name clients filter on and the bus routes by
/// (`task` → `tasks`). Unknown types are their own pillar.
///
/// ```
/// assert_eq!(aggregates::pillar_of("task"), "tasks");
/// assert_eq!(aggregates::pillar_of("account"), "finance");
/// ```
pub fn pillar_of(aggregate_type: &str) -> &str {
    match aggregate_type {
        "task" => "tasks",
        "calendar_event" | "calendar_source" => "calendar",
        "habit" => "habits",
        "journal_entry" => "journal",
        "account" | "budget" => "finance",
        "health" => "health",
        other => other,
    }
}
