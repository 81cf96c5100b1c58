//! Group commit, for both backends: concurrent appends queue up, and one task per store writes
//! whatever is queued together, so a burst of commands costs one transaction and one WAL flush
//! (fsync) instead of one each.
//!
//! The task takes the first queued append, waits until a group can be written (on SQLite: the
//! one writing connection; commands arriving meanwhile join the group), takes every other append
//! queued by then (at most [`MAX_GROUP`]) and hands the group to the backend's [`GroupWriter`].
//! It never waits for a group to fill: a lone command is written at once. Every command is
//! answered only after its group committed (or failed); a caller that stopped waiting before its
//! group was taken gets nothing written.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::journal::{AppendBatch, AppendOutcome};

/// The most commands one group takes; the rest wait for the next one.
const MAX_GROUP: usize = 256;

/// The outcome of one command's append.
pub(crate) type Answer = Result<AppendOutcome, StoreError>;

/// How a backend writes one group.
pub(crate) trait GroupWriter: Send + Sync + 'static {
    /// What a group is written through (the SQLite writing connection).
    type Slot: Send;

    /// Waits until a group can be written.
    fn ready(&self) -> impl Future<Output = Result<Self::Slot, StoreError>> + Send;

    /// Writes `batches`: one answer per batch, in order, each final (committed, or failed
    /// without a trace). `Err` means the whole group failed and nothing of it was committed.
    fn write(
        &self,
        slot: Self::Slot,
        batches: Vec<AppendBatch>,
    ) -> impl Future<Output = Result<Vec<Answer>, StoreError>> + Send;
}

/// Where the task answers one command.
type Reply = oneshot::Sender<Answer>;

/// What the task is asked.
enum Request {
    /// Write this command's batch and answer once it is committed (or failed).
    Append { batch: AppendBatch, reply: Reply },
    /// Take no more requests, finish the queued ones, then answer.
    Close(oneshot::Sender<()>),
}

/// The handle to a store's group-commit task; every clone shares the one task, which ends when
/// the last handle is dropped or the queue is closed.
#[derive(Clone)]
pub(crate) struct CommitQueue {
    queue: mpsc::UnboundedSender<Request>,
    in_flight: Arc<AtomicUsize>,
}

impl CommitQueue {
    /// Starts the task on the current tokio runtime, writing through `writer`.
    pub(crate) fn start<W: GroupWriter>(writer: W) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            StoreError::Unavailable(sqlx::Error::Configuration(
                format!("group commit needs a tokio runtime: {e}").into(),
            ))
        })?;
        let (queue, requests) = mpsc::unbounded_channel();
        runtime.spawn(run(writer, requests));
        Ok(Self {
            queue,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Queues `batch` and waits for its outcome. Every caller awaits its answer, so the queue
    /// holds at most one request per waiting caller.
    pub(crate) async fn append(&self, batch: AppendBatch) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request::Append { batch, reply })
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let _counted = InFlight::count(&self.in_flight);
        // no answer: the task died mid-group, so whether the append committed is unknown (a
        // retry with the same command id is answered by its receipt if it did)
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }

    /// Commands queued or being written, not answered yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Stops taking appends and waits until the queued ones are answered; later appends fail.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Request::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Counts one command in flight for as long as it lives (also when its caller gives up).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn count(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The task: one group after the other until every handle is gone or the queue is closed.
async fn run<W: GroupWriter>(writer: W, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut closers = Vec::new();
    while let Some(request) = requests.recv().await {
        let mut group = Vec::new();
        take(request, &mut group, &mut closers, &mut requests);
        if group.is_empty() {
            continue;
        }
        // Wait until a group can be written first and take the queue after: what arrived
        // meanwhile (while the previous group or a read model held the writer) joins this group.
        let slot = writer.ready().await;
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => take(request, &mut group, &mut closers, &mut requests),
                Err(_) => break,
            }
        }
        // A caller that stopped waiting before its command was written gets nothing written.
        group.retain(|(_, reply)| !reply.is_closed());
        if group.is_empty() {
            continue;
        }
        let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let written = match slot {
            Ok(slot) => writer.write(slot, batches).await,
            Err(err) => Err(err),
        };
        match written {
            Ok(answers) => {
                let expected = replies.len();
                let mut answers = answers.into_iter();
                for reply in replies {
                    let answer = answers.next().unwrap_or_else(|| {
                        Err(StoreError::Corrupt(format!(
                            "a group commit answered fewer than its {expected} appends"
                        )))
                    });
                    let _ = reply.send(answer);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, commands = replies.len(), "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(sqlx::Error::Io(
                        std::io::Error::other(format!("group commit failed: {err}")),
                    ))));
                }
            }
        }
    }
    for closer in closers {
        let _ = closer.send(());
    }
}

/// Adds an append to `group`, or records a close request and stops the queue.
fn take(
    request: Request,
    group: &mut Vec<(AppendBatch, Reply)>,
    closers: &mut Vec<oneshot::Sender<()>>,
    requests: &mut mpsc::UnboundedReceiver<Request>,
) {
    match request {
        Request::Append { batch, reply } => group.push((batch, reply)),
        Request::Close(done) => {
            closers.push(done);
            requests.close(); // the queued requests are still taken, no new one is accepted
        }
    }
}
