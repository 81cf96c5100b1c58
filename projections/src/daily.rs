//! Local days, written once for every daily rollup (Focus today; Calendar, Tasks, Habits next).
//!
//! A user's "day" is a span of their local wall clock: it begins at `day_start_hour` (0–23, from
//! their preferences) in their IANA time zone and lasts until the same wall-clock hour the next
//! day — 23 or 25 hours across a DST change. [`local_day`] says which day an instant belongs to;
//! [`day_range`] gives a day's `[start, end)` instants back.
//!
//! Rollups need the user's zone while folding, so a rollup projection also reads the
//! `preferences` events and keeps a per-user [`UserClock`] row in its own model
//! ([`UserClock::fold`]). Two consequences, by design:
//! - a rollup buckets an event with the clock the user had **when the event was folded**:
//!   changing the time zone or the day start later does not re-bucket past days (rebuilding the
//!   model from the log gives the same days again, since the preference events are folded in
//!   log order);
//! - the day row an event lands in depends on a row ([`UserClock`]) that is only known once
//!   loaded, so [`Projection::keys`](crate::Projection::keys) names every day the instant could
//!   fall in, in any zone and day start ([`candidate_days`]), and the fold picks one of them.
//!
//! Day rows share one shape: group [`DAY_GROUP`], row id and sort key `YYYY-MM-DD`
//! ([`day_key`]), so a day range is a key range ([`list_days`]).
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use projections::daily::{Tz, local_day};
//! // 02:30 in Paris on 30 March 2026 still belongs to the 29th when days start at 04:00
//! let at = Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap();
//! assert_eq!(local_day(at, Tz::Europe__Paris, 4), NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
//! assert_eq!(local_day(at, Tz::Europe__Paris, 0), NaiveDate::from_ymd_opt(2026, 3, 30).unwrap());
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use aggregates::preferences::{PreferencesEvent, UserPreferences};
use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use cqrs_es::Aggregate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

pub use chrono_tz::Tz;

use crate::{Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet};

/// Row group (and row id) of the per-user clock row.
pub const CLOCK_GROUP: &str = "clock";
/// Row group of the per-day rows.
pub const DAY_GROUP: &str = "day";
/// The longest day range a query may ask for, in days.
pub const MAX_DAYS: i64 = 366;

/// The local day `at` belongs to, for a user in `tz` whose days begin at `day_start_hour`.
///
/// It is the calendar date of the local wall-clock time `day_start_hour` hours earlier: with a
/// 04:00 day start, 02:30 local is still the previous day. Across a DST change the day simply has
/// 23 or 25 hours; a day start inside a DST gap begins at the first instant after the gap.
pub fn local_day(at: DateTime<Utc>, tz: Tz, day_start_hour: u32) -> NaiveDate {
    let local = at.with_timezone(&tz).naive_local();
    (local - Duration::hours(i64::from(day_start_hour.min(23)))).date()
}

/// The first instant of local day `day` (see [`local_day`]): the first instant whose local time
/// is at or after `day_start_hour:00` on `day` (the earlier one when the wall clock repeats).
pub fn day_start(day: NaiveDate, tz: Tz, day_start_hour: u32) -> DateTime<Utc> {
    let wall = day
        .and_hms_opt(day_start_hour.min(23), 0, 0)
        .expect("an hour in 0..=23 is a valid time");
    // a DST gap lasts minutes to hours and ends on a whole minute: the first wall-clock minute
    // that exists is where the day begins
    for minute in 0..=26 * 60 {
        match tz.from_local_datetime(&(wall + Duration::minutes(minute))) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    // no zone has a day-long gap; fall back to the wall time read as UTC
    wall.and_utc()
}

/// The instants of local day `day`: `[start of day, start of the next day)`.
pub fn day_range(day: NaiveDate, tz: Tz, day_start_hour: u32) -> Range<DateTime<Utc>> {
    let next = day.succ_opt().unwrap_or(day);
    day_start(day, tz, day_start_hour)..day_start(next, tz, day_start_hour)
}

/// Every local day `at` can belong to, whatever the user's zone (UTC−12 to UTC+14, and historic
/// offsets up to ±16 h) and day start (0–23): the UTC date minus 2 to plus 1.
pub fn candidate_days(at: DateTime<Utc>) -> Vec<NaiveDate> {
    let utc = at.date_naive();
    (-2..=1)
        .filter_map(|d| utc.checked_add_signed(Duration::days(d)))
        .collect()
}

/// The day rows an instant `at` of `user_id` can land in (see [`candidate_days`]).
pub fn day_keys(user_id: Uuid, at: DateTime<Utc>) -> impl Iterator<Item = RowKey> {
    candidate_days(at)
        .into_iter()
        .map(move |d| day_key(user_id, d))
}

/// What a rollup's [`Projection::keys`] names for `user_id`'s event at `at`: the day depends on
/// the clock row, known only once loaded, so the clock row and every day the instant can fall
/// in ([`day_keys`]); the fold picks one.
pub fn instant_keys(user_id: Uuid, at: DateTime<Utc>) -> Vec<RowKey> {
    let mut keys = vec![UserClock::key(user_id)];
    keys.extend(day_keys(user_id, at));
    keys
}

/// The keys of a rollup's [`Projection::keys`]: a `preferences` event's clock row; for an event
/// of aggregate type `own` with a user and an instant (`at_of`), `own_keys(user, at)`; else none.
pub fn rollup_keys(
    event: &LoggedEvent,
    own: &str,
    at_of: impl FnOnce(&LoggedEvent) -> Option<DateTime<Utc>>,
    own_keys: impl FnOnce(Uuid, DateTime<Utc>) -> Vec<RowKey>,
) -> Vec<RowKey> {
    if let Some(clock) = UserClock::key_of(event) {
        return vec![clock];
    }
    match (event.aggregate_type == own, event.user_id, at_of(event)) {
        (true, Some(user), Some(at)) => own_keys(user, at),
        _ => Vec::new(),
    }
}

/// The start of a rollup's [`Projection::apply`]: folds a `preferences` event into the user's
/// clock row and says whether `event` is left to fold, i.e. is of aggregate type `own` (the
/// runner applies every event; other pillars' are not the rollup's).
pub fn own_event_left(
    model: &str,
    own: &str,
    event: &LoggedEvent,
    rows: &mut RowSet,
) -> Result<bool, ProjectionError> {
    Ok(!UserClock::fold(model, event, rows)? && event.aggregate_type == own)
}

/// `day`, checked to be one of the days [`day_keys`] loaded for an event at `at`; otherwise
/// why not (the fold must poison the event: writing an unloaded row would overwrite what is
/// stored).
pub fn loaded_day(
    day: NaiveDate,
    at: DateTime<Utc>,
    clock: &UserClock,
) -> Result<NaiveDate, String> {
    if candidate_days(at).contains(&day) {
        Ok(day)
    } else {
        Err(format!(
            "local day {day} of {at} in {} is outside the loaded days",
            clock.timezone
        ))
    }
}

/// The row key of `user_id`'s `day` (row id `YYYY-MM-DD`).
pub fn day_key(user_id: Uuid, day: NaiveDate) -> RowKey {
    RowKey::new(user_id, day_id(day))
}

/// `YYYY-MM-DD`: the row id and sort key of a day row.
pub fn day_id(day: NaiveDate) -> String {
    day.to_string()
}

/// Parses a `YYYY-MM-DD` day (exactly that form).
///
/// ```
/// use projections::daily::parse_day;
/// assert!(parse_day("2026-03-08").is_some());
/// assert!(parse_day("2026-3-8").is_none());
/// assert!(parse_day("2026-02-30").is_none());
/// ```
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    (day_id(day) == text).then_some(day)
}

/// The day rows of `user_id` from `from` to `to` (both included) that exist, in day order.
pub async fn list_days(
    reader: &impl RowReader,
    projection: &dyn Projection,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Row>, ProjectionError> {
    if to < from {
        return Ok(Vec::new());
    }
    let span = (to - from).num_days() + 1;
    // (sort_key, row_id) > (from, "") is sort_key >= from
    let cursor = RowCursor {
        sort_key: day_id(from),
        row_id: String::new(),
    };
    let last = day_id(to);
    let rows = reader
        .list_rows(
            projection,
            user_id,
            &[DAY_GROUP],
            Some(&cursor),
            span as usize,
        )
        .await?;
    Ok(rows.into_iter().filter(|r| r.sort_key <= last).collect())
}

/// Every day of `user_id` from `from` to `to` (both included), in day order: the stored day
/// rows of `projection` (decoded as `D`, whose day `day_of` says), `empty(day)` for the others.
pub async fn filled_days<D: DeserializeOwned>(
    reader: &impl RowReader,
    projection: &dyn Projection,
    user_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
    day_of: impl Fn(&D) -> NaiveDate,
    empty: impl Fn(NaiveDate) -> D,
) -> Result<Vec<D>, ProjectionError> {
    let mut stored: BTreeMap<NaiveDate, D> = BTreeMap::new();
    for row in list_days(reader, projection, user_id, from, to).await? {
        let day: D = row.decode()?;
        stored.insert(day_of(&day), day);
    }
    Ok(from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| stored.remove(&d).unwrap_or_else(|| empty(d)))
        .collect())
}

/// A user's clock for day boundaries: their IANA time zone and the hour their day starts.
/// Kept by each rollup projection in a row of its own model (group and id [`CLOCK_GROUP`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClock {
    /// IANA time zone name (validated by the preferences aggregate).
    pub timezone: String,
    /// The local hour (0–23) a day begins.
    pub day_start_hour: u32,
}

impl Default for UserClock {
    /// UTC, days from midnight: the preferences' defaults.
    fn default() -> Self {
        Self {
            timezone: "UTC".to_string(),
            day_start_hour: 0,
        }
    }
}

impl UserClock {
    /// A clock in `timezone` (an IANA name) starting days at `day_start_hour`.
    pub fn new(timezone: impl Into<String>, day_start_hour: u32) -> Self {
        Self {
            timezone: timezone.into(),
            day_start_hour,
        }
    }

    /// The time zone (UTC if the stored name is unknown to this build).
    pub fn tz(&self) -> Tz {
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// The local day `at` belongs to.
    pub fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        local_day(at, self.tz(), self.day_start_hour)
    }

    /// [`UserClock::day_of`] `at`, checked by [`loaded_day`].
    pub fn loaded_day_of(&self, at: DateTime<Utc>) -> Result<NaiveDate, String> {
        loaded_day(self.day_of(at), at, self)
    }

    /// The instants of local day `day`.
    pub fn day_range(&self, day: NaiveDate) -> Range<DateTime<Utc>> {
        day_range(day, self.tz(), self.day_start_hour)
    }

    /// The key of `user_id`'s clock row.
    pub fn key(user_id: Uuid) -> RowKey {
        RowKey::new(user_id, CLOCK_GROUP)
    }

    /// The clock row a `preferences` event touches (None for other events): for a
    /// projection's [`keys`](crate::Projection::keys).
    pub fn key_of(event: &LoggedEvent) -> Option<RowKey> {
        match (event.aggregate_type.as_str(), event.user_id) {
            (UserPreferences::TYPE, Some(user)) => Some(Self::key(user)),
            _ => None,
        }
    }

    /// `user_id`'s clock among the loaded `rows` (the default when absent).
    pub fn get(rows: &RowSet, user_id: Uuid) -> Result<Self, ProjectionError> {
        Ok(rows
            .get(&Self::key(user_id))
            .map(Row::decode)
            .transpose()?
            .unwrap_or_default())
    }

    /// `user_id`'s clock as stored in `projection`'s model (the default when never set).
    pub async fn read(
        reader: &impl RowReader,
        projection: &dyn Projection,
        user_id: Uuid,
    ) -> Result<Self, ProjectionError> {
        Ok(reader
            .get_row(projection, &Self::key(user_id))
            .await?
            .map(|r| r.decode())
            .transpose()?
            .unwrap_or_default())
    }

    /// Folds a `preferences` event into the user's clock row (which `rows` must hold, see
    /// [`UserClock::key_of`]). Returns false, changing nothing, for any other event.
    pub fn fold(
        model: &str,
        event: &LoggedEvent,
        rows: &mut RowSet,
    ) -> Result<bool, ProjectionError> {
        let Some(key) = Self::key_of(event) else {
            return Ok(false);
        };
        let PreferencesEvent::PreferencesSet { changes, .. } =
            crate::decode_payload(event).map_err(|e| ProjectionError::poison(model, event, e))?;
        if changes.timezone.is_none() && changes.day_start_hour.is_none() {
            return Ok(true);
        }
        let mut clock = Self::get(rows, key.user_id)?;
        if let Some(tz) = changes.timezone {
            if tz.parse::<Tz>().is_err() {
                return Err(ProjectionError::poison(
                    model,
                    event,
                    format!("unknown time zone {tz:?}"),
                ));
            }
            clock.timezone = tz;
        }
        if let Some(hour) = changes.day_start_hour {
            clock.day_start_hour = hour.min(23);
        }
        rows.put(Row::new(key, CLOCK_GROUP, "", &clock)?);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn day_start_hour_moves_the_boundary() {
        let ny = Tz::America__New_York;
        // 2026-01-15 07:30 UTC = 02:30 EST
        let at = utc(2026, 1, 15, 7, 30);
        assert_eq!(local_day(at, ny, 0), date(2026, 1, 15));
        assert_eq!(local_day(at, ny, 4), date(2026, 1, 14));
        assert_eq!(local_day(at, ny, 2), date(2026, 1, 15), "02:30 ≥ 02:00");
        assert_eq!(local_day(at, ny, 3), date(2026, 1, 14));
        assert_eq!(local_day(at, Tz::UTC, 0), date(2026, 1, 15));
        assert_eq!(local_day(at, Tz::UTC, 8), date(2026, 1, 14));
    }

    #[test]
    fn days_across_dst_have_23_or_25_hours() {
        let ny = Tz::America__New_York;
        let spring = day_range(date(2026, 3, 8), ny, 0);
        assert_eq!(spring.start, utc(2026, 3, 8, 5, 0), "midnight EST");
        assert_eq!(spring.end, utc(2026, 3, 9, 4, 0), "midnight EDT");
        assert_eq!(spring.end - spring.start, Duration::hours(23));
        let autumn = day_range(date(2026, 11, 1), ny, 0);
        assert_eq!(autumn.end - autumn.start, Duration::hours(25));

        // Paris moves to summer time at 02:00 on 29 March: with days from 04:00, the short day
        // is the 28th (04:00 CET to 04:00 CEST)
        let paris = Tz::Europe__Paris;
        let spring = day_range(date(2026, 3, 28), paris, 4);
        assert_eq!(spring.start, utc(2026, 3, 28, 3, 0), "04:00 CET");
        assert_eq!(spring.end, utc(2026, 3, 29, 2, 0), "04:00 CEST");
        assert_eq!(spring.end - spring.start, Duration::hours(23));
    }

    #[test]
    fn a_day_start_inside_a_dst_gap_begins_after_the_gap() {
        let ny = Tz::America__New_York;
        // 2026-03-08 02:00 does not exist in New York: clocks jump from 02:00 EST to 03:00 EDT
        let range = day_range(date(2026, 3, 8), ny, 2);
        assert_eq!(
            range.start,
            utc(2026, 3, 8, 7, 0),
            "03:00 EDT = the gap's end"
        );
        assert_eq!(
            local_day(range.start - Duration::seconds(1), ny, 2),
            date(2026, 3, 7)
        );
        assert_eq!(local_day(range.start, ny, 2), date(2026, 3, 8));
        // a repeated wall hour starts the day at its first occurrence
        let range = day_range(date(2026, 11, 1), ny, 1);
        assert_eq!(range.start, utc(2026, 11, 1, 5, 0), "01:00 EDT");
    }

    #[test]
    fn ranges_and_local_day_agree() {
        for (tz, hour) in [
            (Tz::America__New_York, 0),
            (Tz::America__New_York, 2),
            (Tz::Europe__Paris, 4),
            (Tz::Pacific__Kiritimati, 23),
            (Tz::Etc__GMTPlus12, 5),
            (Tz::Australia__Lord_Howe, 2),
        ] {
            let mut day = date(2026, 3, 1);
            while day < date(2026, 4, 15) {
                let r = day_range(day, tz, hour);
                assert_eq!(local_day(r.start, tz, hour), day, "{tz} {hour} {day}");
                assert_eq!(
                    local_day(r.end - Duration::seconds(1), tz, hour),
                    day,
                    "{tz} {hour} {day} end"
                );
                assert!(
                    candidate_days(r.start).contains(&day),
                    "{tz} {hour} {day} candidates"
                );
                assert!(candidate_days(r.end - Duration::seconds(1)).contains(&day));
                day = day.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn clock_defaults_and_parses() {
        let clock = UserClock::default();
        assert_eq!(clock.tz(), Tz::UTC);
        let clock = UserClock::new("Europe/Paris", 4);
        assert_eq!(clock.day_of(utc(2026, 3, 30, 0, 30)), date(2026, 3, 29));
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("2026-03-29"), Some(date(2026, 3, 29)));
        assert_eq!(parse_day(" 2026-03-29"), None);
    }
}
