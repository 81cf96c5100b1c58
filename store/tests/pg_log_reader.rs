//! The PostgreSQL log reader never skips an event, even when transactions commit out of
//! `global_position` order. PostgreSQL only: skipped when it is not reachable (outside CI).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cqrs_es::persist::SerializedEvent;
use serde_json::{Value, json};
use sqlx::Connection;
use store::postgres::PgStore;
use store::testing::{drop_postgres_store, fresh_postgres_store, wait_for_head};
use store::{AppendBatch, AppendOutcome, Journal, LoggedEvent, Position, Store, meta};
use tokio::sync::watch;
use uuid::Uuid;

const ALICE: Uuid = Uuid::from_u128(0xa11ce);

/// A bound on every wait for something that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(10);

fn pg(store: &Store) -> &PgStore {
    match store {
        Store::Postgres(pg) => pg,
        Store::Sqlite(_) => unreachable!("fresh_postgres_store returns PostgreSQL"),
    }
}

fn event(aggregate_id: &str, n: usize) -> SerializedEvent {
    SerializedEvent {
        aggregate_id: aggregate_id.into(),
        sequence: 0, // assigned by the append
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

fn batch(aggregate_id: &str, expected_version: u64, events: Vec<SerializedEvent>) -> AppendBatch {
    AppendBatch::new("counter", aggregate_id, expected_version, events)
}

/// A naive tailer: everything after a `global_position` checkpoint, in `global_position` order.
async fn naive_read_after(store: &Store, checkpoint: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT global_position FROM events WHERE global_position > $1 ORDER BY global_position",
    )
    .bind(checkpoint)
    .fetch_all(pg(store).pool())
    .await
    .expect("naive read")
}

/// Transaction A takes a lower `global_position` than B but commits after it. The log reader
/// holds B back while A runs, then returns A before B; a reader tailing `global_position`
/// would have moved past A for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_transaction_is_not_skipped() {
    let Some(store) = fresh_postgres_store().await else {
        return;
    };
    let mut conn = pg(&store).pool().acquire().await.expect("connection");
    let mut slow = Connection::begin(&mut *conn).await.expect("begin A");
    let a_id = Uuid::now_v7();
    let (a_pos, a_tx): (i64, String) = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
            payload, metadata, event_id, user_id, recorded_at) \
         VALUES ('counter', 'slow', 1, 'Added', '1', $1, $2, $3, $4, now()) \
         RETURNING global_position, transaction_id::text",
    )
    .bind(json!({"Added": {"n": 1}}))
    .bind(json!({ meta::EVENT_ID: a_id.to_string(), meta::USER_ID: ALICE.to_string() }))
    .bind(a_id)
    .bind(ALICE)
    .fetch_one(&mut *slow)
    .await
    .expect("insert A");
    let a_tx: i64 = a_tx.parse().expect("xid");

    // B is appended and committed through the store while A is still open.
    let AppendOutcome::Committed(b) = store
        .append(batch("fast", 0, vec![event("fast", 1)]))
        .await
        .expect("append B")
    else {
        panic!("B was not committed");
    };
    let b_pos = b.position.expect("B has a position");
    let b_id = b.event_ids[0];
    assert!(
        a_pos < b_pos.pos,
        "A took global_position {a_pos} before B's {}",
        b_pos.pos
    );
    assert!(
        a_tx < b_pos.tx,
        "A's transaction {a_tx} is older than B's {}",
        b_pos.tx
    );

    // While A runs, the log reader does not return B (nor A, uncommitted).
    let early = store.read_after(Position::START, 100).await.expect("read");
    assert!(
        early.iter().all(|e| e.event_id != b_id),
        "B returned while the older transaction A is still running: {early:?}"
    );
    assert!(early.is_empty(), "{early:?}");
    assert_eq!(store.head().await.expect("head"), Position::START);

    // A naive reader sees B now and checkpoints past A's position...
    let naive = naive_read_after(&store, 0).await;
    assert_eq!(naive, [b_pos.pos], "the naive reader sees B first");
    let naive_checkpoint = *naive.last().unwrap();

    slow.commit().await.expect("commit A");
    drop(conn);

    // ... so once A commits it never sees A: A is skipped for ever.
    assert!(a_pos < naive_checkpoint);
    assert!(
        naive_read_after(&store, naive_checkpoint).await.is_empty(),
        "the naive reader has skipped A"
    );

    // The log reader returns A, then B.
    wait_for_head(&store, b_pos).await;
    let log = store.read_after(Position::START, 100).await.expect("read");
    assert_eq!(
        log.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        [a_id, b_id],
        "A then B"
    );
    assert_eq!(
        log[0].position,
        Position {
            tx: a_tx,
            pos: a_pos
        }
    );
    assert_eq!(log[1].position, b_pos);
    assert!(log[0].position < log[1].position);
    assert_eq!(log[0].user_id, Some(ALICE));
    assert_eq!(store.head().await.expect("head"), b_pos);

    drop_postgres_store(store).await;
}

/// Regression: `head()` sorted transaction ids as text (its `transaction_id::text` output column
/// shadowed the column in ORDER BY), so once ids crossed 9999 -> 10000 it answered an old
/// position for ever and readers waiting for the head stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_orders_transaction_ids_as_numbers() {
    let Some(store) = fresh_postgres_store().await else {
        return;
    };
    // Explicit (old, hence readable) transaction ids: 10 is written first, 9 second.
    let mut ids = Vec::new();
    for tx in ["10", "9"] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata, event_id, user_id, recorded_at, transaction_id) \
             VALUES ('counter', $1, 1, 'Added', '1', '{}', $2, $3, NULL, now(), $1::xid8)",
        )
        .bind(tx)
        .bind(json!({ meta::EVENT_ID: id.to_string() }))
        .bind(id)
        .execute(pg(&store).pool())
        .await
        .expect("insert");
        ids.push(id);
    }
    let head = store.head().await.expect("head");
    assert_eq!(
        head.tx, 10,
        "the head is in the newest transaction, not the text-greatest"
    );
    assert_eq!(head.pos, 1);
    let log = store.read_after(Position::START, 10).await.expect("read");
    assert_eq!(
        log.iter()
            .map(|e| (e.position.tx, e.event_id))
            .collect::<Vec<_>>(),
        [(9, ids[1]), (10, ids[0])]
    );
    assert_eq!(log.last().map(|e| e.position), Some(head));
    assert!(store.read_after(head, 10).await.expect("read").is_empty());
    drop_postgres_store(store).await;
}

/// A tiny deterministic generator (xorshift64*) for the writers' choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WRITERS: usize = 8;
const EVENTS_PER_WRITER: usize = 200;
const AGGREGATES_PER_WRITER: usize = 3;

/// Appends `EVENTS_PER_WRITER` events in batches of 1 or 3 over a few aggregates of its own;
/// returns the event ids written and the position of the last one.
async fn writer(store: Store, index: usize) -> (Vec<Uuid>, Position) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x1000_0001));
    let mut versions = [0u64; AGGREGATES_PER_WRITER];
    let mut ids = Vec::with_capacity(EVENTS_PER_WRITER);
    let mut last = Position::START;
    while ids.len() < EVENTS_PER_WRITER {
        let remaining = EVENTS_PER_WRITER - ids.len();
        let size = if remaining >= 3 && rng.next().is_multiple_of(2) {
            3
        } else {
            1
        };
        let which = (rng.next() % AGGREGATES_PER_WRITER as u64) as usize;
        let aggregate = format!("w{index}-{which}");
        let events = (0..size)
            .map(|i| event(&aggregate, ids.len() + i))
            .collect();
        if rng.next().is_multiple_of(3) {
            tokio::task::yield_now().await;
        }
        let outcome = store
            .append(batch(&aggregate, versions[which], events))
            .await
            .unwrap_or_else(|e| panic!("writer {index}: {e}"));
        let receipt = outcome.receipt();
        versions[which] = receipt.version;
        ids.extend(&receipt.event_ids);
        last = last.max(receipt.position.expect("a position"));
        if rng.next().is_multiple_of(4) {
            tokio::task::yield_now().await;
        }
    }
    (ids, last)
}

/// Tails the log from the start until the writers are done (`done` holds the last position
/// any of them wrote) and everything up to there has been read.
async fn tail(store: Store, done: watch::Receiver<Option<Position>>) -> Vec<LoggedEvent> {
    let mut wakeups = store.wakeups();
    let mut checkpoint = Position::START;
    let mut seen: Vec<LoggedEvent> = Vec::new();
    loop {
        wakeups.borrow_and_update();
        let batch = store.read_after(checkpoint, 50).await.expect("read_after");
        assert!(batch.len() <= 50);
        if let Some(last) = batch.last() {
            assert!(
                batch[0].position > checkpoint,
                "read at or before the checkpoint"
            );
            checkpoint = last.position;
            seen.extend(batch);
            continue;
        }
        let finished = *done.borrow();
        if let Some(end) = finished {
            let head = store.head().await.expect("head");
            if head >= end
                && store
                    .read_after(checkpoint, 50)
                    .await
                    .expect("read_after")
                    .is_empty()
            {
                return seen;
            }
        }
        // Wait for the next append; the timeout is the poll fallback for commits that become
        // readable only when some other transaction ends (that wakes nobody).
        let _ = tokio::time::timeout(Duration::from_millis(50), wakeups.changed()).await;
    }
}

/// 8 writers racing while a reader tails the log: the reader sees every event exactly once,
/// in per-aggregate order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_tailing_reader_sees_everything_once() {
    let Some(store) = fresh_postgres_store().await else {
        return;
    };
    let (done_tx, done_rx) = watch::channel(None);
    let reader = tokio::spawn(tail(store.clone(), done_rx));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| tokio::spawn(writer(store.clone(), i)))
        .collect();
    let mut written = Vec::new();
    let mut end = Position::START;
    for handle in writers {
        let (ids, last) = handle.await.expect("writer task");
        written.extend(ids);
        end = end.max(last);
    }
    done_tx.send(Some(end)).expect("reader alive");
    let seen = match tokio::time::timeout(Duration::from_secs(120), reader).await {
        Ok(joined) => joined.expect("reader task"),
        Err(_) => panic!(
            "the reader did not catch up within 120 s: head {}, last written {end}; \
             transactions holding the xmin horizon back: {:?}",
            store.head().await.expect("head"),
            xmin_holders(&store).await
        ),
    };

    let total = WRITERS * EVENTS_PER_WRITER;
    assert_eq!(written.len(), total);
    let seen_ids: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    let seen_set: HashSet<Uuid> = seen_ids.iter().copied().collect();
    assert_eq!(seen_set.len(), seen_ids.len(), "an event was read twice");
    let table: HashSet<Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(pg(&store).pool())
        .await
        .expect("event ids")
        .into_iter()
        .collect();
    assert_eq!(table.len(), total);
    assert_eq!(
        seen_set, table,
        "the reader saw exactly the events in the table"
    );
    assert_eq!(seen_set, written.iter().copied().collect::<HashSet<_>>());

    for pair in seen.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions out of order"
        );
    }
    let mut per_aggregate: HashMap<&str, Vec<i64>> = HashMap::new();
    for e in &seen {
        per_aggregate
            .entry(&e.aggregate_id)
            .or_default()
            .push(e.sequence);
    }
    assert_eq!(per_aggregate.len(), WRITERS * AGGREGATES_PER_WRITER);
    for (aggregate, sequences) in &per_aggregate {
        let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(
            sequences, &expected,
            "sequences of {aggregate} out of order"
        );
    }
    assert_eq!(store.head().await.expect("head"), end);

    drop_postgres_store(store).await;
}

/// The cluster's running transactions that have an id (any of them holds readers back).
async fn xmin_holders(
    store: &Store,
) -> Vec<(
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
)> {
    sqlx::query_as(
        "SELECT datname::text, backend_xid::text, state, left(query, 120) FROM pg_stat_activity \
         WHERE backend_xid IS NOT NULL ORDER BY xact_start",
    )
    .fetch_all(pg(store).pool())
    .await
    .unwrap_or_default()
}

/// An append through one `PgStore` wakes another one on the same database (LISTEN/NOTIFY), as
/// it would another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_another_store() {
    let Some(store) = fresh_postgres_store().await else {
        return;
    };
    let other = PgStore::from_pool(pg(&store).pool().clone());
    let mut wakeups = other.wakeups();
    // The listener bumps once when LISTEN is in place.
    tokio::time::timeout(PROMPTLY, wakeups.changed())
        .await
        .expect("the listener started")
        .expect("sender alive");
    wakeups.borrow_and_update();
    let outcome = store
        .append(batch("n-1", 0, vec![event("n-1", 1)]))
        .await
        .expect("append");
    tokio::time::timeout(PROMPTLY, wakeups.changed())
        .await
        .expect("the NOTIFY reached the other store")
        .expect("sender alive");
    let position = outcome.receipt().position.expect("a position");
    wait_for_head(&Store::Postgres(other.clone()), position).await;
    let log: Vec<Value> = other
        .read_after(Position::START, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(log, [json!({"Added": {"n": 1}})]);
    drop(wakeups);
    drop_postgres_store(store).await;
}
