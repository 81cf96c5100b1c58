//! Black-box tests of the Calendar API (CalendarCommands, CalendarQueries) through the generated
//! gRPC clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, Duration, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field, time, ts, utc};
use proto::v1::calendar_commands_client::CalendarCommandsClient;
use proto::v1::calendar_queries_client::CalendarQueriesClient;
use proto::v1::{
    CalendarDay, CalendarEventFields, CalendarTodayRequest, CancelEventRequest, CommandAck,
    CreateEventRequest, FreeBusyRequest, GetMeetingRollupRequest, ImportIcsRequest,
    ImportIcsResponse, ListEventsRequest, ListEventsResponse, UpdateEventRequest,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(CalendarCommandsClient, CalendarQueriesClient);

on_both_backends! {
    sqlite_create_update_cancel_and_list, postgres_create_update_cancel_and_list
        => create_update_cancel_and_list;
    sqlite_bad_input_names_the_field, postgres_bad_input_names_the_field
        => bad_input_names_the_field;
    sqlite_today_and_free_busy_in_the_users_zone, postgres_today_and_free_busy_in_the_users_zone
        => today_and_free_busy_in_the_users_zone;
    sqlite_import_ics_is_idempotent_and_cancels_removed,
        postgres_import_ics_is_idempotent_and_cancels_removed
        => import_ics_is_idempotent_and_cancels_removed;
    sqlite_import_ics_reads_an_outlook_vtimezone, postgres_import_ics_reads_an_outlook_vtimezone
        => import_ics_reads_an_outlook_vtimezone;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fields(title: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> CalendarEventFields {
    CalendarEventFields {
        title: title.into(),
        start: ts(start),
        end: ts(end),
        ..Default::default()
    }
}

async fn create(c: &mut Commands, event: CalendarEventFields) -> CommandAck {
    c.create_event(CreateEventRequest {
        event: Some(event),
        ..Default::default()
    })
    .await
    .expect("CreateEvent succeeds")
    .into_inner()
}

async fn list(
    q: &mut Queries,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    token: &str,
) -> ListEventsResponse {
    q.list_events(ListEventsRequest {
        from: ts(from),
        to: ts(to),
        consistency_token: token.to_string(),
        ..Default::default()
    })
    .await
    .expect("ListEvents succeeds")
    .into_inner()
}

fn starts(page: &ListEventsResponse) -> Vec<(String, DateTime<Utc>)> {
    page.occurrences
        .iter()
        .map(|o| (o.title.clone(), time(&o.start)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

async fn create_update_cancel_and_list(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));
    // Mondays 09:00–09:30 Paris from 23 March 2026 (CET); CEST from 29 March; 6 April skipped
    let weekly = CalendarEventFields {
        time_zone: "Europe/Paris".into(),
        rrule: "FREQ=WEEKLY;BYDAY=MO;COUNT=4".into(),
        exdates: vec![ts(utc(2026, 4, 6, 7, 0)).unwrap()],
        location: "Room 1".into(),
        ..fields("Weekly", utc(2026, 3, 23, 8, 0), utc(2026, 3, 23, 8, 30))
    };
    let weekly_ack = create(&mut c, weekly.clone()).await;
    let weekly_id = weekly_ack.aggregate_id.clone();
    assert!(
        Uuid::parse_str(&weekly_id).is_ok(),
        "the server chose an id"
    );
    let lunch = create(
        &mut c,
        fields("Lunch", utc(2026, 3, 30, 11, 0), utc(2026, 3, 30, 12, 0)),
    )
    .await;
    let page = list(
        &mut q,
        utc(2026, 3, 1, 0, 0),
        utc(2026, 5, 1, 0, 0),
        &lunch.consistency_token,
    )
    .await;
    assert_eq!(
        starts(&page),
        vec![
            ("Weekly".to_string(), utc(2026, 3, 23, 8, 0)),
            ("Weekly".to_string(), utc(2026, 3, 30, 7, 0)),
            ("Lunch".to_string(), utc(2026, 3, 30, 11, 0)),
            ("Weekly".to_string(), utc(2026, 4, 13, 7, 0)),
        ],
        "09:00 Paris on both sides of the DST change; the EXDATE is skipped and still counts \
         toward COUNT=4 (RFC 5545: EXDATE is removed from the generated set)"
    );
    assert!(!page.truncated);
    let first = &page.occurrences[0];
    assert_eq!(first.event_id, weekly_id);
    assert_eq!(first.location, "Room 1");
    assert!(first.recurring);
    assert_eq!(time(&first.end) - time(&first.start), Duration::minutes(30));

    // the limit cuts the ordered list and says so
    let cut = q
        .list_events(ListEventsRequest {
            from: ts(utc(2026, 3, 1, 0, 0)),
            to: ts(utc(2026, 5, 1, 0, 0)),
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("ListEvents")
        .into_inner();
    assert_eq!(cut.occurrences.len(), 2);
    assert!(cut.truncated);

    // another user sees nothing and cannot touch the event
    let mut others = queries(&server, other);
    let theirs = list(
        &mut others,
        utc(2026, 3, 1, 0, 0),
        utc(2026, 5, 1, 0, 0),
        "",
    )
    .await;
    assert!(theirs.occurrences.is_empty());
    let err = commands(&server, other)
        .cancel_event(CancelEventRequest {
            event_id: weekly_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // an update moves the series to 10:00 Paris; the same fields again write nothing
    let moved = CalendarEventFields {
        start: ts(utc(2026, 3, 23, 9, 0)),
        end: ts(utc(2026, 3, 23, 9, 30)),
        ..weekly
    };
    let update = |f: CalendarEventFields| UpdateEventRequest {
        event_id: weekly_id.clone(),
        event: Some(f),
        ..Default::default()
    };
    let updated = c
        .update_event(update(moved.clone()))
        .await
        .expect("UpdateEvent")
        .into_inner();
    assert_eq!(updated.version, 2);
    let same = c
        .update_event(update(moved.clone()))
        .await
        .expect("UpdateEvent again")
        .into_inner();
    assert!(same.event_ids.is_empty(), "unchanged: no event ({same:?})");
    assert_eq!(same.version, 2);
    let page = list(
        &mut q,
        utc(2026, 3, 30, 0, 0),
        utc(2026, 3, 31, 0, 0),
        &updated.consistency_token,
    )
    .await;
    assert_eq!(
        starts(&page),
        vec![
            ("Weekly".to_string(), utc(2026, 3, 30, 8, 0)),
            ("Lunch".to_string(), utc(2026, 3, 30, 11, 0)),
        ]
    );

    // cancelled: gone from the lists, and further changes are FAILED_PRECONDITION
    let cancelled = c
        .cancel_event(CancelEventRequest {
            event_id: weekly_id.clone(),
            ..Default::default()
        })
        .await
        .expect("CancelEvent")
        .into_inner();
    let page = list(
        &mut q,
        utc(2026, 3, 1, 0, 0),
        utc(2026, 5, 1, 0, 0),
        &cancelled.consistency_token,
    )
    .await;
    assert_eq!(
        starts(&page),
        vec![("Lunch".to_string(), utc(2026, 3, 30, 11, 0))]
    );
    let err = c.update_event(update(moved)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = c
        .create_event(CreateEventRequest {
            event_id: weekly_id.clone(),
            event: Some(fields("dup", utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 1, 0))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
}

async fn bad_input_names_the_field(backend: Backend) {
    let Some((_server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let ok = fields("x", utc(2026, 3, 2, 9, 0), utc(2026, 3, 2, 10, 0));
    let cases = [
        (
            CalendarEventFields {
                end: ts(utc(2026, 3, 2, 8, 0)),
                ..ok.clone()
            },
            "end",
        ),
        (
            CalendarEventFields {
                time_zone: "Mars/Olympus".into(),
                ..ok.clone()
            },
            "time_zone",
        ),
        (
            CalendarEventFields {
                rrule: "FREQ=SOMETIMES".into(),
                ..ok.clone()
            },
            "recurrence",
        ),
        (
            CalendarEventFields {
                title: "  ".into(),
                ..ok.clone()
            },
            "title",
        ),
        (
            CalendarEventFields {
                start: None,
                ..ok.clone()
            },
            "start",
        ),
        (
            CalendarEventFields {
                all_day: true,
                ..ok.clone()
            },
            "start",
        ),
    ];
    for (event, field) in cases {
        let err = c
            .create_event(CreateEventRequest {
                event: Some(event),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid_field(&err, field);
    }
    let err = c
        .create_event(CreateEventRequest {
            event_id: "nope".into(),
            event: Some(ok.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "event_id");

    let err = q
        .list_events(ListEventsRequest {
            from: ts(utc(2026, 3, 2, 0, 0)),
            to: ts(utc(2026, 3, 1, 0, 0)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "to");
    let err = q
        .list_events(ListEventsRequest {
            to: ts(utc(2026, 3, 1, 0, 0)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "from");
    let err = q
        .free_busy(FreeBusyRequest {
            day: "2026-3-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "day");

    // nothing was written: a valid event is the only one listed
    let ack = create(&mut c, ok).await;
    let page = list(
        &mut q,
        utc(2026, 1, 1, 0, 0),
        utc(2026, 12, 1, 0, 0),
        &ack.consistency_token,
    )
    .await;
    assert_eq!(page.occurrences.len(), 1, "{page:?}");
    assert_eq!(ack.version, 1);
}

async fn today(q: &mut Queries, token: &str) -> CalendarDay {
    q.today(CalendarTodayRequest {
        consistency_token: token.to_string(),
    })
    .await
    .expect("Today succeeds")
    .into_inner()
}

async fn today_and_free_busy_in_the_users_zone(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let set = server.set_clock(user, "Pacific/Kiritimati", 4).await;
    let empty = today(&mut q, &set).await;
    assert_eq!(empty.timezone, "Pacific/Kiritimati");
    assert_eq!(empty.day_start_hour, 4);
    assert!(empty.occurrences.is_empty());
    let (start, end) = (time(&empty.day_start), time(&empty.day_end));
    let now = Utc::now();
    assert!(
        start <= now && now < end + Duration::seconds(5),
        "today is now"
    );

    let at = |h: i64, m: i64| start + Duration::hours(h) + Duration::minutes(m);
    create(&mut c, fields("B", at(9, 30), at(11, 0))).await;
    create(&mut c, fields("A", at(9, 0), at(10, 0))).await;
    create(&mut c, fields("Late", at(23, 0), at(25, 0))).await; // runs past the day's end
    create(&mut c, fields("Yesterday", at(-3, 0), at(-2, 0))).await;
    let last = create(&mut c, fields("C", at(14, 0), at(15, 0))).await;

    let day = today(&mut q, &last.consistency_token).await;
    // the day may have rolled over between the two calls only if the test ran at the boundary
    if day.day == empty.day {
        let titles: Vec<&str> = day.occurrences.iter().map(|o| o.title.as_str()).collect();
        assert_eq!(titles, ["A", "B", "C", "Late"]);
    }

    let fb = q
        .free_busy(FreeBusyRequest {
            day: empty.day.clone(),
            consistency_token: last.consistency_token.clone(),
        })
        .await
        .expect("FreeBusy")
        .into_inner();
    assert_eq!(fb.day, empty.day);
    assert_eq!((time(&fb.day_start), time(&fb.day_end)), (start, end));
    let busy: Vec<(DateTime<Utc>, DateTime<Utc>)> = fb
        .busy
        .iter()
        .map(|b| (time(&b.start), time(&b.end)))
        .collect();
    assert_eq!(
        busy,
        vec![
            (at(9, 0), at(11, 0)),
            (at(14, 0), at(15, 0)),
            (at(23, 0), end),
        ],
        "A and B merged, Late clipped to the day"
    );

    let rollup = q
        .get_meeting_rollup(GetMeetingRollupRequest {
            from_day: empty.day.clone(),
            to_day: empty.day.clone(),
            consistency_token: last.consistency_token.clone(),
        })
        .await
        .expect("GetMeetingRollup")
        .into_inner();
    assert_eq!(rollup.timezone, "Pacific/Kiritimati");
    assert_eq!(rollup.day_start_hour, 4);
    let d = &rollup.days[0];
    assert_eq!(d.day, empty.day);
    assert_eq!(d.meetings, 4);
    assert_eq!(
        d.meeting_seconds, 16_200,
        "1 h + 1.5 h + 1 h + Late's 1 h inside the day"
    );
    assert_eq!(d.meeting_minutes, 270.0);
    assert_eq!(time(&d.first_start), at(9, 0));
    assert_eq!(time(&d.last_end), at(25, 0), "Late's real end");
    let err = q
        .get_meeting_rollup(GetMeetingRollupRequest {
            from_day: "today".into(),
            to_day: empty.day.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "from_day");
}

async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);

    let (code, ack) = nats
        .call(
            "commands.calendar.create",
            &token,
            json!({"event": {
                "title": "On the bus",
                "start": "2026-03-02T09:00:00Z",
                "end": "2026-03-02T10:00:00Z",
                "timeZone": "Europe/Paris",
            }}),
        )
        .await;
    assert_eq!(code, None, "{ack}");
    let event_id = ack["aggregateId"]
        .as_str()
        .expect("aggregateId")
        .to_string();

    let (code, bad) = nats
        .call(
            "commands.calendar.create",
            &token,
            json!({"event": {
                "title": "Backwards",
                "start": "2026-03-02T09:00:00Z",
                "end": "2026-03-02T08:00:00Z",
            }}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(bad["field_violations"][0]["field"], "end", "{bad}");

    let (code, listed) = nats
        .call(
            "queries.calendar.events",
            &token,
            json!({
                "from": "2026-03-02T00:00:00Z",
                "to": "2026-03-03T00:00:00Z",
                "consistencyToken": ack["consistencyToken"],
            }),
        )
        .await;
    assert_eq!(code, None, "{listed}");
    assert_eq!(
        listed["occurrences"][0]["eventId"],
        event_id.as_str(),
        "{listed}"
    );
    assert_eq!(listed["occurrences"][0]["title"], "On the bus", "{listed}");

    let (code, fb) = nats
        .call(
            "queries.calendar.free_busy",
            &token,
            json!({"day": "2026-03-02", "consistencyToken": ack["consistencyToken"]}),
        )
        .await;
    assert_eq!(code, None, "{fb}");
    assert_eq!(fb["busy"][0]["start"], "2026-03-02T09:00:00Z", "{fb}");
    nats.stop().await;
}

const ICS: &str = include_str!("data/calendar.ics");

async fn import(c: &mut Commands, source: &str, ics: &str) -> ImportIcsResponse {
    c.import_ics(ImportIcsRequest {
        source: source.into(),
        ics: ics.into(),
        ..Default::default()
    })
    .await
    .expect("ImportIcs succeeds")
    .into_inner()
}

/// `ICS` without the VEVENT whose UID is `uid`.
fn without(uid: &str) -> String {
    let begin = ICS
        .find(&format!("UID:{uid}"))
        .and_then(|at| ICS[..at].rfind("BEGIN:VEVENT"))
        .expect("the event is in the file");
    let end = begin + ICS[begin..].find("END:VEVENT\r\n").expect("its end") + 12;
    format!("{}{}", &ICS[..begin], &ICS[end..])
}

async fn import_ics_is_idempotent_and_cancels_removed(backend: Backend) {
    let Some((_server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let first = import(&mut c, "ics:test", ICS).await;
    assert_eq!(
        (
            first.created,
            first.updated,
            first.cancelled,
            first.unchanged
        ),
        (6, 0, 0, 0),
        "6 events (the cancelled one is left out, the override is an event of its own)"
    );
    let march = |q: &mut Queries, token: String| {
        let mut q = q.clone();
        async move { list(&mut q, utc(2026, 3, 1, 0, 0), utc(2026, 5, 1, 0, 0), &token).await }
    };
    let page = march(&mut q, first.consistency_token.clone()).await;
    assert_eq!(
        starts(&page),
        vec![
            (
                "Day trip on the day New York springs forward (a 23-hour day)".to_string(),
                utc(2026, 3, 8, 5, 0)
            ),
            ("Call".to_string(), utc(2026, 3, 10, 15, 0)),
            ("Weekly standup, team A".to_string(), utc(2026, 3, 23, 8, 0)),
            ("Weekly standup, team A".to_string(), utc(2026, 3, 30, 7, 0)),
            ("Weekly standup, team A".to_string(), utc(2026, 4, 1, 7, 0)),
            ("Weekly standup (moved)".to_string(), utc(2026, 4, 13, 9, 0)),
            ("Weekly standup, team A".to_string(), utc(2026, 4, 20, 7, 0)),
            ("Weekly standup, team A".to_string(), utc(2026, 4, 27, 7, 0)),
        ]
    );
    let trip = &page.occurrences[0];
    assert!(trip.all_day);
    assert_eq!(time(&trip.end) - time(&trip.start), Duration::hours(23));
    assert_eq!(trip.source, "ics:test");
    assert_eq!(trip.external_id, "trip@lifeos.test");

    // the same file again: nothing written
    let again = import(&mut c, "ics:test", ICS).await;
    assert_eq!(
        (
            again.created,
            again.updated,
            again.cancelled,
            again.unchanged
        ),
        (0, 0, 0, 6)
    );
    assert!(again.consistency_token.is_empty(), "{again:?}");

    // a changed event is updated, a removed one cancelled
    let changed = without("utc-call@lifeos.test")
        .replace("SUMMARY:Night shift across", "SUMMARY:Late shift across");
    let second = import(&mut c, "ics:test", &changed).await;
    assert_eq!(
        (
            second.created,
            second.updated,
            second.cancelled,
            second.unchanged
        ),
        (0, 1, 1, 4)
    );
    let page = march(&mut q, second.consistency_token.clone()).await;
    assert!(
        !page.occurrences.iter().any(|o| o.title == "Call"),
        "the removed event is cancelled"
    );
    assert_eq!(page.occurrences.len(), 7);
    let night = list(
        &mut q,
        utc(2026, 11, 1, 0, 0),
        utc(2026, 11, 2, 0, 0),
        &second.consistency_token,
    )
    .await;
    assert_eq!(
        starts(&night),
        vec![(
            "Late shift across the end of daylight saving time".to_string(),
            utc(2026, 11, 1, 4, 0)
        )]
    );
    assert_eq!(
        time(&night.occurrences[0].end),
        utc(2026, 11, 1, 8, 0),
        "00:00 EDT to 03:00 EST is 4 hours"
    );

    // UIDs are unique per source, not across sources
    let other = import(&mut c, "ics:other", ICS).await;
    assert_eq!(other.created, 6);

    // malformed text names the line, and writes nothing
    let broken = ICS.replace(
        "DTSTART;TZID=America/New_York:20261101T000000",
        "DTSTART;TZID=America/New_York:2026-11-01",
    );
    let line = broken
        .lines()
        .position(|l| l.starts_with("DTSTART;TZID=America/New_York:2026-11-01"))
        .unwrap()
        + 1;
    let err = c
        .import_ics(ImportIcsRequest {
            source: "ics:test".into(),
            ics: broken,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "ics");
    assert!(
        err.message().contains(&format!("line {line}:")),
        "{err:?} names line {line}"
    );
    let err = c
        .import_ics(ImportIcsRequest {
            source: "Not A Source".into(),
            ics: ICS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "source");
    let page = march(&mut q, other.consistency_token.clone()).await;
    assert_eq!(
        page.occurrences.len(),
        7 + 8,
        "ics:test without the call, ics:other with it, nothing from the refused imports"
    );
}

/// An Outlook export: `TZID:W. Europe Standard Time` defined by a VTIMEZONE, not an IANA name.
const OUTLOOK_ICS: &str = include_str!("data/outlook.ics");

async fn import_ics_reads_an_outlook_vtimezone(backend: Backend) {
    let Some((_server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let imported = import(&mut c, "ics:outlook", OUTLOOK_ICS).await;
    assert_eq!(imported.created, 1, "{imported:?}");
    let page = list(
        &mut q,
        utc(2026, 3, 1, 0, 0),
        utc(2026, 5, 1, 0, 0),
        &imported.consistency_token,
    )
    .await;
    assert_eq!(
        starts(&page),
        vec![
            ("Planning (Outlook)".to_string(), utc(2026, 3, 27, 8, 0)),
            ("Planning (Outlook)".to_string(), utc(2026, 4, 3, 7, 0)),
        ],
        "09:00 in Berlin's zone: +01:00, then +02:00 after 29 March"
    );
    let first = &page.occurrences[0];
    assert_eq!(time(&first.end) - time(&first.start), Duration::hours(1));
    assert!(first.time_zone.starts_with("Europe/"), "{first:?}");
    assert_eq!(
        first.external_id,
        "040000008200E00074C5B7101A82E00800000000outlook@lifeos.test"
    );
}
