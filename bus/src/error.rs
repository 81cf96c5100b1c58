//! The one error type of the bus.

use uuid::Uuid;

/// What can go wrong on the bus. Publishing errors are transient for the [`Relay`](crate::Relay):
/// it retries the whole batch with backoff.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A configuration value is unusable (e.g. a subject prefix that is not a NATS subject).
    #[error("invalid bus configuration: {0}")]
    Config(String),
    /// The NATS server could not be reached or the URL is malformed.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The JetStream stream could not be created or updated (JetStream disabled, NATS down, a
    /// conflicting stream on the same subjects…).
    #[error("cannot create or update the JetStream stream {stream}: {reason}")]
    Stream {
        /// The stream name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// A publish was not acknowledged (NATS down, timeout, no stream for the subject…).
    #[error("publishing event {event_id} to {subject} failed: {reason}")]
    Publish {
        /// The event that failed (the batch it was in is not acknowledged as a whole).
        event_id: Uuid,
        /// Its NATS subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// An event could not be encoded as JSON.
    #[error("encoding event {event_id} as a CloudEvent: {source}")]
    Encode {
        /// The event.
        event_id: Uuid,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The event store failed (reading the log, the checkpoint or the lease).
    #[error("event store: {0}")]
    Store(#[from] store::StoreError),
    /// The relay task ended abnormally (it panicked).
    #[error("the relay task failed: {0}")]
    Task(String),
}
