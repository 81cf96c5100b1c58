//! Group commit: concurrent appends queue up, and one task commits whatever is queued together,
//! so a burst of commands costs one round trip and one WAL flush instead of one each.
//!
//! The queue never waits for a group to fill: the committing task takes the first append, adds
//! what else is queued at that moment (up to [`MAX_GROUP`]), commits, answers every caller,
//! and starts over. A lone command therefore commits as soon as it would without the queue;
//! under load, the commands that arrive while a group commits form the next one.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::journal::{AppendBatch, AppendOutcome};

/// The most appends committed together.
pub(crate) const MAX_GROUP: usize = 256;

/// The outcome of one append of a group.
pub(crate) type Answer = Result<AppendOutcome, StoreError>;

struct Pending {
    batch: AppendBatch,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of a group-commit queue; the committing task ends when it is dropped.
pub(crate) struct CommitQueue {
    sender: mpsc::UnboundedSender<Pending>,
}

impl CommitQueue {
    /// Starts the committing task: `commit` gets each group in arrival order and answers with
    /// one outcome per batch, in the same order, each only once it is durably committed (or
    /// known to have failed).
    pub(crate) fn start<F, Fut>(commit: F) -> Self
    where
        F: Fn(Vec<AppendBatch>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Answer>> + Send,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match receiver.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (batches, replies): (Vec<_>, Vec<_>) =
                    group.into_iter().map(|p| (p.batch, p.reply)).unzip();
                let expected = replies.len();
                let mut answers = commit(batches).await.into_iter();
                for reply in replies {
                    let answer = answers.next().unwrap_or_else(|| {
                        Err(StoreError::Corrupt(format!(
                            "a group commit answered fewer than its {expected} appends"
                        )))
                    });
                    // the caller may have gone (cancelled request): its append stands
                    let _ = reply.send(answer);
                }
            }
        });
        Self { sender }
    }

    /// Queues `batch` and waits for its outcome.
    pub(crate) async fn append(&self, batch: AppendBatch) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { batch, reply })
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?;
        // no answer: the task died mid-group, so whether the append committed is unknown (a
        // retry with the same command id is answered by its receipt if it did)
        answer
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }
}
