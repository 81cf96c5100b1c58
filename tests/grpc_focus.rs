//! Black-box tests of the Focus API (FocusCommands, FocusQueries) through the generated gRPC
//! clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{Duration, NaiveDate, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field, create, new_task, time};
use projections::daily::{UserClock, day_id};
use proto::v1::focus_commands_client::FocusCommandsClient;
use proto::v1::focus_queries_client::FocusQueriesClient;
use proto::v1::{
    AbandonFocusRequest, CommandAck, CompleteFocusRequest, DailyFocus, FocusKind,
    FocusSessionState, FocusState, GetDailyRollupRequest, GetFocusStateRequest,
    GetTodaySummaryRequest, ListSessionsRequest, PauseFocusRequest, RecordInterruptionRequest,
    ResumeFocusRequest, SetPreferencesRequest, StartFocusRequest, StartFocusResponse, TodaySummary,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(FocusCommandsClient, FocusQueriesClient);

on_both_backends! {
    sqlite_a_full_pomodoro_cycle, postgres_a_full_pomodoro_cycle => a_full_pomodoro_cycle;
    sqlite_a_second_start_names_the_running_session,
        postgres_a_second_start_names_the_running_session
        => a_second_start_names_the_running_session;
    sqlite_bad_input_names_the_field, postgres_bad_input_names_the_field
        => bad_input_names_the_field;
    sqlite_planned_minutes_default_from_preferences,
        postgres_planned_minutes_default_from_preferences
        => planned_minutes_default_from_preferences;
    sqlite_today_and_rollup_in_the_users_zone, postgres_today_and_rollup_in_the_users_zone
        => today_and_rollup_in_the_users_zone;
    sqlite_other_users_session_is_not_found, postgres_other_users_session_is_not_found
        => other_users_session_is_not_found;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn start_request(kind: FocusKind) -> StartFocusRequest {
    StartFocusRequest {
        kind: kind as i32,
        ..Default::default()
    }
}

async fn start(c: &mut Commands, request: StartFocusRequest) -> StartFocusResponse {
    c.start_focus(request)
        .await
        .expect("StartFocus succeeds")
        .into_inner()
}

async fn complete(c: &mut Commands, session_id: &str) -> CommandAck {
    c.complete_focus(CompleteFocusRequest {
        session_id: session_id.to_string(),
        ..Default::default()
    })
    .await
    .expect("CompleteFocus succeeds")
    .into_inner()
}

async fn state(q: &mut Queries, token: &str) -> FocusState {
    q.get_focus_state(GetFocusStateRequest {
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetFocusState succeeds")
    .into_inner()
}

async fn today(q: &mut Queries, token: &str) -> TodaySummary {
    q.get_today_summary(GetTodaySummaryRequest {
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetTodaySummary succeeds")
    .into_inner()
}

async fn rollup(q: &mut Queries, from: NaiveDate, to: NaiveDate, token: &str) -> Vec<DailyFocus> {
    q.get_daily_rollup(GetDailyRollupRequest {
        from_day: day_id(from),
        to_day: day_id(to),
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetDailyRollup succeeds")
    .into_inner()
    .days
}

fn kind(k: i32) -> FocusKind {
    FocusKind::try_from(k).expect("a known kind")
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Four pomodoros with short breaks between, then the long break the cycle suggests; the state,
/// the session list, today's summary and the rollup follow with consistency tokens. Runs with
/// `--snapshots focus=3`.
async fn a_full_pomodoro_cycle(backend: Backend) {
    // a snapshot every 3 events: commands load the timer from snapshots along the way
    let snapshots = |config: &mut lifeos::ServerConfig| {
        config.snapshots.insert("focus".to_string(), 3);
    };
    let Some(server) = TestServer::start_with(backend, snapshots).await else {
        return;
    };
    let user = Uuid::now_v7();
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));

    let initial = state(&mut q, "").await;
    assert!(initial.running.is_none());
    assert_eq!(kind(initial.suggested_next_kind), FocusKind::Pomodoro);
    assert_eq!(initial.suggested_planned_minutes, 25);
    assert_eq!(
        (
            initial.completed_pomodoros_in_cycle,
            initial.cycles_before_long_break
        ),
        (0, 4)
    );

    let mut token = String::new();
    let mut started = Vec::new();
    for n in 1..=4u32 {
        let pomodoro = start(&mut c, start_request(FocusKind::Pomodoro)).await;
        let ack = pomodoro.ack.as_ref().expect("an ack");
        assert_eq!(
            ack.aggregate_id,
            user.to_string(),
            "the timer is the user's"
        );
        assert_eq!(pomodoro.planned_minutes, Some(25), "the default pomodoro");
        let session = pomodoro.session_id.clone();
        Uuid::parse_str(&session).expect("the server assigned a UUID");
        started.push(session.clone());

        let running = state(&mut q, &ack.consistency_token).await;
        let live = running.running.expect("a running session");
        assert_eq!(live.session_id, session);
        assert_eq!(live.state, FocusSessionState::Running as i32);

        if n == 1 {
            let paused = c
                .pause_focus(PauseFocusRequest {
                    session_id: session.clone(),
                    ..Default::default()
                })
                .await
                .expect("pause")
                .into_inner();
            let now = state(&mut q, &paused.consistency_token).await;
            assert_eq!(
                now.running.expect("still there").state,
                FocusSessionState::Paused as i32
            );
            c.record_interruption(RecordInterruptionRequest {
                session_id: session.clone(),
                reason: "phone".into(),
                ..Default::default()
            })
            .await
            .expect("interruption");
            c.resume_focus(ResumeFocusRequest {
                session_id: session.clone(),
                ..Default::default()
            })
            .await
            .expect("resume");
        }
        let done = complete(&mut c, &session).await;
        let after = state(&mut q, &done.consistency_token).await;
        assert!(after.running.is_none());
        assert_eq!(after.completed_pomodoros_in_cycle, n);
        let expected = if n < 4 {
            FocusKind::ShortBreak
        } else {
            FocusKind::LongBreak
        };
        assert_eq!(
            kind(after.suggested_next_kind),
            expected,
            "after pomodoro {n}"
        );
        assert_eq!(after.suggested_planned_minutes, if n < 4 { 5 } else { 15 });

        let rest = start(&mut c, start_request(expected)).await;
        assert_eq!(rest.planned_minutes, Some(if n < 4 { 5 } else { 15 }));
        started.push(rest.session_id.clone());
        token = complete(&mut c, &rest.session_id).await.consistency_token;
    }
    let end = state(&mut q, &token).await;
    assert_eq!(kind(end.suggested_next_kind), FocusKind::Pomodoro);
    assert_eq!(
        end.completed_pomodoros_in_cycle, 0,
        "the long break closed the cycle"
    );

    let listed = q
        .list_sessions(ListSessionsRequest {
            consistency_token: token.clone(),
            ..Default::default()
        })
        .await
        .expect("ListSessions")
        .into_inner();
    let listed_ids: Vec<&str> = listed
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(listed_ids, started, "every session, in start order");
    assert!(
        listed
            .sessions
            .iter()
            .all(|s| s.state == FocusSessionState::Completed as i32 && s.ended_at.is_some())
    );
    assert_eq!(listed.sessions[0].interruptions, 1);
    let kinds: Vec<FocusKind> = listed.sessions.iter().map(|s| kind(s.kind)).collect();
    assert_eq!(kinds[6..], [FocusKind::Pomodoro, FocusKind::LongBreak]);

    // every session ended on the same UTC day as the last one (the default clock), unless the
    // test ran across midnight
    let last_end = time(&listed.sessions.last().unwrap().ended_at);
    let first_end = time(&listed.sessions[0].ended_at);
    let end_day = last_end.date_naive();
    let days = rollup(&mut q, end_day, end_day, &token).await;
    assert_eq!(days.len(), 1);
    if first_end.date_naive() == end_day {
        assert_eq!(days[0].day, day_id(end_day));
        assert_eq!((days[0].completed, days[0].abandoned), (4, 0));
        assert_eq!(days[0].breaks_completed, 4);
        assert_eq!(days[0].interruptions, 1);
    }
    let summary = today(&mut q, &token).await;
    assert_eq!(summary.timezone, "UTC");
    let today_day = summary.today.as_ref().expect("today").day.clone();
    if today_day == day_id(end_day) {
        assert_eq!(summary.today, days.first().cloned());
    } else {
        assert_eq!(
            today_day,
            day_id(end_day.succ_opt().unwrap()),
            "midnight passed"
        );
    }
    server.stop().await;
}

/// A second StartFocus is FAILED_PRECONDITION naming the running session and writes nothing; a
/// repeated command id answers with the first session's id.
async fn a_second_start_names_the_running_session(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let first_id = Uuid::now_v7().to_string();
    let first = start(
        &mut c,
        StartFocusRequest {
            session_id: first_id.clone(),
            command_id: "start-1".into(),
            ..start_request(FocusKind::Flowtime)
        },
    )
    .await;
    assert_eq!(first.session_id, first_id, "the client's id is kept");
    assert_eq!(first.planned_minutes, None, "flowtime is open-ended");
    let ack = first.ack.expect("ack");

    let err = c
        .start_focus(start_request(FocusKind::Pomodoro))
        .await
        .expect_err("one running session per user");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains(&first_id),
        "names the running one: {err:?}"
    );

    // repeating the first command id is the first answer, not a refusal
    let again = start(
        &mut c,
        StartFocusRequest {
            command_id: "start-1".into(),
            ..start_request(FocusKind::Flowtime)
        },
    )
    .await;
    assert_eq!(
        again.session_id, first_id,
        "the first session, not a new id"
    );
    let again_ack = again.ack.expect("ack");
    assert!(again_ack.duplicate);
    assert_eq!(again_ack.event_ids, ack.event_ids);

    let done = complete(&mut c, &first_id).await;
    let err = c
        .complete_focus(CompleteFocusRequest {
            session_id: first_id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("already ended");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // a server-chosen id is returned again on a repeat too
    let chosen = start(
        &mut c,
        StartFocusRequest {
            command_id: "start-2".into(),
            ..start_request(FocusKind::ShortBreak)
        },
    )
    .await;
    let repeat = start(
        &mut c,
        StartFocusRequest {
            command_id: "start-2".into(),
            ..start_request(FocusKind::ShortBreak)
        },
    )
    .await;
    assert_eq!(repeat.session_id, chosen.session_id);
    assert_eq!(repeat.planned_minutes, Some(5));
    assert!(repeat.ack.expect("ack").duplicate);

    let listed = q
        .list_sessions(ListSessionsRequest {
            consistency_token: chosen.ack.expect("ack").consistency_token,
            ..Default::default()
        })
        .await
        .expect("ListSessions")
        .into_inner();
    let ids: Vec<&str> = listed
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [first_id.as_str(), chosen.session_id.as_str()],
        "nothing else written"
    );
    let now = state(&mut q, &done.consistency_token).await;
    assert_eq!(
        now.running.expect("the short break runs").session_id,
        chosen.session_id
    );
    server.stop().await;
}

/// Bad input is INVALID_ARGUMENT naming the field, and writes nothing.
async fn bad_input_names_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut c, mut q) = (commands(&server, user), queries(&server, user));
    let others_task = create(&mut server.commands(other), new_task("not yours"))
        .await
        .aggregate_id;
    let starts = [
        (
            StartFocusRequest {
                planned_minutes: Some(0),
                ..start_request(FocusKind::Pomodoro)
            },
            "planned_minutes",
        ),
        (
            StartFocusRequest {
                planned_minutes: Some(-5),
                ..start_request(FocusKind::Pomodoro)
            },
            "planned_minutes",
        ),
        (
            StartFocusRequest {
                planned_minutes: Some(24 * 60 + 1),
                ..start_request(FocusKind::Countdown)
            },
            "planned_minutes",
        ),
        (start_request(FocusKind::Countdown), "planned_minutes"),
        (start_request(FocusKind::Unspecified), "kind"),
        (
            StartFocusRequest {
                kind: 42,
                ..Default::default()
            },
            "kind",
        ),
        (
            StartFocusRequest {
                session_id: "not-a-uuid".into(),
                ..start_request(FocusKind::Pomodoro)
            },
            "session_id",
        ),
        (
            StartFocusRequest {
                task_id: others_task.clone(),
                ..start_request(FocusKind::Pomodoro)
            },
            "task_id",
        ),
        (
            StartFocusRequest {
                task_id: Uuid::now_v7().to_string(),
                ..start_request(FocusKind::Pomodoro)
            },
            "task_id",
        ),
    ];
    for (request, field) in starts {
        let err = c.start_focus(request).await.expect_err(field);
        assert_invalid_field(&err, field);
    }
    let ok = start(
        &mut c,
        StartFocusRequest {
            planned_minutes: Some(24 * 60),
            ..start_request(FocusKind::Countdown)
        },
    )
    .await;
    let session = ok.session_id.clone();
    let long = "x".repeat(501);
    let err = c
        .record_interruption(RecordInterruptionRequest {
            session_id: session.clone(),
            reason: long.clone(),
            ..Default::default()
        })
        .await
        .expect_err("reason too long");
    assert_invalid_field(&err, "reason");
    let err = c
        .abandon_focus(AbandonFocusRequest {
            session_id: session.clone(),
            reason: long,
            ..Default::default()
        })
        .await
        .expect_err("reason too long");
    assert_invalid_field(&err, "reason");
    let err = c
        .pause_focus(PauseFocusRequest {
            session_id: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("no session id");
    assert_invalid_field(&err, "session_id");

    let token = ok.ack.expect("ack").consistency_token;
    let listed = q
        .list_sessions(ListSessionsRequest {
            consistency_token: token.clone(),
            ..Default::default()
        })
        .await
        .expect("ListSessions")
        .into_inner();
    assert_eq!(listed.sessions.len(), 1, "only the valid start was written");
    let live = state(&mut q, &token).await.running.expect("running");
    assert_eq!((live.interruptions, live.planned_minutes), (0, Some(1440)));

    // queries
    let bad_rollups = [
        ("", "2026-03-08", "from_day"),
        ("2026-3-8", "2026-03-08", "from_day"),
        ("2026-03-08", "tomorrow", "to_day"),
        ("2026-03-08", "2026-03-07", "to_day"),
        ("2025-01-01", "2026-03-08", "to_day"),
    ];
    for (from, to, field) in bad_rollups {
        let err = q
            .get_daily_rollup(GetDailyRollupRequest {
                from_day: from.into(),
                to_day: to.into(),
                ..Default::default()
            })
            .await
            .expect_err(field);
        assert_invalid_field(&err, field);
    }
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let err = q
        .list_sessions(ListSessionsRequest {
            from: at(2_000),
            to: at(1_000),
            ..Default::default()
        })
        .await
        .expect_err("to before from");
    assert_invalid_field(&err, "to");
    let err = q
        .list_sessions(ListSessionsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad page token");
    assert_invalid_field(&err, "page_token");
    let err = q
        .get_focus_state(GetFocusStateRequest {
            consistency_token: "soon".into(),
        })
        .await
        .expect_err("bad token");
    assert_invalid_field(&err, "consistency_token");
    server.stop().await;
}

/// Planned minutes default from the caller's preferences (set through the Preferences service),
/// and so does the cycle's length.
async fn planned_minutes_default_from_preferences(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let set = server
        .set_preferences(
            user,
            SetPreferencesRequest {
                pomodoro_work_minutes: Some(50),
                short_break_minutes: Some(10),
                long_break_minutes: Some(30),
                cycles_before_long_break: Some(2),
                ..Default::default()
            },
        )
        .await;
    let before = state(&mut q, &set.consistency_token).await;
    assert_eq!(before.suggested_planned_minutes, 50);
    assert_eq!(before.cycles_before_long_break, 2);

    let mut token = String::new();
    for (kind_, minutes) in [
        (FocusKind::Pomodoro, 50),
        (FocusKind::ShortBreak, 10),
        (FocusKind::Pomodoro, 50),
    ] {
        let started = start(&mut c, start_request(kind_)).await;
        assert_eq!(started.planned_minutes, Some(minutes), "{kind_:?}");
        let live = state(&mut q, &started.ack.expect("ack").consistency_token)
            .await
            .running
            .expect("running");
        assert_eq!(live.planned_minutes, Some(minutes));
        token = complete(&mut c, &started.session_id)
            .await
            .consistency_token;
    }
    let after = state(&mut q, &token).await;
    assert_eq!(
        kind(after.suggested_next_kind),
        FocusKind::LongBreak,
        "N = 2"
    );
    assert_eq!(after.suggested_planned_minutes, 30);

    // a given value wins over the default
    let explicit = start(
        &mut c,
        StartFocusRequest {
            planned_minutes: Some(7),
            ..start_request(FocusKind::LongBreak)
        },
    )
    .await;
    assert_eq!(explicit.planned_minutes, Some(7));
    server.stop().await;
}

/// Today's summary and the rollup use the caller's zone and day start (set through
/// Preferences), read their own writes with consistency tokens, and count linked tasks.
async fn today_and_rollup_in_the_users_zone(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    // the zone furthest from UTC, so "today" differs from the UTC date half the time
    let set = server.set_clock(user, "Pacific/Kiritimati", 4).await;
    let clock = UserClock::new("Pacific/Kiritimati", 4);
    let empty = today(&mut q, &set).await;
    assert_eq!(empty.timezone, "Pacific/Kiritimati");
    assert_eq!(empty.day_start_hour, 4);
    let day = clock.day_of(time(&empty.day_start));
    let range = clock.day_range(day);
    assert_eq!(empty.today.as_ref().unwrap().day, day_id(day));
    assert_eq!(
        (time(&empty.day_start), time(&empty.day_end)),
        (range.start, range.end)
    );
    let now = Utc::now();
    assert!(
        range.start <= now && now < range.end + Duration::seconds(5),
        "today is now"
    );
    assert_eq!(empty.today.as_ref().unwrap().completed, 0);

    let task = create(&mut server.commands(user), new_task("write"))
        .await
        .aggregate_id;
    let focused = start(
        &mut c,
        StartFocusRequest {
            task_id: task.clone(),
            ..start_request(FocusKind::Pomodoro)
        },
    )
    .await;
    c.record_interruption(RecordInterruptionRequest {
        session_id: focused.session_id.clone(),
        ..Default::default()
    })
    .await
    .expect("interruption");
    let done = complete(&mut c, &focused.session_id).await;
    let abandoned = start(&mut c, start_request(FocusKind::Flowtime)).await;
    let gone = c
        .abandon_focus(AbandonFocusRequest {
            session_id: abandoned.session_id.clone(),
            reason: "meeting".into(),
            ..Default::default()
        })
        .await
        .expect("abandon")
        .into_inner();
    assert!(!done.consistency_token.is_empty());

    let listed = q
        .list_sessions(ListSessionsRequest {
            consistency_token: gone.consistency_token.clone(),
            ..Default::default()
        })
        .await
        .expect("ListSessions")
        .into_inner();
    assert_eq!(listed.sessions.len(), 2);
    assert_eq!(listed.sessions[1].reason, "meeting");
    assert_eq!(listed.sessions[0].task_id, task);
    let end_day = clock.day_of(time(&listed.sessions[1].ended_at));
    let start_day = clock.day_of(time(&listed.sessions[0].ended_at));

    let days = rollup(
        &mut q,
        end_day.pred_opt().unwrap(),
        end_day.succ_opt().unwrap(),
        &gone.consistency_token,
    )
    .await;
    let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(
        names,
        [
            day_id(end_day.pred_opt().unwrap()),
            day_id(end_day),
            day_id(end_day.succ_opt().unwrap())
        ]
    );
    assert_eq!(days[0].completed + days[2].completed, 0);
    assert_eq!(days[1].abandoned, 1, "the abandoned flowtime");
    if start_day == end_day {
        let d = &days[1];
        assert_eq!((d.completed, d.interruptions), (1, 1));
        assert_eq!(d.tasks.len(), 1);
        assert_eq!(d.tasks[0].task_id, task);
        assert_eq!(
            d.tasks[0].focused_seconds,
            listed.sessions[0].focused_seconds
        );
        let summary = today(&mut q, &gone.consistency_token).await;
        if summary.today.as_ref().unwrap().day == day_id(end_day) {
            assert_eq!(summary.today.as_ref(), Some(d));
        }
    }
    server.stop().await;
}

/// Another user's session is NOT_FOUND for every command, and never listed.
async fn other_users_session_is_not_found(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut a, mut aq) = (commands(&server, alice), queries(&server, alice));
    let (mut b, mut bq) = (commands(&server, bob), queries(&server, bob));
    let alices = start(&mut a, start_request(FocusKind::Pomodoro)).await;
    let sid = alices.session_id.clone();

    let results = [
        b.pause_focus(PauseFocusRequest {
            session_id: sid.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.resume_focus(ResumeFocusRequest {
            session_id: sid.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.record_interruption(RecordInterruptionRequest {
            session_id: sid.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.complete_focus(CompleteFocusRequest {
            session_id: sid.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        b.abandon_focus(AbandonFocusRequest {
            session_id: sid.clone(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
        a.pause_focus(PauseFocusRequest {
            session_id: Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
    ];
    for result in results {
        let err = result.expect_err("not found");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    // bob may start his own while alice's runs: one running session per user
    let bobs = start(&mut b, start_request(FocusKind::Pomodoro)).await;
    let bob_state = state(&mut bq, &bobs.ack.expect("ack").consistency_token).await;
    assert_eq!(
        bob_state.running.expect("bob's").session_id,
        bobs.session_id
    );
    let bob_list = bq
        .list_sessions(ListSessionsRequest::default())
        .await
        .expect("ListSessions")
        .into_inner();
    assert!(bob_list.sessions.iter().all(|s| s.session_id != sid));

    let alice_state = state(&mut aq, &alices.ack.expect("ack").consistency_token).await;
    let live = alice_state.running.expect("alice's still runs");
    assert_eq!(
        (live.session_id, live.state),
        (sid, FocusSessionState::Running as i32),
        "bob's attempts changed nothing"
    );
    server.stop().await;
}

/// `commands.focus.*` and `queries.focus.*` answer over NATS with the gRPC handlers: a session
/// started over NATS is completed over gRPC and rolled up for today over NATS.
async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);

    let (code, started) = nats
        .call(
            "commands.focus.start",
            &token,
            json!({"kind": "FOCUS_KIND_POMODORO"}),
        )
        .await;
    assert_eq!(code, None, "{started}");
    assert_eq!(started["plannedMinutes"], 25, "{started}");
    let session = started["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    let token_started = started["ack"]["consistencyToken"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, bad) = nats
        .call(
            "commands.focus.start",
            &token,
            json!({"kind": "FOCUS_KIND_COUNTDOWN", "plannedMinutes": 2000}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(
        bad["field_violations"][0]["field"], "planned_minutes",
        "{bad}"
    );

    let (code, st) = nats
        .call(
            "queries.focus.state",
            &token,
            json!({"consistencyToken": token_started}),
        )
        .await;
    assert_eq!(code, None, "{st}");
    assert_eq!(st["running"]["sessionId"], session.as_str(), "{st}");

    let done = complete(&mut commands(server, user), &session).await;
    let (code, summary) = nats
        .call(
            "queries.focus.today",
            &token,
            json!({"consistencyToken": done.consistency_token}),
        )
        .await;
    assert_eq!(code, None, "{summary}");
    let (code, listed) = nats
        .call(
            "queries.focus.sessions",
            &token,
            json!({"consistencyToken": done.consistency_token}),
        )
        .await;
    assert_eq!(code, None, "{listed}");
    assert_eq!(
        listed["sessions"][0]["state"], "FOCUS_SESSION_STATE_COMPLETED",
        "{listed}"
    );
    let ended = listed["sessions"][0]["endedAt"].as_str().expect("endedAt");
    let ended_day = &ended[..10];
    if summary["today"]["day"] == ended_day {
        assert_eq!(summary["today"]["completed"], 1, "{summary}");
    }
    let (code, days) = nats
        .call(
            "queries.focus.daily",
            &token,
            json!({"fromDay": ended_day, "toDay": ended_day}),
        )
        .await;
    assert_eq!(code, None, "{days}");
    assert_eq!(days["days"][0]["completed"], 1, "{days}");
    for relative in [
        "commands.focus.pause",
        "commands.focus.resume",
        "commands.focus.interrupt",
        "commands.focus.abandon",
    ] {
        let (code, body) = nats
            .call(relative, &token, json!({"sessionId": session}))
            .await;
        assert_eq!(
            code.as_deref(),
            Some("9"),
            "{relative} on an ended session: {body}"
        );
    }
    nats.stop().await;
}
