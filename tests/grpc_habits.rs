//! Black-box tests of the Habits API (HabitCommands, HabitQueries) through the generated gRPC
//! clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Queries wait on consistency tokens, never on sleeps.
//!
//! The test user has no preferences, so their local day is the UTC day: "today" below is the
//! UTC date when the test runs.

#[macro_use]
mod common;

use chrono::{Duration, NaiveDate, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field};
use projections::daily::day_id;
use proto::v1::habit_commands_client::HabitCommandsClient;
use proto::v1::habit_queries_client::HabitQueriesClient;
use proto::v1::history_client::HistoryClient;
use proto::v1::{
    ArchiveHabitRequest, CheckHabitRequest, CheckHabitResponse, CreateHabitRequest,
    GetHabitDailyRollupRequest, GetHabitProgressRequest, GetHabitRequest, Habit, HabitDetails,
    HabitEntryValue, HabitGoal, HabitKind, HistoryEvent, ListHabitsRequest, ListHabitsResponse,
    ReplayUserEventsRequest, UnarchiveHabitRequest, UpdateHabitRequest,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(HabitCommandsClient, HabitQueriesClient);

on_both_backends! {
    sqlite_daily_check_ins_build_streak_score_and_xp,
        postgres_daily_check_ins_build_streak_score_and_xp
        => daily_check_ins_build_streak_score_and_xp;
    sqlite_a_correction_replaces_the_days_entry, postgres_a_correction_replaces_the_days_entry
        => a_correction_replaces_the_days_entry;
    sqlite_numeric_habits_and_archiving, postgres_numeric_habits_and_archiving
        => numeric_habits_and_archiving;
    sqlite_bad_input_names_the_field_and_writes_nothing,
        postgres_bad_input_names_the_field_and_writes_nothing
        => bad_input_names_the_field_and_writes_nothing;
    sqlite_another_users_habit_is_not_found, postgres_another_users_habit_is_not_found
        => another_users_habit_is_not_found;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
    sqlite_today_follows_the_users_clock, postgres_today_follows_the_users_clock
        => today_follows_the_users_clock;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn daily(name: &str) -> CreateHabitRequest {
    CreateHabitRequest {
        name: name.to_string(),
        kind: HabitKind::YesNo as i32,
        frequency_times: 1,
        frequency_days: 1,
        ..Default::default()
    }
}

/// Creates a habit, asserting success; returns its id and the consistency token.
async fn create(c: &mut Commands, request: CreateHabitRequest) -> (String, String) {
    let r = c
        .create_habit(request)
        .await
        .expect("CreateHabit succeeds")
        .into_inner();
    let ack = r.ack.expect("an ack");
    assert_eq!(ack.aggregate_id, r.habit_id, "the habit is the aggregate");
    (r.habit_id, ack.consistency_token)
}

fn check_request(habit: &str, day: NaiveDate, value: HabitEntryValue) -> CheckHabitRequest {
    CheckHabitRequest {
        habit_id: habit.to_string(),
        day: day_id(day),
        value: value as i32,
        ..Default::default()
    }
}

async fn check(c: &mut Commands, request: CheckHabitRequest) -> CheckHabitResponse {
    c.check_habit(request)
        .await
        .expect("CheckHabit succeeds")
        .into_inner()
}

fn token(r: &CheckHabitResponse) -> String {
    r.ack.as_ref().expect("an ack").consistency_token.clone()
}

async fn list(q: &mut Queries, token: &str, include_archived: bool) -> ListHabitsResponse {
    q.list_habits(ListHabitsRequest {
        include_archived,
        consistency_token: token.to_string(),
    })
    .await
    .expect("ListHabits succeeds")
    .into_inner()
}

async fn get(q: &mut Queries, habit: &str, days: u32, token: &str) -> HabitDetails {
    q.get_habit(GetHabitRequest {
        habit_id: habit.to_string(),
        days,
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetHabit succeeds")
    .into_inner()
}

async fn history(server: &TestServer, user: Uuid) -> Vec<HistoryEvent> {
    let mut client = server.client(user, HistoryClient::with_interceptor);
    let mut stream = client
        .replay_user_events(ReplayUserEventsRequest {
            pillars: vec!["habits".to_string()],
            ..Default::default()
        })
        .await
        .expect("ReplayUserEvents succeeds")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.expect("a history event") {
        events.push(event);
    }
    events
}

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 0.0001,
        "expected {expected}, got {actual}"
    );
}

fn the_habit(list: &ListHabitsResponse) -> &Habit {
    assert_eq!(list.habits.len(), 1, "{list:?}");
    &list.habits[0]
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Seven daily check-ins ending today: a 7-day streak, Loop's day-7 score, XP growing with the
/// streak, the first-check-in and 7-day badges, and one rollup day each.
async fn daily_check_ins_build_streak_score_and_xp(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (habit, _) = create(&mut c, daily("Meditate")).await;
    Uuid::parse_str(&habit).expect("the server assigned a UUID");

    let first = today() - Duration::days(6);
    let mut last = CheckHabitResponse::default();
    for (i, day) in first.iter_days().take(7).enumerate() {
        last = check(&mut c, check_request(&habit, day, HabitEntryValue::Yes)).await;
        let n = i as u32 + 1;
        assert_eq!((last.streak, last.xp), (n, 10 + n), "check-in {n}");
        if n == 1 {
            assert_eq!(last.badges, ["first_check_in"]);
        }
    }
    assert!(
        last.badges.contains(&"streak_7".to_string()),
        "{:?}",
        last.badges
    );
    let token = token(&last);

    let listed = list(&mut q, &token, false).await;
    assert_eq!(listed.today, day_id(today()));
    let h = the_habit(&listed);
    assert_eq!(h.name, "Meditate");
    assert_eq!((h.current_streak, h.longest_streak), (7, 7));
    close(h.score, 0.3115);
    assert_eq!(h.completion_rate_7, 1.0);
    assert_eq!(h.xp, (11..=17).sum::<u64>());
    assert!(h.badges.contains(&"streak_7".to_string()), "{h:?}");
    assert_eq!(
        h.today_entry.as_ref().map(|e| e.value),
        Some(HabitEntryValue::Yes as i32)
    );

    let details = get(&mut q, &habit, 10, &token).await;
    assert_eq!(details.scores.len(), 10);
    assert_eq!(details.entries.len(), 7);
    let scores: Vec<f64> = details.scores.iter().map(|s| s.score).collect();
    assert_eq!(&scores[..3], [0.0, 0.0, 0.0], "before the first entry");
    close(scores[3], 0.0519);
    close(scores[9], 0.3115);
    assert!(details.scores[3..].iter().all(|s| s.done));

    let progress = q
        .get_habit_progress(GetHabitProgressRequest {
            consistency_token: token.clone(),
        })
        .await
        .expect("GetHabitProgress succeeds")
        .into_inner();
    assert_eq!(progress.xp, 98);
    assert_eq!(
        (progress.level, progress.level_xp, progress.next_level_xp),
        (1, 0, 100)
    );
    assert_eq!(progress.completions, 7);
    let badges: Vec<&str> = progress.badges.iter().map(|b| b.badge.as_str()).collect();
    assert!(badges.contains(&"first_check_in") && badges.contains(&"streak_7"));

    let rollup = q
        .get_habit_daily_rollup(GetHabitDailyRollupRequest {
            from_day: day_id(first - Duration::days(1)),
            to_day: day_id(today()),
            consistency_token: token,
        })
        .await
        .expect("GetHabitDailyRollup succeeds")
        .into_inner();
    assert_eq!(rollup.timezone, "UTC");
    assert_eq!(rollup.days.len(), 8);
    let before = &rollup.days[0];
    assert_eq!((before.due, before.done, before.xp), (0, 0, 0));
    for (i, d) in rollup.days[1..].iter().enumerate() {
        assert_eq!(
            (d.due, d.done, d.missed, d.xp),
            (1, 1, 0, 11 + i as u32),
            "{d:?}"
        );
    }
    server.stop().await;
}

/// A later entry for a day replaces the earlier one; both stay in the log; the streak follows
/// and the day pays XP once.
async fn a_correction_replaces_the_days_entry(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (habit, _) = create(&mut c, daily("Stretch")).await;
    let first = today() - Duration::days(4);
    for day in first.iter_days().take(5) {
        check(&mut c, check_request(&habit, day, HabitEntryValue::Yes)).await;
    }
    let corrected = today() - Duration::days(2);
    let no = check(
        &mut c,
        check_request(&habit, corrected, HabitEntryValue::No),
    )
    .await;
    assert_eq!((no.xp, no.streak), (0, 0));
    let h = list(&mut q, &token(&no), false).await;
    let h = the_habit(&h);
    assert_eq!((h.current_streak, h.longest_streak), (2, 2));

    let again = check(
        &mut c,
        check_request(&habit, corrected, HabitEntryValue::Yes),
    )
    .await;
    assert_eq!((again.xp, again.streak), (0, 3), "no second XP for the day");
    let details = get(&mut q, &habit, 5, &token(&again)).await;
    let h = details.habit.as_ref().expect("the habit");
    assert_eq!(h.current_streak, 5);
    assert_eq!(details.entries.len(), 5, "one entry per day");

    let skip = check(
        &mut c,
        check_request(&habit, corrected, HabitEntryValue::Skip),
    )
    .await;
    let details = get(&mut q, &habit, 5, &token(&skip)).await;
    let entry = details
        .entries
        .iter()
        .find(|e| e.day == day_id(corrected))
        .expect("the corrected day");
    assert_eq!(entry.value, HabitEntryValue::Skip as i32);
    assert_eq!(
        details.habit.expect("the habit").current_streak,
        4,
        "a skip keeps the streak without lengthening it"
    );

    let events = history(&server, user).await;
    let checks_of_day: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "HabitChecked" && e.payload_json.contains(&day_id(corrected)))
        .collect();
    assert_eq!(
        checks_of_day.len(),
        4,
        "every entry of the day is in the log"
    );
    assert!(events.iter().all(|e| e.pillar == "habits"));
    server.stop().await;
}

/// A numeric at-most habit takes decimal amounts; an archived habit takes no check-ins and
/// leaves the default listing.
async fn numeric_habits_and_archiving(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let chosen = Uuid::now_v7().to_string();
    let (habit, _) = create(
        &mut c,
        CreateHabitRequest {
            habit_id: chosen.clone(),
            name: "Coffee".into(),
            kind: HabitKind::Numeric as i32,
            frequency_times: 1,
            frequency_days: 1,
            unit: "cups".into(),
            target: "2.0".into(),
            goal: HabitGoal::AtMost as i32,
            reminder_time: "08:30".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(habit, chosen, "the client's id is kept");
    let amount = |a: &str| CheckHabitRequest {
        amount: a.into(),
        ..check_request(&habit, today(), HabitEntryValue::Amount)
    };
    let ok = check(&mut c, amount("1.50")).await;
    assert_eq!((ok.xp, ok.streak), (11, 1));
    let details = get(&mut q, &habit, 1, &token(&ok)).await;
    let h = details.habit.as_ref().expect("the habit");
    assert_eq!(
        (h.unit.as_str(), h.target.as_str(), h.reminder_time.as_str()),
        ("cups", "2", "08:30")
    );
    assert_eq!(h.goal, HabitGoal::AtMost as i32);
    assert_eq!(details.entries[0].amount, "1.5");
    close(h.score, 1.0); // at most 2: 1.5 keeps the score at 1

    let updated = c
        .update_habit(UpdateHabitRequest {
            habit_id: habit.clone(),
            name: Some("Coffee, less".into()),
            target: Some("1".into()),
            reminder_time: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("UpdateHabit succeeds")
        .into_inner();
    let h = list(&mut q, &updated.consistency_token, false).await;
    let h = the_habit(&h);
    assert_eq!(
        (h.name.as_str(), h.target.as_str(), h.reminder_time.as_str()),
        ("Coffee, less", "1", "")
    );

    let archived = c
        .archive_habit(ArchiveHabitRequest {
            habit_id: habit.clone(),
            ..Default::default()
        })
        .await
        .expect("ArchiveHabit succeeds")
        .into_inner();
    let err = c.check_habit(amount("1")).await.expect_err("archived");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        list(&mut q, &archived.consistency_token, false)
            .await
            .habits
            .is_empty()
    );
    assert!(list(&mut q, "", true).await.habits[0].archived);
    c.unarchive_habit(UnarchiveHabitRequest {
        habit_id: habit.clone(),
        ..Default::default()
    })
    .await
    .expect("UnarchiveHabit succeeds");
    check(&mut c, amount("3")).await;
    server.stop().await;
}

/// Bad input is INVALID_ARGUMENT naming the field, and writes nothing.
async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let numeric = CreateHabitRequest {
        kind: HabitKind::Numeric as i32,
        unit: "km".into(),
        target: "5".into(),
        ..daily("Run")
    };
    let bad_creates = [
        (
            CreateHabitRequest {
                frequency_times: 4,
                frequency_days: 3,
                ..daily("Gym")
            },
            "frequency_times",
        ),
        (
            CreateHabitRequest {
                frequency_times: 0,
                ..daily("Gym")
            },
            "frequency_times",
        ),
        (
            CreateHabitRequest {
                frequency_days: 0,
                ..daily("Gym")
            },
            "frequency_days",
        ),
        (
            CreateHabitRequest {
                frequency_days: 366,
                ..daily("Gym")
            },
            "frequency_days",
        ),
        (daily("   "), "name"),
        (
            CreateHabitRequest {
                kind: HabitKind::Unspecified as i32,
                ..daily("Gym")
            },
            "kind",
        ),
        (
            CreateHabitRequest {
                unit: String::new(),
                ..numeric.clone()
            },
            "unit",
        ),
        (
            CreateHabitRequest {
                target: String::new(),
                ..numeric.clone()
            },
            "target",
        ),
        (
            CreateHabitRequest {
                target: "-1".into(),
                ..numeric.clone()
            },
            "target",
        ),
        (
            CreateHabitRequest {
                reminder_time: "25:00".into(),
                ..daily("Gym")
            },
            "reminder_time",
        ),
        (
            CreateHabitRequest {
                habit_id: "nope".into(),
                ..daily("Gym")
            },
            "habit_id",
        ),
    ];
    for (request, field) in bad_creates {
        let err = c.create_habit(request).await.expect_err(field);
        assert_invalid_field(&err, field);
    }
    let (habit, created) = create(&mut c, daily("Gym")).await;
    // the model has applied the valid creation: the invalid ones would be listed too
    let listed = list(&mut q, &created, true).await;
    assert_eq!(
        the_habit(&listed).habit_id,
        habit,
        "only the valid creation"
    );
    let bad_checks = [
        (
            check_request(&habit, today() + Duration::days(2), HabitEntryValue::Yes),
            "day",
        ),
        (
            CheckHabitRequest {
                day: "tomorrow".into(),
                ..check_request(&habit, today(), HabitEntryValue::Yes)
            },
            "day",
        ),
        (
            check_request(&habit, today(), HabitEntryValue::Unspecified),
            "value",
        ),
        (
            CheckHabitRequest {
                amount: "2".into(),
                ..check_request(&habit, today(), HabitEntryValue::Amount)
            },
            "value",
        ),
        (
            CheckHabitRequest {
                amount: "lots".into(),
                ..check_request(&habit, today(), HabitEntryValue::Amount)
            },
            "amount",
        ),
    ];
    for (request, field) in bad_checks {
        let err = c.check_habit(request).await.expect_err(field);
        assert_invalid_field(&err, field);
    }
    let bad_update = c
        .update_habit(UpdateHabitRequest {
            habit_id: habit.clone(),
            frequency_times: Some(2),
            ..Default::default()
        })
        .await
        .expect_err("2 in 1");
    assert_invalid_field(&bad_update, "frequency_times");
    let archived = c
        .archive_habit(ArchiveHabitRequest {
            habit_id: habit.clone(),
            ..Default::default()
        })
        .await
        .expect("ArchiveHabit succeeds")
        .into_inner();
    assert_eq!(archived.version, 2, "nothing was written in between");
    let details = get(&mut q, &habit, 0, &archived.consistency_token).await;
    assert!(details.entries.is_empty(), "{details:?}");
    // the model has read the log past the archive, so the history shows all of it
    let events = history(&server, user).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["HabitCreated", "HabitArchived"]);
    let err = q
        .get_habit(GetHabitRequest {
            habit_id: habit.clone(),
            days: 367,
            consistency_token: String::new(),
        })
        .await
        .expect_err("too many days");
    assert_invalid_field(&err, "days");
    server.stop().await;
}

/// Another user's habit answers NOT_FOUND to every command and query.
async fn another_users_habit_is_not_found(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (habit, token) = create(&mut commands(&server, alice), daily("Journal")).await;
    let mut c = commands(&server, bob);
    let err = c
        .check_habit(check_request(&habit, today(), HabitEntryValue::Yes))
        .await
        .expect_err("not Bob's");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = c
        .archive_habit(ArchiveHabitRequest {
            habit_id: habit.clone(),
            ..Default::default()
        })
        .await
        .expect_err("not Bob's");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = c
        .update_habit(UpdateHabitRequest {
            habit_id: habit.clone(),
            name: Some("mine".into()),
            ..Default::default()
        })
        .await
        .expect_err("not Bob's");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut q = queries(&server, bob);
    let err = q
        .get_habit(GetHabitRequest {
            habit_id: habit.clone(),
            days: 0,
            consistency_token: token.clone(),
        })
        .await
        .expect_err("not Bob's");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(list(&mut q, &token, true).await.habits.is_empty());
    let alices = list(&mut queries(&server, alice), &token, false).await;
    assert_eq!(the_habit(&alices).name, "Journal", "untouched");
    server.stop().await;
}

/// `commands.habits.*` and `queries.habits.*` reach the same handlers over NATS.
async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);

    let (code, created) = nats
        .call(
            "commands.habits.create",
            &token,
            json!({"name": "Walk", "kind": "HABIT_KIND_YES_NO", "frequencyTimes": 3, "frequencyDays": 7}),
        )
        .await;
    assert_eq!(code, None, "{created}");
    let habit = created["habitId"].as_str().expect("habitId").to_string();

    let (code, bad) = nats
        .call(
            "commands.habits.create",
            &token,
            json!({"name": "Walk", "kind": "HABIT_KIND_YES_NO", "frequencyTimes": 8, "frequencyDays": 7}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(
        bad["field_violations"][0]["field"], "frequency_times",
        "{bad}"
    );

    let (code, checked) = nats
        .call(
            "commands.habits.check",
            &token,
            json!({"habitId": habit, "day": day_id(today()), "value": "HABIT_ENTRY_VALUE_YES"}),
        )
        .await;
    assert_eq!(code, None, "{checked}");
    // 1 of 3 in 7: a success (base XP) but no done day yet, so no streak bonus
    assert_eq!(checked["xp"], 10, "{checked}");
    let consistency = checked["ack"]["consistencyToken"]
        .as_str()
        .expect("a token")
        .to_string();

    let (code, listed) = nats
        .call(
            "queries.habits.list",
            &token,
            json!({"consistencyToken": consistency}),
        )
        .await;
    assert_eq!(code, None, "{listed}");
    assert_eq!(listed["habits"][0]["habitId"], habit.as_str(), "{listed}");
    assert_eq!(listed["habits"][0]["frequencyTimes"], 3, "{listed}");

    // the grpc view agrees
    let grpc = list(&mut queries(server, user), &consistency, false).await;
    assert_eq!(grpc.habits[0].habit_id, habit);
    nats.stop().await;
}

/// "Today" (streaks, today's entry) and the rollup's clock are the user's preferences' zone.
async fn today_follows_the_users_clock(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let set = server.set_clock(user, "Pacific/Kiritimati", 0).await;
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));
    // UTC+14: the local day is the UTC date or the next one
    let local = projections::daily::UserClock::new("Pacific/Kiritimati", 0).day_of(Utc::now());
    let empty = list(&mut q, &set, false).await;
    assert_eq!(empty.today, day_id(local));
    let (habit, _) = create(&mut c, daily("Swim")).await;
    let done = check(&mut c, check_request(&habit, local, HabitEntryValue::Yes)).await;
    let listed = list(&mut q, &token(&done), false).await;
    let h = the_habit(&listed);
    assert_eq!(h.start_day, day_id(local));
    assert_eq!(h.current_streak, 1);
    assert!(h.today_entry.is_some(), "{h:?}");
    let rollup = q
        .get_habit_daily_rollup(GetHabitDailyRollupRequest {
            from_day: day_id(local),
            to_day: day_id(local),
            consistency_token: token(&done),
        })
        .await
        .expect("GetHabitDailyRollup succeeds")
        .into_inner();
    assert_eq!(rollup.timezone, "Pacific/Kiritimati");
    assert_eq!((rollup.days[0].due, rollup.days[0].done), (1, 1));
    server.stop().await;
}

#[test]
fn habit_events_have_their_cloud_event_types() {
    use bus::routing::{action_of, pillar_of};
    assert_eq!(pillar_of("habit"), "habits");
    for (event, action) in [
        ("HabitChecked", "checked"),
        ("HabitStreakReached", "streak_reached"),
        ("HabitBadgeEarned", "badge_earned"),
    ] {
        assert_eq!(action_of("habit", event), action);
        assert_eq!(
            format!("{}.{}", pillar_of("habit"), action_of("habit", event)),
            format!("habits.{action}")
        );
    }
}
