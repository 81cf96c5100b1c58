//! One shared reader of the global log for every consumer in a process.
//!
//! Each projection runner and the bus relay follow the same log. Reading it through one
//! [`LogFeed`] means a commit is read and decoded once, not once per consumer, and a rebuild of
//! every read model scans the log once instead of once per projection. The feed keeps a few
//! contiguous *segments* of recently read events in memory; a read served from a segment costs
//! no database round trip.
//!
//! Correctness rests on the store's reader contract ([`Journal::read_after`] never skips: an
//! event not returned now comes after every event returned now). A segment `(from, to]` is
//! therefore exactly the readable events between `from` and its last event, and stays so; the
//! feed only decides when its end may be served without asking the store again: when no append
//! was signalled since the read that found the end (the store's wake-up counter) and that read
//! is younger than [`TAIL_FRESH`] (on PostgreSQL, an event held back by an older open
//! transaction becomes readable without a signal when that transaction ends).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};

use crate::{Journal, LoggedEvent, Position, Store, StoreError};

/// How long a read that reached the end of the log answers for it when no append was signalled
/// (the default of [`LogFeed::tail_fresh`]).
pub const TAIL_FRESH: Duration = Duration::from_millis(50);

/// Segments kept at once (the live tail, one or two rebuilds, a lagging consumer).
const MAX_SEGMENTS: usize = 4;

/// A shared, cached reader of the global log. Cheap to clone.
#[derive(Clone)]
pub struct LogFeed {
    store: Store,
    inner: Arc<Mutex<Segments>>,
    /// The store's append signal, subscribed at the first read (on PostgreSQL subscribing
    /// starts the LISTEN task: a store that is only queried never needs it).
    wake: Arc<OnceLock<watch::Receiver<u64>>>,
    capacity: usize,
    tail_fresh: Duration,
    store_reads: Arc<AtomicU64>,
}

/// The events read together, oldest first.
pub type LogBatch = Vec<Arc<LoggedEvent>>;

struct Segments {
    list: Vec<Segment>,
    clock: u64,
}

/// Every readable event in `(from, last]`, in log order.
struct Segment {
    from: Position,
    events: VecDeque<Arc<LoggedEvent>>,
    /// When a read found the end of the readable log here: the wake-up counter before it, and
    /// when it ran.
    end: Option<(u64, Instant)>,
    /// For eviction: the feed's clock at the last read served.
    used: u64,
}

impl Segment {
    fn to(&self) -> Position {
        self.events.back().map_or(self.from, |e| e.position)
    }

    fn covers(&self, after: Position) -> bool {
        self.from <= after && after <= self.to()
    }

    /// Up to `limit` events after `after` (which the segment covers).
    fn after(&self, after: Position, limit: usize) -> LogBatch {
        let start = self.events.partition_point(|e| e.position <= after);
        self.events.range(start..).take(limit).cloned().collect()
    }

    /// Whether its end may stand for the end of the readable log now.
    fn end_is_fresh(&self, wake: u64, fresh: Duration) -> bool {
        self.end
            .is_some_and(|(seen, at)| seen == wake && at.elapsed() < fresh)
    }
}

impl LogFeed {
    /// A feed over `store` keeping at most `capacity` events per segment (older ones are read
    /// from the store again when asked for).
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            inner: Arc::new(Mutex::new(Segments {
                list: Vec::new(),
                clock: 0,
            })),
            wake: Arc::new(OnceLock::new()),
            capacity: capacity.max(1),
            tail_fresh: TAIL_FRESH,
            store_reads: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How long a read that found the end of the readable log stands for it while no append
    /// is signalled (default [`TAIL_FRESH`]; zero asks the store on every read past the end).
    pub fn tail_fresh(mut self, fresh: Duration) -> Self {
        self.tail_fresh = fresh;
        self
    }

    /// How many reads went to the store (the rest were served from memory).
    pub fn store_reads(&self) -> u64 {
        self.store_reads.load(Ordering::Relaxed)
    }

    /// Like [`Journal::read_after`]: up to `limit` committed events after `after`, in global
    /// order, never skipping one; served from memory when another consumer read them already.
    pub async fn read_after(&self, after: Position, limit: usize) -> Result<LogBatch, StoreError> {
        let limit = limit.max(1);
        let mut segments = self.inner.lock().await;
        segments.clock += 1;
        let clock = segments.clock;
        let index = match segments.list.iter().position(|s| s.covers(after)) {
            Some(i) => i,
            None => {
                segments.list.push(Segment {
                    from: after,
                    events: Default::default(),
                    end: None,
                    used: clock,
                });
                segments.list.len() - 1
            }
        };
        let mut out = segments.list[index].after(after, limit);
        let wake = *self.wake.get_or_init(|| self.store.wakeups()).borrow();
        if out.len() < limit && !segments.list[index].end_is_fresh(wake, self.tail_fresh) {
            let to = segments.list[index].to();
            let wanted = limit - out.len();
            self.store_reads.fetch_add(1, Ordering::Relaxed);
            let read = self.store.read_after(to, wanted).await?;
            let segment = &mut segments.list[index];
            segment.end = (read.len() < wanted).then(|| (wake, Instant::now()));
            for event in read {
                let event = Arc::new(event);
                out.push(event.clone());
                segment.events.push_back(event);
            }
        }
        segments.list[index].used = clock;
        segments.merge_and_evict(self.capacity);
        Ok(out)
    }
}

impl Segments {
    /// Joins segments that now overlap (a lagging consumer caught up with another), keeps the
    /// newest `capacity` events of each and drops the least recently used beyond
    /// [`MAX_SEGMENTS`].
    fn merge_and_evict(&mut self, capacity: usize) {
        self.list.sort_by_key(|s| s.from);
        let mut merged: Vec<Segment> = Vec::with_capacity(self.list.len());
        for segment in self.list.drain(..) {
            match merged.last_mut() {
                Some(prev) if segment.from <= prev.to() => {
                    // `prev` holds everything up to its end; take what `segment` has beyond it
                    let end = prev.to();
                    if segment.to() > end {
                        let start = segment.events.partition_point(|e| e.position <= end);
                        prev.events.extend(segment.events.into_iter().skip(start));
                        prev.end = segment.end;
                    } else if segment.to() == end && prev.end.is_none() {
                        prev.end = segment.end;
                    }
                    prev.used = prev.used.max(segment.used);
                }
                _ => merged.push(segment),
            }
        }
        for segment in &mut merged {
            while segment.events.len() > capacity {
                let dropped = segment.events.pop_front().expect("over capacity");
                segment.from = dropped.position;
            }
        }
        while merged.len() > MAX_SEGMENTS {
            let oldest = (0..merged.len())
                .min_by_key(|&i| merged[i].used)
                .expect("not empty");
            merged.remove(oldest);
        }
        self.list = merged;
    }
}
