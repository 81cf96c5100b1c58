//! The command path shared by every pillar.

use std::collections::HashMap;

use aggregates::{DomainError, Issued};
use api_common::metrics::COUNTERS;
use api_common::{Caller, invalid_argument, status::command_status};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, EventStore};
use proto::v1::CommandAck;
use store::{AggregateStore, CommandKey, Store, meta};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

/// The longest command id accepted.
pub const MAX_COMMAND_ID_LEN: usize = 128;
/// The longest client header value (correlation id, version, platform) kept.
const MAX_HEADER_LEN: usize = 128;

/// Headers a client may send, and the metadata key each is stored under.
const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("x-correlation-id", meta::CORRELATION_ID),
    ("x-causation-id", meta::CAUSATION_ID),
    ("x-client-version", meta::CLIENT_VERSION),
    ("x-client-platform", meta::PLATFORM),
];

/// Who sent a command, when, under which idempotency key, with which metadata.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The authenticated caller.
    pub caller: Caller,
    /// The client's idempotency key, if it sent one.
    pub command_id: Option<String>,
    /// When the server accepted the command.
    pub at: DateTime<Utc>,
    /// Stored with every event: user, command, correlation, causation, client.
    pub metadata: HashMap<String, String>,
}

impl CommandContext {
    /// Reads the caller (set by the auth interceptor), checks `command_id`, collects metadata.
    pub fn from_request<T>(request: &Request<T>, command_id: &str) -> Result<Self, Status> {
        let caller = Caller::of(request)?;
        if command_id.chars().count() > MAX_COMMAND_ID_LEN {
            return Err(invalid_argument(
                "command_id",
                format!("must be at most {MAX_COMMAND_ID_LEN} characters"),
            ));
        }
        let command_id = (!command_id.is_empty()).then(|| command_id.to_string());
        let metadata = collect_metadata(request.metadata(), &caller, command_id.as_deref())?;
        Ok(Self {
            caller,
            command_id,
            at: Utc::now(),
            metadata,
        })
    }

    /// Wraps a pillar command as issued by this caller now.
    pub fn issue<C>(&self, command: C) -> Issued<C> {
        Issued::new(self.caller.user_id, self.at, command)
    }

    fn key(&self) -> Option<CommandKey> {
        self.command_id.as_ref().map(|id| CommandKey {
            user_id: self.caller.user_id,
            command_id: id.clone(),
        })
    }
}

fn collect_metadata(
    headers: &MetadataMap,
    caller: &Caller,
    command_id: Option<&str>,
) -> Result<HashMap<String, String>, Status> {
    let mut metadata = HashMap::new();
    metadata.insert(meta::USER_ID.to_string(), caller.user_id.to_string());
    if let Some(id) = command_id {
        metadata.insert(meta::COMMAND_ID.to_string(), id.to_string());
    }
    for (header, key) in CLIENT_HEADERS {
        if let Some(value) = headers.get(*header) {
            let value = value
                .to_str()
                .map_err(|_| invalid_argument(header, "must be printable ASCII"))?;
            if value.len() > MAX_HEADER_LEN {
                return Err(invalid_argument(
                    header,
                    format!("must be at most {MAX_HEADER_LEN} characters"),
                ));
            }
            metadata.insert(key.to_string(), value.to_string());
        }
    }
    // every event belongs to a correlation: the client's, else this command's
    let own = command_id.map_or_else(|| Uuid::now_v7().to_string(), str::to_string);
    metadata
        .entry(meta::CORRELATION_ID.to_string())
        .or_insert_with(|| own.clone());
    metadata
        .entry(meta::CAUSATION_ID.to_string())
        .or_insert(own);
    Ok(metadata)
}

/// The first event `ack` names (its `event_ids[0]`), read back from its aggregate's stream: what
/// an answer reports of the command's own event, also for a repeated command id. None when the
/// ack names no event or the stream does not hold it.
pub async fn first_acked_event<A>(
    aggregates: &AggregateStore<A, Store>,
    ack: &CommandAck,
) -> Result<Option<A::Event>, Status>
where
    A: Aggregate<Error = DomainError>,
{
    let Some(event_id) = ack.event_ids.first() else {
        return Ok(None);
    };
    let events = aggregates
        .load_events(&ack.aggregate_id)
        .await
        .map_err(command_status)?;
    Ok(events
        .into_iter()
        .find(|e| e.metadata.get(meta::EVENT_ID) == Some(event_id))
        .map(|e| e.payload))
}

/// Executes `command` on `aggregate_id` and answers with its ack: the one execution path of
/// every pillar (idempotency, conflict retries, error mapping, tracing span).
pub async fn execute<A>(
    aggregates: &AggregateStore<A, Store>,
    services: &A::Services,
    context: CommandContext,
    aggregate_id: &str,
    command: A::Command,
) -> Result<Response<CommandAck>, Status>
where
    A: Aggregate<Error = DomainError>,
    A::Command: Clone,
{
    let span = tracing::info_span!(
        "command",
        aggregate = A::TYPE,
        aggregate_id,
        user_id = %context.caller.user_id,
        command_id = context.command_id.as_deref().unwrap_or(""),
    );
    async move {
        let key = context.key();
        let outcome = aggregates
            .execute(aggregate_id, command, services, context.metadata, key)
            .await
            .map_err(|err| {
                match &err {
                    cqrs_es::AggregateError::UserError(_) => COUNTERS.rejected(),
                    _ => COUNTERS.failed(),
                }
                command_status(err)
            })?;
        COUNTERS.committed(outcome.receipt.event_ids.len(), outcome.duplicate);
        let receipt = outcome.receipt;
        tracing::info!(
            version = receipt.version,
            events = receipt.event_ids.len(),
            duplicate = outcome.duplicate,
            "command committed"
        );
        Ok(Response::new(CommandAck {
            aggregate_id: receipt.aggregate_id,
            version: receipt.version,
            consistency_token: receipt.position.map(|p| p.to_string()).unwrap_or_default(),
            event_ids: receipt.event_ids.iter().map(Uuid::to_string).collect(),
            duplicate: outcome.duplicate,
        }))
    }
    .instrument(span)
    .await
}
