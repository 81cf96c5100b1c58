//! `lifeos.v1.History`: a user's events straight from the log, streamed.

use std::collections::HashSet;

use aggregates::pillar_of;
use api_common::auth::ANALYST;
use api_common::time::{from_timestamp, to_timestamp};
use api_common::{Caller, invalid_argument, parse_uuid_field};
use proto::v1::event_stream_server::EventStream;
use proto::v1::history_server::History;
use proto::v1::{HistoryEvent, ReplayUserEventsRequest, SubscribeRequest};
use std::time::Duration;
use store::{Journal, LoggedEvent, Position, Store};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Events read from the log per round trip of a replay stream.
const BATCH: usize = 500;

/// How long a live subscription waits for a wake-up before looking at the log anyway.
const LIVE_POLL: Duration = Duration::from_millis(500);

/// The History and EventStream services (both read the log itself, not a read model).
#[derive(Clone)]
pub struct HistoryService {
    store: Store,
}

impl HistoryService {
    /// Streams from `store`'s log.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn to_proto(e: LoggedEvent) -> HistoryEvent {
    HistoryEvent {
        event_id: e.event_id.to_string(),
        position: e.position.to_string(),
        pillar: pillar_of(&e.aggregate_type).to_string(),
        sequence: e.sequence as u64,
        recorded_at: Some(to_timestamp(e.recorded_at)),
        payload_json: e.payload.to_string(),
        metadata_json: e.metadata.to_string(),
        aggregate_type: e.aggregate_type,
        aggregate_id: e.aggregate_id,
        event_type: e.event_type,
        event_version: e.event_version,
    }
}

#[tonic::async_trait]
impl History for HistoryService {
    type ReplayUserEventsStream = ReceiverStream<Result<HistoryEvent, Status>>;

    async fn replay_user_events(
        &self,
        request: Request<ReplayUserEventsRequest>,
    ) -> Result<Response<Self::ReplayUserEventsStream>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let user_id = if r.user_id.is_empty() {
            caller.user_id
        } else {
            parse_uuid_field("user_id", &r.user_id)?
        };
        if user_id != caller.user_id {
            caller.require_role(ANALYST)?;
        }
        let mut after = if r.after_position.is_empty() {
            Position::START
        } else {
            r.after_position
                .parse()
                .map_err(|_| invalid_argument("after_position", "is not a log position"))?
        };
        let since = r
            .since
            .as_ref()
            .map(|t| from_timestamp("since", t))
            .transpose()?;
        let until = r
            .until
            .as_ref()
            .map(|t| from_timestamp("until", t))
            .transpose()?;
        let pillars: HashSet<String> = r.pillars.into_iter().collect();
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let batch = match store.read_user_after(user_id, after, until, BATCH).await {
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(api_common::status::store_status(&err))).await;
                        return;
                    }
                };
                let Some(last) = batch.last().map(|e| e.position) else {
                    return;
                };
                after = last;
                for event in batch {
                    if since.is_some_and(|s| event.recorded_at < s)
                        || (!pillars.is_empty()
                            && !pillars.contains(pillar_of(&event.aggregate_type)))
                    {
                        continue;
                    }
                    if tx.send(Ok(to_proto(event))).await.is_err() {
                        return; // the client went away
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn wanted(pillars: &HashSet<String>, event: &LoggedEvent) -> bool {
    pillars.is_empty() || pillars.contains(pillar_of(&event.aggregate_type))
}

#[tonic::async_trait]
impl EventStream for HistoryService {
    type SubscribeStream = ReceiverStream<Result<HistoryEvent, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let mut after = if r.from_position.is_empty() {
            self.store
                .head()
                .await
                .map_err(|e| api_common::status::store_status(&e))?
        } else {
            r.from_position
                .parse()
                .map_err(|_| invalid_argument("from_position", "is not a log position"))?
        };
        let pillars: HashSet<String> = r.pillars.into_iter().collect();
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut wake = store.wakeups();
            loop {
                wake.borrow_and_update();
                let batch = match store
                    .read_user_after(caller.user_id, after, None, BATCH)
                    .await
                {
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(api_common::status::store_status(&err))).await;
                        return;
                    }
                };
                if let Some(last) = batch.last().map(|e| e.position) {
                    after = last;
                    for event in batch.into_iter().filter(|e| wanted(&pillars, e)) {
                        if tx.send(Ok(to_proto(event))).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                // caught up: wait for the next append (or the client leaving)
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(LIVE_POLL) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
