//! `journal_daily`: one row per user per **local** day — entries written, mean mood, mean
//! sentiment — exact under edits and deletes.
//!
//! An entry counts on the local day its `written_at` falls in by the user's clock
//! ([`UserClock`], kept from the `preferences` events as in [`crate::daily`]) when the entry was
//! written. Sums are integers (moods, compound sentiment in ten-thousandths), so the means are
//! exact fractions until the query divides.
//!
//! Edits and deletes must take back what the entry added, on the day it was added to (the clock
//! may have changed since). So the model keeps one fact row per live entry (group [`ENTRY`],
//! row id = entry id: its day, mood and compound), and every journal event carries the entry's
//! `written_at`, whose [`daily::candidate_days`] include that day: [`Projection::keys`] can name
//! the day row before the fact row is read.

use std::collections::BTreeMap;

use aggregates::journal::{JournalEntry, JournalEntryEvent};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, DAY_GROUP, UserClock};
use crate::{Projection, ProjectionError, Row, RowKey, RowReader, RowSet, payload_field};

/// Row group of the per-entry facts.
pub const ENTRY: &str = "entry";

/// One user's journal on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayJournal {
    /// The local day.
    pub day: NaiveDate,
    /// Live entries written that day.
    pub entries: u32,
    /// Entries with a mood.
    pub mood_count: u32,
    /// The sum of their moods.
    pub mood_sum: u64,
    /// The sum of the entries' compound sentiment, in ten-thousandths.
    pub sentiment_sum: i64,
}

impl DayJournal {
    /// A day with nothing in it.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            entries: 0,
            mood_count: 0,
            mood_sum: 0,
            sentiment_sum: 0,
        }
    }

    /// The mean mood of the entries that have one (None when none has).
    pub fn mean_mood(&self) -> Option<f64> {
        (self.mood_count > 0).then(|| self.mood_sum as f64 / f64::from(self.mood_count))
    }

    /// The mean compound sentiment in [−1, 1] (None without entries).
    pub fn mean_sentiment(&self) -> Option<f64> {
        (self.entries > 0).then(|| self.sentiment_sum as f64 / 10_000.0 / f64::from(self.entries))
    }

    fn add(&mut self, fact: &EntryFact, sign: i64) {
        self.entries = (i64::from(self.entries) + sign).max(0) as u32;
        if let Some(mood) = fact.mood {
            self.mood_count = (i64::from(self.mood_count) + sign).max(0) as u32;
            self.mood_sum = (self.mood_sum as i64 + sign * i64::from(mood)).max(0) as u64;
        }
        self.sentiment_sum += sign * i64::from(fact.compound);
    }
}

/// What a live entry adds to its day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EntryFact {
    day: NaiveDate,
    mood: Option<u8>,
    compound: i32,
}

/// The `journal_daily` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalDaily;

impl JournalDaily {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        JournalDaily.model()
    }

    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &JournalDaily, user_id).await
    }

    /// Every day from `from` to `to` (both included), empty days filled in.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayJournal>, ProjectionError> {
        let day_of = |d: &DayJournal| d.day;
        daily::filled_days(
            rows,
            &JournalDaily,
            user_id,
            (from, to),
            day_of,
            DayJournal::empty,
        )
        .await
    }
}

/// The entry's `written_at`, which every journal event carries.
fn written_at(event: &LoggedEvent) -> Option<DateTime<Utc>> {
    payload_field(&event.payload, "written_at")
}

impl Projection for JournalDaily {
    fn name(&self) -> &'static str {
        "journal_daily"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[JournalEntry::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        daily::rollup_keys(event, JournalEntry::TYPE, written_at, |user, at| {
            let mut keys = vec![
                UserClock::key(user),
                RowKey::new(user, event.aggregate_id.clone()),
            ];
            keys.extend(daily::day_keys(user, at));
            keys
        })
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
        let fact_key = RowKey::new(user, payload.entry_id().to_string());
        let old: Option<EntryFact> = rows.get(&fact_key).map(Row::decode).transpose()?;
        let (written_at, new) = match payload {
            JournalEntryEvent::JournalEntryWritten {
                mood,
                sentiment,
                written_at,
                ..
            } => {
                let day = UserClock::get(rows, user)?.day_of(written_at);
                let fact = EntryFact {
                    day,
                    mood,
                    compound: sentiment.compound,
                };
                (written_at, Some(fact))
            }
            JournalEntryEvent::JournalEntryEdited {
                mood,
                sentiment,
                written_at,
                ..
            } => {
                let Some(old) = &old else {
                    return Err(poison(format!("edit of unknown entry {}", fact_key.row_id)));
                };
                let fact = EntryFact {
                    day: old.day,
                    mood,
                    compound: sentiment.compound,
                };
                (written_at, Some(fact))
            }
            JournalEntryEvent::JournalEntryDeleted { written_at, .. } => (written_at, None),
        };
        let candidates = daily::candidate_days(written_at);
        let mut changed: BTreeMap<NaiveDate, DayJournal> = BTreeMap::new();
        for (fact, sign) in [(old.as_ref(), -1), (new.as_ref(), 1)] {
            let Some(fact) = fact else { continue };
            if !candidates.contains(&fact.day) {
                // keys() did not load this row: writing it would overwrite what is stored
                return Err(poison(format!(
                    "local day {} of {written_at} is outside the loaded days",
                    fact.day
                )));
            }
            let totals = match changed.remove(&fact.day) {
                Some(t) => t,
                None => match rows.get(&daily::day_key(user, fact.day)) {
                    Some(row) => row.decode()?,
                    None => DayJournal::empty(fact.day),
                },
            };
            let mut totals = totals;
            totals.add(fact, sign);
            changed.insert(fact.day, totals);
        }
        for (day, totals) in changed {
            let key = daily::day_key(user, day);
            rows.put(Row::new(key, DAY_GROUP, daily::day_id(day), &totals)?);
        }
        match new {
            Some(fact) => rows.put(Row::new(fact_key, ENTRY, "", &fact)?),
            None => rows.delete(&fact_key),
        }
        Ok(())
    }
}
