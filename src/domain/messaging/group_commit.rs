//! Group commit: concurrent replies are queued and stored many to a transaction by one writer
//! task, so the per-transaction and per-statement costs are shared. Each sender still waits
//! for the commit that holds its message before it is answered.
//!
//! Every commit, a new thread's first message's too, leaves through one queue of [`Committed`]
//! batches, in commit order. The service's announcer reads it, tells the participants, then
//! answers the senders, while the writer is already storing the next batch: the events of one
//! conversation never overtake each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::SendOutcome;
use super::send::{Reply, store_replies};
use crate::db::Database;
use crate::domain::{DomainError, DomainResult};
use crate::metrics::Metrics;

/// Most replies stored in one transaction.
const MAX_BATCH: usize = 256;

type Waiter = oneshot::Sender<DomainResult<SendOutcome>>;
type Job = (Reply, Waiter);

/// Handle to the writer task, and to the queue of commits it feeds.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    committed: mpsc::UnboundedSender<Committed>,
    /// Sends submitted and not answered yet (graceful shutdown waits for them).
    pending: Arc<AtomicUsize>,
}

/// The messages of one commit, oldest first, on their way to be announced; their senders are
/// answered by [`Committed::answer`], once the participants have been told.
pub struct Committed {
    pub outcomes: Vec<SendOutcome>,
    waiters: Vec<Waiter>,
}

impl Committed {
    /// Answers each sender with their message.
    pub fn answer(self) {
        for (waiter, outcome) in self.waiters.into_iter().zip(self.outcomes) {
            let _ = waiter.send(Ok(outcome));
        }
    }
}

impl GroupCommit {
    /// Starts the writer on `db`; commits come out of the returned queue, in commit order.
    pub fn start(
        db: Database,
        metrics: Arc<Metrics>,
    ) -> (GroupCommit, mpsc::UnboundedReceiver<Committed>) {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        let (committed, announced) = mpsc::unbounded_channel::<Committed>();
        let to_announcer = committed.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (replies, waiters): (Vec<Reply>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                match store_replies(&db, replies).await {
                    Ok(outcomes) => {
                        Metrics::inc(&metrics.reply_commits);
                        let mut commit = Committed {
                            outcomes: Vec::with_capacity(outcomes.len()),
                            waiters: Vec::with_capacity(outcomes.len()),
                        };
                        for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                            match outcome {
                                Ok(outcome) => {
                                    commit.outcomes.push(outcome);
                                    commit.waiters.push(waiter);
                                }
                                Err(e) => {
                                    let _ = waiter.send(Err(e));
                                }
                            }
                        }
                        let _ = to_announcer.send(commit);
                    }
                    Err(e) => {
                        // Nothing of the batch was committed: each sender may retry.
                        tracing::error!(error = %e, "storing a batch of replies failed");
                        let unavailable = matches!(e, DomainError::Unavailable);
                        for waiter in waiters {
                            let _ = waiter.send(Err(if unavailable {
                                DomainError::Unavailable
                            } else {
                                DomainError::Internal("the message could not be stored".into())
                            }));
                        }
                    }
                }
            }
        });
        let pending = Arc::default();
        (
            GroupCommit {
                queue,
                committed,
                pending,
            },
            announced,
        )
    }

    /// Queues a reply and waits until it is committed and announced.
    pub async fn submit(&self, reply: Reply) -> DomainResult<SendOutcome> {
        let (done, outcome) = oneshot::channel();
        let _pending = Pending::new(&self.pending);
        self.queue
            .send((reply, done))
            .map_err(|_| DomainError::Internal("the writer has stopped".into()))?;
        Self::answer(outcome).await
    }

    /// Waits, at most `limit`, until every send submitted so far has been answered: a
    /// stopping server lets the batch in flight commit and be announced.
    pub async fn settle(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, async {
            while self.pending.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    }

    /// Queues a message committed elsewhere (a new thread's first) to be announced in turn
    /// with the replies, and waits until it is.
    pub async fn announce(&self, outcome: SendOutcome) -> DomainResult<SendOutcome> {
        let (done, answer) = oneshot::channel();
        let _pending = Pending::new(&self.pending);
        self.committed
            .send(Committed {
                outcomes: vec![outcome],
                waiters: vec![done],
            })
            .map_err(|_| DomainError::Internal("the announcer has stopped".into()))?;
        Self::answer(answer).await
    }

    async fn answer(
        outcome: oneshot::Receiver<DomainResult<SendOutcome>>,
    ) -> DomainResult<SendOutcome> {
        outcome
            .await
            .map_err(|_| DomainError::Internal("the group commit has stopped".into()))?
    }
}

/// One send between its submission and its answer.
struct Pending<'a>(&'a AtomicUsize);

impl<'a> Pending<'a> {
    fn new(count: &'a AtomicUsize) -> Pending<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Pending(count)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
