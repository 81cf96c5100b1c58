//! The cqrs-es `EventStore` the command path uses: load (snapshot + newer events, or the
//! cached state), commit one command atomically, answer with a [`Receipt`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::Arc;

use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, EventStore};
use uuid::Uuid;

use crate::aggregate_cache::{AggregateCache, Cached};
use crate::journal::{AppendBatch, AppendOutcome, CommandKey, Journal, Receipt, StreamLoad};
use crate::logged::meta;

/// How many times a command is tried before the caller sees a conflict.
///
/// Each failed attempt means another command committed on the same aggregate in between, so
/// this is how many writers may race on one aggregate at once and all get through (5 was too
/// few: 20 concurrent updates of one task failed).
const MAX_ATTEMPTS: usize = 32;

/// When to snapshot an aggregate type.
///
/// ```
/// use store::SnapshotPolicy;
/// assert!(SnapshotPolicy::every(100).due(99, 100));
/// assert!(!SnapshotPolicy::every(100).due(100, 150));
/// assert!(!SnapshotPolicy::Never.due(0, 1000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotPolicy {
    /// Always rebuild from every event (short streams).
    #[default]
    Never,
    /// Snapshot each time the stream crosses a multiple of this many events.
    Every(NonZeroU64),
}

impl SnapshotPolicy {
    /// Snapshot every `n` events (`n = 0` means never).
    pub fn every(n: u64) -> Self {
        NonZeroU64::new(n).map_or(SnapshotPolicy::Never, SnapshotPolicy::Every)
    }

    /// Whether going from version `before` to `after` crosses a snapshot point.
    pub fn due(&self, before: u64, after: u64) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(n) => after / n.get() > before / n.get(),
        }
    }
}

/// What executing one command produced.
#[derive(Debug)]
pub struct CommandOutcome<A: Aggregate> {
    /// The receipt (the first one, for a repeated command id).
    pub receipt: Receipt,
    /// True when the command id had been executed before and nothing was written now.
    pub duplicate: bool,
    /// The events committed now, with their metadata (empty for a duplicate).
    pub envelopes: Vec<EventEnvelope<A>>,
}

/// cqrs-es [`EventStore`] over a [`Journal`], with per-type snapshots and upcasters.
///
/// Unlike cqrs-es 0.5.0's own snapshot mode, the snapshot is the context's aggregate as left by
/// `handle` (whose `EventSink` already applied the new events): the events are applied once.
pub struct AggregateStore<A, J> {
    journal: J,
    snapshots: SnapshotPolicy,
    upcasters: Arc<Vec<Box<dyn EventUpcaster>>>,
    cache: AggregateCache<A>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, J: Clone> Clone for AggregateStore<A, J> {
    fn clone(&self) -> Self {
        Self {
            journal: self.journal.clone(),
            snapshots: self.snapshots,
            upcasters: self.upcasters.clone(),
            cache: self.cache.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate, J: Journal> AggregateStore<A, J> {
    /// An aggregate store over `journal`, without snapshots or upcasters.
    pub fn new(journal: J) -> Self {
        Self {
            journal,
            snapshots: SnapshotPolicy::Never,
            upcasters: Arc::new(Vec::new()),
            cache: AggregateCache::default(),
            _aggregate: PhantomData,
        }
    }

    /// Sets the snapshot policy of this aggregate type.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// Keeps the state of up to `capacity` recently commanded aggregates in memory (shared by
    /// this store's clones), so a command on one of them needs no load; `0` turns it off.
    /// See [`AggregateCache`] for why a cached state is never trusted blindly.
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = AggregateCache::new(capacity);
        self
    }

    /// The aggregate cache (empty unless [`with_cache`](Self::with_cache) was called).
    pub fn cache(&self) -> &AggregateCache<A> {
        &self.cache
    }

    /// Sets the upcasters applied to stored events before they are deserialized.
    pub fn with_upcasters(mut self, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    /// The journal underneath.
    pub fn journal(&self) -> &J {
        &self.journal
    }

    /// Executes `command` on aggregate `aggregate_id`: decides on the cached or loaded state,
    /// commits, and decides again on a fresh load when another writer got there first.
    ///
    /// `metadata` (user, command, correlation ids…) is stored with every event. A command id
    /// executed before is answered with its first receipt and writes nothing: the append
    /// refuses a second receipt for it in the same transaction, and a refusal is answered with
    /// the receipt when one exists (the state the repeat saw already includes the command).
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: HashMap<String, String>,
        key: Option<CommandKey>,
    ) -> Result<CommandOutcome<A>, AggregateError<A::Error>>
    where
        A::Command: Clone,
    {
        let mut attempt = 0;
        let mut trust_cache = true;
        loop {
            attempt += 1;
            let entry = if trust_cache {
                self.cache.take(aggregate_id)
            } else {
                None
            };
            let (mut context, cached) = match entry {
                Some(entry) => (
                    EventStoreAggregateContext {
                        aggregate_id: aggregate_id.to_string(),
                        aggregate: entry.aggregate,
                        current_sequence: entry.version as usize,
                        current_snapshot: None,
                    },
                    true,
                ),
                None => (self.load_aggregate(aggregate_id).await?, false),
            };
            let sink = EventSink::default();
            if let Err(refused) = context
                .aggregate
                .handle(command.clone(), services, &sink)
                .await
            {
                // A cached state may be behind the log (another process wrote since): a
                // refusal stands only when the stored state refuses too.
                if cached {
                    trust_cache = false;
                    continue;
                }
                // A previous attempt of this very command may have committed (the state we
                // loaded already includes it): then the answer is its receipt, not the refusal
                // its effect causes.
                if let Some(key) = &key
                    && let Some(receipt) = self.journal.receipt(key).await.map_err(into_agg)?
                {
                    return Ok(CommandOutcome {
                        receipt,
                        duplicate: true,
                        envelopes: Vec::new(),
                    });
                }
                return Err(AggregateError::UserError(refused));
            }
            let events = sink.collect().await;
            match self
                .commit_events(events, &context, metadata.clone(), key.clone())
                .await
            {
                Ok(outcome) => {
                    if !outcome.duplicate {
                        self.cache.put(
                            aggregate_id,
                            Cached {
                                aggregate: context.aggregate,
                                version: outcome.receipt.version,
                            },
                        );
                    }
                    return Ok(outcome);
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    self.cache.forget(aggregate_id);
                    continue;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Commits the events one command decided, with its idempotency key, in one transaction.
    ///
    /// `context.aggregate` must already include `events` (cqrs-es 0.5.0's `EventSink` applies
    /// them during `handle`); it is what gets snapshotted.
    pub async fn commit_command(
        &self,
        events: Vec<A::Event>,
        context: EventStoreAggregateContext<A>,
        metadata: HashMap<String, String>,
        key: Option<CommandKey>,
    ) -> Result<CommandOutcome<A>, AggregateError<A::Error>> {
        self.commit_events(events, &context, metadata, key).await
    }

    /// [`commit_command`](Self::commit_command) without consuming the context.
    async fn commit_events(
        &self,
        events: Vec<A::Event>,
        context: &EventStoreAggregateContext<A>,
        metadata: HashMap<String, String>,
        key: Option<CommandKey>,
    ) -> Result<CommandOutcome<A>, AggregateError<A::Error>> {
        let base = context.current_sequence as u64;
        let after = base + events.len() as u64;
        let snapshot = if !events.is_empty() && self.snapshots.due(base, after) {
            Some((after, serde_json::to_value(&context.aggregate)?))
        } else {
            None
        };
        let recorded_at = Utc::now().to_rfc3339();
        let mut envelopes = Vec::with_capacity(events.len());
        let mut serialized = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let mut meta_map = metadata.clone();
            meta_map.insert(meta::EVENT_ID.into(), Uuid::now_v7().to_string());
            meta_map.insert(meta::RECORDED_AT.into(), recorded_at.clone());
            let sequence = base as usize + 1 + i;
            serialized.push(SerializedEvent {
                aggregate_id: context.aggregate_id.clone(),
                sequence,
                aggregate_type: A::TYPE.to_string(),
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event)?,
                metadata: serde_json::to_value(&meta_map)?,
            });
            envelopes.push(EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence,
                payload: event,
                metadata: meta_map,
            });
        }
        let outcome = self
            .journal
            .append(AppendBatch {
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: context.aggregate_id.clone(),
                expected_version: base,
                events: serialized,
                snapshot,
                command: key,
            })
            .await
            .map_err(into_agg)?;
        Ok(match outcome {
            AppendOutcome::Committed(receipt) => CommandOutcome {
                receipt,
                duplicate: false,
                envelopes,
            },
            AppendOutcome::Duplicate(receipt) => CommandOutcome {
                receipt,
                duplicate: true,
                envelopes: Vec::new(),
            },
        })
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        self.upcasters.iter().fold(event, |event, upcaster| {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                upcaster.upcast(event)
            } else {
                event
            }
        })
    }

    fn deserialize(
        &self,
        event: SerializedEvent,
    ) -> Result<EventEnvelope<A>, AggregateError<A::Error>> {
        let event = self.upcast(event);
        Ok(EventEnvelope {
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            payload: serde_json::from_value(event.payload)?,
            metadata: serde_json::from_value(event.metadata)?,
        })
    }
}

fn into_agg<E: std::error::Error>(err: crate::StoreError) -> AggregateError<E> {
    cqrs_es::persist::PersistenceError::from(err).into()
}

impl<A: Aggregate, J: Journal> EventStore<A> for AggregateStore<A, J> {
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let events = self.journal.get_events::<A>(aggregate_id).await?;
        events.into_iter().map(|e| self.deserialize(e)).collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        let with_snapshot = self.snapshots != SnapshotPolicy::Never;
        let StreamLoad { snapshot, events } = self
            .journal
            .load_stream::<A>(aggregate_id, with_snapshot)
            .await?;
        let mut context = match snapshot {
            Some(s) => EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_string(),
                aggregate: serde_json::from_value(s.aggregate)?,
                current_sequence: s.current_sequence,
                current_snapshot: Some(s.current_snapshot),
            },
            None => EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_string(),
                aggregate: A::default(),
                current_sequence: 0,
                current_snapshot: None,
            },
        };
        for event in events {
            let envelope = self.deserialize(event)?;
            context.current_sequence = envelope.sequence;
            context.aggregate.apply(envelope.payload);
        }
        Ok(context)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        Ok(self
            .commit_command(events, context, metadata, None)
            .await?
            .envelopes)
    }
}
