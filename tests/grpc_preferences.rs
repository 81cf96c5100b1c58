//! lifeos.v1.Preferences through the generated client: defaults, partial updates, validation
//! with the field named, isolation between users, restart. Both backends.

#[macro_use]
mod common;

use common::{Authorized, Backend, Bearer, TestServer, assert_invalid_field};
use proto::v1::preferences_client::PreferencesClient;
use proto::v1::{GetPreferencesRequest, SetPreferencesRequest};
use tonic::Code;
use uuid::Uuid;

type Client = PreferencesClient<Authorized>;

fn client(server: &TestServer, user: Uuid) -> Client {
    server.client(user, PreferencesClient::with_interceptor)
}

on_both_backends! {
    sqlite_defaults_then_partial_updates, postgres_defaults_then_partial_updates
        => defaults_then_partial_updates;
    sqlite_bad_values_name_the_field, postgres_bad_values_name_the_field
        => bad_values_name_the_field;
}

async fn defaults_then_partial_updates(backend: Backend) {
    let Some(mut server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut prefs = client(&server, alice);

    let defaults = prefs
        .get_preferences(GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.timezone, "UTC");
    assert_eq!(
        (
            defaults.pomodoro_work_minutes,
            defaults.short_break_minutes,
            defaults.long_break_minutes
        ),
        (25, 5, 15)
    );
    assert_eq!(defaults.cycles_before_long_break, 4);
    assert!(!defaults.ai_features_enabled && !defaults.correlation_enabled);
    assert!(defaults.updated_at.is_none(), "never set");

    let ack = prefs
        .set_preferences(SetPreferencesRequest {
            command_id: "p-1".into(),
            timezone: Some("Europe/Paris".into()),
            day_start_hour: Some(4),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ack.aggregate_id,
        alice.to_string(),
        "one aggregate per user"
    );
    assert_eq!(ack.version, 1);
    let second = prefs
        .set_preferences(SetPreferencesRequest {
            command_id: "p-2".into(),
            correlation_enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.version, 2);
    let same = prefs
        .set_preferences(SetPreferencesRequest {
            command_id: "p-3".into(),
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.version, 2, "setting the current value writes nothing");
    assert!(same.event_ids.is_empty());

    let now = prefs
        .get_preferences(GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.timezone, "Europe/Paris");
    assert_eq!(now.day_start_hour, 4);
    assert!(now.correlation_enabled);
    assert_eq!(
        now.pomodoro_work_minutes, 25,
        "untouched fields keep their value"
    );
    assert!(now.updated_at.is_some());

    let bobs = client(&server, bob)
        .get_preferences(GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bobs.timezone, "UTC",
        "another user's preferences are their own"
    );

    server.restart().await;
    let after = client(&server, alice)
        .get_preferences(GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, now, "kept across a restart");
    server.stop().await;
}

async fn bad_values_name_the_field(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let user = Uuid::now_v7();
    let mut prefs = client(&server, user);
    let cases = [
        (
            SetPreferencesRequest {
                timezone: Some("Mars/Olympus".into()),
                ..Default::default()
            },
            "timezone",
        ),
        (
            SetPreferencesRequest {
                day_start_hour: Some(24),
                ..Default::default()
            },
            "day_start_hour",
        ),
        (
            SetPreferencesRequest {
                theme: Some("neon".into()),
                ..Default::default()
            },
            "theme",
        ),
        (
            SetPreferencesRequest {
                short_break_minutes: Some(0),
                ..Default::default()
            },
            "short_break_minutes",
        ),
        (
            SetPreferencesRequest {
                cycles_before_long_break: Some(99),
                ..Default::default()
            },
            "cycles_before_long_break",
        ),
    ];
    for (request, field) in cases {
        let err = prefs.set_preferences(request).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert_invalid_field(&err, field);
    }
    let unchanged = prefs
        .get_preferences(GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(unchanged.updated_at.is_none(), "nothing was written");
    let no_token = PreferencesClient::with_interceptor(server.channel(), Bearer::none())
        .get_preferences(GetPreferencesRequest {})
        .await
        .expect_err("no token");
    assert_eq!(no_token.code(), Code::Unauthenticated);
    server.stop().await;
}
