//! The request loop of one endpoint: each request in its own task, bounded, answered with the
//! handler's JSON or an error reply, and counted.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::service::endpoint::Endpoint;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::error::error_reply;
use crate::handler::Handler;
use crate::metrics::Counters;

/// The request loop of one endpoint.
pub(crate) struct Serve {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) subject: String,
    pub(crate) limit: Arc<Semaphore>,
    /// Set by [`NatsApi::stop`](crate::NatsApi::stop): take no more requests than those
    /// already received.
    pub(crate) stop: watch::Receiver<bool>,
}

impl Serve {
    /// Answers every request of `endpoint`, each in its own task (at most `limit` at once),
    /// until the endpoint is stopped; then waits for the requests in flight.
    ///
    /// Stopped means the endpoint's stream ends (the service unsubscribed it) or, once asked to
    /// stop, no request is ready: the stream ends only when the connection handler processes
    /// the unsubscription, which never happens while NATS is unreachable.
    pub(crate) async fn run(self, mut endpoint: Endpoint) {
        let mut stop = self.stop.clone();
        let this = Arc::new(self);
        let mut in_flight = JoinSet::new();
        loop {
            let next = tokio::select! {
                biased;
                request = endpoint.next() => request,
                _ = stop.wait_for(|stopped| *stopped) => None,
            };
            let Some(request) = next else {
                break;
            };
            let Ok(permit) = this.limit.clone().acquire_owned().await else {
                break;
            };
            let this = this.clone();
            in_flight.spawn(async move {
                this.answer(request).await;
                drop(permit);
            });
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
    }

    async fn answer(&self, request: async_nats::service::Request) {
        let message = &request.message;
        let span = tracing::info_span!("nats_request", subject = %message.subject);
        async {
            let handled = AssertUnwindSafe(
                self.handler
                    .handle(message.headers.as_ref(), &message.payload),
            )
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("handler panicked");
                Err(Status::internal("internal error"))
            });
            let (headers, body, failed) = match handled {
                Ok(body) => (HeaderMap::new(), body, false),
                Err(status) => {
                    log_refusal(&status);
                    let (headers, body) = error_reply(&status);
                    (headers, body, true)
                }
            };
            // counted before the reply, so a client that got it sees it in system.metrics
            if let Some(c) = self.counters.endpoint(&self.subject) {
                c.record(failed);
            }
            if message.reply.is_none() {
                tracing::debug!("no reply subject: request handled, nothing to answer");
                return;
            }
            if let Err(e) = request.respond_with_headers(Ok(body.into()), headers).await {
                tracing::warn!(error = %e, "cannot publish the reply");
            }
        }
        .instrument(span)
        .await
    }
}

fn log_refusal(status: &Status) {
    match status.code() {
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable => {
            tracing::warn!(code = ?status.code(), message = status.message(), "request failed")
        }
        code => tracing::debug!(?code, message = status.message(), "request refused"),
    }
}
