//! The LifeOS event bus: every committed event, in log order, as a CloudEvent on NATS JetStream
//! (or on an in-process broadcast in the embedded default).
//!
//! The log is the outbox. A [`Relay`] holds the lease `relay:<publisher>` (one publisher among
//! the processes sharing a store; the others wait as hot standbys), reads the log after its
//! checkpoint, hands each batch to a [`Publisher`] and saves the checkpoint only once the whole
//! batch is acknowledged. A relay killed at any point re-publishes at most what was not
//! checkpointed, and JetStream's duplicate window (keyed by `Nats-Msg-Id` = event id) drops the
//! repeats: subscribers see every event exactly once, in per-aggregate order.
//!
//! - [`routing`]: aggregate type → pillar, event type → action, NATS subjects.
//! - [`cloudevent`]: the CloudEvents 1.0 JSON envelope built from a [`store::LoggedEvent`].
//! - [`publisher`]: the [`Publisher`] trait, [`JetStreamPublisher`] and [`InProcessBus`].
//! - [`relay`]: the tailing loop, its lease, checkpoint, retries and [`RelayStatus`].

#![warn(missing_docs)]

pub mod cloudevent;
mod error;
pub mod publisher;
pub mod relay;
pub mod routing;
#[cfg(feature = "testing")]
pub mod testing;

/// The NATS client this crate is built against (to build a [`JetStreamPublisher`] from a shared
/// connection, or to consume the stream).
pub use async_nats;
pub use cloudevent::{CloudEvent, EventData};
pub use error::BusError;
pub use publisher::{InProcessBus, JetStreamConfig, JetStreamPublisher, Publisher};
pub use relay::{Relay, RelayHandle, RelayState, RelayStatus};
pub use routing::Route;
