//! Workload 5, freshness under `writers` appending clients: (a) from a command's ack to its read
//! model answering with it (GetTask with the ack's consistency token: the server answers once
//! the model has applied it), (b) from a command's ack to its CloudEvent reaching a NATS
//! subscriber, for every event the writers commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::CloudEvent;
use bus::async_nats;
use futures::StreamExt;
use proto::v1::GetTaskRequest;
use uuid::Uuid;

use super::wait_until;
use crate::child::{ChildOptions, ServerChild};
use crate::client::{OnAck, UserClient, run_writers};
use crate::env::Env;
use crate::opts::Sizes;
use crate::table::Row;

/// When an event was acknowledged to its writer, and when NATS delivered it.
#[derive(Default, Clone, Copy)]
struct Seen {
    acked: Option<Instant>,
    delivered: Option<Instant>,
}

type Ledger = Arc<Mutex<HashMap<Uuid, Seen>>>;

/// Writers, a read-your-writes probe and (with NATS) a subscriber, at once.
pub async fn run(env: Env, sizes: &Sizes) -> anyhow::Result<Vec<Row>> {
    let nats = connect_nats().await?;
    let prefix = format!("bench{}", &Uuid::now_v7().simple().to_string()[20..]);
    let options = ChildOptions {
        nats: nats.as_ref().map(|(url, _)| (url.clone(), prefix.clone())),
        ..ChildOptions::default()
    };
    let server = ServerChild::start(&env, &options).await?;
    let ledger: Ledger = Arc::default();
    let subscriber = match &nats {
        Some((_, client)) => {
            let mut messages = client.subscribe(format!("{prefix}.events.>")).await?;
            client.flush().await?;
            let ledger = ledger.clone();
            Some(tokio::spawn(async move {
                while let Some(message) = messages.next().await {
                    let now = Instant::now();
                    if let Ok(event) = serde_json::from_slice::<CloudEvent>(&message.payload) {
                        ledger
                            .lock()
                            .expect("ledger")
                            .entry(event.id)
                            .or_default()
                            .delivered = Some(now);
                    }
                }
            }))
        }
        None => None,
    };
    let on_ack: OnAck = {
        let ledger = ledger.clone();
        Arc::new(move |ack, at| {
            let mut ledger = ledger.lock().expect("ledger");
            for id in &ack.event_ids {
                if let Ok(id) = id.parse() {
                    ledger.entry(id).or_default().acked = Some(at);
                }
            }
        })
    };
    let writers = tokio::spawn(run_writers(
        server.addr(),
        sizes.writers,
        sizes.duration,
        Some(on_ack),
    ));
    let (probes, probe_elapsed) = probe_read_model(&server, sizes.duration).await?;
    let written = writers.await??;

    let mut rows = vec![
        Row::new(
            "freshness",
            env.backend,
            "ack → read model (GetTask with token)",
            sizes.writers,
        )
        .timed(probes.len() as u64, "cmd", probe_elapsed, &probes),
    ];
    if let (Some(task), Some((_, client))) = (subscriber, &nats) {
        // every acknowledged event must arrive; give the relay time to drain
        wait_until(Duration::from_secs(30), "NATS delivery", || async {
            let ledger = ledger.lock().expect("ledger");
            Ok(ledger
                .values()
                .all(|s| s.acked.is_none() || s.delivered.is_some()))
        })
        .await?;
        task.abort();
        let lags: Vec<Duration> = ledger
            .lock()
            .expect("ledger")
            .values()
            .filter_map(|s| Some(s.delivered?.saturating_duration_since(s.acked?)))
            .collect();
        rows.push(
            Row::new(
                "freshness",
                env.backend,
                "ack → NATS subscriber (CloudEvent)",
                sizes.writers,
            )
            .timed(lags.len() as u64, "event", written.elapsed, &lags),
        );
        let stream = format!("{}_EVENTS", prefix.to_uppercase());
        let _ = async_nats::jetstream::new(client.clone())
            .delete_stream(&stream)
            .await;
    }
    rows.push(
        Row::new(
            "freshness",
            env.backend,
            "writers (CreateTask + CompleteTask)",
            sizes.writers,
        )
        .timed(
            written.latencies.len() as u64,
            "cmd",
            written.elapsed,
            &written.latencies,
        ),
    );
    let rss = server.stop().await?;
    for row in &mut rows {
        row.server_rss_mib = rss;
    }
    env.cleanup().await;
    Ok(rows)
}

/// A probe client: CreateTask, then GetTask with the ack's token, every 20 ms; the time from
/// the ack to the answer.
async fn probe_read_model(
    server: &ServerChild,
    duration: Duration,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let mut probe = UserClient::connect(server.addr()).await?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < duration {
        let ack = probe.create_task("probe").await?;
        let acked = Instant::now();
        let task = probe
            .queries
            .get_task(GetTaskRequest {
                task_id: ack.aggregate_id.clone(),
                consistency_token: ack.consistency_token,
                as_of: None,
            })
            .await?
            .into_inner();
        latencies.push(acked.elapsed());
        anyhow::ensure!(
            task.task_id == ack.aggregate_id,
            "GetTask answered {task:?}"
        );
        // pacing only: the probe samples, the writers make the load
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((latencies, started.elapsed()))
}

/// NATS at `LIFEOS_TEST_NATS_URL` (default `nats://127.0.0.1:4222`); `None` outside CI when it
/// does not answer (the NATS row is then left out), an error in CI.
async fn connect_nats() -> anyhow::Result<Option<(String, async_nats::Client)>> {
    let url = std::env::var("LIFEOS_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&url);
    let error = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(client)) => return Ok(Some((url, client))),
        Ok(Err(err)) => err.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        anyhow::bail!("NATS required in CI: {url} ({error})");
    }
    eprintln!("freshness: NATS not reachable at {url} ({error}); measuring the read model only");
    Ok(None)
}
