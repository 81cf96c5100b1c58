//! `journal_entries`: each user's live journal entries by local day, newest first, searchable.
//!
//! Rows:
//! - one per live entry: row id = entry id, group = the entry's **local day** (`YYYY-MM-DD`, the
//!   day `written_at` falls in by the user's clock when the entry was written; an edit keeps
//!   it), sort key = [`newest_first_key`] of `written_at`, so a listing of some days is one
//!   query (`grp` in those days) newest first. The document ([`EntryView`]) holds the text,
//!   mood, tags, sentiment and day. A deleted entry's row is deleted.
//! - one per user, the clock (see [`crate::daily::UserClock`]), folded from `preferences`.
//!
//! Full-text search over the entries' text is [`JournalEntries::search`] (see
//! [`crate::journal_search`]): PostgreSQL `tsvector`, SQLite FTS5, on the rows of this model.

use aggregates::journal::{JournalEntry, JournalEntryEvent, Sentiment};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, UserClock};
use crate::{Projection, ProjectionError, ReadModels, Row, RowCursor, RowKey, RowReader, RowSet};

/// One entry as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// Its id.
    pub entry_id: Uuid,
    /// The text.
    pub text: String,
    /// The mood (1–9).
    pub mood: Option<u8>,
    /// The tags (lowercase, sorted).
    pub tags: Vec<String>,
    /// The sentiment of the text.
    pub sentiment: Sentiment,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// The local day it belongs to.
    pub day: NaiveDate,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
}

/// The `journal_entries` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalEntries;

/// A sort key that orders instants newest first: the microseconds before year 10000, fixed
/// width (years 0000–9999).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use projections::journal_entries::newest_first_key;
/// let early = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
/// let late = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
/// assert!(newest_first_key(late) < newest_first_key(early));
/// ```
pub fn newest_first_key(at: DateTime<Utc>) -> String {
    const YEAR_10000_MICROS: i64 = 253_402_300_800_000_000;
    format!("{:020}", YEAR_10000_MICROS - at.timestamp_micros())
}

impl JournalEntries {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        JournalEntries.model()
    }

    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &JournalEntries, user_id).await
    }

    /// One live entry of `user_id` (None when absent, deleted or someone else's).
    pub async fn get(
        rows: &impl RowReader,
        user_id: Uuid,
        entry_id: Uuid,
    ) -> Result<Option<EntryView>, ProjectionError> {
        let row = rows
            .get_row(&JournalEntries, &RowKey::new(user_id, entry_id.to_string()))
            .await?;
        row.filter(|r| r.grp != daily::CLOCK_GROUP)
            .map(|r| r.decode())
            .transpose()
    }

    /// A page of `user_id`'s entries of the local days `from..=to` (at most
    /// [`daily::MAX_DAYS`] days), newest first, after `cursor`. Returns the page and the cursor
    /// of the next one.
    pub async fn list(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<EntryView>, Option<RowCursor>), ProjectionError> {
        let days: Vec<String> = from
            .iter_days()
            .take_while(|d| *d <= to)
            .take(daily::MAX_DAYS as usize)
            .map(daily::day_id)
            .collect();
        let groups: Vec<&str> = days.iter().map(String::as_str).collect();
        let page = rows
            .list_rows(&JournalEntries, user_id, &groups, cursor, page_size + 1)
            .await?;
        RowCursor::page(page, page_size)
    }

    /// Up to `limit` of `user_id`'s live entries matching `query` (web-search syntax: words,
    /// `"phrases"`, `or`, `-word`), best match first. See [`crate::journal_search`].
    pub async fn search(
        models: &ReadModels,
        user_id: Uuid,
        query: &str,
        limit: usize,
    ) -> Result<Vec<EntryView>, ProjectionError> {
        // NUL is no character a text holds (and PostgreSQL refuses it in a parameter)
        let query = query.replace('\0', " ");
        models
            .search_journal(&JournalEntries, user_id, &query, limit)
            .await?
            .iter()
            .map(Row::decode)
            .collect()
    }
}

impl Projection for JournalEntries {
    fn name(&self) -> &'static str {
        "journal_entries"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[JournalEntry::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        match (event.aggregate_type.as_str(), event.user_id) {
            (JournalEntry::TYPE, Some(user)) => vec![
                UserClock::key(user),
                RowKey::new(user, event.aggregate_id.clone()),
            ],
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, JournalEntry::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: JournalEntryEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let user = event
            .user_id
            .ok_or_else(|| poison("journal event without a user id".to_string()))?;
        let key = RowKey::new(user, payload.entry_id().to_string());
        let current: Option<EntryView> = rows.get(&key).map(Row::decode).transpose()?;
        let view = match (payload, current) {
            (
                JournalEntryEvent::JournalEntryWritten {
                    entry_id,
                    text,
                    mood,
                    tags,
                    sentiment,
                    written_at,
                    ..
                },
                None,
            ) => EntryView {
                entry_id,
                text,
                mood,
                tags,
                sentiment,
                written_at,
                day: UserClock::get(rows, user)?.day_of(written_at),
                edited_at: None,
            },
            (
                JournalEntryEvent::JournalEntryEdited {
                    text,
                    mood,
                    tags,
                    sentiment,
                    edited_at,
                    ..
                },
                Some(entry),
            ) => EntryView {
                text,
                mood,
                tags,
                sentiment,
                edited_at: Some(edited_at),
                ..entry
            },
            (JournalEntryEvent::JournalEntryDeleted { .. }, Some(_)) => {
                rows.delete(&key);
                return Ok(());
            }
            (payload, current) => {
                return Err(poison(format!(
                    "{} does not fit entry {} ({})",
                    payload.event_type(),
                    key.row_id,
                    if current.is_some() { "live" } else { "absent" }
                )));
            }
        };
        let (grp, sort) = (daily::day_id(view.day), newest_first_key(view.written_at));
        rows.put(Row::new(key, grp, sort, &view)?);
        Ok(())
    }
}
