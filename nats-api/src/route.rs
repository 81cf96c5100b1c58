//! [`Route`]: one NATS subject bound to one unary method of a tonic service trait.

use std::sync::Arc;

use futures::future::BoxFuture;
use tonic::{Request, Response, Status};

/// A unary method of a tonic service trait, as a function pointer: `|s, r| s.create_task(r)`.
pub type UnaryFn<S, Req, Resp> =
    for<'a> fn(&'a S, Request<Req>) -> BoxFuture<'a, Result<Response<Resp>, Status>>;

/// Calls one service method with a protobuf-encoded request (caller and metadata already in the
/// request) and answers with the protobuf-encoded response.
pub(crate) trait Invoke: Send + Sync {
    /// Decodes the body, calls the method, encodes its response.
    fn invoke(&self, request: Request<Vec<u8>>) -> BoxFuture<'_, Result<Vec<u8>, Status>>;
}

/// A subject (relative to the API prefix, e.g. `commands.tasks.create`) bound to a gRPC method
/// (`lifeos.v1.TaskCommands/CreateTask`) and the Rust service implementing it.
///
/// The method names the request and response messages in the descriptor set, which is how JSON
/// is mapped to protobuf and back; the function pointer is the very trait method gRPC calls.
#[derive(Clone)]
pub struct Route {
    pub(crate) subject: String,
    pub(crate) method: String,
    pub(crate) request_type: &'static str,
    pub(crate) response_type: &'static str,
    pub(crate) invoke: Arc<dyn Invoke>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("subject", &self.subject)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// Binds `subject` to the unary gRPC `method` (`package.Service/Method`), served by `call` on
    /// `service`.
    pub fn unary<S, Req, Resp>(
        subject: impl Into<String>,
        method: impl Into<String>,
        service: &Arc<S>,
        call: UnaryFn<S, Req, Resp>,
    ) -> Self
    where
        S: Send + Sync + 'static,
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
    {
        Self {
            subject: subject.into(),
            method: method.into(),
            request_type: std::any::type_name::<Req>(),
            response_type: std::any::type_name::<Resp>(),
            invoke: Arc::new(Unary {
                service: service.clone(),
                call,
            }),
        }
    }

    /// The subject, relative to the API prefix (e.g. `commands.tasks.create`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The gRPC method it mirrors (e.g. `lifeos.v1.TaskCommands/CreateTask`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The Rust types of the request and response (for consistency checks against the
    /// descriptors).
    pub fn rust_types(&self) -> (&'static str, &'static str) {
        (self.request_type, self.response_type)
    }
}

struct Unary<S, Req, Resp> {
    service: Arc<S>,
    call: UnaryFn<S, Req, Resp>,
}

impl<S, Req, Resp> Invoke for Unary<S, Req, Resp>
where
    S: Send + Sync + 'static,
    Req: prost::Message + Default + 'static,
    Resp: prost::Message + 'static,
{
    fn invoke(&self, request: Request<Vec<u8>>) -> BoxFuture<'_, Result<Vec<u8>, Status>> {
        Box::pin(async move {
            let (metadata, extensions, body) = request.into_parts();
            let message = Req::decode(body.as_slice())
                .map_err(|e| Status::invalid_argument(format!("invalid request message: {e}")))?;
            let request = Request::from_parts(metadata, extensions, message);
            let response = (self.call)(&self.service, request).await?;
            Ok(response.into_inner().encode_to_vec())
        })
    }
}
