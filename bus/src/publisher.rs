//! Where the relay hands batches of events: the [`Publisher`] trait and its two implementations,
//! NATS JetStream ([`JetStreamPublisher`]) and an in-process broadcast ([`InProcessBus`]).

use futures::future::BoxFuture;

use crate::{BusError, CloudEvent};

mod in_process;
mod jetstream;

pub use in_process::InProcessBus;
pub use jetstream::{JetStreamConfig, JetStreamPublisher};

/// A destination for events.
///
/// `publish` is all-or-error and keeps order: `Ok` means every event of the batch was accepted
/// (for JetStream: acknowledged by the stream), in the batch's order. On `Err` the caller
/// publishes the whole batch again, so implementations must make repeats harmless (JetStream
/// drops them by event id). Object safe, so a relay can be given either at run time.
pub trait Publisher: Send + Sync + 'static {
    /// A stable name for this destination: the relay's lease and checkpoint are
    /// `relay:<name>`, so two publishers with the same name share one position in the log.
    fn name(&self) -> &str;

    /// Publishes `batch`, in order; `Ok` only when all of it was accepted.
    fn publish<'a>(&'a self, batch: &'a [CloudEvent]) -> BoxFuture<'a, Result<(), BusError>>;
}
