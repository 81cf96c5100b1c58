//! The embedded default: a `tokio::sync::broadcast` of the same envelope NATS carries.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::broadcast;

use crate::{BusError, CloudEvent, Publisher};

/// An in-process bus: every published event goes to every current subscriber.
///
/// Cloning gives another handle on the same bus. A subscriber that falls more than the capacity
/// behind gets [`broadcast::error::RecvError::Lagged`] (the events it missed are still in the
/// log). With no subscriber, publishing succeeds and the events go nowhere.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use bus::{InProcessBus, Publisher};
/// let bus = InProcessBus::new(16);
/// let mut events = bus.subscribe();
/// bus.publish(&[]).await.unwrap();
/// assert!(events.try_recv().is_err()); // nothing was published
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<CloudEvent>>,
}

impl InProcessBus {
    /// The publisher name (relay lease and checkpoint `relay:in-process`).
    pub const NAME: &'static str = "in-process";

    /// A bus keeping up to `capacity` events for slow subscribers (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// A new subscriber, receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CloudEvent>> {
        self.sender.subscribe()
    }

    /// How many subscribers there are now.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl Default for InProcessBus {
    /// A bus with capacity 1024.
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Publisher for InProcessBus {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn publish<'a>(&'a self, batch: &'a [CloudEvent]) -> BoxFuture<'a, Result<(), BusError>> {
        for event in batch {
            // An error only means nobody is subscribed right now.
            let _ = self.sender.send(Arc::new(event.clone()));
        }
        futures::future::ready(Ok(())).boxed()
    }
}
