//! The Calendar pillar aggregate: one [`CalendarEvent`] per calendar event (aggregate type
//! `calendar_event`, aggregate id = the event's id, a UUID chosen by the client or the server).
//!
//! An event has a title, a start and an end (UTC instants), an IANA time zone (the zone its
//! recurrence repeats in: a weekly 09:00 Europe/Paris meeting stays at 09:00 local time across a
//! DST change), an all-day flag (then start and end are local midnights in that zone, the end
//! exclusive as in RFC 5545), a location, a description and an optional [`EventRecurrence`]
//! (an RFC 5545 RRULE plus EXDATE and RDATE instants). Imported events carry an
//! [`ExternalRef`] (the source and the external UID).
//!
//! Occurrences are expanded by the [`rrule`] crate in [`EventDetails::occurrences`], written
//! once here and used by every read model; nothing is hand-rolled.
//!
//! Handling is pure: the time of a command comes from the [`Issued`] envelope.

pub mod ics;
pub mod vtimezone;

/// The IANA time zones (re-exported for the API crates).
pub use chrono_tz::Tz as IanaTz;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use cqrs_es::DomainEvent;
use rrule::{RRule, Tz, Unvalidated};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};

/// The most characters a title may have, after trimming.
pub const TITLE_MAX_CHARS: usize = 500;
/// The most characters a location may have, after trimming.
pub const LOCATION_MAX_CHARS: usize = 1_000;
/// The most characters a description may have.
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
/// The most characters an RRULE value may have.
pub const RRULE_MAX_CHARS: usize = 1_000;
/// The most EXDATE (and, separately, RDATE) instants an event may have.
pub const MAX_DATES: usize = 1_000;
/// The longest an event may last: 366 days.
pub const MAX_DURATION_DAYS: i64 = 366;
/// The most characters an external id or a source name may have.
pub const EXTERNAL_MAX_CHARS: usize = 1_000;
/// The most occurrences one expansion returns (a guard against `FREQ=SECONDLY` over years).
pub const MAX_OCCURRENCES: u16 = 10_000;

/// The entity name used in [`DomainError`]s raised by this aggregate.
const ENTITY: &str = "calendar event";

/// How an event repeats: an RFC 5545 RRULE in the event's time zone, with excluded (EXDATE) and
/// added (RDATE) occurrence starts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventRecurrence {
    /// The RRULE value as the `rrule` crate prints it (no `RRULE:` prefix), e.g.
    /// `FREQ=WEEKLY;BYDAY=MO`; `None` when the event only has RDATEs.
    pub rrule: Option<String>,
    /// Occurrence starts that are skipped.
    #[serde(default)]
    pub exdates: Vec<DateTime<Utc>>,
    /// Extra occurrence starts.
    #[serde(default)]
    pub rdates: Vec<DateTime<Utc>>,
}

/// Where an imported event comes from: unique per user, source and external id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExternalRef {
    /// The source (calendar connection) name, e.g. `ics:work` or `google:primary`.
    pub source: String,
    /// The id in that source (the ICS `UID`).
    pub external_id: String,
}

/// What an event says: everything CreateEvent sets and UpdateEvent replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetails {
    /// What it is (trimmed, not empty).
    pub title: String,
    /// When the (first occurrence of the) event starts.
    pub start: DateTime<Utc>,
    /// When it ends (exclusive); after `start`.
    pub end: DateTime<Utc>,
    /// An all-day event: start and end are local midnights in `time_zone`.
    pub all_day: bool,
    /// The IANA time zone the event is in, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Where (trimmed; `None` when empty).
    pub location: Option<String>,
    /// Notes (`None` when empty).
    pub description: Option<String>,
    /// How it repeats; `None` for a single event.
    pub recurrence: Option<EventRecurrence>,
}

/// One occurrence of an event: its start and end instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Occurrence {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
}

impl EventDetails {
    /// Checks every field and returns the details normalized (trimmed text, empty text as
    /// `None`, the RRULE as the crate prints it, EXDATEs and RDATEs sorted without duplicates).
    /// Errors name the request field: `title`, `end`, `time_zone`, `start`, `location`,
    /// `description`, `recurrence`.
    pub fn validated(self) -> Result<Self, DomainError> {
        let title = self.title.trim().to_string();
        if title.is_empty() {
            return Err(DomainError::invalid("title", "must not be empty"));
        }
        check_len("title", &title, TITLE_MAX_CHARS)?;
        let tz = parse_time_zone(&self.time_zone)?;
        if self.end < self.start {
            return Err(DomainError::invalid(
                "end",
                format!("must not be before start ({} < {})", self.end, self.start),
            ));
        }
        if self.end == self.start {
            return Err(DomainError::invalid(
                "end",
                format!("must be after start ({})", self.start),
            ));
        }
        if self.end - self.start > Duration::days(MAX_DURATION_DAYS) {
            return Err(DomainError::invalid(
                "end",
                format!("an event may last at most {MAX_DURATION_DAYS} days"),
            ));
        }
        if self.all_day {
            for (field, at) in [("start", self.start), ("end", self.end)] {
                if at.with_timezone(&tz).time() != NaiveTime::MIN {
                    return Err(DomainError::invalid(
                        field,
                        format!(
                            "an all-day event must start and end at midnight in {}, got {}",
                            tz.name(),
                            at.with_timezone(&tz)
                        ),
                    ));
                }
            }
        }
        let location = optional_text("location", self.location, LOCATION_MAX_CHARS, true)?;
        let description = optional_text(
            "description",
            self.description,
            DESCRIPTION_MAX_CHARS,
            false,
        )?;
        let recurrence = match self.recurrence {
            None => None,
            Some(r) => validate_recurrence(r, self.start, tz)?,
        };
        Ok(Self {
            title,
            location,
            description,
            recurrence,
            time_zone: tz.name().to_string(),
            ..self
        })
    }

    /// The occurrences that overlap `[from, to)`, ordered by start: the event itself when it
    /// does not repeat, else the RRULE (expanded by the `rrule` crate in the event's time zone,
    /// so local wall-clock times survive DST changes) plus RDATEs minus EXDATEs. Each occurrence
    /// lasts as long as the event. At most [`MAX_OCCURRENCES`] are returned.
    ///
    /// ```
    /// use aggregates::calendar::{EventDetails, EventRecurrence};
    /// use chrono::{TimeZone, Utc};
    /// let daily = EventDetails {
    ///     title: "standup".into(),
    ///     start: Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ///     end: Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0).unwrap(),
    ///     all_day: false,
    ///     time_zone: "UTC".into(),
    ///     location: None,
    ///     description: None,
    ///     recurrence: Some(EventRecurrence { rrule: Some("FREQ=DAILY;COUNT=3".into()), ..Default::default() }),
    /// };
    /// let all = daily.occurrences(
    ///     Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
    ///     Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
    /// );
    /// assert_eq!(all.len(), 3);
    /// ```
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
        let duration = self.end - self.start;
        let overlaps = |o: &Occurrence| o.start < to && o.end > from;
        let Some(recurrence) = &self.recurrence else {
            let single = Occurrence {
                start: self.start,
                end: self.end,
            };
            return if overlaps(&single) {
                vec![single]
            } else {
                vec![]
            };
        };
        if from >= to {
            return vec![];
        }
        let tz: Tz = self
            .time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or(chrono_tz::UTC)
            .into();
        let at = |d: DateTime<Utc>| d.with_timezone(&tz);
        let dt_start = at(self.start);
        let mut set = match &recurrence.rrule {
            Some(text) => match parse_rrule(text).and_then(|r| r.build(dt_start)) {
                Ok(set) => set,
                // validated on the way in; an unreadable stored rule expands to the event alone
                Err(_) => rrule::RRuleSet::new(dt_start).rdate(dt_start),
            },
            // RDATE-only: DTSTART is an occurrence too (RFC 5545 3.8.5.2)
            None => rrule::RRuleSet::new(dt_start).rdate(dt_start),
        };
        for r in &recurrence.rdates {
            set = set.rdate(at(*r));
        }
        for x in &recurrence.exdates {
            set = set.exdate(at(*x));
        }
        // `after` and `before` are inclusive in the crate; overlap is filtered below
        let set = set.after(at(from - duration)).before(at(to));
        let mut out: Vec<Occurrence> = set
            .all(MAX_OCCURRENCES)
            .dates
            .into_iter()
            .map(|d| {
                let start = d.with_timezone(&Utc);
                Occurrence {
                    start,
                    end: start + duration,
                }
            })
            .filter(overlaps)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl EventDetails {
    /// When the last occurrence ends: the end for a single event, the end of the last
    /// occurrence of a series bounded by COUNT or UNTIL (and its RDATEs); `None` when the
    /// series repeats forever (or has more than [`MAX_OCCURRENCES`] occurrences). Read models
    /// use it to skip series that ended before a queried range.
    pub fn series_end(&self) -> Option<DateTime<Utc>> {
        let Some(recurrence) = &self.recurrence else {
            return Some(self.end);
        };
        if let Some(text) = &recurrence.rrule {
            let rule = parse_rrule(text).ok()?;
            if rule.get_count().is_none() && rule.get_until().is_none() {
                return None;
            }
        }
        let far = self.start + Duration::days(365 * 200);
        let all = self.occurrences(self.start, far);
        if all.len() >= usize::from(MAX_OCCURRENCES) {
            return None;
        }
        all.iter().map(|o| o.end).max().or(Some(self.end))
    }
}

/// Parses an IANA time zone name; an unknown one is an invalid `time_zone`.
pub fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, DomainError> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        DomainError::invalid(
            "time_zone",
            format!("unknown IANA time zone {name:?} (e.g. Europe/Paris)"),
        )
    })
}

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), DomainError> {
    let len = text.chars().count();
    if len > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters, got {len}"),
        ));
    }
    Ok(())
}

fn optional_text(
    field: &'static str,
    text: Option<String>,
    max: usize,
    trim: bool,
) -> Result<Option<String>, DomainError> {
    let Some(text) = text else { return Ok(None) };
    let text = if trim { text.trim().to_string() } else { text };
    if text.trim().is_empty() {
        return Ok(None);
    }
    check_len(field, &text, max)?;
    Ok(Some(text))
}

fn parse_rrule(text: &str) -> Result<RRule<Unvalidated>, rrule::RRuleError> {
    text.parse::<RRule<Unvalidated>>()
}

fn validate_recurrence(
    r: EventRecurrence,
    start: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<Option<EventRecurrence>, DomainError> {
    let invalid = |reason: String| DomainError::invalid("recurrence", reason);
    let rrule = match r.rrule.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let text = text.strip_prefix("RRULE:").unwrap_or(text);
            let len = text.chars().count();
            if len > RRULE_MAX_CHARS {
                return Err(invalid(format!(
                    "the RRULE must be at most {RRULE_MAX_CHARS} characters, got {len}"
                )));
            }
            let rule = parse_rrule(text).map_err(|e| invalid(e.to_string()))?;
            if rule.get_count().is_some() && rule.get_until().is_some() {
                return Err(invalid(
                    "COUNT and UNTIL must not both be given (RFC 5545)".into(),
                ));
            }
            if rule.get_count() == Some(0) {
                return Err(invalid("COUNT must be at least 1".into()));
            }
            let printed = rule.to_string();
            rule.validate(start.with_timezone(&Tz::from(tz)))
                .map_err(|e| invalid(e.to_string()))?;
            Some(printed)
        }
    };
    for (name, dates) in [("EXDATE", &r.exdates), ("RDATE", &r.rdates)] {
        if dates.len() > MAX_DATES {
            return Err(invalid(format!(
                "at most {MAX_DATES} {name} values, got {}",
                dates.len()
            )));
        }
    }
    if rrule.is_none() && r.rdates.is_empty() {
        if r.exdates.is_empty() {
            return Ok(None);
        }
        return Err(invalid(
            "EXDATE needs an RRULE or RDATE to exclude from".into(),
        ));
    }
    let sorted = |mut v: Vec<DateTime<Utc>>| {
        v.sort();
        v.dedup();
        v
    };
    Ok(Some(EventRecurrence {
        rrule,
        exdates: sorted(r.exdates),
        rdates: sorted(r.rdates),
    }))
}

/// What a user can ask of a calendar event.
#[derive(Debug, Clone, PartialEq)]
pub enum CalendarCommand {
    /// Create the event; ALREADY_EXISTS when the id is taken.
    CreateEvent {
        /// The new event's id (not nil).
        event_id: Uuid,
        /// What it says.
        details: EventDetails,
        /// Where it was imported from, if it was.
        external: Option<ExternalRef>,
    },
    /// Replace the event's details; nothing is recorded when they are unchanged.
    UpdateEvent {
        /// The event.
        event_id: Uuid,
        /// The new details.
        details: EventDetails,
    },
    /// Cancel the event (all its occurrences).
    CancelEvent {
        /// The event.
        event_id: Uuid,
    },
}

impl CalendarCommand {
    /// The event the command is about.
    pub fn event_id(&self) -> Uuid {
        match self {
            CalendarCommand::CreateEvent { event_id, .. }
            | CalendarCommand::UpdateEvent { event_id, .. }
            | CalendarCommand::CancelEvent { event_id } => *event_id,
        }
    }
}

/// What happened to a calendar event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalendarEventEvent {
    /// The event was created.
    EventCreated {
        /// Its id (also the aggregate id).
        event_id: Uuid,
        /// Its owner.
        user_id: Uuid,
        /// What it says (validated).
        details: EventDetails,
        /// Where it was imported from.
        external: Option<ExternalRef>,
        /// When.
        created_at: DateTime<Utc>,
    },
    /// The event's details were replaced.
    EventUpdated {
        /// The event.
        event_id: Uuid,
        /// The owner (so read models need no other event).
        user_id: Uuid,
        /// The new details (validated).
        details: EventDetails,
        /// When.
        updated_at: DateTime<Utc>,
    },
    /// The event was cancelled.
    EventCancelled {
        /// The event.
        event_id: Uuid,
        /// The owner.
        user_id: Uuid,
        /// When.
        cancelled_at: DateTime<Utc>,
    },
}

impl DomainEvent for CalendarEventEvent {
    /// The variant name, e.g. `EventCreated`.
    fn event_type(&self) -> String {
        match self {
            CalendarEventEvent::EventCreated { .. } => "EventCreated",
            CalendarEventEvent::EventUpdated { .. } => "EventUpdated",
            CalendarEventEvent::EventCancelled { .. } => "EventCancelled",
        }
        .to_string()
    }

    /// Always `1`.
    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl CalendarEventEvent {
    /// The event the event is about.
    pub fn event_id(&self) -> Uuid {
        match self {
            CalendarEventEvent::EventCreated { event_id, .. }
            | CalendarEventEvent::EventUpdated { event_id, .. }
            | CalendarEventEvent::EventCancelled { event_id, .. } => *event_id,
        }
    }
}

/// The aggregate: one calendar event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalendarEvent {
    id: Option<Uuid>,
    owner: Option<Uuid>,
    details: Option<EventDetails>,
    external: Option<ExternalRef>,
    cancelled: bool,
}

impl CalendarEvent {
    /// The event's details, once created.
    pub fn details(&self) -> Option<&EventDetails> {
        self.details.as_ref()
    }

    /// Where it was imported from.
    pub fn external(&self) -> Option<&ExternalRef> {
        self.external.as_ref()
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The owner, once created.
    pub fn owner(&self) -> Option<Uuid> {
        self.owner
    }

    /// The pure decision: the events `command` produces against the current state.
    fn decide(
        &self,
        command: Issued<CalendarCommand>,
    ) -> Result<Vec<CalendarEventEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        let event_id = command.event_id();
        if event_id.is_nil() {
            return Err(DomainError::invalid("event_id", "must not be the nil UUID"));
        }
        match command {
            CalendarCommand::CreateEvent {
                details, external, ..
            } => {
                let details = details.validated()?;
                let external = external.map(validate_external).transpose()?;
                if self.owner.is_some() {
                    return Err(DomainError::AlreadyExists {
                        entity: ENTITY,
                        id: event_id.to_string(),
                    });
                }
                Ok(vec![CalendarEventEvent::EventCreated {
                    event_id,
                    user_id: actor,
                    details,
                    external,
                    created_at: at,
                }])
            }
            CalendarCommand::UpdateEvent { details, .. } => {
                let details = details.validated()?;
                self.live(actor, event_id)?;
                if self.details.as_ref() == Some(&details) {
                    return Ok(vec![]);
                }
                Ok(vec![CalendarEventEvent::EventUpdated {
                    event_id,
                    user_id: actor,
                    details,
                    updated_at: at,
                }])
            }
            CalendarCommand::CancelEvent { .. } => {
                self.live(actor, event_id)?;
                Ok(vec![CalendarEventEvent::EventCancelled {
                    event_id,
                    user_id: actor,
                    cancelled_at: at,
                }])
            }
        }
    }

    /// NOT_FOUND unless `actor` owns the (created) event; FAILED_PRECONDITION once cancelled.
    fn live(&self, actor: Uuid, event_id: Uuid) -> Result<(), DomainError> {
        if self.owner != Some(actor) {
            return Err(DomainError::NotFound {
                entity: ENTITY,
                id: event_id.to_string(),
            });
        }
        if self.cancelled {
            return Err(DomainError::Rejected(format!(
                "{ENTITY} {event_id} is cancelled"
            )));
        }
        Ok(())
    }
}

fn validate_external(external: ExternalRef) -> Result<ExternalRef, DomainError> {
    let source = external.source.trim().to_string();
    let external_id = external.external_id.trim().to_string();
    if source.is_empty() {
        return Err(DomainError::invalid("source", "must not be empty"));
    }
    if external_id.is_empty() {
        return Err(DomainError::invalid("external_id", "must not be empty"));
    }
    check_len("source", &source, EXTERNAL_MAX_CHARS)?;
    check_len("external_id", &external_id, EXTERNAL_MAX_CHARS)?;
    Ok(ExternalRef {
        source,
        external_id,
    })
}

crate::pillar_aggregate!(
    CalendarEvent,
    "calendar_event",
    CalendarCommand,
    CalendarEventEvent
);

impl CalendarEvent {
    /// Folds `event` into the state.
    fn evolve(&mut self, event: CalendarEventEvent) {
        match event {
            CalendarEventEvent::EventCreated {
                event_id,
                user_id,
                details,
                external,
                ..
            } => {
                self.id = Some(event_id);
                self.owner = Some(user_id);
                self.details = Some(details);
                self.external = external;
            }
            CalendarEventEvent::EventUpdated { details, .. } => self.details = Some(details),
            CalendarEventEvent::EventCancelled { .. } => self.cancelled = true,
        }
    }
}

/// The UTC instant of local midnight starting `date` in `tz` (the first instant of the day when
/// midnight is skipped by a DST change).
pub fn local_midnight(tz: chrono_tz::Tz, date: chrono::NaiveDate) -> DateTime<Utc> {
    let mut t = date.and_time(NaiveTime::MIN);
    loop {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return at.with_timezone(&Utc);
        }
        t += Duration::minutes(15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    type Fw = TestFramework<CalendarEvent>;

    const ALICE: Uuid = Uuid::from_u128(0xa11ce);
    const BOB: Uuid = Uuid::from_u128(0xb0b);
    const E1: Uuid = Uuid::from_u128(0xe1);

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn now() -> DateTime<Utc> {
        utc(2026, 3, 1, 8, 0)
    }

    fn details() -> EventDetails {
        EventDetails {
            title: "Planning".into(),
            start: utc(2026, 3, 2, 9, 0),
            end: utc(2026, 3, 2, 10, 0),
            all_day: false,
            time_zone: "UTC".into(),
            location: None,
            description: None,
            recurrence: None,
        }
    }

    fn create(details: EventDetails) -> CalendarCommand {
        CalendarCommand::CreateEvent {
            event_id: E1,
            details,
            external: None,
        }
    }

    fn created(details: EventDetails) -> CalendarEventEvent {
        CalendarEventEvent::EventCreated {
            event_id: E1,
            user_id: ALICE,
            details,
            external: None,
            created_at: now(),
        }
    }

    fn decide(
        given: Vec<CalendarEventEvent>,
        actor: Uuid,
        command: CalendarCommand,
    ) -> Result<Vec<CalendarEventEvent>, DomainError> {
        Fw::with(())
            .given(given)
            .when(Issued::new(actor, now(), command))
            .inspect_result()
    }

    fn assert_invalid(result: Result<Vec<CalendarEventEvent>, DomainError>, field: &str) {
        match result {
            Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected Invalid({field}), got {other:?}"),
        }
    }

    fn weekly_paris() -> EventDetails {
        EventDetails {
            title: "Weekly".into(),
            // Monday 2026-03-23 09:00 Paris (CET, UTC+1)
            start: utc(2026, 3, 23, 8, 0),
            end: utc(2026, 3, 23, 8, 30),
            time_zone: "Europe/Paris".into(),
            recurrence: Some(EventRecurrence {
                rrule: Some("FREQ=WEEKLY;COUNT=4".into()),
                ..Default::default()
            }),
            ..details()
        }
    }

    #[test]
    fn create_records_the_validated_event() {
        let input = EventDetails {
            title: "  Planning ".into(),
            location: Some("  ".into()),
            description: Some("agenda".into()),
            time_zone: " Europe/Paris".into(),
            ..details()
        };
        let events = decide(vec![], ALICE, create(input)).unwrap();
        let expected = EventDetails {
            title: "Planning".into(),
            location: None,
            description: Some("agenda".into()),
            time_zone: "Europe/Paris".into(),
            ..details()
        };
        assert_eq!(events, vec![created(expected)]);
    }

    #[test]
    fn end_before_start_is_invalid_naming_end() {
        let bad = EventDetails {
            end: utc(2026, 3, 2, 8, 0),
            ..details()
        };
        assert_invalid(decide(vec![], ALICE, create(bad.clone())), "end");
        let empty = EventDetails {
            end: details().start,
            ..details()
        };
        assert_invalid(decide(vec![], ALICE, create(empty)), "end");
        // also on update, and nothing is written
        Fw::with(())
            .given(vec![created(details())])
            .when(Issued::new(
                ALICE,
                now(),
                CalendarCommand::UpdateEvent {
                    event_id: E1,
                    details: bad,
                },
            ))
            .then_expect_error(DomainError::invalid(
                "end",
                "must not be before start (2026-03-02 08:00:00 UTC < 2026-03-02 09:00:00 UTC)",
            ));
    }

    #[test]
    fn unknown_time_zone_is_invalid_naming_time_zone() {
        let bad = EventDetails {
            time_zone: "Mars/Olympus".into(),
            ..details()
        };
        assert_invalid(decide(vec![], ALICE, create(bad)), "time_zone");
    }

    #[test]
    fn other_fields_are_checked() {
        let cases = [
            (
                EventDetails {
                    title: " ".into(),
                    ..details()
                },
                "title",
            ),
            (
                EventDetails {
                    title: "x".repeat(TITLE_MAX_CHARS + 1),
                    ..details()
                },
                "title",
            ),
            (
                EventDetails {
                    location: Some("x".repeat(LOCATION_MAX_CHARS + 1)),
                    ..details()
                },
                "location",
            ),
            (
                EventDetails {
                    end: details().start + Duration::days(MAX_DURATION_DAYS + 1),
                    ..details()
                },
                "end",
            ),
            (
                EventDetails {
                    all_day: true,
                    ..details()
                },
                "start",
            ),
        ];
        for (input, field) in cases {
            assert_invalid(decide(vec![], ALICE, create(input)), field);
        }
        let nil = CalendarCommand::CreateEvent {
            event_id: Uuid::nil(),
            details: details(),
            external: None,
        };
        assert_invalid(decide(vec![], ALICE, nil), "event_id");
        let no_uid = CalendarCommand::CreateEvent {
            event_id: E1,
            details: details(),
            external: Some(ExternalRef {
                source: "ics:work".into(),
                external_id: " ".into(),
            }),
        };
        assert_invalid(decide(vec![], ALICE, no_uid), "external_id");
    }

    #[test]
    fn all_day_events_span_local_midnights() {
        let paris = chrono_tz::Europe::Paris;
        let day = chrono::NaiveDate::from_ymd_opt(2026, 7, 14).unwrap();
        let all_day = EventDetails {
            all_day: true,
            time_zone: "Europe/Paris".into(),
            start: local_midnight(paris, day),
            end: local_midnight(paris, day.succ_opt().unwrap()),
            ..details()
        };
        assert_eq!(all_day.start, utc(2026, 7, 13, 22, 0));
        let events = decide(vec![], ALICE, create(all_day.clone())).unwrap();
        assert_eq!(events, vec![created(all_day)]);
    }

    #[test]
    fn recurrence_is_validated_by_the_rrule_crate() {
        for rule in [
            "FREQ=SOMETIMES",
            "FREQ=DAILY;COUNT=2;UNTIL=20260401T000000Z",
            "FREQ=DAILY;COUNT=0",
        ] {
            let bad = EventDetails {
                recurrence: Some(EventRecurrence {
                    rrule: Some(rule.into()),
                    ..Default::default()
                }),
                ..details()
            };
            assert_invalid(decide(vec![], ALICE, create(bad)), "recurrence");
        }
        let exdate_alone = EventDetails {
            recurrence: Some(EventRecurrence {
                exdates: vec![details().start],
                ..Default::default()
            }),
            ..details()
        };
        assert_invalid(decide(vec![], ALICE, create(exdate_alone)), "recurrence");
        // normalized: prefix dropped, dates sorted and deduplicated
        let ok = EventDetails {
            recurrence: Some(EventRecurrence {
                rrule: Some("RRULE:FREQ=WEEKLY;BYDAY=MO".into()),
                exdates: vec![
                    utc(2026, 3, 16, 9, 0),
                    utc(2026, 3, 9, 9, 0),
                    utc(2026, 3, 9, 9, 0),
                ],
                rdates: vec![],
            }),
            ..details()
        };
        let events = decide(vec![], ALICE, create(ok)).unwrap();
        let CalendarEventEvent::EventCreated { details: d, .. } = &events[0] else {
            panic!("{events:?}")
        };
        let r = d.recurrence.as_ref().unwrap();
        assert_eq!(r.rrule.as_deref(), Some("FREQ=WEEKLY;BYDAY=MO"));
        assert_eq!(
            r.exdates,
            vec![utc(2026, 3, 9, 9, 0), utc(2026, 3, 16, 9, 0)]
        );
    }

    #[test]
    fn create_twice_is_already_exists() {
        let err = decide(vec![created(details())], ALICE, create(details())).unwrap_err();
        assert_eq!(
            err,
            DomainError::AlreadyExists {
                entity: ENTITY,
                id: E1.to_string()
            }
        );
    }

    #[test]
    fn update_replaces_details_and_is_silent_when_unchanged() {
        let moved = EventDetails {
            start: utc(2026, 3, 3, 9, 0),
            end: utc(2026, 3, 3, 11, 0),
            ..details()
        };
        let update = |d: EventDetails| CalendarCommand::UpdateEvent {
            event_id: E1,
            details: d,
        };
        let events = decide(vec![created(details())], ALICE, update(moved.clone())).unwrap();
        assert_eq!(
            events,
            vec![CalendarEventEvent::EventUpdated {
                event_id: E1,
                user_id: ALICE,
                details: moved,
                updated_at: now(),
            }]
        );
        let same = EventDetails {
            title: " Planning ".into(),
            ..details()
        };
        assert_eq!(
            decide(vec![created(details())], ALICE, update(same)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn commands_on_missing_foreign_or_cancelled_events_are_refused() {
        let cancel = CalendarCommand::CancelEvent { event_id: E1 };
        let update = CalendarCommand::UpdateEvent {
            event_id: E1,
            details: details(),
        };
        for command in [cancel.clone(), update.clone()] {
            let missing = decide(vec![], ALICE, command.clone()).unwrap_err();
            assert!(
                matches!(missing, DomainError::NotFound { .. }),
                "{missing:?}"
            );
            let foreign = decide(vec![created(details())], BOB, command.clone()).unwrap_err();
            assert!(
                matches!(foreign, DomainError::NotFound { .. }),
                "{foreign:?}"
            );
        }
        let events = decide(vec![created(details())], ALICE, cancel.clone()).unwrap();
        assert_eq!(
            events,
            vec![CalendarEventEvent::EventCancelled {
                event_id: E1,
                user_id: ALICE,
                cancelled_at: now(),
            }]
        );
        let given = vec![created(details()), events[0].clone()];
        for command in [cancel, update] {
            let err = decide(given.clone(), ALICE, command).unwrap_err();
            assert!(
                matches!(&err, DomainError::Rejected(m) if m.contains("cancelled")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn weekly_occurrences_keep_local_time_across_dst() {
        let occ = weekly_paris().occurrences(utc(2026, 3, 1, 0, 0), utc(2026, 5, 1, 0, 0));
        let starts: Vec<_> = occ.iter().map(|o| o.start).collect();
        // Paris switches to CEST (UTC+2) on 2026-03-29: 09:00 local is 07:00 UTC after it
        assert_eq!(
            starts,
            vec![
                utc(2026, 3, 23, 8, 0),
                utc(2026, 3, 30, 7, 0),
                utc(2026, 4, 6, 7, 0),
                utc(2026, 4, 13, 7, 0),
            ]
        );
        assert!(occ.iter().all(|o| o.end - o.start == Duration::minutes(30)));
    }

    #[test]
    fn exdates_rdates_and_windows_shape_the_occurrences() {
        let mut d = weekly_paris();
        d.recurrence = Some(EventRecurrence {
            rrule: Some("FREQ=WEEKLY;COUNT=4".into()),
            exdates: vec![utc(2026, 3, 30, 7, 0)],
            rdates: vec![utc(2026, 4, 1, 12, 0)],
        });
        let starts: Vec<_> = d
            .occurrences(utc(2026, 3, 1, 0, 0), utc(2026, 5, 1, 0, 0))
            .iter()
            .map(|o| o.start)
            .collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 3, 23, 8, 0),
                utc(2026, 4, 1, 12, 0),
                utc(2026, 4, 6, 7, 0),
                utc(2026, 4, 13, 7, 0),
            ]
        );
        // an occurrence that started before the window but overlaps it is included; the end
        // of the window is exclusive
        let window = d.occurrences(utc(2026, 4, 6, 7, 15), utc(2026, 4, 13, 7, 0));
        assert_eq!(
            window,
            vec![Occurrence {
                start: utc(2026, 4, 6, 7, 0),
                end: utc(2026, 4, 6, 7, 30)
            }]
        );
        // a single event: in or out
        assert_eq!(
            details()
                .occurrences(utc(2026, 3, 2, 9, 59), utc(2026, 3, 3, 0, 0))
                .len(),
            1
        );
        assert!(
            details()
                .occurrences(utc(2026, 3, 2, 10, 0), utc(2026, 3, 3, 0, 0))
                .is_empty()
        );
    }

    #[test]
    fn series_end_bounds_the_series() {
        assert_eq!(details().series_end(), Some(utc(2026, 3, 2, 10, 0)));
        assert_eq!(weekly_paris().series_end(), Some(utc(2026, 4, 13, 7, 30)));
        let forever = EventDetails {
            recurrence: Some(EventRecurrence {
                rrule: Some("FREQ=DAILY".into()),
                ..Default::default()
            }),
            ..details()
        };
        assert_eq!(forever.series_end(), None);
        let rdates_only = EventDetails {
            recurrence: Some(EventRecurrence {
                rrule: None,
                exdates: vec![],
                rdates: vec![utc(2026, 5, 1, 9, 0)],
            }),
            ..details()
        };
        assert_eq!(rdates_only.series_end(), Some(utc(2026, 5, 1, 10, 0)));
    }

    #[test]
    fn state_folds_and_round_trips() {
        let mut agg = CalendarEvent::default();
        agg.apply(created(details()));
        assert_eq!(agg.owner(), Some(ALICE));
        assert_eq!(agg.details(), Some(&details()));
        agg.apply(CalendarEventEvent::EventCancelled {
            event_id: E1,
            user_id: ALICE,
            cancelled_at: now(),
        });
        assert!(agg.is_cancelled());
        let back: CalendarEvent =
            serde_json::from_value(serde_json::to_value(&agg).unwrap()).unwrap();
        assert_eq!(back, agg);
        let e = created(details());
        assert_eq!(e.event_type(), "EventCreated");
        assert_eq!(e.event_id(), E1);
    }
}
