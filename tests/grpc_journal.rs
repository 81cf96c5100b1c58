//! Black-box tests of the Journal API (JournalCommands, JournalQueries) through the generated
//! gRPC clients, against the real server started in process. Every case runs on both backends:
//! `sqlite_<case>` and `postgres_<case>` (the latter returns early when PostgreSQL is
//! unreachable outside CI). Queries wait on consistency tokens, never on sleeps.

#[macro_use]
mod common;

use chrono::{DateTime, NaiveDate, Utc};
use common::{Backend, OnNats, TestServer, assert_invalid_field, ts, utc};
use projections::daily::day_id;
use proto::v1::journal_commands_client::JournalCommandsClient;
use proto::v1::journal_queries_client::JournalQueriesClient;
use proto::v1::{
    CommandAck, DeleteJournalEntryRequest, EditJournalEntryRequest, GetJournalDailyRollupRequest,
    GetJournalEntryRequest, JournalDay, JournalEntry, ListJournalEntriesRequest,
    SearchJournalEntriesRequest, WriteJournalEntryRequest, WriteJournalEntryResponse,
};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

pillar_clients!(JournalCommandsClient, JournalQueriesClient);

on_both_backends! {
    sqlite_writes_edits_and_deletes_show_in_list_and_search,
        postgres_writes_edits_and_deletes_show_in_list_and_search
        => writes_edits_and_deletes_show_in_list_and_search;
    sqlite_search_accepts_any_input, postgres_search_accepts_any_input
        => search_accepts_any_input;
    sqlite_daily_rollup_in_the_users_zone, postgres_daily_rollup_in_the_users_zone
        => daily_rollup_in_the_users_zone;
    sqlite_bad_input_names_the_field_and_writes_nothing,
        postgres_bad_input_names_the_field_and_writes_nothing
        => bad_input_names_the_field_and_writes_nothing;
    sqlite_other_users_entry_is_not_found, postgres_other_users_entry_is_not_found
        => other_users_entry_is_not_found;
    sqlite_nats_subjects_reach_the_same_handlers, postgres_nats_subjects_reach_the_same_handlers
        => nats_subjects_reach_the_same_handlers;
    sqlite_events_are_journal_actions_on_the_bus, postgres_events_are_journal_actions_on_the_bus
        => events_are_journal_actions_on_the_bus;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn entry(text: &str, mood: Option<u32>, at: DateTime<Utc>) -> WriteJournalEntryRequest {
    WriteJournalEntryRequest {
        text: text.to_string(),
        mood,
        written_at: ts(at),
        ..Default::default()
    }
}

async fn write(c: &mut Commands, request: WriteJournalEntryRequest) -> WriteJournalEntryResponse {
    c.write_entry(request)
        .await
        .expect("WriteEntry succeeds")
        .into_inner()
}

fn token(response: &WriteJournalEntryResponse) -> String {
    response
        .ack
        .as_ref()
        .expect("ack")
        .consistency_token
        .clone()
}

async fn edit(c: &mut Commands, entry_id: &str, text: &str, mood: Option<u32>) -> CommandAck {
    c.edit_entry(EditJournalEntryRequest {
        entry_id: entry_id.to_string(),
        text: text.to_string(),
        mood,
        ..Default::default()
    })
    .await
    .expect("EditEntry succeeds")
    .into_inner()
}

async fn delete(c: &mut Commands, entry_id: &str) -> CommandAck {
    c.delete_entry(DeleteJournalEntryRequest {
        entry_id: entry_id.to_string(),
        ..Default::default()
    })
    .await
    .expect("DeleteEntry succeeds")
    .into_inner()
}

async fn search(q: &mut Queries, query: &str, token: &str) -> Vec<JournalEntry> {
    q.search_entries(SearchJournalEntriesRequest {
        query: query.to_string(),
        limit: 0,
        consistency_token: token.to_string(),
    })
    .await
    .unwrap_or_else(|s| panic!("SearchEntries {query:?}: {s:?}"))
    .into_inner()
    .entries
}

fn ids(entries: &[JournalEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.entry_id.as_str()).collect()
}

async fn list(q: &mut Queries, from: NaiveDate, to: NaiveDate, token: &str) -> Vec<JournalEntry> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = q
            .list_entries(ListJournalEntriesRequest {
                from_day: day_id(from),
                to_day: day_id(to),
                page_size: 1,
                page_token: page_token.clone(),
                consistency_token: token.to_string(),
            })
            .await
            .expect("ListEntries succeeds")
            .into_inner();
        all.extend(page.entries);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn rollup(q: &mut Queries, from: NaiveDate, to: NaiveDate, token: &str) -> Vec<JournalDay> {
    q.get_daily_rollup(GetJournalDailyRollupRequest {
        from_day: day_id(from),
        to_day: day_id(to),
        consistency_token: token.to_string(),
    })
    .await
    .expect("GetDailyRollup succeeds")
    .into_inner()
    .days
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// A write is listed on its day and found by its words, with the sentiment the server computed;
/// an edit's new word is found and the old one no longer; a deleted entry is found nowhere.
async fn writes_edits_and_deletes_show_in_list_and_search(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let good = write(
        &mut c,
        WriteJournalEntryRequest {
            command_id: "write-1".into(),
            tags: vec!["Books".into(), " books ".into(), "Reading".into()],
            ..entry("The book was good.", Some(7), utc(2026, 3, 2, 9, 0))
        },
    )
    .await;
    let sentiment = good.sentiment.expect("sentiment");
    assert_eq!(sentiment.compound_ten_thousandths, 4404, "VADER: 0.4404");
    assert_eq!(good.ack.as_ref().unwrap().aggregate_id, good.entry_id);
    // the same command id answers the first write again, sentiment included
    let again = write(
        &mut c,
        WriteJournalEntryRequest {
            command_id: "write-1".into(),
            ..entry("Something else entirely", None, utc(2026, 3, 2, 9, 0))
        },
    )
    .await;
    assert!(again.ack.as_ref().unwrap().duplicate);
    assert_eq!(again.entry_id, good.entry_id);
    assert_eq!(again.sentiment, Some(sentiment));

    let bad = write(
        &mut c,
        entry(
            "A really bad, horrible book.",
            Some(2),
            utc(2026, 3, 3, 9, 0),
        ),
    )
    .await;
    assert_eq!(
        bad.sentiment.unwrap().compound_ten_thousandths,
        -8211,
        "VADER: -0.8211"
    );
    let t = token(&bad);

    let listed = list(&mut q, date(2026, 3, 1), date(2026, 3, 3), &t).await;
    assert_eq!(
        ids(&listed),
        [bad.entry_id.as_str(), good.entry_id.as_str()],
        "newest first, one per page"
    );
    let first = &listed[1];
    assert_eq!(first.day, "2026-03-02");
    assert_eq!(first.tags, ["books", "reading"]);
    assert_eq!(first.mood, Some(7));
    assert_eq!(first.text, "The book was good.");
    assert_eq!(
        ids(&list(&mut q, date(2026, 3, 3), date(2026, 3, 3), &t).await),
        [bad.entry_id.as_str()]
    );

    let found = search(&mut q, "books", &t).await;
    assert_eq!(found.len(), 2, "stemmed: books finds book");
    assert_eq!(
        ids(&search(&mut q, "horrible", &t).await),
        [bad.entry_id.as_str()]
    );
    assert_eq!(
        ids(&search(&mut q, "book -horrible", &t).await),
        [good.entry_id.as_str()]
    );

    let edited = edit(&mut c, &good.entry_id, "The film was wonderful.", Some(9)).await;
    let t = edited.consistency_token;
    assert_eq!(
        ids(&search(&mut q, "wonderful", &t).await),
        [good.entry_id.as_str()]
    );
    assert_eq!(
        ids(&search(&mut q, "book", &t).await),
        [bad.entry_id.as_str()],
        "the old word is gone"
    );
    let got = q
        .get_entry(GetJournalEntryRequest {
            entry_id: good.entry_id.clone(),
            consistency_token: t.clone(),
        })
        .await
        .expect("GetEntry")
        .into_inner();
    assert_eq!(got.mood, Some(9));
    assert!(
        got.sentiment.unwrap().compound_ten_thousandths > 4404,
        "re-scored"
    );
    assert!(got.edited_at.is_some());
    assert_eq!(got.day, "2026-03-02", "an edit keeps the day");

    let deleted = delete(&mut c, &bad.entry_id).await;
    let t = deleted.consistency_token;
    assert!(search(&mut q, "horrible", &t).await.is_empty());
    let gone = q
        .get_entry(GetJournalEntryRequest {
            entry_id: bad.entry_id.clone(),
            consistency_token: t.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(
        ids(&list(&mut q, date(2026, 3, 1), date(2026, 3, 3), &t).await),
        [good.entry_id.as_str()]
    );
    // a deleted entry can be neither edited nor deleted again
    for status in [
        c.edit_entry(EditJournalEntryRequest {
            entry_id: bad.entry_id.clone(),
            text: "back".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        c.delete_entry(DeleteJournalEntryRequest {
            entry_id: bad.entry_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    server.stop().await;
}

/// FTS syntax characters in a query never make an error; an empty query is INVALID_ARGUMENT.
async fn search_accepts_any_input(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let w = write(
        &mut c,
        entry(
            "Met Anna near the station: coffee*",
            None,
            utc(2026, 3, 2, 9, 0),
        ),
    )
    .await;
    let t = token(&w);
    for query in [
        "\"",
        "*",
        "NEAR(",
        "-",
        ":",
        "NEAR(anna station",
        "anna:",
        "coffee*",
        "\"unclosed anna",
        "anna AND OR NOT",
        "(",
        ")",
        "^",
        "{",
        "'; DROP TABLE read_model_rows; --",
        "--",
        "a\"b\"c",
        "\u{0}",
        "🙂",
    ] {
        search(&mut q, query, &t).await;
    }
    assert_eq!(
        search(&mut q, "NEAR(anna", &t).await.len(),
        1,
        "NEAR( is a word here"
    );
    assert_eq!(search(&mut q, "station:", &t).await.len(), 1);
    assert_eq!(search(&mut q, "coffee*", &t).await.len(), 1);
    assert_eq!(
        search(&mut q, "\"anna near the station\"", &t).await.len(),
        1,
        "a phrase"
    );
    assert!(
        search(&mut q, "\"station near anna\"", &t).await.is_empty(),
        "word order matters in a phrase"
    );
    for query in ["", "   "] {
        let status = q
            .search_entries(SearchJournalEntriesRequest {
                query: query.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid_field(&status, "query");
    }
    let status = q
        .search_entries(SearchJournalEntriesRequest {
            query: "anna".into(),
            limit: 101,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "limit");
    server.stop().await;
}

/// Entries count on the local day of the user's zone and day start (preferences), with the
/// mean mood and sentiment; edits and deletes change the day exactly.
async fn daily_rollup_in_the_users_zone(backend: Backend) {
    let Some((server, user, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    server.set_clock(user, "America/New_York", 4).await;
    // 2026-03-03 07:30 UTC = 02:30 EST: still 2 March with days from 04:00
    let late = write(
        &mut c,
        entry("The book was good.", Some(6), utc(2026, 3, 3, 7, 30)),
    )
    .await;
    let noon = write(
        &mut c,
        entry(
            "A really bad, horrible book.",
            Some(3),
            utc(2026, 3, 2, 17, 0),
        ),
    )
    .await;
    // 09:30 UTC = 04:30 EST: 3 March
    let next = write(&mut c, entry("Quiet notes", None, utc(2026, 3, 3, 9, 30))).await;
    let t = token(&next);
    let days = rollup(&mut q, date(2026, 3, 1), date(2026, 3, 3), &t).await;
    assert_eq!(days.len(), 3, "empty days included");
    assert_eq!(days[0].entries, 0);
    assert_eq!(days[0].mean_mood, None);
    let day = &days[1];
    assert_eq!(day.day, "2026-03-02");
    assert_eq!((day.entries, day.mood_count, day.mood_sum), (2, 2, 9));
    assert_eq!(day.mean_mood, Some(4.5));
    assert_eq!(day.sentiment_sum_ten_thousandths, 4404 - 8211);
    assert_eq!(day.mean_sentiment, Some(-0.19035), "(0.4404 - 0.8211) / 2");
    assert_eq!((days[2].entries, days[2].mood_count), (1, 0));
    assert_eq!(days[2].mean_sentiment, Some(0.0));
    let listed = list(&mut q, date(2026, 3, 2), date(2026, 3, 2), &t).await;
    assert_eq!(
        ids(&listed),
        [late.entry_id.as_str(), noon.entry_id.as_str()]
    );

    edit(&mut c, &late.entry_id, "The book was good.", Some(8)).await;
    let t = delete(&mut c, &noon.entry_id).await.consistency_token;
    let day = rollup(&mut q, date(2026, 3, 2), date(2026, 3, 2), &t)
        .await
        .remove(0);
    assert_eq!((day.entries, day.mood_count, day.mood_sum), (1, 1, 8));
    assert_eq!(day.mean_mood, Some(8.0));
    assert_eq!(day.sentiment_sum_ten_thousandths, 4404);
    let answer = q
        .get_daily_rollup(GetJournalDailyRollupRequest {
            from_day: "2026-03-02".into(),
            to_day: "2026-03-02".into(),
            consistency_token: t,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.timezone.as_str(), answer.day_start_hour),
        ("America/New_York", 4)
    );
    server.stop().await;
}

/// Every malformed field is INVALID_ARGUMENT naming it, and nothing is written.
async fn bad_input_names_the_field_and_writes_nothing(backend: Backend) {
    let Some((server, _, mut c, mut q)) = start_with_clients(backend).await else {
        return;
    };
    let at = utc(2026, 3, 2, 9, 0);
    let writes = [
        (entry("  ", None, at), "text"),
        (entry(&"x".repeat(100_001), None, at), "text"),
        (entry("nul \u{0} inside", None, at), "text"),
        (entry("ok", Some(0), at), "mood"),
        (entry("ok", Some(10), at), "mood"),
        (entry("ok", Some(300), at), "mood"),
        (
            WriteJournalEntryRequest {
                tags: vec!["".into()],
                ..entry("ok", None, at)
            },
            "tags",
        ),
        (
            WriteJournalEntryRequest {
                tags: vec!["t".repeat(41)],
                ..entry("ok", None, at)
            },
            "tags",
        ),
        (
            WriteJournalEntryRequest {
                tags: (0..21).map(|i| format!("t{i}")).collect(),
                ..entry("ok", None, at)
            },
            "tags",
        ),
        (
            entry("ok", None, Utc::now() + chrono::Duration::hours(1)),
            "written_at",
        ),
        (
            WriteJournalEntryRequest {
                entry_id: "not-a-uuid".into(),
                ..entry("ok", None, at)
            },
            "entry_id",
        ),
        (
            WriteJournalEntryRequest {
                entry_id: Uuid::nil().to_string(),
                ..entry("ok", None, at)
            },
            "entry_id",
        ),
    ];
    for (request, field) in writes {
        let status = c.write_entry(request).await.unwrap_err();
        assert_invalid_field(&status, field);
    }
    let w = write(&mut c, entry("Fine day", Some(5), at)).await;
    assert_eq!(w.ack.as_ref().unwrap().version, 1);
    let edits = [("", Some(5), "text"), ("ok", Some(42), "mood")];
    for (text, mood, field) in edits {
        let status = c
            .edit_entry(EditJournalEntryRequest {
                entry_id: w.entry_id.clone(),
                text: text.into(),
                mood,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid_field(&status, field);
    }
    let status = c
        .delete_entry(DeleteJournalEntryRequest::default())
        .await
        .unwrap_err();
    assert_invalid_field(&status, "entry_id");
    // nothing was written: the entry is at version 1, the only one of its day
    let ack = edit(&mut c, &w.entry_id, "Fine day indeed", Some(5)).await;
    assert_eq!(ack.version, 2, "the bad edits wrote nothing");
    let listed = list(
        &mut q,
        date(2026, 3, 1),
        date(2026, 3, 3),
        &ack.consistency_token,
    )
    .await;
    assert_eq!(
        ids(&listed),
        [w.entry_id.as_str()],
        "the bad writes wrote nothing"
    );

    // query fields
    let list_status = |from: &str, to: &str, page_size: u32| ListJournalEntriesRequest {
        from_day: from.into(),
        to_day: to.into(),
        page_size,
        ..Default::default()
    };
    for (request, field) in [
        (list_status("", "2026-03-02", 0), "from_day"),
        (list_status("2026-03-02", "2026-03-01", 0), "to_day"),
        (list_status("2026-03-01", "2026-03-02", 501), "page_size"),
        (
            ListJournalEntriesRequest {
                page_token: "!!".into(),
                ..list_status("2026-03-01", "2026-03-02", 0)
            },
            "page_token",
        ),
    ] {
        let status = q.list_entries(request).await.unwrap_err();
        assert_invalid_field(&status, field);
    }
    let status = q
        .get_entry(GetJournalEntryRequest {
            entry_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "entry_id");
    server.stop().await;
}

/// Another user's entry is NOT_FOUND for every command and query, and never found by search.
async fn other_users_entry_is_not_found(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let w = write(
        &mut commands(&server, alice),
        entry("Alice's secret garden plans", None, utc(2026, 3, 2, 9, 0)),
    )
    .await;
    let t = token(&w);
    let (mut c, mut q) = (commands(&server, bob), queries(&server, bob));
    let statuses = [
        c.edit_entry(EditJournalEntryRequest {
            entry_id: w.entry_id.clone(),
            text: "mine now".into(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        c.delete_entry(DeleteJournalEntryRequest {
            entry_id: w.entry_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        q.get_entry(GetJournalEntryRequest {
            entry_id: w.entry_id.clone(),
            consistency_token: t.clone(),
        })
        .await
        .unwrap_err(),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    assert!(search(&mut q, "garden", &t).await.is_empty());
    assert!(
        list(&mut q, date(2026, 3, 2), date(2026, 3, 2), &t)
            .await
            .is_empty()
    );
    let mine = search(&mut queries(&server, alice), "garden", &t).await;
    assert_eq!(
        ids(&mine),
        [w.entry_id.as_str()],
        "still Alice's, unchanged"
    );
    assert_eq!(mine[0].text, "Alice's secret garden plans");
    server.stop().await;
}

/// `commands.journal.write` and `queries.journal.search` reach the same handlers as gRPC.
async fn nats_subjects_reach_the_same_handlers(backend: Backend) {
    let Some(nats) = OnNats::start(backend).await else {
        return;
    };
    let server = &nats.server;
    let user = Uuid::now_v7();
    let token = server.token(user);

    let (code, written) = nats
        .call(
            "commands.journal.write",
            &token,
            json!({"text": "VADER is smart, handsome, and funny.", "mood": 8}),
        )
        .await;
    assert_eq!(code, None, "{written}");
    assert_eq!(
        written["sentiment"]["compoundTenThousandths"], 8316,
        "{written}"
    );
    let entry_id = written["entryId"].as_str().expect("entryId").to_string();
    let consistency = written["ack"]["consistencyToken"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, found) = nats
        .call(
            "queries.journal.search",
            &token,
            json!({"query": "handsome", "consistencyToken": consistency}),
        )
        .await;
    assert_eq!(code, None, "{found}");
    assert_eq!(found["entries"][0]["entryId"], entry_id.as_str(), "{found}");
    // and over gRPC, the same entry
    let got = queries(server, user)
        .get_entry(GetJournalEntryRequest {
            entry_id: entry_id.clone(),
            consistency_token: consistency,
        })
        .await
        .expect("GetEntry")
        .into_inner();
    assert_eq!(got.mood, Some(8));

    let (code, bad) = nats
        .call(
            "commands.journal.write",
            &token,
            json!({"text": "ok", "mood": 12}),
        )
        .await;
    assert_eq!(code.as_deref(), Some("3"), "{bad}");
    assert_eq!(bad["field_violations"][0]["field"], "mood", "{bad}");
    nats.stop().await;
}

/// The events travel the bus as `journal.written` / `edited` / `deleted`, the sentiment in the
/// payload.
async fn events_are_journal_actions_on_the_bus(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let mut bus = server
        .server()
        .events()
        .expect("without NATS: the in-process bus");
    let user = Uuid::now_v7();
    let mut c = commands(&server, user);
    let w = write(
        &mut c,
        entry("The book was good.", None, utc(2026, 3, 2, 9, 0)),
    )
    .await;
    edit(&mut c, &w.entry_id, "A really bad, horrible book.", None).await;
    delete(&mut c, &w.entry_id).await;
    for (action, compound) in [
        ("written", Some(4404)),
        ("edited", Some(-8211)),
        ("deleted", None),
    ] {
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), bus.recv())
            .await
            .expect("the event arrives on the in-process bus")
            .expect("the bus is open");
        assert_eq!(event.event_type, format!("journal.{action}"));
        assert_eq!(event.source, "lifeos/journal");
        assert_eq!(event.data.entity_id, w.entry_id);
        assert_eq!(
            event.data.payload["sentiment"]["compound"].as_i64(),
            compound,
            "{event:?}"
        );
    }
    server.stop().await;
}
