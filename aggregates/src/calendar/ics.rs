//! Reading RFC 5545 (iCalendar) text into [`EventDetails`], for ImportIcs.
//!
//! The syntax (content lines, components, properties, parameters) is parsed by the
//! [`icalendar`] crate; this module unfolds long lines itself so every error can name the line
//! of the **original** text, then maps each `VEVENT` to an [`IcsEvent`]:
//! - `UID` (required) is the external id; `SUMMARY`, `LOCATION`, `DESCRIPTION` are unescaped;
//! - `DTSTART` / `DTEND` / `DURATION` as UTC (`…Z`), local time with a `TZID` parameter (an IANA
//!   name, or the `TZID` of a `VTIMEZONE` in the file, read in the IANA zone it maps to by
//!   [`super::vtimezone`], e.g. Outlook's `W. Europe Standard Time`), floating
//!   local time (read in the calendar's `X-WR-TIMEZONE`, else the default zone), or a `DATE`
//!   (an all-day event, local midnights, the end exclusive; no end means one day);
//! - `RRULE`, `EXDATE` and `RDATE` (comma lists, repeated properties, `TZID` or `DATE` values);
//! - `STATUS:CANCELLED` events are left out (so an import cancels them);
//! - an override of one occurrence (`RECURRENCE-ID`) becomes an event of its own (external id
//!   `<UID>#<RECURRENCE-ID as UTC>`) and its occurrence is excluded from the series.
//!
//! Every error is [`DomainError::Invalid`] on the field `ics` with the line number, e.g.
//! `line 12: DTSTART: unknown TZID "Mars/Olympus" (neither an IANA time zone name nor the TZID
//! of a VTIMEZONE)`; a `VTIMEZONE` no IANA zone matches names its `BEGIN:VTIMEZONE` line.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use icalendar::parser::{Component, Property, read_calendar_simple};

use super::vtimezone::{self, VTimezone};
use super::{EventDetails, EventRecurrence, local_midnight};
use crate::DomainError;

/// The request field ICS errors name.
pub const FIELD: &str = "ics";
/// The largest ICS text accepted, in bytes.
pub const MAX_ICS_BYTES: usize = 10 * 1024 * 1024;
/// The most events one file may hold.
pub const MAX_EVENTS: usize = 10_000;

/// One event read from an ICS file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcsEvent {
    /// The external id: the `UID` (`UID#RECURRENCE-ID` for an override).
    pub uid: String,
    /// The event, validated.
    pub details: EventDetails,
    /// The line its `BEGIN:VEVENT`… properties start on.
    pub line: usize,
}

impl IcsEvent {
    /// A stable hash of the details (FNV-1a 64 over their canonical JSON), so an import can
    /// tell a changed event from an unchanged one.
    pub fn content_hash(&self) -> String {
        content_hash(&self.details)
    }
}

/// The stable content hash of `details` (16 hex digits).
pub fn content_hash(details: &EventDetails) -> String {
    let json = serde_json::to_string(details).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The text with folded lines joined, and where each unfolded line began in the original.
struct Unfolded {
    text: String,
    /// (byte offset in `text`, 1-based line in the original), in order.
    starts: Vec<(usize, usize)>,
}

impl Unfolded {
    fn new(input: &str) -> Self {
        let mut text = String::with_capacity(input.len());
        let mut starts = Vec::new();
        for (i, raw) in input.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if (line.starts_with(' ') || line.starts_with('\t')) && !starts.is_empty() {
                text.pop(); // the newline of the line this one continues
                text.push_str(&line[1..]);
                text.push('\n');
            } else if !line.trim().is_empty() {
                starts.push((text.len(), i + 1));
                text.push_str(line);
                text.push('\n');
            }
        }
        Self { text, starts }
    }

    /// The original line of byte `offset` of the unfolded text.
    fn line_at(&self, offset: usize) -> usize {
        let i = self.starts.partition_point(|(o, _)| *o <= offset);
        self.starts
            .get(i.saturating_sub(1))
            .map_or(1, |(_, line)| *line)
    }

    /// The original line of a property (its name borrows from the unfolded text).
    fn line_of(&self, prop: &Property<'_>, fallback: usize) -> usize {
        let base = self.text.as_ptr() as usize;
        let at = prop.name.as_str().as_ptr() as usize;
        if at >= base && at < base + self.text.len() {
            self.line_at(at - base)
        } else {
            fallback
        }
    }

    /// The original line of a component's `BEGIN:` (the content line before its first one).
    fn begin_line(&self, c: &Component<'_>, fallback: usize) -> usize {
        fn first(c: &Component<'_>) -> Option<usize> {
            let own = c
                .properties
                .iter()
                .map(|p| p.name.as_str().as_ptr() as usize);
            let nested = c.components.iter().filter_map(first);
            own.chain(nested).min()
        }
        let base = self.text.as_ptr() as usize;
        match first(c) {
            Some(at) if at >= base && at < base + self.text.len() => {
                let i = self.starts.partition_point(|(o, _)| *o <= at - base);
                self.starts
                    .get(i.saturating_sub(2))
                    .map_or(fallback, |(_, line)| *line)
            }
            _ => fallback,
        }
    }
}

/// The IANA zone of each `TZID` the file defines in a `VTIMEZONE`.
type Zones = BTreeMap<String, chrono_tz::Tz>;

fn error(line: usize, reason: impl std::fmt::Display) -> DomainError {
    DomainError::invalid(FIELD, format!("line {line}: {reason}"))
}

/// Parses `input`; floating times and dates without a `TZID` are read in the calendar's
/// `X-WR-TIMEZONE` if it names an IANA zone, else in `default_tz`.
pub fn parse(input: &str, default_tz: chrono_tz::Tz) -> Result<Vec<IcsEvent>, DomainError> {
    if input.len() > MAX_ICS_BYTES {
        return Err(DomainError::invalid(
            FIELD,
            format!("at most {MAX_ICS_BYTES} bytes, got {}", input.len()),
        ));
    }
    let u = Unfolded::new(input);
    let roots = read_calendar_simple(&u.text).map_err(|e| {
        let offset = u.text.len() - e.input.len();
        let found = e.input.lines().next().unwrap_or("").trim();
        error(
            u.line_at(offset),
            format!("not a valid iCalendar content line or component near {found:?}"),
        )
    })?;
    let calendar = match roots.as_slice() {
        [one] if one.name.as_str().eq_ignore_ascii_case("VCALENDAR") => one,
        _ => return Err(error(1, "expected one BEGIN:VCALENDAR … END:VCALENDAR")),
    };
    let calendar_tz = calendar
        .find_prop("X-WR-TIMEZONE")
        .and_then(|p| p.val.as_str().trim().parse::<chrono_tz::Tz>().ok())
        .unwrap_or(default_tz);
    let calendar_line = u.starts.first().map_or(1, |(_, l)| *l);
    let vevents: Vec<&Component<'_>> = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT"))
        .collect();
    if vevents.len() > MAX_EVENTS {
        return Err(error(
            calendar_line,
            format!("at most {MAX_EVENTS} events, got {}", vevents.len()),
        ));
    }
    let vtimezones = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str().eq_ignore_ascii_case("VTIMEZONE"))
        .map(|c| {
            let line = u.begin_line(c, calendar_line);
            VTimezone::read(c, line, |p| u.line_of(p, line))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // the years each TZID is used in by the events, to map it to an IANA zone
    let mut usage: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for p in vevents.iter().flat_map(|c| &c.properties) {
        if let Some(id) = param(p, "TZID") {
            let years = usage.entry(id.to_string()).or_default();
            for v in p.val.as_str().split(',') {
                if let Some(year) = v.trim().get(..4).and_then(|y| y.parse::<i32>().ok()) {
                    years.insert(year);
                }
            }
        }
    }
    let zones = vtimezone::resolve(&vtimezones, &usage)?;
    let mut events: Vec<IcsEvent> = Vec::new();
    let mut overrides: Vec<(String, DateTime<Utc>, IcsEvent)> = Vec::new();
    let mut seen = HashSet::new();
    for c in vevents {
        let line = c
            .properties
            .first()
            .map_or(calendar_line, |p| u.line_of(p, calendar_line));
        let Some(parsed) = read_event(&u, c, line, calendar_tz, &zones)? else {
            continue;
        };
        match parsed {
            Parsed::Event(e) => {
                if !seen.insert(e.uid.clone()) {
                    return Err(error(e.line, format!("duplicate UID {:?}", e.uid)));
                }
                events.push(e);
            }
            Parsed::Override(master, at, e) => overrides.push((master, at, e)),
        }
    }
    // an override replaces one occurrence of its series
    let index: BTreeMap<String, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.uid.clone(), i))
        .collect();
    for (master, at, e) in overrides {
        if let Some(&i) = index.get(&master)
            && let Some(r) = events[i].details.recurrence.as_mut()
            && !r.exdates.contains(&at)
        {
            r.exdates.push(at);
            r.exdates.sort();
        }
        if !seen.insert(e.uid.clone()) {
            return Err(error(
                e.line,
                format!("duplicate RECURRENCE-ID for {master:?}"),
            ));
        }
        events.push(e);
    }
    Ok(events)
}

enum Parsed {
    Event(IcsEvent),
    /// (master UID, the replaced occurrence start, the override)
    Override(String, DateTime<Utc>, IcsEvent),
}

fn param<'a>(prop: &'a Property<'_>, key: &str) -> Option<&'a str> {
    prop.params
        .iter()
        .find(|p| p.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

fn text(c: &Component<'_>, name: &str) -> Option<String> {
    c.find_prop(name)
        .map(|p| p.val.clone().unescape_text().as_str().trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A time value of `prop`: `(instant, is_date, zone)`.
fn time_value(
    prop: &Property<'_>,
    value: &str,
    line: usize,
    default_tz: chrono_tz::Tz,
    zones: &Zones,
) -> Result<(DateTime<Utc>, bool, chrono_tz::Tz), DomainError> {
    let name = prop.name.as_str();
    let tz = match param(prop, "TZID") {
        Some(id) => match zones.get(id) {
            Some(tz) => *tz,
            None => id.parse::<chrono_tz::Tz>().map_err(|_| {
                error(
                    line,
                    format!(
                        "{name}: unknown TZID {id:?} (neither an IANA time zone name nor the TZID of a VTIMEZONE)"
                    ),
                )
            })?,
        },
        None => default_tz,
    };
    let value = value.trim();
    let is_date = param(prop, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        || (value.len() == 8 && !value.contains('T'));
    let bad = || {
        error(
            line,
            format!("{name}: cannot read {value:?} as a DATE or DATE-TIME"),
        )
    };
    if is_date {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| bad())?;
        return Ok((local_midnight(tz, date), true, tz));
    }
    if let Some(utc) = value.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
        return Ok((t.and_utc(), false, tz));
    }
    let t = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
    // a local time in a DST gap is read with the offset before the gap (RFC 5545 3.3.5)
    let at = tz
        .from_local_datetime(&t)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(t - Duration::hours(1)))
                .earliest()
                .map(|x| x + Duration::hours(1))
        })
        .ok_or_else(bad)?;
    Ok((at.with_timezone(&Utc), false, tz))
}

/// An RFC 5545 DURATION: `[+]P[nW][nD][T[nH][nM][nS]]`.
fn duration(value: &str) -> Option<Duration> {
    let v = value.trim();
    let v = v.strip_prefix('+').unwrap_or(v);
    let v = v.strip_prefix('P')?;
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut total = Duration::zero();
    let mut parts = 0;
    let mut read = |s: &str, units: &[(char, i64)]| -> Option<()> {
        let mut n = String::new();
        for ch in s.chars() {
            if ch.is_ascii_digit() {
                n.push(ch);
            } else {
                let secs = units.iter().find(|(u, _)| *u == ch)?.1;
                let count: i64 = n.parse().ok()?;
                total += Duration::seconds(count.checked_mul(secs)?);
                parts += 1;
                n.clear();
            }
        }
        n.is_empty().then_some(())
    };
    read(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        read(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    (parts > 0).then_some(total)
}

fn read_event(
    u: &Unfolded,
    c: &Component<'_>,
    line: usize,
    default_tz: chrono_tz::Tz,
    zones: &Zones,
) -> Result<Option<Parsed>, DomainError> {
    let line_of = |p: &Property<'_>| u.line_of(p, line);
    let uid = c
        .find_prop("UID")
        .map(|p| p.val.as_str().trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| error(line, "VEVENT without a UID"))?;
    if c.find_prop("STATUS")
        .is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("CANCELLED"))
    {
        return Ok(None);
    }
    let dtstart = c
        .find_prop("DTSTART")
        .ok_or_else(|| error(line, format!("VEVENT {uid:?} without a DTSTART")))?;
    let (start, all_day, tz) = time_value(
        dtstart,
        dtstart.val.as_str(),
        line_of(dtstart),
        default_tz,
        zones,
    )?;
    let end = if let Some(p) = c.find_prop("DTEND") {
        let (end, date, _) = time_value(p, p.val.as_str(), line_of(p), tz, zones)?;
        if date != all_day {
            return Err(error(
                line_of(p),
                "DTEND must be a DATE exactly when DTSTART is one",
            ));
        }
        end
    } else if let Some(p) = c.find_prop("DURATION") {
        let d = duration(p.val.as_str()).ok_or_else(|| {
            error(
                line_of(p),
                format!("DURATION: cannot read {:?}", p.val.as_str()),
            )
        })?;
        start + d
    } else if all_day {
        let date = start.with_timezone(&tz).date_naive();
        local_midnight(tz, date.succ_opt().unwrap_or(date))
    } else {
        return Err(error(
            line_of(dtstart),
            format!("VEVENT {uid:?}: a timed event needs a DTEND or a DURATION"),
        ));
    };
    let mut exdates = Vec::new();
    let mut rdates = Vec::new();
    for p in &c.properties {
        let target = match p.name.as_str().to_ascii_uppercase().as_str() {
            "EXDATE" => &mut exdates,
            "RDATE" => {
                if param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("PERIOD")) {
                    return Err(error(line_of(p), "RDATE;VALUE=PERIOD is not supported"));
                }
                &mut rdates
            }
            _ => continue,
        };
        for value in p.val.as_str().split(',').filter(|v| !v.trim().is_empty()) {
            target.push(time_value(p, value, line_of(p), tz, zones)?.0);
        }
    }
    let rrule = c
        .find_prop("RRULE")
        .map(|p| p.val.as_str().trim().to_string());
    let recurrence = (rrule.is_some() || !rdates.is_empty()).then_some(EventRecurrence {
        rrule,
        exdates,
        rdates,
    });
    let details = EventDetails {
        title: text(c, "SUMMARY").unwrap_or_else(|| "(no title)".to_string()),
        start,
        end,
        all_day,
        time_zone: tz.name().to_string(),
        location: text(c, "LOCATION"),
        description: text(c, "DESCRIPTION"),
        recurrence,
    }
    .validated()
    .map_err(|e| error(line, format!("VEVENT {uid:?}: {e}")))?;
    match c.find_prop("RECURRENCE-ID") {
        None => Ok(Some(Parsed::Event(IcsEvent { uid, details, line }))),
        Some(p) => {
            let (at, _, _) = time_value(p, p.val.as_str(), line_of(p), tz, zones)?;
            let id = format!("{uid}#{}", at.format("%Y%m%dT%H%M%SZ"));
            Ok(Some(Parsed::Override(
                uid,
                at,
                IcsEvent {
                    uid: id,
                    details,
                    line,
                },
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const FILE: &str = include_str!("../../../tests/data/calendar.ics");

    fn parsed() -> Vec<IcsEvent> {
        parse(FILE, chrono_tz::UTC).expect("the test file parses")
    }

    fn by_uid<'a>(events: &'a [IcsEvent], uid: &str) -> &'a IcsEvent {
        events
            .iter()
            .find(|e| e.uid == uid)
            .unwrap_or_else(|| panic!("{uid}"))
    }

    #[test]
    fn the_test_file_maps_every_kind_of_event() {
        let events = parsed();
        let uids: Vec<&str> = events.iter().map(|e| e.uid.as_str()).collect();
        assert!(!uids.contains(&"cancelled@lifeos.test"), "{uids:?}");

        let weekly = by_uid(&events, "weekly-standup@lifeos.test");
        let d = &weekly.details;
        assert_eq!(d.time_zone, "Europe/Paris");
        assert_eq!(d.title, "Weekly standup, team A", "unescaped");
        assert_eq!(d.start, utc(2026, 3, 23, 8, 0), "09:00 CET");
        assert_eq!(d.end - d.start, Duration::minutes(30));
        let r = d.recurrence.as_ref().unwrap();
        assert_eq!(r.rrule.as_deref(), Some("FREQ=WEEKLY;COUNT=6;BYDAY=MO"));
        // EXDATE 6 April and the overridden 13 April
        assert_eq!(
            r.exdates,
            vec![utc(2026, 4, 6, 7, 0), utc(2026, 4, 13, 7, 0)]
        );
        assert_eq!(r.rdates, vec![utc(2026, 4, 1, 7, 0)]);
        let starts: Vec<_> = d
            .occurrences(utc(2026, 3, 1, 0, 0), utc(2026, 6, 1, 0, 0))
            .iter()
            .map(|o| o.start)
            .collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 3, 23, 8, 0),
                utc(2026, 3, 30, 7, 0),
                utc(2026, 4, 1, 7, 0),
                utc(2026, 4, 20, 7, 0),
                utc(2026, 4, 27, 7, 0),
            ],
            "across the DST change, EXDATE and the override excluded, the RDATE added"
        );
        let moved = by_uid(&events, "weekly-standup@lifeos.test#20260413T070000Z");
        assert_eq!(moved.details.start, utc(2026, 4, 13, 9, 0));

        let holiday = by_uid(&events, "holiday@lifeos.test");
        assert!(holiday.details.all_day);
        assert_eq!(
            holiday.details.time_zone, "America/New_York",
            "X-WR-TIMEZONE"
        );
        assert_eq!(holiday.details.start, utc(2026, 7, 3, 4, 0));
        assert_eq!(holiday.details.end, utc(2026, 7, 5, 4, 0), "two days");

        let trip = by_uid(&events, "trip@lifeos.test");
        assert!(trip.details.all_day);
        assert_eq!(
            trip.details.end - trip.details.start,
            Duration::hours(23),
            "New York springs forward that day"
        );

        // crosses the New York DST change (1 Nov 2026, 02:00 EDT → 01:00 EST): 4 h long
        let night = by_uid(&events, "night-shift@lifeos.test");
        assert_eq!(night.details.start, utc(2026, 11, 1, 4, 0), "00:00 EDT");
        assert_eq!(night.details.end, utc(2026, 11, 1, 8, 0), "03:00 EST");
        assert_eq!(night.details.location.as_deref(), Some("Depot; gate 3"));

        let call = by_uid(&events, "utc-call@lifeos.test");
        assert_eq!(call.details.end - call.details.start, Duration::minutes(90));
        assert!(call.details.description.as_deref().unwrap().contains('\n'));
        assert!(call.content_hash().len() == 16);
        assert_ne!(call.content_hash(), night.content_hash());
        assert_eq!(parsed(), events, "deterministic");
    }

    fn invalid_line(text: &str) -> String {
        match parse(text, chrono_tz::UTC) {
            Err(DomainError::Invalid { field, reason }) => {
                assert_eq!(field, FIELD);
                reason
            }
            other => panic!("expected an invalid ics, got {other:?}"),
        }
    }

    #[test]
    fn malformed_files_name_the_line() {
        let head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\n";
        let reason = invalid_line(&format!(
            "{head}DTSTART;TZID=Mars/Olympus:20260101T090000\r\nDTEND:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ));
        assert!(reason.starts_with("line 5:"), "{reason}");
        assert!(reason.contains("Mars/Olympus"), "{reason}");

        let reason = invalid_line(&format!(
            "{head}SUMMARY:folded\r\n  over two lines\r\nDTSTART:2026-01-01\r\nDTEND:20260101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ));
        assert!(
            reason.starts_with("line 7:"),
            "original lines count: {reason}"
        );

        let reason = invalid_line(&format!(
            "{head}DTSTART:20260101T100000Z\r\nDTEND:20260101T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ));
        assert!(
            reason.starts_with("line 4:") && reason.contains("end"),
            "{reason}"
        );

        let reason = invalid_line(&format!("{head}DTSTART:20260101T100000Z\r\n"));
        assert!(reason.starts_with("line "), "{reason}");
        let reason = invalid_line("hello\r\n");
        assert!(reason.starts_with("line 1:"), "{reason}");
        let reason = invalid_line(&format!(
            "{head}DTSTART:20260101T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=NEVER\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ));
        assert!(reason.contains("recurrence"), "{reason}");
    }

    #[test]
    fn durations_follow_rfc_5545() {
        assert_eq!(duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(duration("P1W"), Some(Duration::days(7)));
        assert_eq!(duration("P1DT2S"), Some(Duration::seconds(86_402)));
        assert_eq!(duration("P"), None);
        assert_eq!(duration("PT1X"), None);
        assert_eq!(duration("1H"), None);
    }
}
