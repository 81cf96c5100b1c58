//! Black-box tests of TaskQueries/GetDailyRollup (the `task_daily` read model) through the
//! generated gRPC clients, against the real server started in process, with the user's clock set
//! through the Preferences service; and its NATS subject `queries.tasks.daily`. Every case runs on
//! both backends: `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL
//! is unreachable outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::{Backend, OnNats, Queries, TestServer, assert_invalid_field, create, new_task, time};
use projections::daily::{UserClock, day_id};
use proto::v1::{
    CommandAck, CompleteTaskRequest, CreateTaskRequest, DeleteTaskRequest,
    GetTaskDailyRollupRequest, GetTaskRequest, Task, TaskDailyRollup,
};
use serde_json::json;
use uuid::Uuid;

on_both_backends! {
    sqlite_rollup_in_the_users_zone, postgres_rollup_in_the_users_zone
        => rollup_in_the_users_zone;
    sqlite_bad_days_name_the_field, postgres_bad_days_name_the_field
        => bad_days_name_the_field;
    sqlite_nats_subject_answers_the_rollup, postgres_nats_subject_answers_the_rollup
        => nats_subject_answers_the_rollup;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn rollup(q: &mut Queries, from: NaiveDate, to: NaiveDate, token: &str) -> TaskDailyRollup {
    q.get_daily_rollup(GetTaskDailyRollupRequest {
        from_day: day_id(from),
        to_day: day_id(to),
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetDailyRollup succeeds")
    .into_inner()
}

async fn get(q: &mut Queries, task_id: &str, token: &str) -> Task {
    q.get_task(GetTaskRequest {
        task_id: task_id.to_string(),
        consistency_token: token.to_string(),
        as_of: None,
    })
    .await
    .expect("GetTask succeeds")
    .into_inner()
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

async fn complete(server: &TestServer, user: Uuid, task_id: &str) -> CommandAck {
    server
        .commands(user)
        .complete_task(CompleteTaskRequest {
            task_id: task_id.to_string(),
            ..Default::default()
        })
        .await
        .expect("CompleteTask succeeds")
        .into_inner()
}

fn due_at(title: &str, due: DateTime<Utc>) -> CreateTaskRequest {
    CreateTaskRequest {
        due: Some(timestamp(due)),
        ..new_task(title)
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Kiritimati (UTC+14, so the local day often differs from the UTC date) with days from 04:00,
/// set through Preferences: tasks created and completed now land on the local days of their
/// recorded times, the task due days ago is overdue at the end of every day from its creation,
/// empty days are filled; another user sees only zeros.
async fn rollup_in_the_users_zone(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let clock = UserClock::new("Pacific/Kiritimati", 4);
    let set = server.set_clock(user, "Pacific/Kiritimati", 4).await;
    let mut q = server.queries(user);
    let today = clock.day_of(Utc::now());
    let empty = rollup(&mut q, today, today, &set).await;
    assert_eq!(
        (empty.timezone.as_str(), empty.day_start_hour),
        ("Pacific/Kiritimati", 4)
    );
    assert_eq!(empty.days.len(), 1);
    assert_eq!(
        (
            empty.days[0].created,
            empty.days[0].completed,
            empty.days[0].overdue_at_day_end
        ),
        (0, 0, 0)
    );

    let now = Utc::now();
    let mut c = server.commands(user);
    // overdue since before it was created
    let late = create(&mut c, due_at("late", now - Duration::days(3))).await;
    // due in a month
    let later = create(&mut c, due_at("later", now + Duration::days(30))).await;
    // no due time, completed
    let done = create(&mut c, new_task("done")).await;
    complete(&server, user, &done.aggregate_id).await;
    // due yesterday, deleted
    let gone = create(&mut c, due_at("gone", now - Duration::days(1))).await;
    let last = c
        .delete_task(DeleteTaskRequest {
            task_id: gone.aggregate_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteTask")
        .into_inner();
    let after = Utc::now();
    let token = last.consistency_token;

    // the recorded times, read back
    let mut created = Vec::new();
    for ack in [&late, &later, &done] {
        created.push(time(
            &get(&mut q, &ack.aggregate_id, &token).await.created_at,
        ));
    }
    let completed_at = time(&get(&mut q, &done.aggregate_id, &token).await.completed_at);
    let first = clock.day_of(created[0]);
    let last_day = clock.day_of(completed_at);
    let (from, to) = (first.pred_opt().unwrap(), last_day.succ_opt().unwrap());

    let answer = rollup(&mut q, from, to, &token).await;
    assert_eq!(answer.timezone, "Pacific/Kiritimati");
    let days: Vec<String> = answer.days.iter().map(|d| d.day.clone()).collect();
    let expected_days: Vec<String> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(day_id)
        .collect();
    assert_eq!(days, expected_days, "every day, empty ones included");
    // `gone` (deleted, so not readable) was created after `done` was completed and before
    // `after`: its day is known when both fall on the same day
    let gone_day = Some(clock.day_of(after)).filter(|d| *d == last_day);
    let mut total_created = 0;
    for (day, answered) in from.iter_days().zip(&answer.days) {
        let end = clock.day_range(day).end;
        let created_here = created.iter().filter(|c| clock.day_of(**c) == day).count() as u32;
        match gone_day {
            Some(gone) => assert_eq!(
                answered.created,
                created_here + u32::from(gone == day),
                "{answered:?}"
            ),
            None => assert!(answered.created >= created_here, "{answered:?}"),
        }
        let completed_here = u32::from(clock.day_of(completed_at) == day);
        // only `late` can be overdue here: `later` is due in a month, `done` has no due time,
        // `gone` was deleted right after being created
        let overdue = u32::from(created[0] < end);
        total_created += answered.created;
        assert_eq!(answered.completed, completed_here, "{answered:?}");
        assert_eq!(answered.overdue_at_day_end, overdue, "{answered:?}");
    }
    assert_eq!(
        total_created, 4,
        "four tasks created, the deleted one included"
    );
    assert_eq!(answer.days[0].created, 0, "the day before is empty");
    assert_eq!(answer.days[0].overdue_at_day_end, 0);

    // bob sees nothing of alice's
    let bob = rollup(&mut server.queries(other), from, to, "").await;
    assert_eq!(bob.timezone, "UTC");
    assert!(
        bob.days
            .iter()
            .all(|d| (d.created, d.completed, d.overdue_at_day_end) == (0, 0, 0)),
        "{bob:?}"
    );
    server.stop().await;
}

/// Missing, malformed, reversed and too long day ranges are INVALID_ARGUMENT naming the field.
async fn bad_days_name_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let mut q = server.queries(Uuid::now_v7());
    for (from, to, field) in [
        ("", "2026-03-08", "from_day"),
        ("2026-3-8", "2026-03-08", "from_day"),
        ("2026-03-08", "", "to_day"),
        ("2026-03-08", "2026-02-30", "to_day"),
        ("2026-03-08", "2026-03-07", "to_day"),
        ("2026-01-01", "2027-01-02", "to_day"),
    ] {
        let status = q
            .get_daily_rollup(GetTaskDailyRollupRequest {
                from_day: from.into(),
                to_day: to.into(),
                consistency_token: String::new(),
            })
            .await
            .expect_err("a bad day range is refused");
        assert_invalid_field(&status, field);
    }
    // 366 days is the most
    let year = q
        .get_daily_rollup(GetTaskDailyRollupRequest {
            from_day: "2026-01-01".into(),
            to_day: "2027-01-01".into(),
            consistency_token: String::new(),
        })
        .await
        .expect("366 days")
        .into_inner();
    assert_eq!(year.days.len(), 366);
    assert_eq!(year.days[365].day, "2027-01-01");
    server.stop().await;
}

/// `queries.tasks.daily` answers GetDailyRollup over NATS: a task created over gRPC is counted,
/// a bad day names its field.
async fn nats_subject_answers_the_rollup(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);
    let ack = create(&mut server.commands(user), new_task("counted")).await;
    let task = get(
        &mut server.queries(user),
        &ack.aggregate_id,
        &ack.consistency_token,
    )
    .await;
    let day = UserClock::default().day_of(time(&task.created_at));

    let (code, answer) = nats
        .call(
            "queries.tasks.daily",
            &token,
            json!({
                "fromDay": day_id(day),
                "toDay": day_id(day.succ_opt().unwrap()),
                "consistencyToken": ack.consistency_token,
            }),
        )
        .await;
    assert_eq!(code, None, "{answer}");
    assert_eq!(answer["timezone"], "UTC", "{answer}");
    assert_eq!(answer["days"][0]["day"], day_id(day).as_str(), "{answer}");
    assert_eq!(answer["days"][0]["created"], 1, "{answer}");
    assert_eq!(answer["days"].as_array().map(Vec::len), Some(2), "{answer}");

    let (code, bad) = nats
        .call(
            "queries.tasks.daily",
            &token,
            json!({"fromDay": "tomorrow", "toDay": day_id(day)}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(bad["field_violations"][0]["field"], "from_day", "{bad}");
    nats.stop().await;
}
