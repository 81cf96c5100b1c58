//! `calendar_daily`: per user per **local** day — meeting minutes, meeting count, first start
//! and last end (for "late meetings").
//!
//! **Computed at query time** from the `calendar_events` model, not stored in rows of its own:
//! a recurring series has no last occurrence, so a rollup folded from the log would have to
//! materialize occurrences up to an arbitrary horizon and rewrite every day row of a series when
//! it changes. Expanding the days asked for (at most [`MAX_DAYS`]) with the one expansion
//! ([`aggregates::calendar::EventDetails::occurrences`]) gives exact figures for any day, past or
//! future. The local days are the user's clock as `calendar_events` knows it **now** (unlike
//! `focus_daily`, changing the time zone re-buckets past days too).
//!
//! What counts as a meeting: a timed occurrence (all-day events mark the day, they are not
//! meetings). An occurrence counts on every local day it overlaps, with the minutes inside that
//! day; `first_start` / `last_end` are the earliest start and latest end among the occurrences
//! overlapping the day (a meeting running past the day's end shows its real end).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar_events::{CalendarEvents, OccurrenceView};
use crate::daily::{MAX_DAYS, UserClock};
use crate::{ProjectionError, RowReader};

/// One user's meetings on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayMeetings {
    /// The local day.
    pub day: NaiveDate,
    /// Seconds of meetings inside the day (overlapping meetings each count).
    pub meeting_seconds: i64,
    /// Meetings overlapping the day.
    pub meetings: u32,
    /// The earliest start among them.
    pub first_start: Option<DateTime<Utc>>,
    /// The latest end among them.
    pub last_end: Option<DateTime<Utc>>,
}

impl DayMeetings {
    /// A day without meetings.
    pub fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            meeting_seconds: 0,
            meetings: 0,
            first_start: None,
            last_end: None,
        }
    }

    /// Meeting minutes (seconds / 60).
    pub fn meeting_minutes(&self) -> f64 {
        self.meeting_seconds as f64 / 60.0
    }
}

/// Rolls `occurrences` up into the local days `from..=to` of `clock` (every day listed, empty
/// ones too).
pub fn rollup(
    occurrences: &[OccurrenceView],
    clock: &UserClock,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DayMeetings> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|day| {
            let range = clock.day_range(day);
            let mut totals = DayMeetings::empty(day);
            for o in occurrences.iter().filter(|o| !o.all_day) {
                let (start, end) = (o.start.max(range.start), o.end.min(range.end));
                if start >= end {
                    continue;
                }
                totals.meeting_seconds += (end - start).num_seconds();
                totals.meetings += 1;
                totals.first_start = Some(totals.first_start.map_or(o.start, |f| f.min(o.start)));
                totals.last_end = Some(totals.last_end.map_or(o.end, |l| l.max(o.end)));
            }
            totals
        })
        .collect()
}

/// The `calendar_daily` rollup over the `calendar_events` model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CalendarDaily;

impl CalendarDaily {
    /// `user_id`'s meetings on the local days `from..=to` (at most [`MAX_DAYS`] days; a longer
    /// or reversed range gives what it covers, capped), with the clock used.
    pub async fn days(
        rows: &impl RowReader,
        user_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(UserClock, Vec<DayMeetings>), ProjectionError> {
        let clock = CalendarEvents::clock(rows, user_id).await?;
        if to < from {
            return Ok((clock, Vec::new()));
        }
        let to = to.min(from + chrono::Duration::days(MAX_DAYS - 1));
        let start = clock.day_range(from).start;
        let end = clock.day_range(to).end;
        let list = CalendarEvents::occurrences(rows, user_id, start, end, usize::MAX).await?;
        let days = rollup(&list, &clock, from, to);
        Ok((clock, days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn occ(start: DateTime<Utc>, end: DateTime<Utc>, all_day: bool) -> OccurrenceView {
        OccurrenceView {
            event_id: Uuid::nil(),
            title: "m".into(),
            start,
            end,
            all_day,
            time_zone: "UTC".into(),
            location: None,
            recurring: false,
            external: None,
        }
    }

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn days_follow_the_clock_across_dst_and_a_4am_start() {
        // Paris, days from 04:00; 29 March 2026 springs forward at 02:00 (the 28th has 23 h)
        let clock = UserClock::new("Europe/Paris", 4);
        let paris = |d: u32, h: u32, m: u32| {
            chrono_tz::Europe::Paris
                .with_ymd_and_hms(2026, 3, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let list = [
            occ(paris(28, 9, 0), paris(28, 10, 0), false),
            // 01:00–03:30 local on the 29th spans the gap: 1.5 h of real time, still the 28th
            occ(paris(29, 1, 0), paris(29, 3, 30), false),
            // 03:30–05:00 on the 29th: 30 min on the 28th, 60 min on the 29th
            occ(paris(29, 3, 30), paris(29, 5, 0), false),
            occ(paris(29, 0, 0), paris(30, 0, 0), true),
        ];
        let days = rollup(&list, &clock, date(3, 28), date(3, 30));
        assert_eq!(days.len(), 3);
        let d28 = &days[0];
        assert_eq!(d28.meetings, 3);
        assert_eq!(
            d28.meeting_seconds,
            (Duration::hours(1) + Duration::minutes(90) + Duration::minutes(30)).num_seconds()
        );
        assert_eq!(d28.meeting_minutes(), 180.0);
        assert_eq!(d28.first_start, Some(paris(28, 9, 0)));
        assert_eq!(d28.last_end, Some(paris(29, 5, 0)), "the real end");
        let d29 = &days[1];
        assert_eq!(
            (d29.meetings, d29.meeting_seconds),
            (1, 3600),
            "all-day not a meeting"
        );
        assert_eq!(days[2], DayMeetings::empty(date(3, 30)));
    }
}
