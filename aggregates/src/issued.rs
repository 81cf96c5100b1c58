//! The envelope every pillar command travels in: who issued it and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A pillar command `C` as issued by an authenticated user at a given instant.
///
/// The aggregate checks ownership against `actor` and stamps its events with `at`, so handling
/// stays deterministic.
///
/// ```
/// use aggregates::Issued;
/// let cmd = Issued::new(uuid::Uuid::nil(), chrono::Utc::now(), "anything");
/// assert_eq!(cmd.command, "anything");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued<C> {
    /// The authenticated user issuing the command.
    pub actor: Uuid,
    /// When the command was accepted by the API (server clock).
    pub at: DateTime<Utc>,
    /// The pillar command itself.
    pub command: C,
}

impl<C> Issued<C> {
    /// Wraps `command` as issued by `actor` at `at`.
    pub fn new(actor: Uuid, at: DateTime<Utc>, command: C) -> Self {
        Self { actor, at, command }
    }
}
