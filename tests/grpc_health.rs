//! Black-box tests of the Health API (HealthCommands, HealthQueries) through the generated gRPC
//! clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is unreachable
//! outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field, ts};
use projections::daily::{UserClock, day_id};
use proto::v1::health_commands_client::HealthCommandsClient;
use proto::v1::health_queries_client::HealthQueriesClient;
use proto::v1::log_health_sample_request::Measurement;
use proto::v1::{
    DeleteHealthSampleRequest, GetHealthAveragesRequest, GetHealthDailyRollupRequest,
    HealthAverageWindow, HealthDay, HealthMood, HealthSleep, HealthSleepStage,
    HealthSleepStageSpan, HealthSteps, HealthWater, HealthWeight, ListHealthSamplesRequest,
    ListHealthSamplesResponse, LogHealthSampleRequest, LogHealthSampleResponse, health_sample,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(HealthCommandsClient, HealthQueriesClient);

on_both_backends! {
    sqlite_sleep_across_midnight_counts_on_the_wake_up_day,
        postgres_sleep_across_midnight_counts_on_the_wake_up_day
        => sleep_across_midnight_counts_on_the_wake_up_day;
    sqlite_steps_sum_and_weight_last_and_mean, postgres_steps_sum_and_weight_last_and_mean
        => steps_sum_and_weight_last_and_mean;
    sqlite_dedupe_by_source_and_external_id, postgres_dedupe_by_source_and_external_id
        => dedupe_by_source_and_external_id;
    sqlite_bad_input_names_the_field_and_writes_nothing,
        postgres_bad_input_names_the_field_and_writes_nothing
        => bad_input_names_the_field_and_writes_nothing;
    sqlite_delete_subtracts_from_the_rollup, postgres_delete_subtracts_from_the_rollup
        => delete_subtracts_from_the_rollup;
    sqlite_averages_over_7_and_30_days, postgres_averages_over_7_and_30_days
        => averages_over_7_and_30_days;
    sqlite_other_users_data_is_invisible, postgres_other_users_data_is_invisible
        => other_users_data_is_invisible;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Sets the user's time zone and day start; returns the clock and the consistency token.
async fn set_clock(server: &TestServer, user: Uuid, tz: &str, hour: u32) -> (UserClock, String) {
    let token = server.set_clock(user, tz, hour).await;
    (UserClock::new(tz, hour), token)
}

fn sample(measurement: Measurement) -> LogHealthSampleRequest {
    LogHealthSampleRequest {
        measurement: Some(measurement),
        ..Default::default()
    }
}

fn steps(count: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Measurement {
    Measurement::Steps(HealthSteps {
        count,
        start: ts(start),
        end: ts(end),
    })
}

fn weight(value: &str, unit: &str, at: DateTime<Utc>) -> Measurement {
    Measurement::Weight(HealthWeight {
        value: value.into(),
        unit: unit.into(),
        at: ts(at),
    })
}

async fn log(c: &mut Commands, request: LogHealthSampleRequest) -> LogHealthSampleResponse {
    c.log_sample(request)
        .await
        .expect("LogSample succeeds")
        .into_inner()
}

/// The consistency token of a LogSample answer.
fn token(r: &LogHealthSampleResponse) -> String {
    r.ack.as_ref().expect("an ack").consistency_token.clone()
}

async fn rollup(q: &mut Queries, from: NaiveDate, to: NaiveDate, token: &str) -> Vec<HealthDay> {
    q.get_daily_rollup(GetHealthDailyRollupRequest {
        from_day: day_id(from),
        to_day: day_id(to),
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetDailyRollup succeeds")
    .into_inner()
    .days
}

async fn day(q: &mut Queries, d: NaiveDate, token: &str) -> HealthDay {
    rollup(q, d, d, token).await.remove(0)
}

async fn list(q: &mut Queries, metric: &str, token: &str) -> ListHealthSamplesResponse {
    q.list_samples(ListHealthSamplesRequest {
        metric: metric.to_string(),
        consistency_token: token.to_string(),
        ..Default::default()
    })
    .await
    .expect("ListSamples succeeds")
    .into_inner()
}

/// Local noon of `d` (well inside the day, whatever the zone).
fn noon(clock: &UserClock, d: NaiveDate) -> DateTime<Utc> {
    clock.day_range(d).start + Duration::hours(12)
}

/// A day of the user's recent past.
fn days_ago(clock: &UserClock, n: i64) -> NaiveDate {
    clock.day_of(Utc::now()) - Duration::days(n)
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// A night from 22:30 to 06:45 local (New York) with 15 minutes awake: 8 hours asleep on the
/// wake-up day, nothing on the evening's day, even though the UTC dates differ.
async fn sleep_across_midnight_counts_on_the_wake_up_day(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (clock, _) = set_clock(&server, user, "America/New_York", 0).await;
    let wake_day = days_ago(&clock, 3);
    let midnight = clock.day_range(wake_day).start;
    let (start, end) = (
        midnight - Duration::minutes(90),
        midnight + Duration::minutes(405),
    );
    let awake = HealthSleepStageSpan {
        stage: HealthSleepStage::Awake as i32,
        start: ts(midnight + Duration::hours(3)),
        end: ts(midnight + Duration::hours(3) + Duration::minutes(15)),
    };
    let deep = HealthSleepStageSpan {
        stage: HealthSleepStage::Deep as i32,
        start: ts(midnight),
        end: ts(midnight + Duration::hours(2)),
    };
    let logged = log(
        &mut c,
        sample(Measurement::Sleep(HealthSleep {
            start: ts(start),
            end: ts(end),
            stages: vec![awake, deep],
        })),
    )
    .await;
    assert_eq!(
        logged.ack.as_ref().unwrap().aggregate_id,
        format!("{user}:manual"),
        "the user's manual log"
    );
    let days = rollup(
        &mut q,
        wake_day.pred_opt().unwrap(),
        wake_day,
        &token(&logged),
    )
    .await;
    assert_eq!(days[0].sleep_sessions, 0, "not on the evening's day");
    assert_eq!(days[1].day, day_id(wake_day));
    assert_eq!(days[1].sleep_sessions, 1);
    assert_eq!(days[1].sleep_seconds, 8 * 3600);
    assert_eq!(days[1].sleep_hours, "8");

    let listed = list(&mut q, "sleep", &token(&logged)).await;
    assert_eq!(listed.samples.len(), 1);
    let s = &listed.samples[0];
    assert_eq!(s.sample_id, logged.sample_id);
    assert_eq!((s.source.as_str(), s.metric.as_str()), ("manual", "sleep"));
    match &s.measurement {
        Some(health_sample::Measurement::Sleep(sleep)) => {
            assert_eq!(sleep.stages.len(), 2);
            assert_eq!(
                sleep.stages[0].stage,
                HealthSleepStage::Deep as i32,
                "stages sorted by start"
            );
        }
        other => panic!("a sleep sample, got {other:?}"),
    }
    server.stop().await;
}

/// Steps of one day add up; weights (kg and lb, converted exactly) give the day's last (by
/// time, not by logging order) and mean.
async fn steps_sum_and_weight_last_and_mean(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (clock, _) = set_clock(&server, user, "Europe/Paris", 4).await;
    let d = days_ago(&clock, 2);
    let at = |h: i64| clock.day_range(d).start + Duration::hours(h); // 04:00 + h local
    log(&mut c, sample(steps(4000, at(3), at(4)))).await;
    log(&mut c, sample(steps(2500, at(10), at(11)))).await;
    // logged first, weighed last
    log(&mut c, sample(weight("180", "lb", at(16)))).await;
    log(&mut c, sample(weight("80.5", "kg", at(3)))).await;
    let last = log(&mut c, sample(weight("80.50", "", at(2)))).await;
    let today = day(&mut q, d, &token(&last)).await;
    assert_eq!(today.steps, 6500);
    let w = today.weight_kg.expect("weight stats");
    assert_eq!(w.count, 3);
    assert_eq!(w.last, "81.6466266", "180 lb, exactly, weighed last");
    // (80.5 + 80.5 + 81.6466266) / 3 = 80.8822088..
    assert_eq!(w.mean, "80.88");
    assert!(today.mood.is_none(), "no mood logged");

    let water = log(
        &mut c,
        sample(Measurement::Water(HealthWater {
            value: "1.5".into(),
            unit: "l".into(),
            at: ts(at(5)),
        })),
    )
    .await;
    let today = day(&mut q, d, &token(&water)).await;
    assert_eq!(today.water_ml, "1500");
    let listed = list(&mut q, "weight", &token(&water)).await;
    let values: Vec<String> = listed
        .samples
        .iter()
        .map(|s| match &s.measurement {
            Some(health_sample::Measurement::Weight(w)) => format!("{} {}", w.value, w.unit),
            other => panic!("a weight, got {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        ["81.6466266 kg", "80.5 kg", "80.5 kg"],
        "newest first, in kg"
    );
    server.stop().await;
}

/// A second sample with the same (source, external id) is ALREADY_EXISTS naming external_id
/// and is counted once; the same external id from another source is another sample; a
/// repeated command_id answers the first sample.
async fn dedupe_by_source_and_external_id(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let clock = UserClock::default();
    let d = days_ago(&clock, 1);
    let import = |count| LogHealthSampleRequest {
        source: "import:apple_health".into(),
        external_id: "HK-42".into(),
        ..sample(steps(
            count,
            noon(&clock, d),
            noon(&clock, d) + Duration::hours(1),
        ))
    };
    let first = log(&mut c, import(1000)).await;
    assert_eq!(
        first.ack.as_ref().unwrap().aggregate_id,
        format!("{user}:import:apple_health")
    );
    let err = c.log_sample(import(1000)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains("external_id"), "{err:?}");
    assert!(err.message().contains("HK-42"), "{err:?}");

    let manual = log(
        &mut c,
        LogHealthSampleRequest {
            source: String::new(),
            ..import(300)
        },
    )
    .await;
    assert_ne!(manual.sample_id, first.sample_id);
    let counted = day(&mut q, d, &token(&manual)).await;
    assert_eq!(counted.steps, 1300, "the duplicate was not counted");

    let once = LogHealthSampleRequest {
        command_id: "log-once".into(),
        ..sample(steps(7, noon(&clock, d), noon(&clock, d)))
    };
    let a = log(&mut c, once.clone()).await;
    let b = log(&mut c, once).await;
    assert!(b.ack.as_ref().unwrap().duplicate);
    assert_eq!(a.sample_id, b.sample_id, "the first answer's sample");
    let listed = list(&mut q, "steps", &token(&a)).await;
    assert_eq!(listed.samples.len(), 3);
    let sources: Vec<&str> = listed.samples.iter().map(|s| s.source.as_str()).collect();
    assert!(sources.contains(&"import:apple_health"), "{sources:?}");
    assert!(
        listed.samples.iter().any(|s| s.external_id == "HK-42"),
        "external ids are listed"
    );
    server.stop().await;
}

/// Negative steps, a sleep ending before it starts, unknown units, out-of-range values, a
/// missing measurement and a malformed source are INVALID_ARGUMENT naming the field; nothing
/// of them is written.
async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let now = Utc::now();
    let hour_ago = now - Duration::hours(1);
    let cases: Vec<(LogHealthSampleRequest, &str)> = vec![
        (sample(steps(-5, hour_ago, now)), "steps.count"),
        (sample(steps(200_001, hour_ago, now)), "steps.count"),
        (sample(steps(10, now, hour_ago)), "steps.end"),
        (
            sample(Measurement::Sleep(HealthSleep {
                start: ts(now - Duration::hours(2)),
                end: ts(now - Duration::hours(9)),
                stages: vec![],
            })),
            "sleep.end",
        ),
        (sample(weight("80", "stone", now)), "weight.unit"),
        (sample(weight("0.5", "kg", now)), "weight.value"),
        (sample(weight("eighty", "kg", now)), "weight.value"),
        (
            sample(Measurement::Water(HealthWater {
                value: "1".into(),
                unit: "cup".into(),
                at: ts(now),
            })),
            "water.unit",
        ),
        (
            sample(Measurement::Mood(HealthMood {
                score: 10,
                at: ts(now),
            })),
            "mood.score",
        ),
        (
            sample(Measurement::Mood(HealthMood {
                score: 5,
                at: ts(now + Duration::hours(3)),
            })),
            "mood.at",
        ),
        (LogHealthSampleRequest::default(), "measurement"),
        (
            LogHealthSampleRequest {
                source: "Apple Health".into(),
                ..sample(steps(10, hour_ago, now))
            },
            "source",
        ),
        (
            LogHealthSampleRequest {
                external_id: "x".repeat(257),
                ..sample(steps(10, hour_ago, now))
            },
            "external_id",
        ),
    ];
    for (request, field) in cases {
        let err = c.log_sample(request).await.unwrap_err();
        assert_invalid_field(&err, field);
    }
    let err = c
        .delete_sample(DeleteHealthSampleRequest {
            sample_id: "not-a-uuid".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "sample_id");

    // one valid sample after them: it is the only one there is
    let ok = log(&mut c, sample(steps(10, hour_ago, now))).await;
    let listed = list(&mut q, "", &token(&ok)).await;
    assert_eq!(listed.samples.len(), 1, "{listed:?}");
    assert_eq!(listed.samples[0].sample_id, ok.sample_id);
    assert_eq!(ok.ack.as_ref().unwrap().version, 1, "the log's first event");
    server.stop().await;
}

/// Deleting a sample removes it from the list and subtracts it from its day; an unknown,
/// already deleted or other-source sample is NOT_FOUND.
async fn delete_subtracts_from_the_rollup(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (clock, _) = set_clock(&server, user, "Asia/Tokyo", 0).await;
    let d = days_ago(&clock, 1);
    let at = noon(&clock, d);
    let keep = log(&mut c, sample(steps(3000, at, at + Duration::hours(1)))).await;
    let wrong = log(&mut c, sample(steps(9999, at, at + Duration::hours(2)))).await;
    let w1 = log(&mut c, sample(weight("70", "kg", at))).await;
    let w2 = log(&mut c, sample(weight("71", "kg", at + Duration::hours(3)))).await;
    let before = day(&mut q, d, &token(&w2)).await;
    assert_eq!(before.steps, 12_999);
    assert_eq!(before.weight_kg.as_ref().unwrap().last, "71");

    let delete = |sample_id: &str, source: &str| DeleteHealthSampleRequest {
        sample_id: sample_id.to_string(),
        source: source.to_string(),
        ..Default::default()
    };
    c.delete_sample(delete(&wrong.sample_id, ""))
        .await
        .expect("delete steps");
    let gone = c
        .delete_sample(delete(&w2.sample_id, "manual"))
        .await
        .expect("delete the last weigh-in")
        .into_inner();
    let after = day(&mut q, d, &gone.consistency_token).await;
    assert_eq!(after.steps, 3000);
    let w = after.weight_kg.expect("one weigh-in left");
    assert_eq!((w.last.as_str(), w.mean.as_str(), w.count), ("70", "70", 1));
    let ids: Vec<String> = list(&mut q, "", &gone.consistency_token)
        .await
        .samples
        .into_iter()
        .map(|s| s.sample_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&keep.sample_id) && ids.contains(&w1.sample_id));

    for (id, source) in [
        (wrong.sample_id.clone(), ""),
        (Uuid::now_v7().to_string(), ""),
        (keep.sample_id.clone(), "import:apple_health"),
    ] {
        let err = c.delete_sample(delete(&id, source)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{id} from {source:?}: {err:?}");
    }
    server.stop().await;
}

/// Averages over the last 7 and 30 local days ending today count only the days with data.
async fn averages_over_7_and_30_days(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let (clock, _) = set_clock(&server, user, "Pacific/Kiritimati", 4).await;
    let at = |n: i64| noon(&clock, days_ago(&clock, n));
    log(&mut c, sample(steps(4000, at(1), at(1)))).await;
    log(&mut c, sample(steps(1001, at(6), at(6)))).await;
    log(&mut c, sample(steps(9000, at(20), at(20)))).await;
    log(&mut c, sample(steps(99_000, at(31), at(31)))).await; // outside both windows
    log(&mut c, sample(weight("80", "kg", at(2)))).await;
    let last = log(&mut c, sample(weight("82", "kg", at(25)))).await;
    let averages = q
        .get_averages(GetHealthAveragesRequest {
            consistency_token: token(&last),
        })
        .await
        .expect("GetAverages")
        .into_inner();
    let today = clock.day_of(Utc::now());
    assert_eq!(averages.today, day_id(today));
    assert_eq!(
        (averages.timezone.as_str(), averages.day_start_hour),
        ("Pacific/Kiritimati", 4)
    );
    let of = |w: &Option<HealthAverageWindow>, name: &str| {
        let m = w
            .as_ref()
            .expect("a window")
            .metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .clone();
        (m.average, m.days_with_data)
    };
    let week = &averages.last_7_days;
    assert_eq!(week.as_ref().unwrap().days, 7);
    assert_eq!(
        week.as_ref().unwrap().from_day,
        day_id(today - Duration::days(6))
    );
    assert_eq!(of(week, "steps"), ("2500.5".to_string(), 2));
    assert_eq!(of(week, "weight_kg"), ("80".to_string(), 1));
    assert_eq!(of(week, "mood"), (String::new(), 0), "no data: no average");
    let month = &averages.last_30_days;
    assert_eq!(month.as_ref().unwrap().to_day, day_id(today));
    // (4000 + 1001 + 9000) / 3 = 4667
    assert_eq!(of(month, "steps"), ("4667".to_string(), 3));
    assert_eq!(of(month, "weight_kg"), ("81".to_string(), 2));
    server.stop().await;
}

/// Another user's samples are invisible, and deleting one of them is NOT_FOUND.
async fn other_users_data_is_invisible(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut ca, mut qa) = (commands(&server, alice), queries(&server, alice));
    let (mut cb, mut qb) = (commands(&server, bob), queries(&server, bob));
    let now = Utc::now();
    let mine = log(&mut ca, sample(weight("60", "kg", now))).await;
    let clock = UserClock::default();
    let today = clock.day_of(now);

    assert!(list(&mut qb, "", &token(&mine)).await.samples.is_empty());
    let bobs = rollup(&mut qb, today.pred_opt().unwrap(), today, &token(&mine)).await;
    assert!(bobs.iter().all(|d| d.weight_kg.is_none()), "{bobs:?}");
    let err = cb
        .delete_sample(DeleteHealthSampleRequest {
            sample_id: mine.sample_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // and the same external id is free for Bob
    let theirs = LogHealthSampleRequest {
        external_id: "scale-1".into(),
        ..sample(weight("90", "kg", now))
    };
    log(&mut ca, theirs.clone()).await;
    let b = log(&mut cb, theirs).await;
    assert_eq!(list(&mut qb, "", &token(&b)).await.samples.len(), 1);
    let alices = list(&mut qa, "weight", &token(&b)).await;
    assert_eq!(alices.samples.len(), 2, "Alice's samples are untouched");
    server.stop().await;
}

/// `commands.health.log`, `queries.health.daily` and `queries.health.samples` reach the same
/// handlers over NATS, errors included.
async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);
    let clock = UserClock::default();
    let d = days_ago(&clock, 1);
    let end = noon(&clock, d);
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let (code, logged) = nats
        .call(
            "commands.health.log",
            &token,
            json!({"steps": {"count": 1234, "start": rfc(end - Duration::hours(1)), "end": rfc(end)}}),
        )
        .await;
    assert_eq!(code, None, "{logged}");
    let sample_id = logged["sampleId"].as_str().expect("sampleId").to_string();
    let consistency = logged["ack"]["consistencyToken"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, bad) = nats
        .call(
            "commands.health.log",
            &token,
            json!({"steps": {"count": -1, "start": rfc(end), "end": rfc(end)}}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(bad["field_violations"][0]["field"], "steps.count", "{bad}");

    let (code, days) = nats
        .call(
            "queries.health.daily",
            &token,
            json!({"fromDay": day_id(d), "toDay": day_id(d), "consistencyToken": consistency}),
        )
        .await;
    assert_eq!(code, None, "{days}");
    assert_eq!(
        days["days"][0]["steps"], "1234",
        "uint64 as a JSON string: {days}"
    );

    let (code, listed) = nats
        .call(
            "queries.health.samples",
            &token,
            json!({"consistencyToken": consistency}),
        )
        .await;
    assert_eq!(code, None, "{listed}");
    assert_eq!(
        listed["samples"][0]["sampleId"],
        sample_id.as_str(),
        "{listed}"
    );
    nats.stop().await;
}
