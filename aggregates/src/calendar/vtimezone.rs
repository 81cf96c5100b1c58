//! Reading `VTIMEZONE` blocks of an ICS file and mapping each to an IANA time zone.
//!
//! Calendar events store an IANA `time_zone` (recurrences are expanded in it), but Outlook and
//! other exporters name zones their own way (`TZID:W. Europe Standard Time`) and describe them
//! in a `VTIMEZONE`: `STANDARD` / `DAYLIGHT` observances with `DTSTART` (local time),
//! `TZOFFSETFROM`, `TZOFFSETTO` and an `RRULE` (expanded by the `rrule` crate) or `RDATE`s.
//!
//! [`resolve`] maps every such `TZID` the file's events use to the IANA zone
//! ([`chrono_tz::TZ_VARIANTS`]) whose UTC offset agrees with the `VTIMEZONE` at every sample
//! instant of the years those events use (the 1st and 15th of every month, and one minute
//! before and after each transition): among the matches, the one whose name shares the most
//! words with the `TZID` wins, then a zone of a geographic area (`Europe/…`) over a legacy
//! alias, then the first in [`chrono_tz::TZ_VARIANTS`] order. A `TZID` that already is an IANA
//! name is used as it is. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use icalendar::parser::{Component, Property};
use rrule::{RRule, Tz, Unvalidated};

use super::ics::FIELD;
use crate::DomainError;

/// The years sampled are clamped to this range (the IANA data chrono-tz ships ends in 2099).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2099;
/// The most onsets one observance's RRULE may produce before the sampled years end.
const MAX_ONSETS: usize = 200_000;
/// IANA areas of geographic zones (preferred over legacy aliases such as `US/Eastern`).
const AREAS: [&str; 9] = [
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
];

fn error(line: usize, reason: impl std::fmt::Display) -> DomainError {
    DomainError::invalid(FIELD, format!("line {line}: {reason}"))
}

/// One `STANDARD` or `DAYLIGHT` observance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observance {
    /// Its first onset, in local time before it (`TZOFFSETFROM`).
    pub start: NaiveDateTime,
    /// `TZOFFSETFROM`, in seconds east of UTC.
    pub offset_from: i32,
    /// `TZOFFSETTO`, in seconds east of UTC.
    pub offset_to: i32,
    /// The `RRULE` value and its line.
    pub rrule: Option<(String, usize)>,
    /// The `RDATE` onsets, local time like `start`.
    pub rdates: Vec<NaiveDateTime>,
    /// The line of its first property.
    pub line: usize,
}

/// One `VTIMEZONE` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VTimezone {
    /// Its `TZID`.
    pub tzid: String,
    /// The line of its `BEGIN:VTIMEZONE`.
    pub line: usize,
    /// Its observances, in file order.
    pub observances: Vec<Observance>,
}

/// A UTC offset `[+-]HHMM[SS]` in seconds.
fn offset(value: &str) -> Option<i32> {
    let v = value.trim();
    let (sign, digits) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<i32>().ok());
    let (h, m, s) = (n(0..2)?, n(2..4)?, n(4..6).unwrap_or(0));
    (h < 24 && m < 60 && s < 60).then_some(sign * (h * 3600 + m * 60 + s))
}

/// A local `DATE-TIME` (a `Z` one is converted with `offset_from`) or a `DATE` (midnight).
fn local_time(value: &str, offset_from: i32) -> Option<NaiveDateTime> {
    let v = value.trim();
    let v = v.split_once('/').map_or(v, |(start, _)| start); // a PERIOD: its start
    if let Some(utc) = v.strip_suffix('Z') {
        let t = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(t + Duration::seconds(offset_from.into()));
    }
    NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

impl VTimezone {
    /// Reads a `VTIMEZONE` component that begins on `line`; `line_of` gives a property's line.
    pub fn read(
        c: &Component<'_>,
        line: usize,
        line_of: impl Fn(&Property<'_>) -> usize,
    ) -> Result<Self, DomainError> {
        let tzid = c
            .find_prop("TZID")
            .map(|p| p.val.as_str().trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error(line, "VTIMEZONE without a TZID"))?;
        let mut observances = Vec::new();
        for o in &c.components {
            let name = o.name.as_str();
            if !name.eq_ignore_ascii_case("STANDARD") && !name.eq_ignore_ascii_case("DAYLIGHT") {
                continue;
            }
            let o_line = o.properties.first().map_or(line, &line_of);
            let required = |prop: &str| {
                o.find_prop(prop).ok_or_else(|| {
                    error(
                        o_line,
                        format!("VTIMEZONE {tzid:?}: {name} without a {prop}"),
                    )
                })
            };
            let read_offset = |prop: &str| {
                let p = required(prop)?;
                offset(p.val.as_str()).ok_or_else(|| {
                    error(
                        line_of(p),
                        format!("{prop}: cannot read {:?} as a UTC offset", p.val.as_str()),
                    )
                })
            };
            let offset_from = read_offset("TZOFFSETFROM")?;
            let offset_to = read_offset("TZOFFSETTO")?;
            let dtstart = required("DTSTART")?;
            let start = local_time(dtstart.val.as_str(), offset_from).ok_or_else(|| {
                error(
                    line_of(dtstart),
                    format!(
                        "DTSTART: cannot read {:?} as a local DATE-TIME",
                        dtstart.val.as_str()
                    ),
                )
            })?;
            let mut rdates = Vec::new();
            for p in o
                .properties
                .iter()
                .filter(|p| p.name.as_str().eq_ignore_ascii_case("RDATE"))
            {
                for v in p.val.as_str().split(',').filter(|v| !v.trim().is_empty()) {
                    rdates.push(
                        local_time(v, offset_from).ok_or_else(|| {
                            error(line_of(p), format!("RDATE: cannot read {v:?}"))
                        })?,
                    );
                }
            }
            let rrule = o
                .find_prop("RRULE")
                .map(|p| (p.val.as_str().trim().to_string(), line_of(p)));
            observances.push(Observance {
                start,
                offset_from,
                offset_to,
                rrule,
                rdates,
                line: o_line,
            });
        }
        if observances.is_empty() {
            return Err(error(
                line,
                format!("VTIMEZONE {tzid:?} without a STANDARD or DAYLIGHT"),
            ));
        }
        Ok(Self {
            tzid,
            line,
            observances,
        })
    }

    /// Every onset before `until`, sorted: (instant, offset before, offset after).
    pub fn transitions(
        &self,
        until: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, i32, i32)>, DomainError> {
        let mut out = Vec::new();
        for o in &self.observances {
            let utc =
                |local: NaiveDateTime| (local - Duration::seconds(o.offset_from.into())).and_utc();
            let mut push = |local: NaiveDateTime| {
                let at = utc(local);
                if at < until {
                    out.push((at, o.offset_from, o.offset_to));
                }
            };
            push(o.start);
            o.rdates.iter().copied().for_each(&mut push);
            let Some((text, line)) = &o.rrule else {
                continue;
            };
            let bad = |e: &dyn std::fmt::Display| error(*line, format!("RRULE: {e}"));
            // local times are expanded as if UTC ("floating"); UNTIL (UTC) is made local too
            let mut until_local = None;
            let mut parts = Vec::new();
            for part in text.split(';') {
                match part.split_once('=') {
                    Some((k, v)) if k.trim().eq_ignore_ascii_case("UNTIL") => {
                        until_local = Some(
                            local_time(v, o.offset_from)
                                .ok_or_else(|| bad(&format!("cannot read UNTIL {v:?}")))?,
                        );
                    }
                    _ => parts.push(part),
                }
            }
            let mut rule = parts
                .join(";")
                .parse::<RRule<Unvalidated>>()
                .map_err(|e| bad(&e))?;
            if let Some(u) = until_local {
                rule = rule.until(Tz::UTC.from_utc_datetime(&u));
            }
            let set = rule
                .build(Tz::UTC.from_utc_datetime(&o.start))
                .map_err(|e| bad(&e))?;
            for (n, d) in (&set).into_iter().enumerate() {
                if n >= MAX_ONSETS {
                    return Err(bad(&"too many transitions"));
                }
                let at = utc(d.naive_utc());
                if at >= until {
                    break;
                }
                out.push((at, o.offset_from, o.offset_to));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The IANA zone this block describes in the given `years` (see the module docs).
    pub fn to_iana(&self, years: &BTreeSet<i32>) -> Result<chrono_tz::Tz, DomainError> {
        let years: BTreeSet<i32> = years
            .iter()
            .map(|y| (*y).clamp(*YEARS.start(), *YEARS.end()))
            .collect();
        let Some(&last) = years.last() else {
            return Err(error(
                self.line,
                format!("VTIMEZONE {:?}: no events use it", self.tzid),
            ));
        };
        let end = Utc
            .with_ymd_and_hms(last + 1, 1, 2, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let transitions = self.transitions(end)?;
        let offset_at = |t: DateTime<Utc>| {
            let i = transitions.partition_point(|(at, _, _)| *at <= t);
            match i {
                0 => transitions.first().map_or(0, |(_, from, _)| *from),
                _ => transitions[i - 1].2,
            }
        };
        let mut samples = Vec::new();
        for &y in &years {
            for m in 1..=12 {
                for d in [1, 15] {
                    if let Some(t) = Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single() {
                        samples.push(t);
                    }
                }
            }
        }
        for (at, _, _) in &transitions {
            if years.contains(&at.year()) {
                samples.push(*at - Duration::minutes(1));
                samples.push(*at + Duration::minutes(1));
            }
        }
        let expected: Vec<(NaiveDateTime, i32)> = samples
            .iter()
            .map(|t| (t.naive_utc(), offset_at(*t)))
            .collect();
        let tzid_words = words(&self.tzid);
        let mut best: Option<((usize, bool), chrono_tz::Tz)> = None;
        for tz in chrono_tz::TZ_VARIANTS {
            let agrees = expected
                .iter()
                .all(|(t, off)| tz.offset_from_utc_datetime(t).fix().local_minus_utc() == *off);
            if !agrees {
                continue;
            }
            let name = tz.name();
            let shared = words(name).intersection(&tzid_words).count();
            let area = name
                .split_once('/')
                .is_some_and(|(area, _)| AREAS.contains(&area));
            let score = (shared, area);
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, tz));
            }
        }
        best.map(|(_, tz)| tz).ok_or_else(|| {
            let show = |s: i32| {
                format!("{}{:02}:{:02}", if s < 0 { '-' } else { '+' }, s.abs() / 3600, s.abs() % 3600 / 60)
            };
            let seen: BTreeSet<String> = expected.iter().map(|(_, o)| show(*o)).collect();
            error(
                self.line,
                format!(
                    "VTIMEZONE {:?}: no IANA time zone has its UTC offsets ({}) at the same times in {}",
                    self.tzid,
                    seen.into_iter().collect::<Vec<_>>().join(", "),
                    years.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
                ),
            )
        })
    }
}

/// The lowercase words (letters and digits, at least two) of a zone name.
fn words(name: &str) -> BTreeSet<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 2)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Maps each `VTIMEZONE`'s `TZID` to an IANA zone: directly when it is an IANA name, else (when
/// `usage` lists years events use it in) by [`VTimezone::to_iana`]. A repeated `TZID` keeps its
/// first block.
pub fn resolve(
    zones: &[VTimezone],
    usage: &BTreeMap<String, BTreeSet<i32>>,
) -> Result<BTreeMap<String, chrono_tz::Tz>, DomainError> {
    let mut out = BTreeMap::new();
    for z in zones {
        if out.contains_key(&z.tzid) {
            continue;
        }
        if let Ok(tz) = z.tzid.parse::<chrono_tz::Tz>() {
            out.insert(z.tzid.clone(), tz);
        } else if let Some(years) = usage.get(&z.tzid).filter(|y| !y.is_empty()) {
            out.insert(z.tzid.clone(), z.to_iana(years)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::ics::{IcsEvent, parse};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// An ICS file with one VTIMEZONE (`observances` inside it) and `events`.
    fn file(tzid: &str, observances: &str, events: &str) -> String {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 16.0//EN\r\n\
             BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{observances}END:VTIMEZONE\r\n{events}END:VCALENDAR\r\n"
        )
    }

    fn event(uid: &str, tzid: &str, start: &str, end: &str, extra: &str) -> String {
        format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{uid}\r\nDTSTART;TZID=\"{tzid}\":{start}\r\n\
             DTEND;TZID=\"{tzid}\":{end}\r\n{extra}END:VEVENT\r\n"
        )
    }

    fn observance(kind: &str, start: &str, from: &str, to: &str, rule: &str) -> String {
        format!(
            "BEGIN:{kind}\r\nDTSTART:{start}\r\nTZOFFSETFROM:{from}\r\nTZOFFSETTO:{to}\r\n{rule}END:{kind}\r\n"
        )
    }

    /// Outlook's "W. Europe Standard Time": last Sunday of March / October.
    fn w_europe() -> String {
        observance(
            "STANDARD",
            "16010101T030000",
            "+0200",
            "+0100",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n",
        ) + &observance(
            "DAYLIGHT",
            "16010101T020000",
            "+0100",
            "+0200",
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n",
        )
    }

    fn by_uid<'a>(events: &'a [IcsEvent], uid: &str) -> &'a IcsEvent {
        events.iter().find(|e| e.uid == uid).expect(uid)
    }

    /// Whether `a` and `b` have the same UTC offset every hour of `year`.
    fn same_rules(a: chrono_tz::Tz, b: chrono_tz::Tz, year: i32) -> bool {
        let mut t = utc(year, 1, 1, 0, 0);
        while t.year() == year {
            let off = |tz: chrono_tz::Tz| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
            if off(a) != off(b) {
                return false;
            }
            t += Duration::hours(1);
        }
        true
    }

    fn zone(e: &IcsEvent) -> chrono_tz::Tz {
        e.details.time_zone.parse().unwrap()
    }

    #[test]
    fn outlook_w_europe_maps_to_a_zone_with_berlins_rules() {
        let tzid = "W. Europe Standard Time";
        let text = file(
            tzid,
            &w_europe(),
            &(event("before", tzid, "20260327T090000", "20260327T100000", "")
                + &event("after", tzid, "20260330T090000", "20260330T100000", "")
                + &event(
                    "weekly",
                    tzid,
                    "20261019T090000",
                    "20261019T093000",
                    "RRULE:FREQ=WEEKLY;COUNT=3\r\n",
                )),
        );
        let events = parse(&text, chrono_tz::UTC).expect("parses");
        let before = by_uid(&events, "before");
        let tz = zone(before);
        assert!(before.details.time_zone.starts_with("Europe/"), "{tz}");
        assert!(same_rules(tz, chrono_tz::Europe::Berlin, 2026), "{tz}");
        assert_eq!(before.details.start, utc(2026, 3, 27, 8, 0), "09:00 +0100");
        assert_eq!(before.details.end, utc(2026, 3, 27, 9, 0));
        let after = by_uid(&events, "after");
        assert_eq!(after.details.time_zone, before.details.time_zone);
        assert_eq!(after.details.start, utc(2026, 3, 30, 7, 0), "09:00 +0200");
        // the recurrence is expanded in the mapped zone: 09:00 local across 25 October
        let weekly = &by_uid(&events, "weekly").details;
        let starts: Vec<_> = weekly
            .occurrences(utc(2026, 10, 1, 0, 0), utc(2026, 12, 1, 0, 0))
            .iter()
            .map(|o| o.start)
            .collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 10, 19, 7, 0),
                utc(2026, 10, 26, 8, 0),
                utc(2026, 11, 2, 8, 0)
            ]
        );
        assert_eq!(
            parse(&text, chrono_tz::UTC).unwrap(),
            events,
            "deterministic"
        );
    }

    #[test]
    fn us_eastern_maps_to_a_new_york_equivalent() {
        let tzid = "Eastern Standard Time";
        let rules = observance(
            "STANDARD",
            "16010101T020000",
            "-0400",
            "-0500",
            "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\n",
        ) + &observance(
            "DAYLIGHT",
            "16010101T020000",
            "-0500",
            "-0400",
            "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\n",
        );
        let text = file(
            tzid,
            &rules,
            &(event("night", tzid, "20261101T000000", "20261101T030000", "")
                + &event("spring", tzid, "20270314T010000", "20270314T040000", "")),
        );
        let events = parse(&text, chrono_tz::UTC).expect("parses");
        let night = by_uid(&events, "night");
        let tz = zone(night);
        for year in [2026, 2027] {
            assert!(same_rules(tz, chrono_tz::America::New_York, year), "{tz}");
        }
        assert_eq!(night.details.start, utc(2026, 11, 1, 4, 0), "00:00 EDT");
        assert_eq!(night.details.end, utc(2026, 11, 1, 8, 0), "03:00 EST");
        let spring = by_uid(&events, "spring");
        assert_eq!(spring.details.start, utc(2027, 3, 14, 6, 0), "01:00 EST");
        assert_eq!(spring.details.end, utc(2027, 3, 14, 8, 0), "04:00 EDT");
    }

    #[test]
    fn a_fixed_offset_maps_to_a_zone_with_that_offset() {
        let tzid = "India Standard Time";
        let rules = observance("STANDARD", "16010101T000000", "+0530", "+0530", "");
        let text = file(
            tzid,
            &rules,
            &event("call", tzid, "20260115T093000", "20260115T103000", ""),
        );
        let events = parse(&text, chrono_tz::UTC).expect("parses");
        let call = by_uid(&events, "call");
        let tz = zone(call);
        for t in [utc(2026, 1, 15, 0, 0), utc(2026, 7, 15, 0, 0)] {
            let off = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
            assert_eq!(off.local_minus_utc(), 5 * 3600 + 1800, "{tz}");
        }
        assert_eq!(call.details.start, utc(2026, 1, 15, 4, 0));
    }

    #[test]
    fn an_iana_tzid_is_used_as_it_is() {
        let text = file(
            "Europe/Paris",
            &w_europe(),
            &event(
                "e",
                "Europe/Paris",
                "20260701T090000",
                "20260701T100000",
                "",
            ),
        );
        let events = parse(&text, chrono_tz::UTC).expect("parses");
        assert_eq!(events[0].details.time_zone, "Europe/Paris");
        assert_eq!(events[0].details.start, utc(2026, 7, 1, 7, 0));
    }

    #[test]
    fn an_impossible_vtimezone_names_its_line() {
        let tzid = "Mars Standard Time";
        let rules = observance("STANDARD", "16010101T000000", "+1337", "+1337", "");
        let text = file(
            tzid,
            &rules,
            &event("e", tzid, "20260115T093000", "20260115T103000", ""),
        );
        match parse(&text, chrono_tz::UTC) {
            Err(DomainError::Invalid { field, reason }) => {
                assert_eq!(field, FIELD);
                assert!(reason.starts_with("line 4:"), "BEGIN:VTIMEZONE: {reason}");
                assert!(
                    reason.contains(tzid) && reason.contains("+13:37"),
                    "{reason}"
                );
            }
            other => panic!("expected an invalid ics, got {other:?}"),
        }
        let bad = observance("STANDARD", "16010101T000000", "+0100", "1:00", "");
        let reason = parse(&file(tzid, &bad, ""), chrono_tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(
            reason.contains("line 9:") && reason.contains("TZOFFSETTO"),
            "{reason}"
        );
    }

    #[test]
    fn offsets_follow_rfc_5545() {
        assert_eq!(offset("+0530"), Some(19_800));
        assert_eq!(offset("-0400"), Some(-14_400));
        assert_eq!(offset("+013015"), Some(5_415));
        assert_eq!(offset("0100"), None);
        assert_eq!(offset("+2400"), None);
        assert_eq!(offset("+01:00"), None);
    }
}
