//! The relay against the real NATS JetStream, on both stores: every event exactly once in
//! per-aggregate order, across crashes and a second relay; and the in-process bus carrying the
//! same envelope.
//!
//! Each test publishes to a stream and subject prefix of its own (`T_<uuid>`, `t<uuid>.events`)
//! and deletes it at the end. Waits are on the relay's status or the consumer, bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bus::{CloudEvent, InProcessBus, Publisher, Relay, RelayState};
use common::{
    TestStream, WAIT, Workload, assert_exactly_once, log_up_to, shared_nats, wait_caught_up,
    wait_status,
};
use rand::Rng;
use store::{Journal, Position, Store};
use tokio::time::timeout;
use uuid::Uuid;

store::on_both_stores! {
    every_event_arrives_once_in_aggregate_order => sqlite_every_event_arrives_once, postgres_every_event_arrives_once;
    crashes_never_lose_nor_repeat_an_event => sqlite_crashes_never_lose_nor_repeat, postgres_crashes_never_lose_nor_repeat;
    a_second_relay_waits_then_takes_over => sqlite_a_second_relay_waits_then_takes_over, postgres_a_second_relay_waits_then_takes_over;
    in_process_bus_carries_the_nats_envelope => sqlite_in_process_bus_carries_the_nats_envelope, postgres_in_process_bus_carries_the_nats_envelope;
}

/// A relay for tests: quick polls, quick lease retries, small batches.
fn relay(store: &Store, publisher: Arc<dyn Publisher>) -> Relay {
    Relay::new(store.clone(), publisher)
        .batch_size(16)
        .idle_poll(Duration::from_millis(50))
        .lease_retry(Duration::from_millis(20))
        .backoff(Duration::from_millis(20), Duration::from_millis(500))
}

async fn every_event_arrives_once_in_aggregate_order(store: Store) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let stream = TestStream::new(&client);
    let publisher = stream.publisher(&client);
    let work = Workload::new(&store);

    // Events from before the relay started (catch-up), then while it runs (live).
    let before = work.run(4).await;
    let relay = relay(&store, publisher.clone()).spawn();
    wait_caught_up(&relay, before).await;
    let last = work.run(5).await;
    let status = wait_caught_up(&relay, last).await;

    let log = log_up_to(&store, last).await;
    assert_eq!(log.len(), 9 * common::SCRIPT_LEN);
    assert_eq!(status.published, log.len() as u64);
    assert_eq!(status.state, RelayState::Live);
    assert_eq!(
        status.name,
        format!("relay:jetstream:{}", stream.config.stream)
    );
    assert_eq!(
        store.checkpoint(&status.name).await.expect("checkpoint"),
        log.last().unwrap().position,
        "the checkpoint is stored"
    );
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);
    // The global order is kept too (one publisher connection, batches in log order).
    let positions: Vec<Position> = received.iter().map(|m| m.event().position).collect();
    assert!(positions.is_sorted(), "messages out of log order");
    assert_eq!(publisher.duplicates(), 0);

    let final_status = relay.stop().await.expect("stop");
    assert_eq!(final_status.state, RelayState::Stopped);
    stream.delete().await;
}

async fn crashes_never_lose_nor_repeat_an_event(store: Store) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let stream = TestStream::new(&client);
    let publisher = stream.publisher(&client);
    let work = Workload::new(&store);

    // A crash exactly between the PubAck and the checkpoint: a batch published, not recorded.
    let first = work.run(2).await;
    store::testing::wait_for_head(&store, first).await;
    let unrecorded: Vec<CloudEvent> = store
        .read_after(Position::START, 5)
        .await
        .expect("read")
        .iter()
        .map(CloudEvent::from_logged)
        .collect();
    publisher.publish(&unrecorded).await.expect("publish");

    // Commands keep flowing (two writers at once) while relays are killed, or stopped, at
    // random points: at least 20 times, and until the writers are done.
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let work = Workload::new(&store);
            tokio::spawn(async move { work.run(15).await })
        })
        .collect();
    let mut rng = rand::rng();
    let mut cycle = 0;
    while cycle < 20 || !writers.iter().all(|w| w.is_finished()) {
        assert!(cycle < 1000, "the writers did not finish");
        cycle += 1;
        let handle = relay(&store, publisher.clone()).batch_size(7).spawn();
        let mut status = handle.status();
        wait_status(&mut status, "a live relay", |s| s.state == RelayState::Live).await;
        // The crash point: a random moment into live publishing (not a synchronisation).
        let into = Duration::from_millis(rng.random_range(0..40));
        tokio::time::sleep(into).await;
        if rng.random_bool(0.75) {
            handle.abort();
        } else {
            let stopped = handle.stop().await.expect("stop");
            assert_eq!(stopped.state, RelayState::Stopped, "cycle {cycle}");
        }
    }
    let mut last = first;
    for writer in writers {
        let end = timeout(WAIT, writer)
            .await
            .expect("the writer finished")
            .expect("writer task");
        last = last.max(end);
    }

    let handle = relay(&store, publisher.clone()).spawn();
    wait_caught_up(&handle, last).await;
    let log = log_up_to(&store, last).await;
    assert_eq!(log.len(), 32 * common::SCRIPT_LEN);
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);
    assert!(
        publisher.duplicates() >= unrecorded.len() as u64,
        "the unrecorded batch was published again and dropped by JetStream ({} duplicates)",
        publisher.duplicates()
    );
    handle.stop().await.expect("stop");
    stream.delete().await;
}

async fn a_second_relay_waits_then_takes_over(store: Store) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let stream = TestStream::new(&client);
    // Each relay on a connection of its own, as in two processes.
    let first_publisher = stream.publisher(&client);
    let second_client = async_nats::connect(common::nats_url())
        .await
        .expect("second connection");
    let second_publisher = stream.publisher(&second_client);
    let work = Workload::new(&store);

    let first = relay(&store, first_publisher.clone()).spawn();
    let mut first_status = first.status();
    wait_status(&mut first_status, "the first relay live", |s| {
        s.state == RelayState::Live
    })
    .await;
    let second = relay(&store, second_publisher.clone()).spawn();

    let early = work.run(3).await;
    wait_caught_up(&first, early).await;
    // The second relay retried the lease every 20 ms all along, and never got it.
    let standby = second.current();
    assert_eq!(standby.state, RelayState::Standby);
    assert_eq!(standby.published, 0);
    let early_count = log_up_to(&store, early).await.len() as u64;
    assert_eq!(first.current().published, early_count);

    let stopped = first.stop().await.expect("stop the first relay");
    assert_eq!(stopped.checkpoint, early);
    let mut second_status = second.status();
    wait_status(&mut second_status, "the second relay taking over", |s| {
        s.state == RelayState::Live
    })
    .await;

    let late = work.run(2).await;
    let status = wait_caught_up(&second, late).await;
    let log = log_up_to(&store, late).await;
    assert_eq!(
        status.published,
        log.len() as u64 - early_count,
        "the second relay continued from the checkpoint"
    );
    let received = stream.read_all(log.len()).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);
    assert_eq!(
        first_publisher.duplicates() + second_publisher.duplicates(),
        0
    );

    second.stop().await.expect("stop");
    stream.delete().await;
}

async fn in_process_bus_carries_the_nats_envelope(store: Store) {
    let Some(client) = shared_nats().await else {
        return;
    };
    let stream = TestStream::new(&client);
    let bus = InProcessBus::new(64);
    let mut subscriber = bus.subscribe();
    let in_process = relay(&store, Arc::new(bus.clone())).spawn();
    let to_nats = relay(&store, stream.publisher(&client)).spawn();
    assert_ne!(in_process.current().name, to_nats.current().name);

    let work = Workload::new(&store);
    let task = Uuid::now_v7();
    let mut last = Position::START;
    for step in 0..common::SCRIPT_LEN {
        last = work.exec(task, Workload::script(task, step)).await;
    }

    let mut local = Vec::new();
    for _ in 0..common::SCRIPT_LEN {
        let event = timeout(WAIT, subscriber.recv())
            .await
            .expect("an in-process event in time")
            .expect("the bus is open");
        local.push(event);
    }
    let log = log_up_to(&store, last).await;
    wait_caught_up(&to_nats, last).await;
    let received = stream.read_all(common::SCRIPT_LEN).await;
    assert_exactly_once(&received, &log, &stream.config.subject_prefix);
    for (local, message) in local.iter().zip(&received) {
        assert_eq!(
            **local,
            message.event(),
            "the same envelope in process and on NATS"
        );
        assert_eq!(
            serde_json::to_value(&**local).unwrap(),
            message.json(),
            "the same JSON"
        );
    }
    let types: Vec<&str> = local.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "tasks.created",
            "tasks.updated",
            "tasks.completed",
            "tasks.reopened",
            "tasks.completed",
            "tasks.deleted"
        ]
    );
    assert!(subscriber.try_recv().is_err(), "nothing more in process");

    in_process.stop().await.expect("stop");
    to_nats.stop().await.expect("stop");
    stream.delete().await;
}
