//! `lifeos.v1.CalendarCommands`: requests of the Calendar pillar mapped to [`CalendarCommand`]s
//! on one [`CalendarEvent`] each (aggregate id = event id). Validation is the aggregate's
//! (`EventDetails::validated`); the service only checks the wire shapes (ids, timestamps).

use std::collections::BTreeMap;

use aggregates::calendar::{
    CalendarCommand, CalendarEvent, EventDetails, EventRecurrence, ExternalRef, ics,
    parse_time_zone,
};
use aggregates::calendar_source::{
    CalendarSource, SourceCommand, SourceEvent, SyncEntry, source_id,
};
use api_common::time::from_timestamp;
use api_common::{invalid_argument, parse_uuid_field, status::command_status};
use chrono::{DateTime, Utc};
use cqrs_es::EventStore;
use proto::v1::calendar_commands_server::CalendarCommands;
use proto::v1::{
    CalendarEventFields, CancelEventRequest, CommandAck, CreateEventRequest, ImportIcsRequest,
    ImportIcsResponse, UpdateEventRequest,
};
use store::{AggregateStore, Store, meta};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{CommandContext, execute};

/// The Calendar command service.
#[derive(Clone)]
pub struct CalendarCommandService {
    events: AggregateStore<CalendarEvent, Store>,
    sources: AggregateStore<CalendarSource, Store>,
}

impl CalendarCommandService {
    /// A service writing calendar events through `events` and import connections through
    /// `sources`.
    pub fn new(
        events: AggregateStore<CalendarEvent, Store>,
        sources: AggregateStore<CalendarSource, Store>,
    ) -> Self {
        Self { events, sources }
    }

    /// Runs one event command of an import; `Ok(None)` when `tolerate` says the refusal means
    /// the change is already there.
    async fn import_step(
        &self,
        context: &CommandContext,
        command: CalendarCommand,
        tolerate: &[Code],
    ) -> Result<Option<CommandAck>, Status> {
        match self.run(context.clone(), command).await {
            Ok(ack) => Ok(Some(ack.into_inner())),
            Err(status) if tolerate.contains(&status.code()) => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// Creates the event, or updates it when it already exists (a re-applied plan).
    async fn upsert(
        &self,
        context: &CommandContext,
        event_id: Uuid,
        details: EventDetails,
        external: ExternalRef,
        exists: bool,
    ) -> Result<Option<CommandAck>, Status> {
        let update = CalendarCommand::UpdateEvent {
            event_id,
            details: details.clone(),
        };
        let create = CalendarCommand::CreateEvent {
            event_id,
            details,
            external: Some(external),
        };
        let (first, second) = if exists {
            (update, create)
        } else {
            (create, update)
        };
        match self
            .import_step(context, first, &[Code::NotFound, Code::AlreadyExists])
            .await?
        {
            Some(ack) => Ok(Some(ack)),
            // an event the user cancelled by hand stays cancelled
            None => {
                self.import_step(context, second, &[Code::FailedPrecondition])
                    .await
            }
        }
    }

    async fn run(
        &self,
        context: CommandContext,
        command: CalendarCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let id = command.event_id().to_string();
        let command = context.issue(command);
        execute(&self.events, &(), context, &id, command).await
    }
}

fn required_time(
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, Status> {
    let ts = value.ok_or_else(|| invalid_argument(field, "is required"))?;
    from_timestamp(field, ts)
}

/// The domain details of the wire fields (shapes only; the aggregate checks the rules).
pub fn details_from_wire(fields: Option<CalendarEventFields>) -> Result<EventDetails, Status> {
    let f = fields.ok_or_else(|| invalid_argument("event", "is required"))?;
    let start = required_time("start", f.start.as_ref())?;
    let end = required_time("end", f.end.as_ref())?;
    let times = |field: &str, list: &[prost_types::Timestamp]| {
        list.iter()
            .map(|t| from_timestamp(field, t))
            .collect::<Result<Vec<_>, _>>()
    };
    let exdates = times("exdates", &f.exdates)?;
    let rdates = times("rdates", &f.rdates)?;
    let rrule = (!f.rrule.trim().is_empty()).then_some(f.rrule);
    let recurrence =
        (rrule.is_some() || !exdates.is_empty() || !rdates.is_empty()).then_some(EventRecurrence {
            rrule,
            exdates,
            rdates,
        });
    let text = |s: String| (!s.is_empty()).then_some(s);
    Ok(EventDetails {
        title: f.title,
        start,
        end,
        all_day: f.all_day,
        time_zone: if f.time_zone.trim().is_empty() {
            "UTC".to_string()
        } else {
            f.time_zone
        },
        location: text(f.location),
        description: text(f.description),
        recurrence,
    })
}

#[tonic::async_trait]
impl CalendarCommands for CalendarCommandService {
    async fn create_event(
        &self,
        request: Request<CreateEventRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let event_id = if r.event_id.is_empty() {
            Uuid::now_v7()
        } else {
            parse_uuid_field("event_id", &r.event_id)?
        };
        let details = details_from_wire(r.event)?;
        let command = CalendarCommand::CreateEvent {
            event_id,
            details,
            external: None,
        };
        self.run(context, command).await
    }

    async fn update_event(
        &self,
        request: Request<UpdateEventRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let event_id = parse_uuid_field("event_id", &r.event_id)?;
        let details = details_from_wire(r.event)?;
        self.run(context, CalendarCommand::UpdateEvent { event_id, details })
            .await
    }

    async fn import_ics(
        &self,
        request: Request<ImportIcsRequest>,
    ) -> Result<Response<ImportIcsResponse>, Status> {
        let context = CommandContext::from_request(&request, "")?;
        let r = request.into_inner();
        let domain = api_common::status::domain_status;
        aggregates::calendar_source::validate_source(&r.source).map_err(domain)?;
        let default_tz = if r.time_zone.trim().is_empty() {
            aggregates::calendar::IanaTz::UTC
        } else {
            parse_time_zone(&r.time_zone).map_err(domain)?
        };
        let parsed = ics::parse(&r.ics, default_tz).map_err(domain)?;
        let user = context.caller.user_id;
        let source = source_id(user, &r.source);
        let plan = SourceCommand::PlanSync {
            source: r.source.clone(),
            entries: parsed
                .iter()
                .map(|e| SyncEntry {
                    uid: e.uid.clone(),
                    hash: e.content_hash(),
                })
                .collect(),
            deleted: vec![],
            full: true,
            new_ids: parsed
                .iter()
                .map(|e| (e.uid.clone(), Uuid::now_v7()))
                .collect(),
            sync_token: None,
        };
        let planned = execute(
            &self.sources,
            &(),
            context.clone(),
            &source,
            context.issue(plan),
        )
        .await?
        .into_inner();
        let mut token = planned.consistency_token.clone();
        if planned.event_ids.is_empty() {
            return Ok(Response::new(ImportIcsResponse {
                unchanged: parsed.len() as u32,
                ..Default::default()
            }));
        }
        let loaded = self
            .sources
            .load_events(&source)
            .await
            .map_err(command_status)?;
        let Some(SourceEvent::SyncPlanned {
            created,
            updated,
            removed,
            unchanged,
            ..
        }) = loaded
            .into_iter()
            .find(|e| e.metadata.get(meta::EVENT_ID) == planned.event_ids.first())
            .map(|e| e.payload)
        else {
            return Err(Status::internal("the planned sync was not recorded"));
        };
        let mut details: BTreeMap<String, EventDetails> =
            parsed.into_iter().map(|e| (e.uid, e.details)).collect();
        let mut note = |ack: Option<CommandAck>| {
            if let Some(ack) = ack
                && !ack.consistency_token.is_empty()
            {
                token = ack.consistency_token;
            }
        };
        for (list, exists) in [(&created, false), (&updated, true)] {
            for p in list {
                let Some(d) = details.remove(&p.uid) else {
                    continue;
                };
                let external = ExternalRef {
                    source: r.source.clone(),
                    external_id: p.uid.clone(),
                };
                note(
                    self.upsert(&context, p.event_id, d, external, exists)
                        .await?,
                );
            }
        }
        for p in &removed {
            let cancel = CalendarCommand::CancelEvent {
                event_id: p.event_id,
            };
            note(
                self.import_step(
                    &context,
                    cancel,
                    &[Code::NotFound, Code::FailedPrecondition],
                )
                .await?,
            );
        }
        let done = execute(
            &self.sources,
            &(),
            context.clone(),
            &source,
            context.issue(SourceCommand::CompleteSync),
        )
        .await?
        .into_inner();
        note(Some(done));
        Ok(Response::new(ImportIcsResponse {
            created: created.len() as u32,
            updated: updated.len() as u32,
            cancelled: removed.len() as u32,
            unchanged,
            consistency_token: token,
        }))
    }

    async fn cancel_event(
        &self,
        request: Request<CancelEventRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let event_id = parse_uuid_field("event_id", &request.get_ref().event_id)?;
        self.run(context, CalendarCommand::CancelEvent { event_id })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn ts(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    #[test]
    fn wire_fields_map_and_missing_times_name_the_field() {
        let fields = CalendarEventFields {
            title: "x".into(),
            start: Some(ts(0)),
            end: Some(ts(60)),
            exdates: vec![ts(86_400)],
            rrule: "FREQ=DAILY".into(),
            ..Default::default()
        };
        let d = details_from_wire(Some(fields.clone())).unwrap();
        assert_eq!(d.time_zone, "UTC");
        assert_eq!(d.location, None);
        let r = d.recurrence.unwrap();
        assert_eq!(r.rrule.as_deref(), Some("FREQ=DAILY"));
        assert_eq!(r.exdates.len(), 1);
        let no_end = CalendarEventFields {
            end: None,
            ..fields
        };
        let status = details_from_wire(Some(no_end)).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("end"), "{status:?}");
        let status = details_from_wire(None).unwrap_err();
        assert!(status.message().contains("event"), "{status:?}");
    }
}
