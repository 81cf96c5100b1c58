//! `lifeos.v1.JournalCommands`: requests of the Journal pillar mapped to [`JournalCommand`]s on
//! one [`JournalEntry`] each (aggregate id = entry id). Validation and the sentiment are the
//! aggregate's; the service only checks the wire shapes (ids, timestamps, mood range of the
//! wire integer).

use aggregates::journal::{
    EntryContent, JournalCommand, JournalEntry, JournalEntryEvent, Sentiment,
};
use api_common::time::from_timestamp;
use api_common::{invalid_argument, parse_uuid_field};
use proto::v1::journal_commands_server::JournalCommands;
use proto::v1::{
    CommandAck, DeleteJournalEntryRequest, EditJournalEntryRequest, JournalSentiment,
    WriteJournalEntryRequest, WriteJournalEntryResponse,
};
use store::{AggregateStore, Store};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::context::first_acked_event;
use crate::{CommandContext, execute};

/// The Journal command service.
#[derive(Clone)]
pub struct JournalCommandService {
    entries: AggregateStore<JournalEntry, Store>,
}

impl JournalCommandService {
    /// A service writing journal entries through `entries`.
    pub fn new(entries: AggregateStore<JournalEntry, Store>) -> Self {
        Self { entries }
    }

    async fn run(
        &self,
        context: CommandContext,
        command: JournalCommand,
    ) -> Result<Response<CommandAck>, Status> {
        let id = command.entry_id().to_string();
        let command = context.issue(command);
        execute(&self.entries, &(), context, &id, command).await
    }

    /// The sentiment the `JournalEntryWritten` event of `ack` stored (also for a repeated
    /// command id: the first execution's).
    async fn written_sentiment(&self, ack: &CommandAck) -> Result<Sentiment, Status> {
        let reused = || {
            Status::failed_precondition(
                "command_id was already used by another command than WriteEntry",
            )
        };
        first_acked_event(&self.entries, ack)
            .await?
            .and_then(|event| match event {
                JournalEntryEvent::JournalEntryWritten { sentiment, .. } => Some(sentiment),
                _ => None,
            })
            .ok_or_else(reused)
    }
}

/// The wire form of a sentiment.
pub fn sentiment_to_wire(s: Sentiment) -> JournalSentiment {
    JournalSentiment {
        compound_ten_thousandths: s.compound,
        positive_thousandths: u32::from(s.positive),
        neutral_thousandths: u32::from(s.neutral),
        negative_thousandths: u32::from(s.negative),
    }
}

/// The domain content of the wire fields (the aggregate checks the rules).
fn content(text: String, mood: Option<u32>, tags: Vec<String>) -> Result<EntryContent, Status> {
    let mood = mood
        .map(|m| {
            u8::try_from(m)
                .map_err(|_| invalid_argument("mood", format!("must be 1 to 9, got {m}")))
        })
        .transpose()?;
    Ok(EntryContent { text, mood, tags })
}

#[tonic::async_trait]
impl JournalCommands for JournalCommandService {
    async fn write_entry(
        &self,
        request: Request<WriteJournalEntryRequest>,
    ) -> Result<Response<WriteJournalEntryResponse>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let entry_id = if r.entry_id.is_empty() {
            Uuid::now_v7()
        } else {
            parse_uuid_field("entry_id", &r.entry_id)?
        };
        let written_at = r
            .written_at
            .as_ref()
            .map(|t| from_timestamp("written_at", t))
            .transpose()?;
        let command = JournalCommand::WriteEntry {
            entry_id,
            content: content(r.text, r.mood, r.tags)?,
            written_at,
        };
        let ack = self.run(context, command).await?.into_inner();
        let sentiment = self.written_sentiment(&ack).await?;
        Ok(Response::new(WriteJournalEntryResponse {
            entry_id: ack.aggregate_id.clone(),
            ack: Some(ack),
            sentiment: Some(sentiment_to_wire(sentiment)),
        }))
    }

    async fn edit_entry(
        &self,
        request: Request<EditJournalEntryRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let r = request.into_inner();
        let entry_id = parse_uuid_field("entry_id", &r.entry_id)?;
        let content = content(r.text, r.mood, r.tags)?;
        self.run(context, JournalCommand::EditEntry { entry_id, content })
            .await
    }

    async fn delete_entry(
        &self,
        request: Request<DeleteJournalEntryRequest>,
    ) -> Result<Response<CommandAck>, Status> {
        let context = CommandContext::from_request(&request, &request.get_ref().command_id)?;
        let entry_id = parse_uuid_field("entry_id", &request.get_ref().entry_id)?;
        self.run(context, JournalCommand::DeleteEntry { entry_id })
            .await
    }
}
