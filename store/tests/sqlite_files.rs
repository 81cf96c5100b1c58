//! The embedded store's two files: the log (events, snapshots, receipts) and the read models
//! beside it, each with its own writing connection, so neither file's writes wait for the
//! other's.

use std::time::Duration;

use cqrs_es::persist::SerializedEvent;
use serde_json::json;
use store::sqlite::{SqliteStore, read_models_file};
use store::testing::tempfile::tempdir;
use store::{AppendBatch, AppendOutcome, Journal, Position, Store, meta};
use uuid::Uuid;

/// A bound on every wait for something that should happen promptly (the busy timeout a blocked
/// writer would wait is 10 s: a writer that shares a lock fails this bound).
const PROMPTLY: Duration = Duration::from_secs(5);

fn batch(aggregate_id: &str, expected_version: u64) -> AppendBatch {
    let event = SerializedEvent {
        aggregate_id: aggregate_id.into(),
        sequence: 0,
        aggregate_type: "counter".into(),
        event_type: "Added".into(),
        event_version: "1".into(),
        payload: json!({"Added": {"n": 1}}),
        metadata: json!({
            meta::EVENT_ID: Uuid::now_v7().to_string(),
            meta::USER_ID: Uuid::from_u128(0xa11ce).to_string(),
        }),
    };
    AppendBatch::new("counter", aggregate_id, expected_version, vec![event])
}

fn sqlite_of(store: &Store) -> SqliteStore {
    let Store::Sqlite(sqlite) = store.clone() else {
        panic!("sqlite_store opens SQLite");
    };
    sqlite
}

#[tokio::test]
async fn appends_commit_while_a_read_model_transaction_is_open() {
    let dir = tempdir().expect("temp dir");
    let store = store::testing::sqlite_store(dir.path()).await;
    let sqlite = sqlite_of(&store);
    assert!(read_models_file(sqlite.path()).exists());

    // a read-model commit in progress: the read-model file's write lock is taken
    let mut held = sqlite.read_model_writer().begin().await.expect("begin");
    sqlx::query(store::upsert_checkpoint_sql())
        .bind("held")
        .bind(0_i64)
        .bind(7_i64)
        .bind("2026-01-01T00:00:00Z")
        .execute(&mut *held)
        .await
        .expect("write in the read-model file");

    let appended = tokio::time::timeout(PROMPTLY, store.append(batch("a", 0)))
        .await
        .expect("the append waited for the read-model transaction")
        .expect("append");
    assert!(matches!(appended, AppendOutcome::Committed(_)));
    assert_eq!(store.head().await.expect("head").pos, 1);
    held.commit()
        .await
        .expect("commit the read-model transaction");
    assert_eq!(
        store.checkpoint("held").await.expect("checkpoint"),
        Position { tx: 0, pos: 7 }
    );

    // and the other way round: a checkpoint saves while the log's writer is in a transaction
    let mut log = sqlite.writer().begin().await.expect("begin");
    sqlx::query("DELETE FROM events WHERE global_position = -1")
        .execute(&mut *log)
        .await
        .expect("take the log's write lock");
    tokio::time::timeout(
        PROMPTLY,
        store.save_checkpoint("relay:test", Position { tx: 0, pos: 1 }),
    )
    .await
    .expect("the checkpoint waited for the log's transaction")
    .expect("save checkpoint");
    log.rollback().await.expect("rollback");
    store.close().await;
}

#[tokio::test]
async fn a_deleted_read_model_file_starts_again_empty_and_keeps_the_log() {
    let dir = tempdir().expect("temp dir");
    let store = store::testing::sqlite_store(dir.path()).await;
    let sqlite = sqlite_of(&store);
    store.append(batch("a", 0)).await.expect("append");
    store
        .save_checkpoint("model", Position { tx: 0, pos: 1 })
        .await
        .expect("save checkpoint");
    let files = (sqlite.path().to_path_buf(), read_models_file(sqlite.path()));
    store.close().await;

    for suffix in ["", "-wal", "-shm"] {
        let mut name = files.1.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
    let reopened = store::testing::sqlite_store(dir.path()).await;
    assert_eq!(
        reopened.checkpoint("model").await.expect("checkpoint"),
        Position::START,
        "checkpoints live in the read-model file"
    );
    assert_eq!(
        reopened.head().await.expect("head").pos,
        1,
        "the log is kept"
    );
    assert!(files.1.exists(), "the read-model file is created again");
    reopened.close().await;
}
