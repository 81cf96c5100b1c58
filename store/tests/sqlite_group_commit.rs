//! Group commit on SQLite: concurrent appends share one transaction (one COMMIT, one fsync) and
//! each command still succeeds or fails on its own.
//!
//! To put commands in one group without sleeping, a test holds the store's only writing
//! connection, starts the appends, waits until the store counts them all in flight (each is then
//! in the appender's queue, or the first one is waiting for the connection) and releases the
//! connection: the appender takes everything queued once it has the connection. The store's
//! wake-up counter moves once per committed group, which tells how many commits there were.

use std::collections::HashMap;
use std::time::Duration;

use cqrs_es::persist::SerializedEvent;
use serde_json::{Value, json};
use store::sqlite::SqliteStore;
use store::testing::tempfile::{TempDir, tempdir};
use store::{AppendBatch, AppendOutcome, CommandKey, Journal, LoggedEvent, Position, Store};
use store::{StoreError, meta};
use tokio::task::JoinHandle;
use uuid::Uuid;

const ALICE: Uuid = Uuid::from_u128(0xa11ce);

/// A bound on every wait for something that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(10);

type Appended = Result<AppendOutcome, StoreError>;

/// A migrated SQLite store (the directory must outlive it) and its backend.
async fn open() -> (TempDir, Store, SqliteStore) {
    let dir = tempdir().expect("temp dir");
    let store = store::testing::sqlite_store(dir.path()).await;
    let Store::Sqlite(sqlite) = store.clone() else {
        panic!("sqlite_store opens SQLite");
    };
    (dir, store, sqlite)
}

/// An event for `aggregate_id` with a fresh event id in its metadata.
fn event(aggregate_id: &str, n: usize) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: aggregate_id.into(),
        sequence: 0, // assigned by the append from expected_version
        aggregate_type: "counter".into(),
        event_type: "Added".into(),
        event_version: "1".into(),
        payload: json!({"Added": {"n": n}}),
        metadata: json!({
            meta::EVENT_ID: Uuid::now_v7().to_string(),
            meta::USER_ID: ALICE.to_string(),
        }),
    }
}

fn events(aggregate_id: &str, n: usize) -> Vec<SerializedEvent> {
    (0..n).map(|i| event(aggregate_id, i + 1)).collect()
}

fn event_id_of(event: &SerializedEvent) -> Uuid {
    Uuid::parse_str(event.metadata[meta::EVENT_ID].as_str().expect("event id")).expect("uuid")
}

fn batch(aggregate_id: &str, expected_version: u64, events: Vec<SerializedEvent>) -> AppendBatch {
    AppendBatch::new("counter", aggregate_id, expected_version, events)
}

fn key(command_id: &str) -> CommandKey {
    CommandKey {
        user_id: ALICE,
        command_id: command_id.into(),
    }
}

fn spawn_append(store: &Store, batch: AppendBatch) -> JoinHandle<Appended> {
    let store = store.clone();
    tokio::spawn(async move { store.append(batch).await })
}

/// Waits (polling, bounded) until `n` appends are handed to the appender and not answered.
async fn wait_in_flight(sqlite: &SqliteStore, n: usize) {
    let wait = async {
        while sqlite.appends_in_flight() != n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    if tokio::time::timeout(PROMPTLY, wait).await.is_err() {
        panic!(
            "expected {n} appends in flight, still {} after {PROMPTLY:?}",
            sqlite.appends_in_flight()
        );
    }
}

/// Runs `batches` as concurrent appends that all land in one group; returns their results in
/// the order given and how many groups were committed meanwhile.
async fn in_one_group(
    store: &Store,
    sqlite: &SqliteStore,
    batches: Vec<AppendBatch>,
) -> (Vec<Appended>, u64) {
    let wake = store.wakeups();
    let held = sqlite.writer().acquire().await.expect("hold the writer");
    let groups_before = *wake.borrow();
    let n = batches.len();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|b| spawn_append(store, b))
        .collect();
    wait_in_flight(sqlite, n).await;
    assert_eq!(
        *wake.borrow(),
        groups_before,
        "nothing commits while the writer is held"
    );
    drop(held);
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("append task"));
    }
    (results, *wake.borrow() - groups_before)
}

async fn read_all(store: &Store) -> Vec<LoggedEvent> {
    store
        .read_after(Position::START, 100_000)
        .await
        .expect("read_after")
}

/// Asserts the log's positions are exactly 1..=len.
fn assert_gap_free(log: &[LoggedEvent]) {
    let positions: Vec<i64> = log.iter().map(|e| e.position.pos).collect();
    let expected: Vec<i64> = (1..=log.len() as i64).collect();
    assert_eq!(positions, expected, "positions are not 1..=N");
}

async fn has_event(sqlite: &SqliteStore, event_id: Uuid) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_id = $1")
        .bind(event_id.to_string())
        .fetch_one(sqlite.reader())
        .await
        .expect("look up event");
    n > 0
}

async fn events_of(sqlite: &SqliteStore, aggregate_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE aggregate_id = $1")
        .bind(aggregate_id)
        .fetch_one(sqlite.reader())
        .await
        .expect("count events")
}

fn committed(result: &Appended) -> &store::Receipt {
    match result {
        Ok(AppendOutcome::Committed(receipt)) => receipt,
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// The commands queued together while the writer was busy commit as one group (one COMMIT):
/// the wake-up counter moves once for all of them, and each has its own receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_appends_commit_in_one_group() {
    let (_dir, store, sqlite) = open().await;
    let batches: Vec<_> = (0..64)
        .map(|i| batch(&format!("g-{i}"), 0, events(&format!("g-{i}"), 1)))
        .collect();
    let (results, groups) = in_one_group(&store, &sqlite, batches).await;
    assert_eq!(groups, 1, "64 queued commands, one commit");
    let log = read_all(&store).await;
    assert_gap_free(&log);
    assert_eq!(log.len(), 64);
    let mut positions: Vec<_> = results
        .iter()
        .map(|r| committed(r).position.expect("a position"))
        .collect();
    positions.sort();
    positions.dedup();
    assert_eq!(
        positions.len(),
        64,
        "every command has a position of its own"
    );
    assert_eq!(sqlite.appends_in_flight(), 0);
    store.close().await;
}

/// 64 tasks append 5 commands each to their own aggregate, all at once: every command commits,
/// the log is gap-free 1..=N, every receipt names its own events and its last event's position,
/// a command's events are contiguous, and each aggregate's commands follow each other in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_gap_free_and_match_their_receipts() {
    const TASKS: usize = 64;
    const COMMANDS: usize = 5;
    let (_dir, store, sqlite) = open().await;
    let wake = store.wakeups();
    let groups_before = *wake.borrow();
    // Hold the writer until every task's first command is queued, so they start as one group.
    let held = sqlite.writer().acquire().await.expect("hold the writer");
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let aggregate = format!("a-{t}");
                let mut version = 0;
                let mut done = Vec::new();
                for c in 0..COMMANDS {
                    let written = events(&aggregate, 1 + (t + c) % 3);
                    let ids: Vec<Uuid> = written.iter().map(event_id_of).collect();
                    let result = store.append(batch(&aggregate, version, written)).await;
                    let receipt = committed(&result).clone();
                    done.push((version, ids, receipt));
                    version += (1 + (t + c) % 3) as u64;
                }
                (aggregate, done)
            })
        })
        .collect();
    wait_in_flight(&sqlite, TASKS).await;
    drop(held);
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.expect("append task"));
    }
    let commands = (TASKS * COMMANDS) as u64;
    let groups = *wake.borrow() - groups_before;
    // The first 64 commands were one group; at most every later command is a group of its own.
    assert!(
        groups <= commands - TASKS as u64 + 1,
        "{groups} commits for {commands} commands"
    );

    let log = read_all(&store).await;
    assert_gap_free(&log);
    let by_id: HashMap<Uuid, &LoggedEvent> = log.iter().map(|e| (e.event_id, e)).collect();
    let total: usize = all
        .iter()
        .flat_map(|(_, done)| done.iter().map(|(_, ids, _)| ids.len()))
        .sum();
    assert_eq!(log.len(), total, "every event written once");
    for (aggregate, done) in &all {
        let mut last_position = Position::START;
        for (expected_version, ids, receipt) in done {
            assert_eq!(&receipt.aggregate_id, aggregate);
            assert_eq!(&receipt.event_ids, ids);
            assert_eq!(receipt.version, expected_version + ids.len() as u64);
            let written: Vec<&LoggedEvent> = ids.iter().map(|id| by_id[id]).collect();
            let last = written.last().expect("events");
            assert_eq!(receipt.position, Some(last.position), "receipt position");
            for (i, e) in written.iter().enumerate() {
                assert_eq!(&e.aggregate_id, aggregate);
                assert_eq!(e.sequence, (expected_version + 1 + i as u64) as i64);
                // one command's events are contiguous in the log
                assert_eq!(
                    e.position.pos,
                    last.position.pos - (written.len() - 1 - i) as i64
                );
            }
            assert!(
                written[0].position > last_position,
                "{aggregate}: a later command sits before an earlier one"
            );
            last_position = last.position;
        }
    }
    assert_eq!(sqlite.appends_in_flight(), 0);
    store.close().await;
}

/// Two commands on one aggregate decided on the same version in one group: the first commits,
/// the second conflicts and writes nothing; the unrelated commands of the group still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_in_a_group_fails_only_that_command() {
    let (_dir, store, sqlite) = open().await;
    committed(&store.append(batch("hot", 0, events("hot", 1))).await);
    let single = events("hot", 1);
    let double = events("hot", 2);
    let (results, groups) = in_one_group(
        &store,
        &sqlite,
        vec![
            batch("u-1", 0, events("u-1", 1)),
            batch("hot", 1, single.clone()),
            batch("hot", 1, double.clone()),
            batch("u-2", 0, events("u-2", 2)),
        ],
    )
    .await;
    assert_eq!(groups, 1, "one commit for the group");
    committed(&results[0]);
    committed(&results[3]);
    let (winner, loser) = match (&results[1], &results[2]) {
        (Ok(AppendOutcome::Committed(_)), Err(StoreError::Conflict)) => (&single, &double),
        (Err(StoreError::Conflict), Ok(AppendOutcome::Committed(_))) => (&double, &single),
        other => panic!("expected exactly one commit and one conflict, got {other:?}"),
    };
    for e in winner {
        assert!(
            has_event(&sqlite, event_id_of(e)).await,
            "winner's event missing"
        );
    }
    for e in loser {
        assert!(
            !has_event(&sqlite, event_id_of(e)).await,
            "loser's event written"
        );
    }
    assert_eq!(events_of(&sqlite, "hot").await, 1 + winner.len() as i64);
    let log = read_all(&store).await;
    assert_gap_free(&log);
    assert_eq!(log.len(), 1 + winner.len() + 1 + 2);
    store.close().await;
}

/// Two commands with the same command id (on different aggregates) in one group: exactly one
/// writes, the other answers the first one's stored receipt and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_command_in_a_group_answers_the_first_receipt() {
    let (_dir, store, sqlite) = open().await;
    let k = key("same-command");
    let mut first = batch("d-1", 0, events("d-1", 1));
    first.command = Some(k.clone());
    let mut second = batch("d-2", 0, events("d-2", 2));
    second.command = Some(k.clone());
    second.snapshot = Some((2, json!({"n": 2})));
    let (results, groups) = in_one_group(
        &store,
        &sqlite,
        vec![first, second, batch("d-3", 0, events("d-3", 1))],
    )
    .await;
    assert_eq!(groups, 1, "one commit for the group");
    committed(&results[2]);
    let (receipt, repeated, loser) = match (&results[0], &results[1]) {
        (Ok(AppendOutcome::Committed(r)), Ok(AppendOutcome::Duplicate(d))) => (r, d, "d-2"),
        (Ok(AppendOutcome::Duplicate(d)), Ok(AppendOutcome::Committed(r))) => (r, d, "d-1"),
        other => panic!("expected one commit and one duplicate, got {other:?}"),
    };
    assert_eq!(repeated, receipt, "the duplicate answers the first receipt");
    assert_eq!(
        store.receipt(&k).await.expect("receipt").as_ref(),
        Some(receipt),
        "the stored receipt is the committed one"
    );
    assert_eq!(
        events_of(&sqlite, loser).await,
        0,
        "the duplicate wrote events"
    );
    assert_eq!(
        events_of(&sqlite, &receipt.aggregate_id).await,
        receipt.event_ids.len() as i64
    );
    let snapshots: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots")
        .fetch_one(sqlite.reader())
        .await
        .expect("count snapshots");
    let winner_snapshots = i64::from(receipt.aggregate_id == "d-2");
    assert_eq!(snapshots, winner_snapshots, "only the winner's snapshot");
    let log = read_all(&store).await;
    assert_gap_free(&log);
    assert_eq!(log.len() as i64, receipt.event_ids.len() as i64 + 1);
    store.close().await;
}

/// Commands that fail in the middle of a group (a conflict on the last of three events, an
/// undecodable event id on the second of two) leave no row behind: no event, snapshot or receipt,
/// and their positions are taken by the group's other events, so the log stays gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commands_in_a_group_leave_no_partial_rows() {
    let (_dir, store, sqlite) = open().await;
    // Occupy sequence 3 only: a 3-event batch from version 0 inserts two rows, then collides.
    committed(&store.append(batch("gap", 2, events("gap", 1))).await);
    let three = events("gap", 3);
    let mut colliding = batch("gap", 0, three.clone());
    colliding.snapshot = Some((3, json!({"n": 3})));
    colliding.command = Some(key("colliding"));
    let mut bad_pair = events("bad", 2);
    bad_pair[1].metadata[meta::EVENT_ID] = Value::from("not-a-uuid");
    let good_of_bad = event_id_of(&bad_pair[0]);
    let mut corrupt = batch("bad", 0, bad_pair);
    corrupt.command = Some(key("corrupt"));
    let (results, groups) = in_one_group(
        &store,
        &sqlite,
        vec![
            batch("x", 0, events("x", 1)),
            colliding,
            corrupt,
            batch("y", 0, events("y", 2)),
        ],
    )
    .await;
    assert_eq!(groups, 1, "one commit for the group");
    committed(&results[0]);
    committed(&results[3]);
    assert!(
        matches!(results[1], Err(StoreError::Conflict)),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Err(StoreError::Corrupt(_))),
        "{:?}",
        results[2]
    );
    for e in &three {
        assert!(!has_event(&sqlite, event_id_of(e)).await, "partial write");
    }
    assert!(!has_event(&sqlite, good_of_bad).await, "partial write");
    assert_eq!(events_of(&sqlite, "bad").await, 0);
    assert_eq!(events_of(&sqlite, "gap").await, 1);
    for k in ["colliding", "corrupt"] {
        assert_eq!(store.receipt(&key(k)).await.expect("receipt"), None);
    }
    let snapshots: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM snapshots")
        .fetch_one(sqlite.reader())
        .await
        .expect("count snapshots");
    assert_eq!(snapshots, 0, "the failed command's snapshot was written");
    let log = read_all(&store).await;
    assert_gap_free(&log);
    assert_eq!(log.len(), 1 + 1 + 2);
    // The rolled-back sequences are still free.
    committed(&store.append(batch("gap", 0, events("gap", 2))).await);
    assert_eq!(events_of(&sqlite, "gap").await, 3);
    store.close().await;
}

/// After `close`, appends (through any clone) fail instead of hanging or panicking; commands
/// without events or command id still answer without the appender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_close_fail() {
    let (_dir, store, sqlite) = open().await;
    committed(&store.append(batch("c", 0, events("c", 1))).await);
    let clone = store.clone();
    store.close().await;
    let result = clone.append(batch("c", 1, events("c", 1))).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    let empty = clone.append(batch("c", 1, Vec::new())).await;
    assert_eq!(committed(&empty).version, 1);
    assert_eq!(sqlite.appends_in_flight(), 0);
}
