//! The Calendar read model end to end on both backends: commands go through
//! `AggregateStore::execute` with explicit times, the runner folds the log into
//! `calendar_events`, queries expand occurrences back.
//!
//! Every case is one generic async fn taking a [`Store`]; `store::on_both_stores!` instantiates it as
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Tests wait on the runner's progress, bounded, never on sleeps.

mod common;

use common::{user_metadata, utc};
use std::sync::Arc;
use std::time::Duration;

use aggregates::Issued;
use aggregates::calendar::{CalendarCommand, CalendarEvent, EventDetails, EventRecurrence};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use projections::calendar_daily::{CalendarDaily, DayMeetings};
use projections::calendar_events::{Busy, CalendarEvents, OccurrenceView};
use projections::{ProjectionRunner, ReadModels, RunnerHandle};
use store::{AggregateStore, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for the runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    range_expands_recurrences_across_dst => sqlite_range_expands_recurrences_across_dst, postgres_range_expands_recurrences_across_dst;
    today_and_free_busy_use_the_local_day => sqlite_today_and_free_busy_use_the_local_day, postgres_today_and_free_busy_use_the_local_day;
    daily_rollup_across_dst_with_a_5am_day_start => sqlite_daily_rollup_across_dst_with_a_5am_day_start, postgres_daily_rollup_across_dst_with_a_5am_day_start;
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn event(title: &str, start: DateTime<Utc>, end: DateTime<Utc>, tz: &str) -> EventDetails {
    EventDetails {
        title: title.into(),
        start,
        end,
        all_day: false,
        time_zone: tz.into(),
        location: None,
        description: None,
        recurrence: None,
    }
}

fn repeating(mut d: EventDetails, rrule: &str, exdates: Vec<DateTime<Utc>>) -> EventDetails {
    d.recurrence = Some(EventRecurrence {
        rrule: Some(rrule.into()),
        exdates,
        rdates: vec![],
    });
    d
}

struct Env {
    events: AggregateStore<CalendarEvent, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
    models: ReadModels,
    runner: Option<RunnerHandle>,
}

impl Env {
    fn new(store: Store) -> Self {
        let models = ReadModels::new(store.clone());
        let runner = Some(ProjectionRunner::new(Arc::new(CalendarEvents), models.clone()).spawn());
        Self {
            events: AggregateStore::new(store.clone()),
            preferences: AggregateStore::new(store),
            models,
            runner,
        }
    }

    async fn exec(&self, user: Uuid, command: CalendarCommand) -> Position {
        let id = command.event_id().to_string();
        let what = format!("{command:?}");
        let outcome = self
            .events
            .execute(
                &id,
                Issued::new(user, utc(2026, 1, 1, 0, 0), command),
                &(),
                user_metadata(user),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        outcome.receipt.position.expect("a position")
    }

    async fn create(&self, user: Uuid, details: EventDetails) -> (Uuid, Position) {
        let id = Uuid::now_v7();
        let command = CalendarCommand::CreateEvent {
            event_id: id,
            details,
            external: None,
        };
        (id, self.exec(user, command).await)
    }

    async fn clock(&self, user: Uuid, timezone: &str, day_start_hour: u32) -> Position {
        common::set_clock(&self.preferences, user, timezone, day_start_hour).await
    }

    async fn caught_up(&mut self, target: Position) {
        let handle = self.runner.as_mut().expect("runner");
        timeout(WAIT, handle.progress.wait_for(|p| *p >= target))
            .await
            .unwrap_or_else(|_| panic!("runner did not reach {target} within {WAIT:?}"))
            .expect("runner alive");
    }

    async fn stop(mut self) {
        if let Some(r) = self.runner.take() {
            r.stop().await.expect("runner stops");
        }
    }

    async fn range(
        &self,
        user: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<OccurrenceView> {
        CalendarEvents::occurrences(&self.models, user, from, to, 1000)
            .await
            .expect("occurrences")
    }
}

fn starts(list: &[OccurrenceView]) -> Vec<(String, DateTime<Utc>)> {
    list.iter().map(|o| (o.title.clone(), o.start)).collect()
}

async fn range_expands_recurrences_across_dst(store: Store) {
    let mut env = Env::new(store);
    let alice = Uuid::now_v7();
    let bob = Uuid::now_v7();
    // Mondays 09:00–09:30 Paris from 23 March; Paris moves to CEST on 29 March; 6 April skipped
    let weekly = repeating(
        event(
            "Weekly",
            utc(2026, 3, 23, 8, 0),
            utc(2026, 3, 23, 8, 30),
            "Europe/Paris",
        ),
        "FREQ=WEEKLY;BYDAY=MO",
        vec![utc(2026, 4, 6, 7, 0)],
    );
    let (weekly_id, _) = env.create(alice, weekly).await;
    let (_, _) = env
        .create(
            alice,
            event(
                "Lunch",
                utc(2026, 3, 30, 11, 0),
                utc(2026, 3, 30, 12, 0),
                "UTC",
            ),
        )
        .await;
    let (gone, _) = env
        .create(
            alice,
            event(
                "Gone",
                utc(2026, 3, 31, 9, 0),
                utc(2026, 3, 31, 10, 0),
                "UTC",
            ),
        )
        .await;
    env.exec(alice, CalendarCommand::CancelEvent { event_id: gone })
        .await;
    // a series that ended long ago, and Bob's event: neither shows
    let old = repeating(
        event("Old", utc(2025, 1, 6, 9, 0), utc(2025, 1, 6, 10, 0), "UTC"),
        "FREQ=DAILY;COUNT=3",
        vec![],
    );
    env.create(alice, old).await;
    let (_, last) = env
        .create(
            bob,
            event(
                "Bob's",
                utc(2026, 3, 30, 9, 0),
                utc(2026, 3, 30, 10, 0),
                "UTC",
            ),
        )
        .await;
    env.caught_up(last).await;

    let list = env
        .range(alice, utc(2026, 3, 23, 0, 0), utc(2026, 4, 14, 0, 0))
        .await;
    assert_eq!(
        starts(&list),
        vec![
            ("Weekly".to_string(), utc(2026, 3, 23, 8, 0)),
            ("Weekly".to_string(), utc(2026, 3, 30, 7, 0)),
            ("Lunch".to_string(), utc(2026, 3, 30, 11, 0)),
            ("Weekly".to_string(), utc(2026, 4, 13, 7, 0)),
        ],
        "09:00 Paris before and after the DST change, EXDATE skipped, cancelled and foreign left out"
    );
    assert!(list[0].recurring && !list[2].recurring);

    // moving the series to 10:00 Paris is seen by the next query
    let moved = repeating(
        event(
            "Weekly",
            utc(2026, 3, 23, 9, 0),
            utc(2026, 3, 23, 9, 30),
            "Europe/Paris",
        ),
        "FREQ=WEEKLY;BYDAY=MO",
        vec![],
    );
    let at = env
        .exec(
            alice,
            CalendarCommand::UpdateEvent {
                event_id: weekly_id,
                details: moved,
            },
        )
        .await;
    env.caught_up(at).await;
    let list = env
        .range(alice, utc(2026, 4, 6, 0, 0), utc(2026, 4, 7, 0, 0))
        .await;
    assert_eq!(
        starts(&list),
        vec![("Weekly".to_string(), utc(2026, 4, 6, 8, 0))]
    );
    let view = CalendarEvents::get(&env.models, alice, gone)
        .await
        .unwrap()
        .expect("cancelled events can be looked up");
    assert!(view.cancelled);
    assert_eq!(
        CalendarEvents::get(&env.models, bob, gone).await.unwrap(),
        None
    );
    env.stop().await;
}

async fn today_and_free_busy_use_the_local_day(store: Store) {
    let mut env = Env::new(store);
    let alice = Uuid::now_v7();
    // New York, days from 04:00
    env.clock(alice, "America/New_York", 4).await;
    let ny = |d: u32, h: u32, mi: u32| {
        chrono_tz::America::New_York
            .with_ymd_and_hms(2026, 3, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    // 2026-03-08 is the spring-forward day in New York
    env.create(
        alice,
        event("Late", ny(8, 1, 30), ny(8, 1, 45), "America/New_York"),
    )
    .await; // 01:30–01:45 on the 8th: still the 7th's local day (before 04:00)
    env.create(
        alice,
        event("A", ny(8, 9, 0), ny(8, 10, 0), "America/New_York"),
    )
    .await;
    env.create(
        alice,
        event("B", ny(8, 9, 30), ny(8, 11, 0), "America/New_York"),
    )
    .await;
    env.create(
        alice,
        event("C", ny(8, 14, 0), ny(8, 15, 0), "America/New_York"),
    )
    .await;
    let mut holiday = event(
        "Holiday",
        aggregates::calendar::local_midnight(chrono_tz::America::New_York, date(2026, 3, 8)),
        aggregates::calendar::local_midnight(chrono_tz::America::New_York, date(2026, 3, 9)),
        "America/New_York",
    );
    holiday.all_day = true;
    let (_, last) = env
        .create(
            alice,
            event("Night", ny(9, 2, 0), ny(9, 5, 0), "America/New_York"),
        )
        .await;
    env.create(alice, holiday).await;
    let (_, last2) = env
        .create(alice, event("Next", ny(9, 9, 0), ny(9, 9, 30), "UTC"))
        .await;
    env.caught_up(last.max(last2)).await;

    // 2026-03-09 03:00 New York is still the 8th (days start at 04:00)
    let (day, list) = CalendarEvents::today(&env.models, alice, ny(9, 3, 0), 100)
        .await
        .expect("today");
    assert_eq!(day, date(2026, 3, 8));
    let titles: Vec<&str> = list.iter().map(|o| o.title.as_str()).collect();
    assert_eq!(titles, vec!["Holiday", "A", "B", "C", "Night"]);

    let (range, busy) = CalendarEvents::free_busy(&env.models, alice, date(2026, 3, 8))
        .await
        .expect("free/busy");
    assert_eq!(range.start, ny(8, 4, 0));
    assert_eq!(range.end, ny(9, 4, 0));
    assert_eq!(
        busy,
        vec![
            Busy {
                start: ny(8, 9, 0),
                end: ny(8, 11, 0)
            },
            Busy {
                start: ny(8, 14, 0),
                end: ny(8, 15, 0)
            },
            Busy {
                start: ny(9, 2, 0),
                end: ny(9, 4, 0)
            },
        ],
        "merged, clipped to the day's end at 04:00, the all-day holiday not busy"
    );
    env.stop().await;
}

async fn daily_rollup_across_dst_with_a_5am_day_start(store: Store) {
    let mut env = Env::new(store);
    let alice = Uuid::now_v7();
    env.clock(alice, "America/New_York", 5).await;
    let ny = |d: u32, h: u32, mi: u32| {
        chrono_tz::America::New_York
            .with_ymd_and_hms(2026, 3, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    // 09:00–10:00 New York daily from the 7th, across the spring-forward night of the 8th
    let daily = repeating(
        event("Sync", ny(7, 9, 0), ny(7, 10, 0), "America/New_York"),
        "FREQ=DAILY;COUNT=3",
        vec![],
    );
    env.create(alice, daily).await;
    // 23:30 on the 8th to 01:00 on the 9th: before the 05:00 day start, all of it the 8th's
    env.create(
        alice,
        event("Late", ny(8, 23, 30), ny(9, 1, 0), "America/New_York"),
    )
    .await;
    let mut holiday = event(
        "Holiday",
        aggregates::calendar::local_midnight(chrono_tz::America::New_York, date(2026, 3, 9)),
        aggregates::calendar::local_midnight(chrono_tz::America::New_York, date(2026, 3, 10)),
        "America/New_York",
    );
    holiday.all_day = true;
    let (_, last) = env.create(alice, holiday).await;
    env.caught_up(last).await;

    let (clock, days) =
        CalendarDaily::days(&env.models, alice, date(2026, 3, 7), date(2026, 3, 10))
            .await
            .expect("rollup");
    assert_eq!(
        (clock.timezone.as_str(), clock.day_start_hour),
        ("America/New_York", 5)
    );
    assert_eq!(
        days,
        vec![
            DayMeetings {
                day: date(2026, 3, 7),
                meeting_seconds: 3600,
                meetings: 1,
                first_start: Some(utc(2026, 3, 7, 14, 0)),
                last_end: Some(utc(2026, 3, 7, 15, 0)),
            },
            DayMeetings {
                day: date(2026, 3, 8),
                meeting_seconds: 3600 + 5400,
                meetings: 2,
                first_start: Some(utc(2026, 3, 8, 13, 0)),
                last_end: Some(utc(2026, 3, 9, 5, 0)),
            },
            DayMeetings {
                day: date(2026, 3, 9),
                meeting_seconds: 3600,
                meetings: 1,
                first_start: Some(utc(2026, 3, 9, 13, 0)),
                last_end: Some(utc(2026, 3, 9, 14, 0)),
            },
            DayMeetings::empty(date(2026, 3, 10)),
        ],
        "09:00 local is 14:00 UTC before the change and 13:00 after; the all-day event is no meeting"
    );
    env.stop().await;
}
