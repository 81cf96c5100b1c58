//! `lifeos.v1.JournalQueries`: the journal_entries and journal_daily read models over gRPC.
//!
//! ListEntries, GetEntry and SearchEntries read `journal_entries` (and wait on its
//! consistency); GetDailyRollup reads `journal_daily`, whose rows are per local day of the
//! user's clock (preferences time zone and day start hour) as that model knows it.

use api_common::time::to_timestamp;
use api_common::{Caller, invalid_argument, parse_uuid_field};
use command_api::sentiment_to_wire;
use projections::ReadModels;
use projections::journal_daily::{DayJournal, JournalDaily};
use projections::journal_entries::{EntryView, JournalEntries};
use proto::v1::journal_queries_server::JournalQueries;
use proto::v1::{
    GetJournalDailyRollupRequest, GetJournalEntryRequest, JournalDailyRollup, JournalDay,
    JournalEntry, ListJournalEntriesRequest, ListJournalEntriesResponse,
    SearchJournalEntriesRequest, SearchJournalEntriesResponse,
};
use tonic::{Request, Response, Status};

use crate::ReadYourWrites;
use crate::fields::{
    bounded, clock_and_days, day_range, decode_cursor, encode_cursor, read_error, rollup_range,
};

/// Default page size of ListEntries.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page size of ListEntries.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Default number of SearchEntries results.
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;
/// Most SearchEntries results.
pub const MAX_SEARCH_LIMIT: u32 = 100;
/// The longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;

/// The Journal query service.
#[derive(Clone)]
pub struct JournalQueryService {
    models: ReadModels,
    entries: ReadYourWrites,
    daily: ReadYourWrites,
}

impl JournalQueryService {
    /// Answers from `models`, waiting on `entries` (journal_entries) or `daily`
    /// (journal_daily) for consistency tokens.
    pub fn new(models: ReadModels, entries: ReadYourWrites, daily: ReadYourWrites) -> Self {
        Self {
            models,
            entries,
            daily,
        }
    }
}

fn entry_to_proto(e: EntryView) -> JournalEntry {
    JournalEntry {
        entry_id: e.entry_id.to_string(),
        text: e.text,
        mood: e.mood.map(u32::from),
        tags: e.tags,
        sentiment: Some(sentiment_to_wire(e.sentiment)),
        written_at: Some(to_timestamp(e.written_at)),
        day: projections::daily::day_id(e.day),
        edited_at: e.edited_at.map(to_timestamp),
    }
}

fn day_to_proto(d: DayJournal) -> JournalDay {
    JournalDay {
        day: projections::daily::day_id(d.day),
        entries: d.entries,
        mood_count: d.mood_count,
        mood_sum: d.mood_sum,
        mean_mood: d.mean_mood(),
        sentiment_sum_ten_thousandths: d.sentiment_sum,
        mean_sentiment: d.mean_sentiment(),
    }
}

#[tonic::async_trait]
impl JournalQueries for JournalQueryService {
    async fn list_entries(
        &self,
        request: Request<ListJournalEntriesRequest>,
    ) -> Result<Response<ListJournalEntriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (from, to) = day_range(&r.from_day, &r.to_day)?;
        let page_size = bounded("page_size", r.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = decode_cursor(&r.page_token, "ListEntries")?;
        self.entries.wait(&r.consistency_token).await?;
        let (entries, next) = JournalEntries::list(
            &self.models,
            caller.user_id,
            from,
            to,
            cursor.as_ref(),
            page_size,
        )
        .await
        .map_err(read_error)?;
        Ok(Response::new(ListJournalEntriesResponse {
            entries: entries.into_iter().map(entry_to_proto).collect(),
            next_page_token: next.as_ref().map(encode_cursor).unwrap_or_default(),
        }))
    }

    async fn get_entry(
        &self,
        request: Request<GetJournalEntryRequest>,
    ) -> Result<Response<JournalEntry>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let entry_id = parse_uuid_field("entry_id", &r.entry_id)?;
        self.entries.wait(&r.consistency_token).await?;
        JournalEntries::get(&self.models, caller.user_id, entry_id)
            .await
            .map_err(read_error)?
            .map(|e| Response::new(entry_to_proto(e)))
            .ok_or_else(|| Status::not_found(format!("journal entry {entry_id} not found")))
    }

    async fn search_entries(
        &self,
        request: Request<SearchJournalEntriesRequest>,
    ) -> Result<Response<SearchJournalEntriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let query = r.query.trim();
        if query.is_empty() {
            return Err(invalid_argument("query", "must not be empty"));
        }
        let len = query.chars().count();
        if len > MAX_QUERY_CHARS {
            return Err(invalid_argument(
                "query",
                format!("must be at most {MAX_QUERY_CHARS} characters, got {len}"),
            ));
        }
        let limit = bounded("limit", r.limit, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)?;
        self.entries.wait(&r.consistency_token).await?;
        let entries = JournalEntries::search(&self.models, caller.user_id, query, limit)
            .await
            .map_err(read_error)?;
        Ok(Response::new(SearchJournalEntriesResponse {
            entries: entries.into_iter().map(entry_to_proto).collect(),
        }))
    }

    async fn get_daily_rollup(
        &self,
        request: Request<GetJournalDailyRollupRequest>,
    ) -> Result<Response<JournalDailyRollup>, Status> {
        let (caller, from, to) = rollup_range(&request, &self.daily).await?;
        let user = caller.user_id;
        let (clock, days) = clock_and_days(
            JournalDaily::clock(&self.models, user),
            JournalDaily::days(&self.models, user, from, to),
        )
        .await?;
        Ok(Response::new(JournalDailyRollup {
            days: days.into_iter().map(day_to_proto).collect(),
            timezone: clock.timezone,
            day_start_hour: clock.day_start_hour,
        }))
    }
}
