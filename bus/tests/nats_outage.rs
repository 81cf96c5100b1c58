//! NATS goes away while commands flow: the relay reports `Retrying`, commands keep committing,
//! and once the same server (same port, same storage) is back every event arrives exactly once.
//!
//! A relay may also start before NATS does: it waits, retrying, and publishes once NATS is up.
//!
//! Runs a `nats-server` of its own: the shared server on 4222 is never touched.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bus::{JetStreamPublisher, Relay, RelayState};
use common::WAIT;
use common::{
    NatsServer, TestStream, Workload, assert_exactly_once, free_port, log_up_to,
    nats_server_binary, wait_caught_up, wait_status,
};
use store::Store;
use tokio::time::timeout;

store::on_both_stores! {
    relay_survives_a_nats_outage => sqlite_relay_survives_a_nats_outage, postgres_relay_survives_a_nats_outage;
    relay_starts_while_nats_is_down => sqlite_relay_starts_while_nats_is_down, postgres_relay_starts_while_nats_is_down;
}

async fn relay_survives_a_nats_outage(store: Store) {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let storage = tempfile::tempdir().expect("temp dir");
    let mut server = NatsServer::start(&binary, free_port(), storage.path()).await;

    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempts| Duration::from_millis((50 * attempts as u64).min(500)))
        .connect(server.url())
        .await
        .expect("connect");
    let stream = TestStream::new(&client);
    let publisher = Arc::new(
        JetStreamPublisher::new(
            client.clone(),
            bus::JetStreamConfig {
                ack_timeout: Duration::from_secs(1),
                ..stream.config.clone()
            },
        )
        .expect("config"),
    );
    let relay = Relay::new(store.clone(), publisher.clone())
        .batch_size(8)
        .idle_poll(Duration::from_millis(50))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .spawn();
    let mut status = relay.status();
    let work = Workload::new(&store);

    let before = work.run(2).await;
    wait_caught_up(&relay, before).await;

    server.stop().await;
    // Commands keep working: the log is the truth.
    let during = work.run(3).await;
    let retrying = wait_status(&mut status, "a retrying relay", |s| {
        matches!(s.state, RelayState::Retrying { .. })
    })
    .await;
    let RelayState::Retrying { last_error, .. } = &retrying.state else {
        unreachable!()
    };
    assert!(!last_error.is_empty());
    assert_eq!(
        retrying.checkpoint, before,
        "nothing written during the outage is checkpointed: {retrying:?}"
    );
    assert!(during > before);

    server.restart().await;
    let after = work.run(1).await;
    let caught_up = wait_caught_up(&relay, after).await;
    assert_eq!(caught_up.state, RelayState::Live);

    let log = log_up_to(&store, after).await;
    assert_eq!(log.len(), 6 * common::SCRIPT_LEN);
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);

    relay.stop().await.expect("stop");
    server.stop().await;
}

async fn relay_starts_while_nats_is_down(store: Store) {
    let Some(binary) = nats_server_binary() else {
        return;
    };
    let storage = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let config = bus::JetStreamConfig {
        ack_timeout: Duration::from_secs(1),
        ..TestStream::unique_config()
    };
    // Nothing listens yet: connecting still succeeds (the client keeps trying).
    let publisher = timeout(WAIT, JetStreamPublisher::connect(&url, config.clone()))
        .await
        .expect("connect returns while NATS is down")
        .expect("connect");
    let relay = Relay::new(store.clone(), Arc::new(publisher))
        .idle_poll(Duration::from_millis(50))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .spawn();
    let mut status = relay.status();
    let work = Workload::new(&store);
    let last = work.run(2).await;
    let retrying = wait_status(&mut status, "a retrying relay", |s| {
        matches!(s.state, RelayState::Retrying { .. })
    })
    .await;
    assert_eq!(retrying.published, 0);

    let server = NatsServer::start(&binary, port, storage.path()).await;
    assert_eq!(server.url(), url);
    wait_caught_up(&relay, last).await;
    let client = async_nats::connect(&url).await.expect("connect");
    let stream = TestStream::with_config(&client, config);
    let log = log_up_to(&store, last).await;
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);
    relay.stop().await.expect("stop");
}
