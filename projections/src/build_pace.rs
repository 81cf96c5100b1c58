//! Keeps the builds of one process reading the log together.
//!
//! Every runner reads through the one shared [`LogFeed`](store::LogFeed), which holds a few
//! thousand recent events: builds reading side by side are served by one store read. Builds
//! run at different speeds (one model folds an event in microseconds, another writes three
//! rows), and once they drift further apart than the feed holds, each read misses and goes to
//! the store alone, under the feed's lock: a 13-model rebuild then reads the log many times
//! over, one runner at a time. So a build reads its next batch only while it is at most a
//! window ahead of the slowest build; the slowest never waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store::Position;
use tokio::sync::watch;

/// The builds in progress in one process, by their position.
#[derive(Debug)]
pub(crate) struct BuildPace {
    builds: watch::Sender<HashMap<u64, Position>>,
    next: AtomicU64,
    /// How far (in log positions) a build may run ahead of the slowest.
    window: u64,
}

impl BuildPace {
    /// No builds yet; a build may run `window` positions ahead of the slowest.
    pub(crate) fn new(window: u64) -> Self {
        Self {
            builds: watch::Sender::new(HashMap::new()),
            next: AtomicU64::new(0),
            window,
        }
    }

    /// Registers a build starting at the beginning of the log; it leaves when dropped.
    pub(crate) fn join(self: &Arc<Self>) -> PaceSlot {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.builds.send_modify(|b| {
            b.insert(id, Position::START);
        });
        PaceSlot {
            pace: self.clone(),
            id,
        }
    }
}

/// One build's place in the [`BuildPace`].
#[derive(Debug)]
pub(crate) struct PaceSlot {
    pace: Arc<BuildPace>,
    id: u64,
}

impl PaceSlot {
    /// Records that the build has applied everything up to `at`.
    pub(crate) fn advanced(&self, at: Position) {
        self.pace.builds.send_modify(|b| {
            b.insert(self.id, at);
        });
    }

    /// Waits until the build at `at` may read on (it is within the window of the slowest
    /// build), for at most `patience`; returns whether it may.
    pub(crate) async fn turn(&self, at: Position, patience: Duration) -> bool {
        let mut builds = self.pace.builds.subscribe();
        let window = self.pace.window;
        let may = |b: &HashMap<u64, Position>| {
            b.values()
                .min()
                .is_none_or(|slowest| at.pos <= slowest.pos.saturating_add(window as i64))
        };
        tokio::time::timeout(patience, builds.wait_for(may))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for PaceSlot {
    fn drop(&mut self) {
        self.pace.builds.send_modify(|b| {
            b.remove(&self.id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pos: i64) -> Position {
        Position { tx: 0, pos }
    }

    #[tokio::test]
    async fn a_build_ahead_of_the_window_waits_for_the_slowest() {
        let pace = Arc::new(BuildPace::new(100));
        let fast = pace.join();
        let slow = pace.join();
        fast.advanced(at(150));
        assert!(
            !fast.turn(at(150), Duration::from_millis(20)).await,
            "150 ahead of the slowest at 0"
        );
        assert!(
            slow.turn(at(0), Duration::ZERO).await,
            "the slowest never waits"
        );
        let waiting = tokio::spawn(async move {
            let may = fast.turn(at(150), Duration::from_secs(30)).await;
            (may, fast)
        });
        slow.advanced(at(60));
        let (may, fast) = waiting.await.expect("waiter");
        assert!(may, "woken once the slowest is within the window");
        drop(slow);
        fast.advanced(at(10_000));
        assert!(
            fast.turn(at(10_000), Duration::ZERO).await,
            "alone, a build never waits"
        );
    }
}
