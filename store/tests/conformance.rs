//! One behaviour, two backends: every case below is written once against [`Store`] and run on
//! SQLite (`sqlite_<case>`) and on PostgreSQL (`postgres_<case>`, skipped when PostgreSQL is not
//! reachable outside CI; see `store::testing`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aggregates::task::{NewTask, Task, TaskChanges, TaskCommand, TaskState};
use aggregates::{DomainError, Issued};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::testing::wait_for_head;
use store::{
    AggregateStore, AppendBatch, AppendOutcome, CommandKey, Journal, LogFeed, LoggedEvent,
    Position, SnapshotPolicy, Store, StoreError, meta, migrate,
};
use uuid::Uuid;

store::on_both_stores! {
    append_then_read => sqlite_append_then_read, postgres_append_then_read;
    optimistic_concurrency => sqlite_optimistic_concurrency, postgres_optimistic_concurrency;
    batch_is_all_or_nothing => sqlite_batch_is_all_or_nothing, postgres_batch_is_all_or_nothing;
    execute_task_commands => sqlite_execute_task_commands, postgres_execute_task_commands;
    idempotent_commands => sqlite_idempotent_commands, postgres_idempotent_commands;
    concurrent_execute_same_aggregate =>
        sqlite_concurrent_execute_same_aggregate, postgres_concurrent_execute_same_aggregate;
    read_from_checkpoint => sqlite_read_from_checkpoint, postgres_read_from_checkpoint;
    snapshots_match_full_replay => sqlite_snapshots_match_full_replay, postgres_snapshots_match_full_replay;
    snapshot_not_double_applied =>
        sqlite_snapshot_not_double_applied, postgres_snapshot_not_double_applied;
    wakeups_after_append => sqlite_wakeups_after_append, postgres_wakeups_after_append;
    migrate_is_idempotent => sqlite_migrate_is_idempotent, postgres_migrate_is_idempotent;
    leases_are_exclusive => sqlite_leases_are_exclusive, postgres_leases_are_exclusive;
    held_leases_leave_the_pool => sqlite_held_leases_leave_the_pool, postgres_held_leases_leave_the_pool;
    checkpoints_round_trip => sqlite_checkpoints_round_trip, postgres_checkpoints_round_trip;
    receipt_guards_the_append => sqlite_receipt_guards_the_append, postgres_receipt_guards_the_append;
    feed_answers_as_the_log => sqlite_feed_answers_as_the_log, postgres_feed_answers_as_the_log;
    feed_reads_once_for_many => sqlite_feed_reads_once_for_many, postgres_feed_reads_once_for_many;
    cached_aggregates_stay_true =>
        sqlite_cached_aggregates_stay_true, postgres_cached_aggregates_stay_true;
    concurrent_appends_answer_each_command =>
        sqlite_concurrent_appends_answer_each_command, postgres_concurrent_appends_answer_each_command;
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const ALICE: Uuid = Uuid::from_u128(0xa11ce);
const BOB: Uuid = Uuid::from_u128(0xb0b);

/// A bound on every wait for something that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(10);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid time")
}

fn issue(actor: Uuid, seconds: i64, command: TaskCommand) -> Issued<TaskCommand> {
    Issued::new(actor, at(seconds), command)
}

fn create(task_id: Uuid, title: &str) -> TaskCommand {
    TaskCommand::Create(NewTask {
        task_id,
        title: title.into(),
        ..Default::default()
    })
}

fn retitle(title: impl Into<String>) -> TaskCommand {
    TaskCommand::Update(TaskChanges {
        title: Some(title.into()),
        ..Default::default()
    })
}

fn user_meta(user: Uuid) -> HashMap<String, String> {
    HashMap::from([(meta::USER_ID.to_string(), user.to_string())])
}

fn key(user: Uuid, command_id: &str) -> CommandKey {
    CommandKey {
        user_id: user,
        command_id: command_id.into(),
    }
}

/// A raw event for [`Journal::append`]; its metadata carries a fresh event id and `user`.
fn raw_event(
    aggregate_id: &str,
    event_type: &str,
    payload: Value,
    user: Option<Uuid>,
) -> SerializedEvent {
    let mut metadata = serde_json::Map::new();
    metadata.insert(meta::EVENT_ID.into(), Uuid::now_v7().to_string().into());
    if let Some(user) = user {
        metadata.insert(meta::USER_ID.into(), user.to_string().into());
    }
    SerializedEvent {
        aggregate_id: aggregate_id.into(),
        sequence: 0, // assigned by the append from expected_version
        aggregate_type: Counter::TYPE.into(),
        event_type: event_type.into(),
        event_version: "1".into(),
        payload,
        metadata: Value::Object(metadata),
    }
}

fn event_id_of(event: &SerializedEvent) -> Uuid {
    Uuid::parse_str(event.metadata[meta::EVENT_ID].as_str().expect("event id")).expect("uuid")
}

fn batch(aggregate_id: &str, expected_version: u64, events: Vec<SerializedEvent>) -> AppendBatch {
    AppendBatch::new(Counter::TYPE, aggregate_id, expected_version, events)
}

/// Appends `n` counter events to `aggregate_id` after `expected_version`.
async fn append_n(
    store: &Store,
    aggregate_id: &str,
    expected_version: u64,
    n: usize,
) -> AppendOutcome {
    let events = (0..n)
        .map(|i| {
            raw_event(
                aggregate_id,
                "Added",
                json!({"Added": {"n": i + 1}}),
                Some(ALICE),
            )
        })
        .collect();
    store
        .append(batch(aggregate_id, expected_version, events))
        .await
        .expect("append")
}

async fn read_all(store: &Store) -> Vec<LoggedEvent> {
    store
        .read_after(Position::START, 100_000)
        .await
        .expect("read_after")
}

/// Rows in the events table, counted behind the store's back.
async fn event_count(store: &Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM events";
    match store {
        Store::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
        Store::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.reader()).await,
    }
    .expect("count events")
}

/// Whether an event with this id is in the events table.
async fn has_event(store: &Store, event_id: Uuid) -> bool {
    let n: i64 = match store {
        Store::Postgres(s) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_one(s.pool())
                .await
        }
        Store::Sqlite(s) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_id = $1")
                .bind(event_id.to_string())
                .fetch_one(s.reader())
                .await
        }
    }
    .expect("look up event");
    n > 0
}

/// The stored snapshot row `(last_sequence, payload)` of one aggregate.
async fn snapshot_row(
    store: &Store,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Option<(i64, Value)> {
    let sql = "SELECT last_sequence, payload FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2";
    match store {
        Store::Postgres(s) => sqlx::query_as::<_, (i64, Value)>(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(s.pool())
            .await
            .expect("snapshot row"),
        Store::Sqlite(s) => sqlx::query_as::<_, (i64, String)>(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_optional(s.reader())
            .await
            .expect("snapshot row")
            .map(|(seq, text)| (seq, serde_json::from_str(&text).expect("snapshot json"))),
    }
}

fn assert_strictly_increasing(events: &[LoggedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions not strictly increasing: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
}

/// A minimal aggregate whose events are not idempotent: applying one twice shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    value: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Added { n: u64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Added".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("counter refused")]
struct CounterError;

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = u64;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    async fn handle(&mut self, n: u64, _: &(), sink: &EventSink<Self>) -> Result<(), CounterError> {
        if n == 0 {
            return Err(CounterError);
        }
        sink.write(CounterEvent::Added { n }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        match event {
            CounterEvent::Added { n } => self.value += n,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Appended events come back, in order, with their identity columns and payloads intact.
async fn append_then_read(store: Store) {
    let recorded = "2025-06-01T12:00:00.123456Z";
    let mut first = vec![
        raw_event(
            "c-1",
            "Added",
            json!({"Added": {"n": 1}, "text": "grüße ✓ \"quoted\"", "nested": [1, 2.5, null, {"deep": true}]}),
            Some(ALICE),
        ),
        raw_event("c-1", "Added", json!({"Added": {"n": 2}}), Some(ALICE)),
        raw_event("c-1", "Reset", json!("Reset"), None),
    ];
    first[1].metadata[meta::RECORDED_AT] = recorded.into();
    let first_ids: Vec<Uuid> = first.iter().map(event_id_of).collect();
    let receipt1 = store
        .append(batch("c-1", 0, first.clone()))
        .await
        .expect("first append")
        .receipt()
        .clone();
    assert_eq!(receipt1.version, 3);
    assert_eq!(receipt1.event_ids, first_ids);

    // An event without an event id in its metadata gets one, and the receipt names it.
    let mut bare = raw_event("c-2", "Added", json!({"Added": {"n": 7}}), Some(BOB));
    bare.metadata = json!({ meta::USER_ID: BOB.to_string() });
    let receipt2 = store
        .append(batch("c-2", 0, vec![bare.clone()]))
        .await
        .expect("second append")
        .receipt()
        .clone();
    assert_eq!(receipt2.version, 1);
    assert_eq!(receipt2.event_ids.len(), 1);

    wait_for_head(&store, receipt2.position.expect("a position")).await;

    // cqrs-es view: one aggregate's stream, sequences 1..=3.
    let stream = store
        .get_events::<Counter>("c-1")
        .await
        .expect("get_events");
    assert_eq!(stream.len(), 3);
    for (i, (got, sent)) in stream.iter().zip(&first).enumerate() {
        assert_eq!(got.sequence, i + 1);
        assert_eq!(got.aggregate_type, "counter");
        assert_eq!(got.aggregate_id, "c-1");
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(got.event_version, "1");
        assert_eq!(got.payload, sent.payload, "payload round trip");
        assert_eq!(event_id_of(got), first_ids[i]);
    }
    let last = store
        .get_last_events::<Counter>("c-1", 2)
        .await
        .expect("get_last_events");
    assert_eq!(last.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3]);

    // The log view: every event, in global order, identity columns from metadata.
    let log = read_all(&store).await;
    assert_eq!(log.len(), 4);
    assert_strictly_increasing(&log);
    assert_eq!(
        log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [first_ids.clone(), receipt2.event_ids.clone()].concat()
    );
    assert_eq!(
        log.iter()
            .map(|e| (e.aggregate_id.as_str(), e.sequence))
            .collect::<Vec<_>>(),
        [("c-1", 1), ("c-1", 2), ("c-1", 3), ("c-2", 1)]
    );
    assert_eq!(
        log.iter().map(|e| e.user_id).collect::<Vec<_>>(),
        [Some(ALICE), Some(ALICE), None, Some(BOB)]
    );
    assert_eq!(
        log[1].recorded_at,
        DateTime::parse_from_rfc3339(recorded).unwrap()
    );
    for (got, sent) in log.iter().zip(&first) {
        assert_eq!(got.payload, sent.payload, "payload round trip");
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(
            got.meta(meta::EVENT_ID),
            sent.metadata[meta::EVENT_ID].as_str()
        );
        assert_eq!(
            got.meta(meta::USER_ID),
            sent.metadata.get(meta::USER_ID).and_then(Value::as_str)
        );
    }
    assert_eq!(
        log[3].meta(meta::EVENT_ID),
        Some(receipt2.event_ids[0].to_string().as_str())
    );
    assert!(
        log[3].meta(meta::RECORDED_AT).is_some(),
        "a record time is stamped"
    );
    assert_eq!(log[3].payload, bare.payload);
    assert_eq!(receipt1.position, Some(log[2].position));
    assert_eq!(receipt2.position, Some(log[3].position));
    assert_eq!(log[2].to_serialized().sequence, 3);
}

/// Two appends decided on the same version: one wins, the other conflicts and writes nothing.
async fn optimistic_concurrency(store: Store) {
    append_n(&store, "c-1", 0, 1).await;
    let single = vec![raw_event(
        "c-1",
        "Added",
        json!({"Added": {"n": 10}}),
        Some(ALICE),
    )];
    let triple: Vec<_> = (0..3)
        .map(|i| raw_event("c-1", "Added", json!({"Added": {"n": 20 + i}}), Some(BOB)))
        .collect();
    let (a, b) = tokio::join!(
        store.append(batch("c-1", 1, single.clone())),
        store.append(batch("c-1", 1, triple.clone())),
    );
    let (winner, loser) = match (&a, &b) {
        (Ok(AppendOutcome::Committed(_)), Err(StoreError::Conflict)) => (&single, &triple),
        (Err(StoreError::Conflict), Ok(AppendOutcome::Committed(_))) => (&triple, &single),
        other => panic!("expected exactly one commit and one conflict, got {other:?}"),
    };
    assert_eq!(event_count(&store).await, 1 + winner.len() as i64);
    for event in loser {
        assert!(
            !has_event(&store, event_id_of(event)).await,
            "loser's event was written"
        );
    }
    for event in winner {
        assert!(
            has_event(&store, event_id_of(event)).await,
            "winner's event is missing"
        );
    }
    let stream = store.get_events::<Counter>("c-1").await.unwrap();
    let expected: Vec<usize> = (1..=1 + winner.len()).collect();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        expected
    );

    // A stale writer keeps conflicting; the log does not move.
    let before = event_count(&store).await;
    let stale = store.append(batch("c-1", 1, loser.clone())).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    assert_eq!(event_count(&store).await, before);
}

/// A batch whose last event collides writes none of its earlier events either.
async fn batch_is_all_or_nothing(store: Store) {
    // Occupy sequence 3 only, so a 3-event batch from version 0 collides on its last event.
    append_n(&store, "c-gap", 2, 1).await;
    let before = event_count(&store).await;
    let three: Vec<_> = (0..3)
        .map(|i| raw_event("c-gap", "Added", json!({"Added": {"n": i}}), Some(ALICE)))
        .collect();
    let result = store.append(batch("c-gap", 0, three.clone())).await;
    assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    assert_eq!(event_count(&store).await, before, "partial write");
    for event in &three {
        assert!(!has_event(&store, event_id_of(event)).await);
    }
    // The failed transaction left nothing behind: the free sequences are still free.
    append_n(&store, "c-gap", 0, 2).await;
    let stream = store.get_events::<Counter>("c-gap").await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

/// Commands through `AggregateStore::execute`: versions, receipts, and rejected commands.
async fn execute_task_commands(store: Store) {
    let tasks = AggregateStore::<Task, Store>::new(store.clone());
    let id = Uuid::now_v7();
    let aid = id.to_string();

    let created = tasks
        .execute(
            &aid,
            issue(ALICE, 1, create(id, "Buy milk")),
            &(),
            user_meta(ALICE),
            None,
        )
        .await
        .expect("create");
    assert!(!created.duplicate);
    assert_eq!(created.receipt.version, 1);
    assert_eq!(created.receipt.aggregate_type, "task");
    assert_eq!(created.receipt.aggregate_id, aid);
    assert_eq!(created.envelopes.len(), 1);
    assert_eq!(created.envelopes[0].sequence, 1);

    let completed = tasks
        .execute(
            &aid,
            issue(ALICE, 2, TaskCommand::Complete),
            &(),
            user_meta(ALICE),
            None,
        )
        .await
        .expect("complete");
    assert_eq!(completed.receipt.version, 2);
    assert_eq!(completed.envelopes[0].sequence, 2);
    let (p1, p2) = (
        created.receipt.position.unwrap(),
        completed.receipt.position.unwrap(),
    );
    assert!(p1 < p2, "{p1} < {p2}");
    wait_for_head(&store, p2).await;

    let log = read_all(&store).await;
    assert_eq!(log.iter().map(|e| e.position).collect::<Vec<_>>(), [p1, p2]);
    assert_eq!(
        log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [
            created.receipt.event_ids.clone(),
            completed.receipt.event_ids.clone()
        ]
        .concat()
    );
    assert_eq!(
        log.iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["TaskCreated", "TaskCompleted"]
    );
    assert!(log.iter().all(|e| e.user_id == Some(ALICE)));
    assert_eq!(
        created.envelopes[0].metadata.get(meta::EVENT_ID),
        Some(&log[0].event_id.to_string())
    );

    let context = tasks.load_aggregate(&aid).await.unwrap();
    assert_eq!(context.current_sequence, 2);
    let state = context.aggregate.state().expect("created");
    assert_eq!(
        (state.title.as_str(), state.completed_at),
        ("Buy milk", Some(at(2)))
    );

    // Rejected by the aggregate: nothing is written, the head does not move.
    let head = store.head().await.unwrap();
    assert_eq!(head, p2);
    let again = tasks
        .execute(
            &aid,
            issue(ALICE, 3, TaskCommand::Complete),
            &(),
            user_meta(ALICE),
            Some(key(ALICE, "rej")),
        )
        .await;
    assert!(
        matches!(
            again,
            Err(AggregateError::UserError(DomainError::Rejected(_)))
        ),
        "{again:?}"
    );
    let foreign = tasks
        .execute(
            &aid,
            issue(BOB, 3, TaskCommand::Delete),
            &(),
            user_meta(BOB),
            None,
        )
        .await;
    assert!(
        matches!(
            foreign,
            Err(AggregateError::UserError(DomainError::NotFound { .. }))
        ),
        "{foreign:?}"
    );
    assert_eq!(event_count(&store).await, 2);
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(
        store.receipt(&key(ALICE, "rej")).await.unwrap(),
        None,
        "no receipt for a rejected command"
    );
    assert_eq!(
        tasks.load_aggregate(&aid).await.unwrap().current_sequence,
        2
    );
}

/// The same command id executes once; repeats answer with the first receipt.
async fn idempotent_commands(store: Store) {
    let tasks = AggregateStore::<Task, Store>::new(store.clone());
    let id = Uuid::now_v7();
    let aid = id.to_string();
    let k1 = key(ALICE, "cmd-1");

    let first = tasks
        .execute(
            &aid,
            issue(ALICE, 1, create(id, "Write tests")),
            &(),
            user_meta(ALICE),
            Some(k1.clone()),
        )
        .await
        .expect("first");
    assert!(!first.duplicate);
    assert_eq!(
        store.receipt(&k1).await.unwrap(),
        Some(first.receipt.clone())
    );

    let repeat = tasks
        .execute(
            &aid,
            issue(ALICE, 1, create(id, "Write tests")),
            &(),
            user_meta(ALICE),
            Some(k1.clone()),
        )
        .await
        .expect("repeat");
    assert!(repeat.duplicate);
    assert!(repeat.envelopes.is_empty());
    assert_eq!(
        repeat.receipt, first.receipt,
        "same event ids, same position"
    );
    assert_eq!(event_count(&store).await, 1);

    // Reused with a command that would write something else, or nothing: still the first receipt.
    let other = tasks
        .execute(
            &aid,
            issue(ALICE, 2, retitle("Changed")),
            &(),
            user_meta(ALICE),
            Some(k1.clone()),
        )
        .await
        .expect("reused id, other command");
    assert!(other.duplicate);
    assert_eq!(other.receipt, first.receipt);
    let noop = tasks
        .execute(
            &aid,
            issue(ALICE, 2, retitle("Write tests")),
            &(),
            user_meta(ALICE),
            Some(k1.clone()),
        )
        .await
        .expect("reused id, no-op command");
    assert!(noop.duplicate);
    assert_eq!(noop.receipt, first.receipt);
    assert_eq!(event_count(&store).await, 1);
    let title = tasks
        .load_aggregate(&aid)
        .await
        .unwrap()
        .aggregate
        .state()
        .unwrap()
        .title
        .clone();
    assert_eq!(title, "Write tests");

    // A new id whose command writes no event still records a receipt, and repeats return it.
    let k2 = key(ALICE, "cmd-2");
    let empty = tasks
        .execute(
            &aid,
            issue(ALICE, 3, retitle("Write tests")),
            &(),
            user_meta(ALICE),
            Some(k2.clone()),
        )
        .await
        .expect("no-op with a new id");
    assert!(!empty.duplicate);
    assert_eq!((empty.receipt.version, empty.receipt.position), (1, None));
    assert!(empty.receipt.event_ids.is_empty());
    let empty_again = tasks
        .execute(
            &aid,
            issue(ALICE, 4, retitle("Now it changes")),
            &(),
            user_meta(ALICE),
            Some(k2.clone()),
        )
        .await
        .expect("repeat of the no-op");
    assert!(empty_again.duplicate);
    assert_eq!(empty_again.receipt, empty.receipt);
    assert_eq!(event_count(&store).await, 1);

    // Keys are per user: Bob's "cmd-1" is not Alice's.
    let bob_id = Uuid::now_v7();
    let bob = tasks
        .execute(
            &bob_id.to_string(),
            issue(BOB, 5, create(bob_id, "Bob's")),
            &(),
            user_meta(BOB),
            Some(key(BOB, "cmd-1")),
        )
        .await
        .expect("bob");
    assert!(!bob.duplicate);
    assert_ne!(bob.receipt, first.receipt);
    assert_eq!(event_count(&store).await, 2);
}

/// The aggregate cache never decides on a state behind the log: two stores with caches of their
/// own (two processes) command one task in turn; a stale cached state is caught at the append
/// (conflict, reload) or, when it refuses, decided again on the stored state; a repeated command
/// id decided on a cached state still writes nothing.
async fn cached_aggregates_stay_true(store: Store) {
    let one = AggregateStore::<Task, Store>::new(store.clone()).with_cache(8);
    let two = AggregateStore::<Task, Store>::new(store.clone()).with_cache(8);
    let id = Uuid::now_v7();
    let aid = id.to_string();
    let run = |tasks: &AggregateStore<Task, Store>,
               seconds: i64,
               command: TaskCommand,
               key: Option<CommandKey>| {
        let tasks = tasks.clone();
        let aid = aid.clone();
        async move {
            tasks
                .execute(
                    &aid,
                    issue(ALICE, seconds, command),
                    &(),
                    user_meta(ALICE),
                    key,
                )
                .await
        }
    };
    let title = |tasks: AggregateStore<Task, Store>, aid: String| async move {
        let context = tasks.load_aggregate(&aid).await.expect("load");
        context.aggregate.state().expect("created").title.clone()
    };

    run(&one, 1, create(id, "first"), None)
        .await
        .expect("create");
    let hit = run(&one, 2, retitle("second"), None)
        .await
        .expect("retitle");
    assert_eq!((hit.receipt.version, one.cache().len()), (2, 1));

    // the other process moves the stream on: one's cached version 2 is now stale
    assert_eq!(
        run(&two, 3, retitle("third"), None)
            .await
            .expect("two")
            .receipt
            .version,
        3
    );
    let after_conflict = run(&one, 4, retitle("fourth"), None)
        .await
        .expect("stale cache");
    assert_eq!(
        after_conflict.receipt.version, 4,
        "decided again on the stored state"
    );
    assert_eq!(title(one.clone(), aid.clone()).await, "fourth");

    // one caches the task completed; two reopens it; one's cached state would refuse Complete
    run(&one, 5, TaskCommand::Complete, None)
        .await
        .expect("complete");
    assert_eq!(two.cache().len(), 1, "two still holds version 3");
    let reopened = run(&two, 6, TaskCommand::Reopen, None)
        .await
        .expect("reopen on a stale cache");
    assert_eq!(reopened.receipt.version, 6);
    let completed = run(&one, 7, TaskCommand::Complete, None)
        .await
        .expect("a refusal of the cached state is decided again on the stored one");
    assert_eq!(completed.receipt.version, 7);

    // a repeated command id whose new decision would write something: the first receipt, nothing written
    let k = key(ALICE, "cached-repeat");
    let first = run(&one, 8, TaskCommand::Reopen, Some(k.clone()))
        .await
        .expect("reopen");
    let before = event_count(&store).await;
    let repeat = run(&one, 9, retitle("never"), Some(k.clone()))
        .await
        .expect("repeat");
    assert!(repeat.duplicate && repeat.envelopes.is_empty());
    assert_eq!(repeat.receipt, first.receipt);
    assert_eq!(event_count(&store).await, before);
    assert_eq!(title(one.clone(), aid.clone()).await, "fourth");

    // the stream stays dense: 1..=8 in order, nothing lost or doubled
    let sequences: Vec<usize> = store
        .get_events::<Task>(&aid)
        .await
        .unwrap()
        .iter()
        .map(|e| e.sequence)
        .collect();
    assert_eq!(sequences, (1..=8).collect::<Vec<_>>());
    // and the cache can be turned off
    assert!(
        !AggregateStore::<Task, Store>::new(store.clone())
            .cache()
            .enabled()
    );
}

/// Many writers on one aggregate: all succeed (conflicts are retried) and sequences stay dense.
async fn concurrent_execute_same_aggregate(store: Store) {
    const WRITERS: usize = 20;
    let tasks = AggregateStore::<Task, Store>::new(store.clone());
    let id = Uuid::now_v7();
    let aid = id.to_string();
    tasks
        .execute(
            &aid,
            issue(ALICE, 0, create(id, "Contended")),
            &(),
            user_meta(ALICE),
            None,
        )
        .await
        .expect("create");

    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            let tasks = tasks.clone();
            let aid = aid.clone();
            tokio::spawn(async move {
                tasks
                    .execute(
                        &aid,
                        issue(ALICE, 1 + i as i64, retitle(format!("title {i}"))),
                        &(),
                        user_meta(ALICE),
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let outcome = handle
            .await
            .expect("writer task")
            .unwrap_or_else(|e| panic!("writer {i} failed: {e:?}"));
        assert_eq!(outcome.envelopes.len(), 1, "writer {i} wrote its update");
        versions.push(outcome.receipt.version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=1 + WRITERS as u64).collect::<Vec<_>>());

    let stream = store.get_events::<Task>(&aid).await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=1 + WRITERS).collect::<Vec<_>>(),
        "sequences 1..=N without gaps or duplicates"
    );
    let titles: HashSet<String> = stream[1..]
        .iter()
        .map(|e| {
            e.payload["TaskUpdated"]["title"]
                .as_str()
                .expect("title")
                .to_string()
        })
        .collect();
    assert_eq!(
        titles.len(),
        WRITERS,
        "every writer's update is in the stream once"
    );
    assert_eq!(event_count(&store).await, 1 + WRITERS as i64);
}

/// Reading in small batches from a checkpoint walks the log exactly once.
async fn read_from_checkpoint(store: Store) {
    let mut ids = Vec::new();
    let mut last_position = Position::START;
    for (aggregate, size) in [
        ("r-1", 1),
        ("r-2", 3),
        ("r-1", 2),
        ("r-3", 1),
        ("r-2", 4),
        ("r-4", 2),
    ] {
        let version = ids.iter().filter(|(a, _)| *a == aggregate).count() as u64;
        let outcome = append_n(&store, aggregate, version, size).await;
        last_position = outcome.receipt().position.expect("a position");
        for id in &outcome.receipt().event_ids {
            ids.push((aggregate, *id));
        }
    }
    let expected: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
    assert_eq!(expected.len(), 13);
    wait_for_head(&store, last_position).await;

    let mut checkpoint = Position::START;
    let mut walked: Vec<LoggedEvent> = Vec::new();
    let mut batches = 0;
    loop {
        let batch = store.read_after(checkpoint, 3).await.expect("read_after");
        assert!(batch.len() <= 3, "limit respected");
        let Some(last) = batch.last() else { break };
        assert!(
            batch[0].position > checkpoint,
            "nothing at or before the checkpoint"
        );
        checkpoint = last.position;
        walked.extend(batch);
        batches += 1;
        assert!(batches <= 10, "the walk does not end");
    }
    assert_eq!(batches, 5);
    assert_strictly_increasing(&walked);
    assert_eq!(
        walked.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        expected,
        "each event once, in order"
    );
    assert_eq!(walked, read_all(&store).await);

    let head = store.head().await.unwrap();
    assert_eq!(head, walked.last().unwrap().position);
    assert_eq!(checkpoint, head);
    assert!(store.read_after(head, 10).await.unwrap().is_empty());

    // Resuming from a middle checkpoint returns exactly the suffix.
    let middle = walked[6].position;
    assert_eq!(
        store.read_after(middle, 100).await.unwrap(),
        walked[7..].to_vec()
    );
    assert_eq!(store.read_after(Position::START, 0).await.unwrap(), vec![]);
}

/// A snapshotting store loads the same Task as a full replay, and snapshots at multiples of 3.
async fn snapshots_match_full_replay(store: Store) {
    let snapshotting =
        AggregateStore::<Task, Store>::new(store.clone()).with_snapshots(SnapshotPolicy::every(3));
    let replaying = AggregateStore::<Task, Store>::new(store.clone());
    let id = Uuid::now_v7();
    let aid = id.to_string();
    snapshotting
        .execute(
            &aid,
            issue(ALICE, 0, create(id, "Start")),
            &(),
            user_meta(ALICE),
            None,
        )
        .await
        .expect("create");
    for i in 1..=10u32 {
        let changes = TaskChanges {
            title: Some(format!("title {i}")),
            description: i.is_multiple_of(2).then(|| format!("d{i}")),
            priority: Some(i % 5),
            tags: (i == 4).then(|| vec!["four".into()]),
            ..Default::default()
        };
        let outcome = snapshotting
            .execute(
                &aid,
                issue(ALICE, i64::from(i), TaskCommand::Update(changes)),
                &(),
                user_meta(ALICE),
                None,
            )
            .await
            .expect("update");
        assert_eq!(outcome.receipt.version, 1 + u64::from(i));
        let expected_snapshot = match i + 1 {
            0..=2 => None,
            v => Some(v / 3 * 3),
        };
        assert_eq!(
            snapshot_row(&store, "task", &aid).await.map(|(seq, _)| seq),
            expected_snapshot.map(i64::from),
            "snapshot after version {}",
            i + 1
        );
    }
    assert_eq!(event_count(&store).await, 11);

    let (last_sequence, payload) = snapshot_row(&store, "task", &aid)
        .await
        .expect("a snapshot");
    assert_eq!(last_sequence, 9);

    let from_snapshot = snapshotting.load_aggregate(&aid).await.unwrap();
    let from_events = replaying.load_aggregate(&aid).await.unwrap();
    assert_eq!(from_snapshot.current_sequence, 11);
    assert_eq!(from_events.current_sequence, 11);
    assert_eq!(from_snapshot.current_snapshot, Some(9));
    assert_eq!(from_snapshot.aggregate, from_events.aggregate);

    // The snapshot itself is the state after exactly the first 9 events.
    let mut first_nine = Task::default();
    for envelope in replaying
        .load_events(&aid)
        .await
        .unwrap()
        .into_iter()
        .take(9)
    {
        first_nine.apply(envelope.payload);
    }
    let snapshotted: Task = serde_json::from_value(payload).expect("snapshot decodes as Task");
    assert_eq!(snapshotted, first_nine);
    assert_eq!(snapshotted.state().unwrap().title, "title 8");

    let expected = TaskState {
        task_id: id,
        owner: ALICE,
        title: "title 10".into(),
        description: "d10".into(),
        due: None,
        priority: 0,
        tags: vec!["four".into()],
        parent_task_id: None,
        project: None,
        series: None,
        completed_at: None,
        deleted_at: None,
        created_at: at(0),
        updated_at: at(10),
    };
    assert_eq!(from_snapshot.aggregate.state(), Some(&expected));

    // Commands keep working on top of the snapshot.
    let done = snapshotting
        .execute(
            &aid,
            issue(ALICE, 11, TaskCommand::Complete),
            &(),
            user_meta(ALICE),
            None,
        )
        .await
        .expect("complete");
    assert_eq!(done.receipt.version, 12);
    assert_eq!(snapshot_row(&store, "task", &aid).await.unwrap().0, 12);
    let reloaded = snapshotting.load_aggregate(&aid).await.unwrap();
    assert_eq!(
        reloaded.aggregate,
        replaying.load_aggregate(&aid).await.unwrap().aggregate
    );
    assert_eq!(
        reloaded.aggregate.state().unwrap().completed_at,
        Some(at(11))
    );
}

/// Regression (cqrs-es 0.5.0 snapshot stores apply new events twice): a counter at 4 must be
/// snapshotted as 4, not 8.
async fn snapshot_not_double_applied(store: Store) {
    let counters = AggregateStore::<Counter, Store>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(2));
    for _ in 0..4 {
        counters
            .execute("n-1", 1, &(), HashMap::new(), None)
            .await
            .expect("add");
    }
    let (seq, payload) = snapshot_row(&store, "counter", "n-1")
        .await
        .expect("a snapshot");
    assert_eq!((seq, payload), (4, json!({"value": 4})));
    assert_eq!(
        counters.load_aggregate("n-1").await.unwrap().aggregate,
        Counter { value: 4 }
    );

    counters
        .execute("n-1", 5, &(), HashMap::new(), None)
        .await
        .expect("add 5");
    assert_eq!(
        counters.load_aggregate("n-1").await.unwrap().aggregate,
        Counter { value: 9 }
    );
    let refused = counters.execute("n-1", 0, &(), HashMap::new(), None).await;
    assert!(
        matches!(refused, Err(AggregateError::UserError(CounterError))),
        "{refused:?}"
    );
    counters
        .execute("n-1", 1, &(), HashMap::new(), None)
        .await
        .expect("add 1");
    assert_eq!(
        snapshot_row(&store, "counter", "n-1").await.unwrap(),
        (6, json!({"value": 10}))
    );
    let replayed = AggregateStore::<Counter, Store>::new(store.clone())
        .load_aggregate("n-1")
        .await
        .unwrap();
    assert_eq!(replayed.aggregate, Counter { value: 10 });
}

/// A wake-up receiver sees a change after an append.
async fn wakeups_after_append(store: Store) {
    let mut rx = store.wakeups();
    rx.borrow_and_update();
    let before = *rx.borrow();
    append_n(&store, "w-1", 0, 1).await;
    tokio::time::timeout(PROMPTLY, rx.changed())
        .await
        .expect("woken within the bound")
        .expect("sender alive");
    assert!(*rx.borrow_and_update() > before);

    // Also for a receiver that is already waiting when the append happens.
    let mut waiting = store.wakeups();
    waiting.borrow_and_update();
    let waiter =
        tokio::spawn(async move { tokio::time::timeout(PROMPTLY, waiting.changed()).await });
    append_n(&store, "w-1", 1, 1).await;
    waiter
        .await
        .unwrap()
        .expect("woken within the bound")
        .expect("sender alive");
}

/// Running the migrations again changes nothing.
async fn migrate_is_idempotent(store: Store) {
    let outcome = append_n(&store, "m-1", 0, 2).await;
    wait_for_head(&store, outcome.receipt().position.expect("a position")).await;
    let applied = |store: Store| async move {
        let sql = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
        let n: i64 = match &store {
            Store::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
            Store::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.reader()).await,
        }
        .expect("migrations table");
        n
    };
    let before = applied(store.clone()).await;
    assert!(before >= 2, "the suite's store is migrated");
    migrate(&store).await.expect("second migrate");
    migrate(&store).await.expect("third migrate");
    assert_eq!(applied(store.clone()).await, before);
    let log = read_all(&store).await;
    assert_eq!(
        log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        outcome.receipt().event_ids
    );
    append_n(&store, "m-1", 2, 1).await;
    assert_eq!(event_count(&store).await, 3);
}

/// A lease has one holder; a standby takes it over once the holder lets go (drop or release).
/// A process holds one lease per projection plus the relay's: more leases than the store's
/// pool has connections (16) are held while appends and reads still get a connection at once.
async fn held_leases_leave_the_pool(store: Store) {
    let mut held = Vec::new();
    for i in 0..20 {
        held.push(
            store
                .try_lease(&format!("projection:p{i}"))
                .await
                .unwrap()
                .expect("free lease"),
        );
    }
    let receipt = tokio::time::timeout(Duration::from_secs(5), append_n(&store, "l-1", 0, 2))
        .await
        .expect("an append does not wait for a pooled connection")
        .receipt()
        .clone();
    assert_eq!(receipt.version, 2);
    assert!(
        store.try_lease("projection:p3").await.unwrap().is_none(),
        "still held"
    );
    for lease in &mut held {
        assert!(lease.is_held().await);
    }
    drop(held);
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        store.lease("projection:p3", Duration::from_millis(10)),
    )
    .await
    .expect("a dropped lease is free again")
    .unwrap();
    assert_eq!(again.name(), "projection:p3");
}

async fn leases_are_exclusive(store: Store) {
    let first = store.try_lease("relay").await.unwrap().expect("free lease");
    assert!(
        store.try_lease("relay").await.unwrap().is_none(),
        "held: no second holder"
    );
    let other = store.try_lease("projection:x").await.unwrap();
    assert!(other.is_some(), "leases of other names are independent");
    let standby = {
        let store = store.clone();
        tokio::spawn(async move { store.lease("relay", Duration::from_millis(10)).await })
    };
    assert!(
        !standby.is_finished(),
        "the standby waits while the lease is held"
    );
    drop(first);
    let mut taken = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .expect("standby took over within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(taken.name(), "relay");
    assert!(taken.is_held().await);
    taken.release().await;
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        store.lease("relay", Duration::from_millis(10)),
    )
    .await
    .expect("released lease is free again");
    assert!(again.is_ok());
}

/// Named checkpoints start at the beginning and keep what was saved.
async fn checkpoints_round_trip(store: Store) {
    assert_eq!(
        store.checkpoint("relay:test").await.unwrap(),
        Position::START
    );
    let p = Position { tx: 7, pos: 42 };
    store.save_checkpoint("relay:test", p).await.unwrap();
    assert_eq!(store.checkpoint("relay:test").await.unwrap(), p);
    let q = Position { tx: 8, pos: 43 };
    store.save_checkpoint("relay:test", q).await.unwrap();
    assert_eq!(store.checkpoint("relay:test").await.unwrap(), q);
    assert_eq!(store.checkpoint("other").await.unwrap(), Position::START);
}

/// A command id already receipted fails the whole append, even when the repeat raced past the
/// command path's receipt check and decided other events on another aggregate (a create): no
/// event, no snapshot, the first receipt back.
async fn receipt_guards_the_append(store: Store) {
    let k = key(ALICE, "cmd-create");
    let mut first = batch(
        "r-1",
        0,
        vec![raw_event(
            "r-1",
            "Added",
            json!({"Added": {"n": 1}}),
            Some(ALICE),
        )],
    );
    first.command = Some(k.clone());
    let AppendOutcome::Committed(receipt) = store.append(first).await.expect("first") else {
        panic!("the first append is committed");
    };
    assert!(receipt.position.is_some());
    assert_eq!(
        store.receipt(&k).await.expect("receipt"),
        Some(receipt.clone())
    );
    let mut repeat = batch(
        "r-2",
        0,
        vec![raw_event(
            "r-2",
            "Added",
            json!({"Added": {"n": 2}}),
            Some(ALICE),
        )],
    );
    repeat.command = Some(k.clone());
    repeat.snapshot = Some((1, json!({"n": 2})));
    match store.append(repeat).await.expect("repeat") {
        AppendOutcome::Duplicate(again) => assert_eq!(again, receipt),
        other => panic!("a repeated command id is a duplicate, got {other:?}"),
    }
    assert_eq!(event_count(&store).await, 1);
    assert!(
        store
            .get_snapshot::<Counter>("r-2")
            .await
            .expect("snapshot")
            .is_none(),
        "nothing of the repeat is written"
    );
}

/// Concurrent appends are group-committed: every command still gets its own answer. In one burst
/// of 64 appends, one per aggregate with a receipt, plus two racing on one aggregate's next
/// version and two sharing a command id: 64 commit with receipts that match the log, exactly one
/// of each pair commits, and the loser writes nothing (the duplicate gets the winner's receipt).
async fn concurrent_appends_answer_each_command(store: Store) {
    const APPENDS: usize = 64;
    let event =
        |aid: &str, n: usize| raw_event(aid, "Added", json!({"Added": {"n": n}}), Some(ALICE));
    append_n(&store, "raced", 0, 1).await;
    let before = event_count(&store).await;

    let mut batches = Vec::new();
    for i in 0..APPENDS {
        let aid = format!("burst-{i}");
        let mut b = batch(&aid, 0, vec![event(&aid, 1), event(&aid, 2)]);
        b.command = Some(key(ALICE, &format!("burst-cmd-{i}")));
        if i % 8 == 0 {
            b.snapshot = Some((2, json!({"n": i})));
        }
        batches.push(b);
    }
    let racers = [
        batch("raced", 1, vec![event("raced", 2)]),
        batch("raced", 1, vec![event("raced", 3)]),
    ];
    let mut twins = [
        batch("twin-a", 0, vec![event("twin-a", 1)]),
        batch("twin-b", 0, vec![event("twin-b", 1)]),
    ];
    for twin in &mut twins {
        twin.command = Some(key(ALICE, "twin-cmd"));
    }
    let racer_ids: Vec<Uuid> = racers.iter().map(|b| event_id_of(&b.events[0])).collect();
    let twin_ids: Vec<Uuid> = twins.iter().map(|b| event_id_of(&b.events[0])).collect();
    batches.extend(racers);
    batches.extend(twins);
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.append(b).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("append task"));
    }
    let newest = answers
        .iter()
        .filter_map(|a| a.as_ref().ok()?.receipt().position)
        .max()
        .expect("positions");
    wait_for_head(&store, newest).await;

    let log = read_all(&store).await;
    assert_strictly_increasing(&log);
    let position_of: HashMap<Uuid, Position> =
        log.iter().map(|e| (e.event_id, e.position)).collect();
    for (i, answer) in answers[..APPENDS].iter().enumerate() {
        let Ok(AppendOutcome::Committed(receipt)) = answer else {
            panic!("append {i} of the burst: {answer:?}");
        };
        assert_eq!((receipt.version, receipt.event_ids.len()), (2, 2));
        let last = receipt.event_ids[1];
        assert_eq!(
            receipt.position,
            position_of.get(&last).copied(),
            "append {i}: receipt position"
        );
        let stored = store
            .receipt(&key(ALICE, &format!("burst-cmd-{i}")))
            .await
            .expect("receipt")
            .expect("stored");
        assert_eq!(&stored, receipt);
        let snapshot = snapshot_row(&store, Counter::TYPE, &format!("burst-{i}")).await;
        assert_eq!(
            snapshot,
            (i % 8 == 0).then(|| (2, json!({"n": i}))),
            "append {i}: snapshot"
        );
    }
    let racing = &answers[APPENDS..APPENDS + 2];
    let won: Vec<usize> = (0..2)
        .filter(|&i| matches!(racing[i], Ok(AppendOutcome::Committed(_))))
        .collect();
    assert_eq!(won.len(), 1, "one racer commits: {racing:?}");
    let lost = 1 - won[0];
    assert!(
        matches!(racing[lost], Err(StoreError::Conflict)),
        "{:?}",
        racing[lost]
    );
    assert!(
        !position_of.contains_key(&racer_ids[lost]),
        "the losing racer wrote nothing"
    );

    let twins = &answers[APPENDS + 2..];
    let committed: Vec<&store::Receipt> = twins
        .iter()
        .filter_map(|a| match a {
            Ok(AppendOutcome::Committed(r)) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(committed.len(), 1, "one twin commits: {twins:?}");
    let duplicate = twins
        .iter()
        .find_map(|a| match a {
            Ok(AppendOutcome::Duplicate(r)) => Some(r),
            _ => None,
        })
        .expect("the other twin is a duplicate");
    assert_eq!(
        duplicate, committed[0],
        "the duplicate gets the first receipt"
    );
    let written: Vec<bool> = twin_ids
        .iter()
        .map(|id| position_of.contains_key(id))
        .collect();
    assert_eq!(
        written.iter().filter(|w| **w).count(),
        1,
        "one twin's event is in the log"
    );
    assert_eq!(event_count(&store).await, before + 2 * APPENDS as i64 + 2);

    // on PostgreSQL a group shares one transaction: the burst took fewer than one each
    if let Store::Postgres(_) = store {
        let transactions: HashSet<i64> = log.iter().map(|e| e.position.tx).collect();
        assert!(
            transactions.len() < APPENDS,
            "{} transactions for {APPENDS} concurrent appends: no group commit",
            transactions.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The shared log reader
// ---------------------------------------------------------------------------------------------

/// The positions and ids of a read, to compare a feed's answer with the store's.
fn identities<'a>(events: impl IntoIterator<Item = &'a LoggedEvent>) -> Vec<(Position, Uuid)> {
    events
        .into_iter()
        .map(|e| (e.position, e.event_id))
        .collect()
}

/// Whatever the consumers ask, in whatever order, with appends in between and segments trimmed
/// and evicted (capacity 7), a feed answers exactly what the store's reader answers.
async fn feed_answers_as_the_log(store: Store) {
    let feed = LogFeed::new(store.clone(), 7);
    let mut seed = 0x5eed_u64;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut positions = vec![Position::START];
    for round in 0..60 {
        if round % 3 == 0 {
            let id = format!("f-{}", next(4));
            let n = 1 + next(3) as usize;
            let version = versions.entry(id.clone()).or_default();
            let receipt = append_n(&store, &id, *version, n).await.receipt().clone();
            *version += n as u64;
            wait_for_head(&store, receipt.position.expect("a position")).await;
            let all = store
                .read_after(Position::START, 10_000)
                .await
                .expect("read");
            positions = std::iter::once(Position::START)
                .chain(all.iter().map(|e| e.position))
                .collect();
        }
        let after = positions[next(positions.len() as u64) as usize];
        let limit = 1 + next(9) as usize;
        let fed = feed.read_after(after, limit).await.expect("feed read");
        let direct = store.read_after(after, limit).await.expect("store read");
        assert_eq!(
            identities(fed.iter().map(|e| e.as_ref())),
            identities(&direct),
            "round {round}: after {after}, limit {limit}"
        );
    }
    assert!(
        feed.store_reads() < 60,
        "some reads were served from memory"
    );
}

/// Consumers reading the same part of the log share one store read; an append is seen by the
/// next read.
async fn feed_reads_once_for_many(store: Store) {
    let receipt = append_n(&store, "g-1", 0, 10).await.receipt().clone();
    wait_for_head(&store, receipt.position.expect("a position")).await;
    let feed = LogFeed::new(store.clone(), 100).tail_fresh(Duration::from_secs(3600));
    let first = feed.read_after(Position::START, 5).await.expect("read");
    assert_eq!(first.len(), 5);
    assert_eq!(feed.store_reads(), 1);
    // twelve more consumers (a rebuild of every read model) read the same batch
    for _ in 0..12 {
        let again = feed.read_after(Position::START, 5).await.expect("read");
        assert_eq!(
            identities(again.iter().map(|e| e.as_ref())),
            identities(first.iter().map(|e| e.as_ref()))
        );
    }
    let inside = feed.read_after(first[1].position, 3).await.expect("read");
    assert_eq!(
        identities(inside.iter().map(|e| e.as_ref())),
        identities(first[2..5].iter().map(|e| e.as_ref()))
    );
    assert_eq!(feed.store_reads(), 1, "served from memory");
    // the next batch: one store read, then shared
    let second = feed.read_after(first[4].position, 5).await.expect("read");
    assert_eq!(second.len(), 5);
    feed.read_after(first[4].position, 5).await.expect("read");
    assert_eq!(feed.store_reads(), 2);
    // an append after the end is read at once, whatever the feed saw before
    let end = second[4].position;
    assert!(feed.read_after(end, 5).await.expect("read").is_empty());
    let more = append_n(&store, "g-1", 10, 1).await.receipt().clone();
    let expected = more.position.expect("a position");
    wait_for_head(&store, expected).await;
    let tail = feed.read_after(end, 5).await.expect("read");
    assert_eq!(
        tail.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![expected]
    );
}
