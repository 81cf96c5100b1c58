//! What answers one endpoint: a routed gRPC method, or a system endpoint.

use std::sync::Arc;

use api_common::Auth;
use async_nats::HeaderMap;
use futures::future::BoxFuture;
use tonic::{Request, Status};

use crate::codec::MethodCodec;
use crate::metadata::{authenticate, forwarded_metadata};
use crate::metrics::Counters;
use crate::route::Invoke;
use crate::system::{SystemStatus, merge_metrics};

/// Answers the payload (and headers) of one request with a JSON body, or a status.
pub(crate) trait Handler: Send + Sync {
    /// The JSON reply to one request.
    fn handle<'a>(
        &'a self,
        headers: Option<&'a HeaderMap>,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Status>>;
}

/// A routed gRPC method: bearer token → caller, JSON → protobuf, metadata, the service method,
/// protobuf → JSON.
pub(crate) struct Rpc {
    pub(crate) auth: Auth,
    pub(crate) codec: MethodCodec,
    pub(crate) invoke: Arc<dyn Invoke>,
}

impl Handler for Rpc {
    fn handle<'a>(
        &'a self,
        headers: Option<&'a HeaderMap>,
        payload: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Status>> {
        Box::pin(async move {
            let caller = authenticate(&self.auth, headers)?;
            let body = self.codec.request_from_json(payload)?;
            let mut request = Request::new(body);
            *request.metadata_mut() = forwarded_metadata(headers)?;
            request.extensions_mut().insert(caller);
            let response = self.invoke.invoke(request).await?;
            self.codec.response_to_json(&response)
        })
    }
}

/// `system.health`: the provider's health report.
pub(crate) struct Health(pub(crate) Arc<dyn SystemStatus>);

impl Handler for Health {
    fn handle<'a>(
        &'a self,
        _: Option<&'a HeaderMap>,
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Status>> {
        Box::pin(async move { to_json(&self.0.health().await) })
    }
}

/// `system.metrics`: the provider's metrics and this service's counters.
pub(crate) struct Metrics {
    pub(crate) status: Arc<dyn SystemStatus>,
    pub(crate) counters: Arc<Counters>,
}

impl Handler for Metrics {
    fn handle<'a>(
        &'a self,
        _: Option<&'a HeaderMap>,
        _: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Status>> {
        Box::pin(async move {
            let provided = self.status.metrics().await;
            to_json(&merge_metrics(provided, self.counters.snapshot()))
        })
    }
}

fn to_json(value: &serde_json::Value) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value).map_err(|e| Status::internal(format!("cannot encode JSON: {e}")))
}
