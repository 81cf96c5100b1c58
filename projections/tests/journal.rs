//! The Journal read models end to end on both backends: commands go through
//! `AggregateStore::execute` with explicit times, the runners fold the log into
//! `journal_entries` and `journal_daily`, queries (listing, full-text search, daily rollup)
//! read them back — also across a blue-green rebuild.

mod common;

use common::{user_metadata, utc};
use std::sync::Arc;
use std::time::Duration;

use aggregates::Issued;
use aggregates::journal::{EntryContent, JournalCommand, JournalEntry};
use aggregates::preferences::UserPreferences;
use chrono::{DateTime, NaiveDate, Utc};
use projections::journal_daily::{DayJournal, JournalDaily};
use projections::journal_entries::{EntryView, JournalEntries};
use projections::{ProjectionRunner, ReadModels, RunnerHandle};
use store::{AggregateStore, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

/// The longest any test waits for a runner.
const WAIT: Duration = Duration::from_secs(30);

store::on_both_stores! {
    list_and_search_follow_writes_edits_and_deletes => sqlite_list_and_search_follow_writes_edits_and_deletes, postgres_list_and_search_follow_writes_edits_and_deletes;
    daily_rollup_is_exact_under_edits_deletes_and_zone_changes => sqlite_daily_rollup_is_exact_under_edits_deletes_and_zone_changes, postgres_daily_rollup_is_exact_under_edits_deletes_and_zone_changes;
    search_survives_a_rebuild => sqlite_search_survives_a_rebuild, postgres_search_survives_a_rebuild;
}

const ALICE: Uuid = Uuid::from_u128(0xa11ce);
const BOB: Uuid = Uuid::from_u128(0xb0b);

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn content(text: &str, mood: Option<u8>) -> EntryContent {
    EntryContent {
        text: text.to_string(),
        mood,
        tags: vec![],
    }
}

struct Env {
    entries: AggregateStore<JournalEntry, Store>,
    preferences: AggregateStore<UserPreferences, Store>,
    models: ReadModels,
}

impl Env {
    fn new(store: Store) -> Self {
        Self {
            entries: AggregateStore::new(store.clone()),
            preferences: AggregateStore::new(store.clone()),
            models: ReadModels::new(store),
        }
    }

    fn runners(&self) -> [RunnerHandle; 2] {
        [
            ProjectionRunner::new(Arc::new(JournalEntries), self.models.clone()).spawn(),
            ProjectionRunner::new(Arc::new(JournalDaily), self.models.clone()).spawn(),
        ]
    }

    async fn exec(&self, user: Uuid, at: DateTime<Utc>, command: JournalCommand) -> Position {
        let id = command.entry_id().to_string();
        let what = format!("{command:?}");
        let outcome = self
            .entries
            .execute(
                &id,
                Issued::new(user, at, command),
                &(),
                user_metadata(user),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        outcome.receipt.position.expect("one event")
    }

    /// Writes an entry as `user` at `at`; returns its id and position.
    async fn write(
        &self,
        user: Uuid,
        at: DateTime<Utc>,
        text: &str,
        mood: Option<u8>,
    ) -> (Uuid, Position) {
        let entry_id = Uuid::now_v7();
        let command = JournalCommand::WriteEntry {
            entry_id,
            content: content(text, mood),
            written_at: None,
        };
        (entry_id, self.exec(user, at, command).await)
    }

    async fn edit(&self, user: Uuid, entry_id: Uuid, text: &str, mood: Option<u8>) -> Position {
        let command = JournalCommand::EditEntry {
            entry_id,
            content: content(text, mood),
        };
        self.exec(user, utc(2026, 6, 1, 0, 0), command).await
    }

    async fn delete(&self, user: Uuid, entry_id: Uuid) -> Position {
        self.exec(
            user,
            utc(2026, 6, 1, 0, 0),
            JournalCommand::DeleteEntry { entry_id },
        )
        .await
    }

    async fn clock(&self, user: Uuid, timezone: &str, day_start_hour: u32) -> Position {
        common::set_clock(&self.preferences, user, timezone, day_start_hour).await
    }

    async fn search(&self, user: Uuid, query: &str) -> Vec<String> {
        JournalEntries::search(&self.models, user, query, 50)
            .await
            .unwrap_or_else(|e| panic!("search {query:?}: {e:?}"))
            .into_iter()
            .map(|e| e.text)
            .collect()
    }

    async fn list(&self, user: Uuid, from: NaiveDate, to: NaiveDate) -> Vec<EntryView> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) =
                JournalEntries::list(&self.models, user, from, to, cursor.as_ref(), 2)
                    .await
                    .expect("list");
            all.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => return all,
            }
        }
    }
}

async fn caught_up(runners: &mut [RunnerHandle; 2], target: Position) {
    for handle in runners.iter_mut() {
        let reached = timeout(WAIT, handle.progress.wait_for(|p| *p >= target))
            .await
            .unwrap_or_else(|_| panic!("runner did not reach {target} within {WAIT:?}"))
            .map(|p| *p);
        reached.unwrap_or_else(|_| panic!("runner ended before reaching {target}"));
    }
}

async fn stop(runners: [RunnerHandle; 2]) {
    for handle in runners {
        handle.stop().await.expect("runner stops");
    }
}

async fn list_and_search_follow_writes_edits_and_deletes(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    env.clock(ALICE, "America/New_York", 0).await;
    // 2026-03-02 03:00 UTC is the evening of 1 March in New York
    let (walk, _) = env
        .write(
            ALICE,
            utc(2026, 3, 2, 3, 0),
            "Walked the dog in the rainy park",
            Some(6),
        )
        .await;
    let (book, _) = env
        .write(
            ALICE,
            utc(2026, 3, 2, 15, 0),
            "Finished a wonderful book about gardens",
            Some(8),
        )
        .await;
    let (bob, p) = env
        .write(BOB, utc(2026, 3, 2, 15, 0), "Bob walked his dog too", None)
        .await;
    caught_up(&mut runners, p).await;

    let march_2 = env.list(ALICE, date(2026, 3, 2), date(2026, 3, 2)).await;
    assert_eq!(
        march_2.iter().map(|e| e.entry_id).collect::<Vec<_>>(),
        [book]
    );
    let both = env.list(ALICE, date(2026, 3, 1), date(2026, 3, 2)).await;
    assert_eq!(
        both.iter().map(|e| e.entry_id).collect::<Vec<_>>(),
        [book, walk],
        "newest first across days, paged by 2"
    );
    assert_eq!(both[1].day, date(2026, 3, 1), "the local day in New York");
    assert!(both[0].sentiment.compound > 0, "{:?}", both[0].sentiment);

    assert_eq!(
        env.search(ALICE, "walking dogs").await,
        ["Walked the dog in the rainy park"]
    );
    assert_eq!(env.search(ALICE, "garden or rainy").await.len(), 2);
    assert_eq!(env.search(ALICE, "dog -rainy").await, Vec::<String>::new());
    assert_eq!(env.search(ALICE, "\"wonderful book\"").await.len(), 1);
    assert!(
        env.search(ALICE, "Bob").await.is_empty(),
        "another user's entries are never found"
    );
    assert_eq!(env.search(BOB, "dog").await, ["Bob walked his dog too"]);
    for odd in [
        "\"",
        "*",
        "NEAR(",
        "-",
        ":",
        "dog:",
        "NEAR(dog park",
        "\"unclosed",
        "a AND OR NOT",
        "(",
        "^",
        "'; DROP TABLE x; --",
    ] {
        // never an error, whatever the input
        env.search(ALICE, odd).await;
    }
    assert_eq!(
        env.search(ALICE, "dog*").await.len(),
        1,
        "punctuation is not syntax"
    );

    let p = env
        .edit(ALICE, walk, "Walked the cat along the river", Some(7))
        .await;
    caught_up(&mut runners, p).await;
    assert_eq!(
        env.search(ALICE, "river").await,
        ["Walked the cat along the river"]
    );
    assert!(
        env.search(ALICE, "rainy").await.is_empty(),
        "the old words are gone"
    );
    let edited = JournalEntries::get(&env.models, ALICE, walk)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.day, date(2026, 3, 1), "an edit keeps the day");
    assert_eq!(edited.mood, Some(7));

    let p = env.delete(ALICE, walk).await;
    caught_up(&mut runners, p).await;
    assert!(env.search(ALICE, "river").await.is_empty());
    assert_eq!(
        JournalEntries::get(&env.models, ALICE, walk).await.unwrap(),
        None
    );
    assert_eq!(
        JournalEntries::get(&env.models, ALICE, bob).await.unwrap(),
        None,
        "not Alice's"
    );
    assert_eq!(
        env.list(ALICE, date(2026, 3, 1), date(2026, 3, 2))
            .await
            .len(),
        1
    );
    stop(runners).await;
}

async fn daily_rollup_is_exact_under_edits_deletes_and_zone_changes(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    // days start at 04:00 in Paris: 01:30 UTC on 3 March (02:30 CET) is still 2 March
    env.clock(ALICE, "Europe/Paris", 4).await;
    let (a, _) = env
        .write(ALICE, utc(2026, 3, 3, 1, 30), "The book was good.", Some(6))
        .await;
    let (b, _) = env
        .write(
            ALICE,
            utc(2026, 3, 2, 12, 0),
            "A really bad, horrible book.",
            Some(2),
        )
        .await;
    let (_c, p) = env
        .write(ALICE, utc(2026, 3, 3, 12, 0), "Plain notes", None)
        .await;
    caught_up(&mut runners, p).await;
    let days = JournalDaily::days(&env.models, ALICE, date(2026, 3, 2), date(2026, 3, 4))
        .await
        .unwrap();
    assert_eq!(
        days[0],
        DayJournal {
            day: date(2026, 3, 2),
            entries: 2,
            mood_count: 2,
            mood_sum: 8,
            sentiment_sum: 4404 - 8211,
        }
    );
    assert_eq!(days[0].mean_mood(), Some(4.0));
    assert_eq!(days[1].entries, 1);
    assert_eq!(days[1].mean_mood(), None, "no entry with a mood");
    assert_eq!(days[1].mean_sentiment(), Some(0.0));
    assert_eq!(days[2], DayJournal::empty(date(2026, 3, 4)));

    // the zone changes: past entries stay on their days when edited or deleted
    env.clock(ALICE, "Asia/Tokyo", 0).await;
    env.edit(ALICE, a, "The book was good.", Some(9)).await;
    let p = env.delete(ALICE, b).await;
    caught_up(&mut runners, p).await;
    let days = JournalDaily::days(&env.models, ALICE, date(2026, 3, 2), date(2026, 3, 3))
        .await
        .unwrap();
    assert_eq!(
        days[0],
        DayJournal {
            day: date(2026, 3, 2),
            entries: 1,
            mood_count: 1,
            mood_sum: 9,
            sentiment_sum: 4404,
        }
    );
    assert_eq!(days[0].mean_sentiment(), Some(0.4404));
    assert_eq!(days[1].entries, 1, "untouched");
    let p = env.delete(ALICE, a).await;
    caught_up(&mut runners, p).await;
    let day = &JournalDaily::days(&env.models, ALICE, date(2026, 3, 2), date(2026, 3, 2))
        .await
        .unwrap()[0];
    assert_eq!(
        (day.entries, day.mood_count, day.mood_sum, day.sentiment_sum),
        (0, 0, 0, 0)
    );
    assert_eq!(day.mean_sentiment(), None);
    stop(runners).await;
}

async fn search_survives_a_rebuild(store: Store) {
    let env = Env::new(store);
    let mut runners = env.runners();
    let (kept, _) = env
        .write(ALICE, utc(2026, 3, 2, 8, 0), "Sailing on the lake", None)
        .await;
    let (gone, _) = env
        .write(
            ALICE,
            utc(2026, 3, 2, 9, 0),
            "Sailing lessons cancelled",
            None,
        )
        .await;
    let p = env.delete(ALICE, gone).await;
    caught_up(&mut runners, p).await;
    assert_eq!(env.search(ALICE, "sailing").await, ["Sailing on the lake"]);

    let before = env.models.active_model(&JournalEntries).await.unwrap();
    env.models.request_rebuild(&JournalEntries).await.unwrap();
    let switched = timeout(WAIT, async {
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        loop {
            poll.tick().await;
            let status = env.models.status("journal_entries").await.unwrap();
            if let Some(s) = status.filter(|s| s.active_model != before && !s.rebuild_requested)
                && env
                    .models
                    .list(&before, ALICE, &["2026-03-02"], None, 10)
                    .await
                    .unwrap()
                    .is_empty()
            {
                return s.active_model;
            }
        }
    })
    .await
    .expect("rebuilt and the old generation dropped in time");
    assert!(switched.starts_with("journal_entries@1#"), "{switched}");
    if let Store::Sqlite(s) = env.models.store() {
        // the retired generation's rows left the FTS index and its key table too
        let count = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(s.reader()).await.unwrap();
            n
        };
        let rows =
            count("SELECT count(*) FROM read_model_rows WHERE model GLOB 'journal_entries@*'")
                .await;
        assert_eq!(
            count("SELECT count(*) FROM journal_search_keys").await,
            rows
        );
        let indexed =
            count("SELECT count(*) FROM journal_search WHERE journal_search MATCH 'sailing'").await;
        assert_eq!(indexed, 1, "only the live entry of the active generation");
    }
    // one hit, from the new generation only (the dropped rows left the index too)
    assert_eq!(env.search(ALICE, "sailing").await, ["Sailing on the lake"]);
    let p = env.edit(ALICE, kept, "Rowing on the lake", None).await;
    caught_up(&mut runners, p).await;
    assert!(env.search(ALICE, "sailing").await.is_empty());
    assert_eq!(env.search(ALICE, "rowing").await.len(), 1);
    stop(runners).await;
}
