//! The one error type all pillars share, so one mapping turns it into a gRPC status.

/// Why an aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is malformed (maps to INVALID_ARGUMENT with a field violation).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The request field at fault, as named in the API (e.g. `title`).
        field: &'static str,
        /// What is wrong with it, for a person to read.
        reason: String,
    },
    /// The aggregate does not exist or belongs to another user (maps to NOT_FOUND).
    #[error("{entity} {id} not found")]
    NotFound {
        /// The kind of thing looked for, e.g. `task`.
        entity: &'static str,
        /// Its id as given.
        id: String,
    },
    /// A creation command names an aggregate that already exists (maps to ALREADY_EXISTS).
    #[error("{entity} {id} already exists")]
    AlreadyExists {
        /// The kind of thing, e.g. `task`.
        entity: &'static str,
        /// Its id as given.
        id: String,
    },
    /// The command is well formed but the aggregate's state forbids it (maps to FAILED_PRECONDITION).
    #[error("{0}")]
    Rejected(String),
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
