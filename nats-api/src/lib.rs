//! The LifeOS API over NATS request/reply: the same command and query handlers as gRPC (one code
//! path, two transports), with JSON bodies in the protobuf JSON mapping.
//!
//! Subjects (with the default prefix `lifeos`):
//!
//! | subject | answers with |
//! |---|---|
//! | `lifeos.commands.<pillar>.<action>` (e.g. `lifeos.commands.tasks.create`) | the gRPC method's response, as JSON |
//! | `lifeos.queries.<pillar>.<name>` (e.g. `lifeos.queries.tasks.list`) | the gRPC method's response, as JSON |
//! | `lifeos.system.health` | the [`SystemStatus`] provider's health JSON |
//! | `lifeos.system.metrics` | the provider's metrics JSON plus this service's counters under `nats_api` |
//!
//! A command or query request carries header `Authorization: Bearer <JWT>` (and optionally
//! `x-correlation-id`, `x-causation-id`, `x-client-version`, `x-client-platform`, stored with the
//! events as over gRPC) and a JSON body: the protobuf request message in the protobuf JSON mapping
//! (lowerCamelCase or original field names; an empty body is the empty message). A failure answers
//! with an [`ErrorBody`] and the headers `Nats-Service-Error` (the message) and
//! `Nats-Service-Error-Code` (the numeric gRPC code).
//!
//! It runs as an async-nats `service` (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS` discovery) with a
//! queue group, so several server processes share the requests.
//!
//! A pillar plugs in with a list of [`Route`]s (subject → tonic service method, written once; see
//! [`tasks::routes`]); everything else (auth, JSON ⇄ protobuf, metadata, errors, counters) is
//! shared.
//!
//! Wiring it into a server:
//!
//! ```no_run
//! # async fn wire(
//! #     client: async_nats::Client,
//! #     auth: api_common::Auth,
//! #     commands: command_api::TaskCommandService,
//! #     queries: query_api::TaskQueryService,
//! # ) -> Result<(), nats_api::Error> {
//! use std::sync::Arc;
//! use futures::future::BoxFuture;
//! use serde_json::{Value, json};
//!
//! struct Status;
//! impl nats_api::SystemStatus for Status {
//!     fn health(&self) -> BoxFuture<'_, Value> {
//!         Box::pin(async { json!({"status": "ok"}) })
//!     }
//!     fn metrics(&self) -> BoxFuture<'_, Value> {
//!         Box::pin(async { json!({"commands": 0}) })
//!     }
//! }
//!
//! let api = nats_api::start(client, auth, (commands, queries), Arc::new(Status)).await?;
//! // ... serve until shutdown, then:
//! api.stop().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod calendar;
mod codec;
mod error;
pub mod finance;
pub mod focus;
pub mod habits;
mod handler;
pub mod health;
pub mod journal;
mod metadata;
mod metrics;
pub mod preferences;
mod route;
mod serve;
mod service;
mod system;
pub mod tasks;

use std::sync::Arc;

use api_common::Auth;
use proto::v1::task_commands_server::TaskCommands;
use proto::v1::task_queries_server::TaskQueries;

pub use error::{Error, ErrorBody, FieldViolation, code_name};
pub use route::{Route, UnaryFn};
pub use service::{Builder, Config, NatsApi};
pub use system::SystemStatus;

/// The service name announced to `$SRV` discovery by default.
pub const DEFAULT_SERVICE_NAME: &str = "lifeos";
/// The subject prefix (and default queue group) of every endpoint by default.
pub const DEFAULT_PREFIX: &str = "lifeos";

/// Starts the NATS API with the default [`Config`]: the Tasks routes over `tasks` (commands,
/// queries), and `lifeos.system.*` answered by `status`. Stop it with [`NatsApi::stop`].
pub async fn start<C, Q>(
    client: async_nats::Client,
    auth: Auth,
    tasks: (C, Q),
    status: Arc<dyn SystemStatus>,
) -> Result<NatsApi, Error>
where
    C: TaskCommands,
    Q: TaskQueries,
{
    NatsApi::builder(client, auth, status)
        .routes(tasks::routes(tasks.0, tasks.1))
        .start()
        .await
}
