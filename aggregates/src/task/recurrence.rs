//! Recurring tasks: the rule a task repeats by, and the series it follows.
//!
//! A rule is either an RFC 5545 RRULE or "every N days/weeks/months". Both are expanded by the
//! [`rrule`] crate (never hand-rolled): "every N" is the RRULE `FREQ=DAILY|WEEKLY|MONTHLY;
//! INTERVAL=N` (monthly on the 29th–31st adds `BYMONTHDAY=<day>,-1;BYSETPOS=1`, so a month
//! without that day falls on its last day: Jan 31 → Feb 28 → Mar 31).
//!
//! Times are UTC: a series starts (`DTSTART`) at a UTC instant and repeats at that UTC time of
//! day. Occurrences are whole seconds (the crate drops sub-second parts).
//!
//! ```
//! use aggregates::task::recurrence::{IntervalUnit, Recurrence, RecurrenceRule, RepeatFrom};
//! use chrono::{TimeZone, Utc};
//!
//! let every_2_days = Recurrence {
//!     rule: RecurrenceRule::Every { interval: 2, unit: IntervalUnit::Days },
//!     repeat_from: RepeatFrom::DueDate,
//!     time_zone: None,
//! };
//! let start = Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).unwrap();
//! assert_eq!(
//!     every_2_days.next_after(start, start),
//!     Some(Utc.with_ymd_and_hms(2025, 6, 3, 9, 0, 0).unwrap())
//! );
//! ```

use chrono::{DateTime, Datelike, Duration, Utc};
use rrule::{Frequency, RRule, Tz, Unvalidated};
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The request field every recurrence error names.
pub const FIELD: &str = "recurrence";
/// The longest RRULE text accepted, in characters.
pub const RRULE_MAX_CHARS: usize = 1_000;
/// The largest N of "every N days/weeks/months".
pub const MAX_INTERVAL: u32 = 1_000;

/// How a task repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// When the occurrences fall.
    pub rule: RecurrenceRule,
    /// What the next occurrence is computed from.
    #[serde(default)]
    pub repeat_from: RepeatFrom,
    /// The IANA time zone the occurrences keep their wall-clock time in (a daily 09:00 task stays
    /// at 09:00 local across DST); None: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// The pattern of a recurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurrenceRule {
    /// An RFC 5545 RRULE value, as the `rrule` crate prints it (no `RRULE:` prefix), e.g.
    /// `FREQ=WEEKLY;BYDAY=MO,TH`.
    Rrule(String),
    /// Every `interval` days, weeks or months.
    Every {
        /// N, in `1..=MAX_INTERVAL`.
        interval: u32,
        /// Days, weeks or months.
        unit: IntervalUnit,
    },
}

/// The unit of "every N …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    /// Every N days.
    Days,
    /// Every N weeks.
    Weeks,
    /// Every N months (clamped to the month's last day).
    Months,
}

/// What the next occurrence of a recurring task is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatFrom {
    /// The next occurrence of the series after the current due time, wherever the completion
    /// falls (a weekly task completed late is still due on its weekday).
    #[default]
    DueDate,
    /// The series restarts on the day of the completion (or skip), at the due time of day, and
    /// the next occurrence is the first one after that day ("every 3 days from when I did it").
    CompletionDate,
}

impl Recurrence {
    /// Checks the rule (for a series starting at `start`) and returns it normalized: an RRULE
    /// is parsed and validated by the `rrule` crate and stored as the crate prints it. Errors
    /// name the field `recurrence` and carry the parser's reason.
    pub fn validated(self, start: DateTime<Utc>) -> Result<Self, DomainError> {
        let checked = self.syntax_checked()?;
        if let RecurrenceRule::Rrule(text) = &checked.rule {
            parse(text)
                .and_then(|rule| rule.validate(start.with_timezone(&checked.zone())))
                .map_err(|e| DomainError::invalid(FIELD, e.to_string()))?;
        }
        Ok(checked)
    }

    /// Like [`Recurrence::validated`], without the checks that need the series' start (an
    /// UNTIL before it, in another time zone): what can be checked before the task is loaded.
    pub fn syntax_checked(self) -> Result<Self, DomainError> {
        let rule = match self.rule {
            RecurrenceRule::Rrule(text) => RecurrenceRule::Rrule(normalize_rrule(&text)?),
            RecurrenceRule::Every { interval, unit } => {
                if !(1..=MAX_INTERVAL).contains(&interval) {
                    return Err(DomainError::invalid(
                        FIELD,
                        format!(
                            "the interval must be between 1 and {MAX_INTERVAL}, got {interval}"
                        ),
                    ));
                }
                RecurrenceRule::Every { interval, unit }
            }
        };
        if let Some(tz) = &self.time_zone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(DomainError::invalid(
                FIELD,
                format!("time zone {tz:?} is not an IANA time zone name (e.g. Europe/Paris)"),
            ));
        }
        Ok(Self {
            rule,
            repeat_from: self.repeat_from,
            time_zone: self.time_zone,
        })
    }

    /// The zone occurrences are expanded in (UTC when none or unknown).
    fn zone(&self) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|tz| tz.parse::<chrono_tz::Tz>().ok())
            .map_or(Tz::UTC, Tz::Tz)
    }

    /// The RRULE value this recurrence expands with, for a series starting at `start`.
    pub fn rrule_text(&self, start: DateTime<Utc>) -> String {
        match &self.rule {
            RecurrenceRule::Rrule(text) => text.clone(),
            RecurrenceRule::Every { interval, unit } => match unit {
                IntervalUnit::Days => format!("FREQ=DAILY;INTERVAL={interval}"),
                IntervalUnit::Weeks => format!("FREQ=WEEKLY;INTERVAL={interval}"),
                IntervalUnit::Months if start.with_timezone(&self.zone()).day() > 28 => format!(
                    "FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={},-1;BYSETPOS=1",
                    start.with_timezone(&self.zone()).day()
                ),
                IntervalUnit::Months => format!("FREQ=MONTHLY;INTERVAL={interval}"),
            },
        }
    }

    /// The RRULE's `COUNT`: how many occurrences the series has at most.
    pub fn count(&self) -> Option<u32> {
        match &self.rule {
            RecurrenceRule::Rrule(text) => parse(text).ok().and_then(|r| r.get_count()),
            RecurrenceRule::Every { .. } => None,
        }
    }

    /// The occurrence after `occurrence` (itself an occurrence) of the series that starts at
    /// `anchor`: [`Recurrence::next_after`]`(anchor, occurrence)`, expanded from `occurrence`
    /// instead of `anchor` where that gives the same answer, so the cost does not grow with the
    /// series (from the anchor the crate walks every occurrence before: 3.5 ms at the 10 000th
    /// of a daily series).
    ///
    /// Restarting a rule at one of its own occurrences keeps its set after it: the periods
    /// (INTERVAL, WKST weeks) stay aligned because an occurrence lies in a period of the rule, and
    /// what an RRULE takes from its start (the weekday, day of month, month, time of day) every
    /// occurrence shares; the day of month of `Every` months keeps the anchor's
    /// ([`Recurrence::rrule_text`] of the anchor), and COUNT is decided by [`Series`], not here.
    /// The exception is an occurrence moved by a daylight-saving gap (not at the anchor's local
    /// time of day): the series is then expanded from the anchor.
    pub fn next_after_occurrence(
        &self,
        anchor: DateTime<Utc>,
        occurrence: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let zone = self.zone();
        let local_time = |t: DateTime<Utc>| t.with_timezone(&zone).time();
        if occurrence <= anchor || local_time(occurrence) != local_time(anchor) {
            return self.next_after(anchor, occurrence);
        }
        self.expand(&self.rrule_text(anchor), occurrence, occurrence)
    }

    /// The first occurrence strictly after `after` of the series that starts at `start`
    /// (expanded by the `rrule` crate); `None` when the rule has no such occurrence (its COUNT or
    /// UNTIL is exhausted, or it never matches again).
    pub fn next_after(&self, start: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expand(&self.rrule_text(start), start, after)
    }

    /// The first occurrence strictly after `after` of `rrule` starting at `start`.
    fn expand(
        &self,
        rrule: &str,
        start: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let rule = parse(rrule).ok()?;
        let zone = self.zone();
        let set = rule.build(start.with_timezone(&zone)).ok()?;
        // `after` is inclusive in the crate; occurrences are whole seconds
        let after = (after + Duration::nanoseconds(1)).with_timezone(&zone);
        set.after(after)
            .all(1)
            .dates
            .first()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// Where a recurring task is in its series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The rule.
    pub recurrence: Recurrence,
    /// The series' DTSTART: the due time when the recurrence was set, moved when the due time
    /// is changed by hand (the series then restarts there).
    pub anchor: DateTime<Utc>,
    /// The 1-based number of the current occurrence (completed and skipped ones before it).
    pub occurrence: u32,
}

impl Series {
    /// A series starting at `anchor` with its first occurrence.
    pub fn new(recurrence: Recurrence, anchor: DateTime<Utc>) -> Self {
        Self {
            recurrence,
            anchor,
            occurrence: 1,
        }
    }

    /// The due time of the occurrence after the current one (due at `due`), when the current
    /// one is completed or skipped at `at`; `None` when the series is over.
    ///
    /// `COUNT` limits the number of occurrences of the task, counted from the first due time
    /// the recurrence was set with (in both modes); `UNTIL` and the pattern are the crate's.
    pub fn next_due(&self, due: DateTime<Utc>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let Some(count) = self.recurrence.count()
            && self.occurrence >= count
        {
            return None;
        }
        match self.recurrence.repeat_from {
            RepeatFrom::DueDate => self.recurrence.next_after_occurrence(self.anchor, due),
            RepeatFrom::CompletionDate => {
                // the completion's local day at the due's local time of day
                let zone = self.recurrence.zone();
                let local = at
                    .with_timezone(&zone)
                    .date_naive()
                    .and_time(due.with_timezone(&zone).time());
                let base = local
                    .and_local_timezone(zone)
                    .earliest()
                    .map_or(local.and_utc(), |t| t.with_timezone(&Utc));
                self.recurrence.next_after(base, base)
            }
        }
    }
}

fn parse(text: &str) -> Result<RRule<Unvalidated>, rrule::RRuleError> {
    text.parse::<RRule<Unvalidated>>()
}

/// Parses an RRULE value (an `RRULE:` prefix is accepted) and checks what tasks support;
/// returns it as the crate prints it.
fn normalize_rrule(text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    let len = text.chars().count();
    if len > RRULE_MAX_CHARS {
        return Err(DomainError::invalid(
            FIELD,
            format!("the RRULE must be at most {RRULE_MAX_CHARS} characters, got {len}"),
        ));
    }
    if text.is_empty() {
        return Err(DomainError::invalid(FIELD, "the RRULE must not be empty"));
    }
    let rule = parse(text).map_err(|e| DomainError::invalid(FIELD, e.to_string()))?;
    if !matches!(
        rule.get_freq(),
        Frequency::Daily | Frequency::Weekly | Frequency::Monthly | Frequency::Yearly
    ) {
        return Err(DomainError::invalid(
            FIELD,
            format!(
                "FREQ={} is not supported for tasks (use DAILY, WEEKLY, MONTHLY or YEARLY)",
                rule.get_freq()
            ),
        ));
    }
    if rule.get_interval() == 0 {
        return Err(DomainError::invalid(FIELD, "INTERVAL must be at least 1"));
    }
    if rule.get_count().is_some() && rule.get_until().is_some() {
        return Err(DomainError::invalid(
            FIELD,
            "COUNT and UNTIL must not both be given (RFC 5545)",
        ));
    }
    if rule.get_count() == Some(0) {
        return Err(DomainError::invalid(FIELD, "COUNT must be at least 1"));
    }
    Ok(rule.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrences_keep_the_local_wall_clock_across_dst() {
        use chrono::TimeZone;
        let daily = |tz: Option<&str>| Recurrence {
            rule: RecurrenceRule::Every {
                interval: 1,
                unit: IntervalUnit::Days,
            },
            repeat_from: RepeatFrom::DueDate,
            time_zone: tz.map(str::to_string),
        };
        // 09:00 in Paris on 28 March 2026 (CET, UTC+1); DST starts the next night
        let start = Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).unwrap();
        assert_eq!(
            daily(Some("Europe/Paris")).next_after(start, start),
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap()),
            "09:00 CEST is 07:00 UTC"
        );
        assert_eq!(
            daily(None).next_after(start, start),
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 8, 0, 0).unwrap()),
            "without a zone the series keeps UTC time"
        );
        // from completion: the series restarts on the completion's LOCAL day
        let series = Series::new(
            Recurrence {
                repeat_from: RepeatFrom::CompletionDate,
                ..daily(Some("Europe/Paris"))
            },
            start,
        );
        let completed = Utc.with_ymd_and_hms(2026, 3, 29, 22, 30, 0).unwrap(); // 00:30 CEST on the 30th
        assert_eq!(
            series.next_due(start, completed),
            Some(Utc.with_ymd_and_hms(2026, 3, 31, 7, 0, 0).unwrap()),
            "the day after the local completion day (the 30th), at 09:00 local"
        );
        assert!(
            daily(Some("Mars/Olympus")).syntax_checked().is_err(),
            "unknown zones are refused"
        );
    }

    /// Expanding from the current occurrence gives, occurrence after occurrence, what expanding
    /// from the anchor gives: `Every` rules (month ends included), RRULEs that take their
    /// weekday, position or day from the start, several per day, daylight-saving gaps.
    #[test]
    fn expanding_from_an_occurrence_matches_expanding_from_the_anchor() {
        use chrono::TimeZone;
        let every = |interval, unit| RecurrenceRule::Every { interval, unit };
        let rrule = |text: &str| RecurrenceRule::Rrule(text.to_string());
        let rules = [
            every(1, IntervalUnit::Days),
            every(3, IntervalUnit::Days),
            every(2, IntervalUnit::Weeks),
            every(1, IntervalUnit::Months),
            every(3, IntervalUnit::Months),
            rrule("FREQ=WEEKLY;BYDAY=MO,TH"),
            rrule("FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU"),
            rrule("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1"),
            rrule("FREQ=MONTHLY;BYDAY=2TU"),
            rrule("FREQ=MONTHLY;BYMONTHDAY=-1"),
            rrule("FREQ=MONTHLY"),
            rrule("FREQ=YEARLY"),
            rrule("FREQ=DAILY;BYHOUR=2,9,17"),
        ];
        // a month end, a leap day, and 02:30 in Paris the week before the night DST starts
        // (02:30 does not exist on 29 March 2026)
        let anchors = [
            ("UTC", Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0).unwrap()),
            ("UTC", Utc.with_ymd_and_hms(2028, 2, 29, 7, 0, 0).unwrap()),
            (
                "Europe/Paris",
                Utc.with_ymd_and_hms(2026, 3, 22, 1, 30, 0).unwrap(),
            ),
            (
                "America/New_York",
                Utc.with_ymd_and_hms(2026, 10, 30, 13, 0, 0).unwrap(),
            ),
        ];
        let mut compared = 0;
        for rule in &rules {
            for (zone, anchor) in anchors {
                let recurrence = Recurrence {
                    rule: rule.clone(),
                    repeat_from: RepeatFrom::DueDate,
                    time_zone: Some(zone.to_string()),
                };
                let mut due = anchor;
                for _ in 0..40 {
                    let expected = recurrence.next_after(anchor, due);
                    assert_eq!(
                        recurrence.next_after_occurrence(anchor, due),
                        expected,
                        "{rule:?} in {zone} from {anchor}, after {due}"
                    );
                    compared += 1;
                    match expected {
                        Some(next) => due = next,
                        None => break,
                    }
                }
            }
        }
        assert!(compared > 1_500, "compared {compared} occurrences");
    }

    #[test]
    fn a_series_count_still_ends_it() {
        use chrono::TimeZone;
        let anchor = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap();
        let mut series = Series::new(
            Recurrence {
                rule: RecurrenceRule::Rrule("FREQ=DAILY;COUNT=5".into()),
                repeat_from: RepeatFrom::DueDate,
                time_zone: None,
            },
            anchor,
        );
        let mut due = anchor;
        while let Some(next) = series.next_due(due, due) {
            due = next;
            series.occurrence += 1;
        }
        assert_eq!(series.occurrence, 5);
        assert_eq!(due, anchor + Duration::days(4));
    }
}
