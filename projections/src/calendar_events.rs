//! `calendar_events`: each user's calendar events, one row per event, and the queries that
//! expand them into occurrences (events in a range, today, free/busy).
//!
//! Rows:
//! - one per event (row id = event id, sort key = the event's start as
//!   [`time_key`]): group [`LIVE`] while the event stands, [`CANCELLED`] once cancelled (kept, so
//!   a cancelled event can still be looked up);
//! - one per user, the clock ([`UserClock`], group and id [`daily::CLOCK_GROUP`]), folded from the
//!   `preferences` events, so `today` is the user's local day.
//!
//! Occurrences are expanded at query time by [`EventDetails::occurrences`] (the `rrule` crate,
//! in the event's time zone), written once in the aggregate crate. A series that ended before a
//! queried range is skipped without expanding ([`EventView::series_end`]).
//!
//! Free/busy: the busy blocks of a day are the merged intervals of its timed occurrences,
//! clipped to the day. All-day events do not block time (they mark the day, like a holiday or a
//! trip, as most calendars treat them by default).

use aggregates::calendar::{CalendarEvent, CalendarEventEvent, EventDetails, ExternalRef};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::daily::{self, UserClock};
use crate::focus_sessions::time_key;
use crate::{
    Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet, payload_field,
};

/// Row group of standing events.
pub const LIVE: &str = "event";
/// Row group of cancelled events.
pub const CANCELLED: &str = "cancelled";
/// How many rows one read of the live events takes.
const PAGE: usize = 500;
/// The longest range an occurrence query may cover, in days.
pub const MAX_RANGE_DAYS: i64 = daily::MAX_DAYS;

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Its id.
    pub event_id: Uuid,
    /// What it says.
    pub details: EventDetails,
    /// Where it was imported from.
    pub external: Option<ExternalRef>,
    /// Whether it was cancelled.
    pub cancelled: bool,
    /// When the last occurrence ends (`None`: repeats forever).
    pub series_end: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One occurrence of an event, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccurrenceView {
    /// The event.
    pub event_id: Uuid,
    /// Its title.
    pub title: String,
    /// This occurrence's start.
    pub start: DateTime<Utc>,
    /// This occurrence's end (exclusive).
    pub end: DateTime<Utc>,
    /// An all-day event.
    pub all_day: bool,
    /// The event's time zone.
    pub time_zone: String,
    /// Where.
    pub location: Option<String>,
    /// Whether the event repeats.
    pub recurring: bool,
    /// Where it was imported from.
    pub external: Option<ExternalRef>,
}

/// A busy interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Busy {
    /// Start.
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

/// The busy blocks of `occurrences` within `[from, to)`: timed occurrences only (all-day ones
/// do not block time), clipped to the range, overlapping or touching intervals merged, in order.
pub fn busy_blocks(
    occurrences: &[OccurrenceView],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Busy> {
    let mut spans: Vec<Busy> = occurrences
        .iter()
        .filter(|o| !o.all_day)
        .map(|o| Busy {
            start: o.start.max(from),
            end: o.end.min(to),
        })
        .filter(|b| b.start < b.end)
        .collect();
    spans.sort_by_key(|b| (b.start, b.end));
    let mut merged: Vec<Busy> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// The `calendar_events` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct CalendarEvents;

impl CalendarEvents {
    /// The model name rows are stored under.
    pub fn model_name() -> String {
        CalendarEvents.model()
    }

    /// `user_id`'s clock as this model knows it (the defaults when never set).
    pub async fn clock(rows: &impl RowReader, user_id: Uuid) -> Result<UserClock, ProjectionError> {
        UserClock::read(rows, &CalendarEvents, user_id).await
    }

    /// One event of `user_id`, cancelled or not (None when absent or someone else's).
    pub async fn get(
        rows: &impl RowReader,
        user_id: Uuid,
        event_id: Uuid,
    ) -> Result<Option<EventView>, ProjectionError> {
        let row = rows
            .get_row(&CalendarEvents, &RowKey::new(user_id, event_id.to_string()))
            .await?;
        row.filter(|r| r.grp == LIVE || r.grp == CANCELLED)
            .map(|r| r.decode())
            .transpose()
    }

    /// Every standing event of `user_id` that starts before `before`, in start order.
    pub async fn live_before(
        rows: &impl RowReader,
        user_id: Uuid,
        before: DateTime<Utc>,
    ) -> Result<Vec<EventView>, ProjectionError> {
        let end = time_key(before);
        let mut out = Vec::new();
        let mut cursor: Option<RowCursor> = None;
        loop {
            let page = rows
                .list_rows(&CalendarEvents, user_id, &[LIVE], cursor.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE;
            for row in &page {
                if row.sort_key >= end {
                    return Ok(out);
                }
                out.push(row.decode()?);
            }
            match (full, page.last()) {
                (true, Some(last)) => {
                    cursor = Some(RowCursor {
                        sort_key: last.sort_key.clone(),
                        row_id: last.key.row_id.clone(),
                    })
                }
                _ => return Ok(out),
            }
        }
    }

    /// The occurrences of `user_id`'s standing events that overlap `[from, to)`, ordered by
    /// start, then end, then event id; at most `limit`. INVALID ranges (`to <= from`, or longer
    /// than [`MAX_RANGE_DAYS`]) are the caller's to refuse; here they give what they cover.
    pub async fn occurrences(
        rows: &impl RowReader,
        user_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OccurrenceView>, ProjectionError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for event in Self::live_before(rows, user_id, to).await? {
            if event.series_end.is_some_and(|end| end <= from) {
                continue;
            }
            let d = &event.details;
            for o in d.occurrences(from, to) {
                out.push(OccurrenceView {
                    event_id: event.event_id,
                    title: d.title.clone(),
                    start: o.start,
                    end: o.end,
                    all_day: d.all_day,
                    time_zone: d.time_zone.clone(),
                    location: d.location.clone(),
                    recurring: d.recurrence.is_some(),
                    external: event.external.clone(),
                });
            }
        }
        out.sort_by_key(|o| (o.start, o.end, o.event_id));
        out.truncate(limit);
        Ok(out)
    }

    /// The occurrences on `user_id`'s local `day` (their time zone and day start hour).
    pub async fn on_day(
        rows: &impl RowReader,
        user_id: Uuid,
        day: NaiveDate,
        limit: usize,
    ) -> Result<(UserClock, Vec<OccurrenceView>), ProjectionError> {
        let clock = Self::clock(rows, user_id).await?;
        let range = clock.day_range(day);
        let list = Self::occurrences(rows, user_id, range.start, range.end, limit).await?;
        Ok((clock, list))
    }

    /// The occurrences of `user_id`'s local day that `now` falls in.
    pub async fn today(
        rows: &impl RowReader,
        user_id: Uuid,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<(NaiveDate, Vec<OccurrenceView>), ProjectionError> {
        let clock = Self::clock(rows, user_id).await?;
        let day = clock.day_of(now);
        let range = clock.day_range(day);
        let list = Self::occurrences(rows, user_id, range.start, range.end, limit).await?;
        Ok((day, list))
    }

    /// The busy blocks of `user_id`'s local `day`, and the day's `[start, end)`.
    pub async fn free_busy(
        rows: &impl RowReader,
        user_id: Uuid,
        day: NaiveDate,
    ) -> Result<(std::ops::Range<DateTime<Utc>>, Vec<Busy>), ProjectionError> {
        let clock = Self::clock(rows, user_id).await?;
        let range = clock.day_range(day);
        let list = Self::occurrences(rows, user_id, range.start, range.end, usize::MAX).await?;
        let busy = busy_blocks(&list, range.start, range.end);
        Ok((range, busy))
    }
}

fn event_id_of(payload: &serde_json::Value) -> Option<Uuid> {
    payload_field(payload, "event_id")
}

impl Projection for CalendarEvents {
    fn name(&self) -> &'static str {
        "calendar_events"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[CalendarEvent::TYPE, UserPreferences::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        if let Some(clock) = UserClock::key_of(event) {
            return vec![clock];
        }
        match (event.aggregate_type.as_str(), event.user_id) {
            (CalendarEvent::TYPE, Some(user)) => event_id_of(&event.payload)
                .map(|id| vec![RowKey::new(user, id.to_string())])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        let model = self.model();
        if !daily::own_event_left(&model, CalendarEvent::TYPE, event, rows)? {
            return Ok(());
        }
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let payload: CalendarEventEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let user = event
            .user_id
            .ok_or_else(|| poison("calendar event without a user id".to_string()))?;
        let key = RowKey::new(user, payload.event_id().to_string());
        let current: Option<EventView> = rows.get(&key).map(Row::decode).transpose()?;
        let view = match (payload, current) {
            (
                CalendarEventEvent::EventCreated {
                    event_id,
                    details,
                    external,
                    created_at,
                    ..
                },
                _,
            ) => EventView {
                event_id,
                series_end: details.series_end(),
                details,
                external,
                cancelled: false,
                created_at,
                updated_at: created_at,
            },
            (
                CalendarEventEvent::EventUpdated {
                    details,
                    updated_at,
                    ..
                },
                Some(view),
            ) => EventView {
                series_end: details.series_end(),
                details,
                updated_at,
                ..view
            },
            (CalendarEventEvent::EventCancelled { cancelled_at, .. }, Some(view)) => EventView {
                cancelled: true,
                updated_at: cancelled_at,
                ..view
            },
            (other, None) => {
                return Err(poison(format!(
                    "{} for event {} that was never created",
                    other.event_type(),
                    other.event_id()
                )));
            }
        };
        let grp = if view.cancelled { CANCELLED } else { LIVE };
        let sort = time_key(view.details.start);
        rows.put(Row::new(key, grp, sort, &view)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, mi, 0).unwrap()
    }

    fn occ(start: DateTime<Utc>, end: DateTime<Utc>, all_day: bool) -> OccurrenceView {
        OccurrenceView {
            event_id: Uuid::nil(),
            title: "x".into(),
            start,
            end,
            all_day,
            time_zone: "UTC".into(),
            location: None,
            recurring: false,
            external: None,
        }
    }

    #[test]
    fn busy_blocks_merge_clip_and_skip_all_day() {
        let list = [
            occ(utc(9, 0), utc(10, 0), false),
            occ(utc(9, 30), utc(10, 30), false),
            occ(utc(10, 30), utc(11, 0), false),
            occ(utc(13, 0), utc(14, 0), false),
            occ(utc(0, 0), utc(23, 59), true),
            occ(utc(22, 0), utc(23, 59), false),
        ];
        let busy = busy_blocks(&list, utc(0, 0), utc(23, 0));
        assert_eq!(
            busy,
            vec![
                Busy {
                    start: utc(9, 0),
                    end: utc(11, 0)
                },
                Busy {
                    start: utc(13, 0),
                    end: utc(14, 0)
                },
                Busy {
                    start: utc(22, 0),
                    end: utc(23, 0)
                },
            ]
        );
        assert!(busy_blocks(&list[..1], utc(10, 0), utc(12, 0)).is_empty());
    }
}
